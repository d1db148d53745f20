"""Files that appear whole or not at all: write a temporary file beside the target, then rename.

``os.replace`` within one folder is atomic on POSIX and Windows, so a reader (or a crash)
sees either the old file, the complete new one, or nothing, never a partial file. The
temporary file is removed whatever goes wrong, ``KeyboardInterrupt`` included.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["OutputExistsError", "atomic_output", "atomic_update", "check_output_path"]


class OutputExistsError(FileExistsError):
    """The output exists and replacing it was not asked for."""


def check_output_path(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """``path`` as a ``Path`` after checking that it can be written: its folder exists, it is
    not a folder, and it does not exist unless ``overwrite``."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{str(target)!r} is a folder; give a file name for the output")
    parent = target.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"the folder {str(parent)!r} of the output does not exist; create it first")
    if target.exists() and not overwrite:
        raise OutputExistsError(
            f"{str(target)!r} exists; pass --overwrite (overwrite=True) to replace it, or choose another name"
        )
    return target


def _temporary_name(target: Path) -> Path:
    # Hidden, unique, in the same folder (os.replace cannot cross file systems).
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yields a new, empty temporary file beside ``path``; when the block ends without an
    exception it replaces ``path``, otherwise it is deleted and ``path`` is untouched.

    Refuses (:class:`OutputExistsError`) an existing ``path`` unless ``overwrite``. The
    temporary file is created with the usual permissions (``0o666`` less the umask).
    """
    target = check_output_path(path, overwrite=overwrite)
    temporary = _temporary_name(target)
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    os.close(fd)
    try:
        yield temporary
        if not overwrite and target.exists():
            raise OutputExistsError(f"{str(target)!r} appeared while it was being written; nothing replaced")
        os.replace(temporary, target)
    finally:
        _discard(temporary)


@contextlib.contextmanager
def atomic_update(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary copy of the existing file ``path`` to modify; when the block ends
    without an exception the copy replaces ``path``, otherwise ``path`` is untouched."""
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"{str(target)!r} does not exist or is not a file")
    temporary = _temporary_name(target)
    try:
        shutil.copy2(target, temporary)
        yield temporary
        os.replace(temporary, target)
    finally:
        _discard(temporary)
