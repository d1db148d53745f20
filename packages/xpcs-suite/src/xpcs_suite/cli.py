"""The ``xpcs`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from xpcs_suite.__about__ import __version__
from xpcs_suite.info import collect_info, format_info

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xpcs", description="XPCS analysis on NumPy or JAX.")
    parser.add_argument("--version", action="version", version=f"xpcs-suite {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = sub.add_parser("info", help="versions, selected backend and why, JAX devices")
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    return parser


def _info(args: argparse.Namespace) -> int:
    info = collect_info()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"info": _info}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xpcs`` command; returns the exit status (2 for a usage or input error)."""
    args = _build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except Exception as exc:
        if args.debug:
            raise
        # One line that names the problem; --debug shows the traceback.
        print(f"xpcs {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
