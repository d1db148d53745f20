"""Release helpers for the xpcs monorepo.

Standard library only; ``packaging`` is used for requirements when it is importable.
Every package lives in ``packages/<name>/`` with its version in
``src/<module>/__about__.py`` (exactly ``__version__ = "X.Y.Z"``) and a
``CHANGELOG.md``. Release tags look like ``<package>-v<version>``, e.g.
``xpcs-kernels-v0.3.1``.

Commands (``python tools/release.py [--root DIR] COMMAND ...``):

``list``
    every package and its version (``__about__.py`` is parsed, never imported).
``bump PACKAGE {major,minor,patch}`` or ``bump PACKAGE --to X.Y.Z``
    rewrite that package's ``__about__.py`` and turn its ``## <version> — unreleased``
    CHANGELOG heading into ``## X.Y.Z — YYYY-MM-DD`` (or insert such a heading).
``check-tag TAG``
    check that ``TAG`` names a package whose version equals the tag's; print the
    package.
``check-ranges``
    check that every requirement on a sibling ``xpcs-*`` package is a version range
    that the sibling's current version satisfies.

Exit status: 0 success; 1 a check failed (tag mismatch, range violations); 2 the
request was refused (unknown package, malformed version or tag, a version not greater
than the current one).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as dt
import importlib
import os
import re
import stat
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

__all__ = [
    "BumpResult",
    "Package",
    "ParsedRequirement",
    "ReleaseError",
    "TagMismatchError",
    "Version",
    "Violation",
    "bump_version",
    "check_ranges",
    "check_tag",
    "default_root",
    "find_package",
    "list_packages",
    "main",
    "parse_requirement",
    "parse_tag",
    "parse_version",
    "read_version",
    "specifier_contains",
]

SIBLING_PREFIX: Final = "xpcs-"
BUMP_PARTS: Final = ("major", "minor", "patch")

_VERSION_RE: Final = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
_ABOUT_ASSIGN_RE: Final = re.compile(
    r"""^(?P<head>__version__[ \t]*(?::[ \t]*str[ \t]*)?=[ \t]*)"""
    r"""(?P<q>["'])(?P<v>[^"'\r\n]*)(?P=q)""",
    re.MULTILINE,
)
_UNRELEASED_RE: Final = re.compile(
    r"^##[ \t]+(?P<version>\S+)[ \t]+[\u2014\u2013-][ \t]+unreleased[ \t]*(?P<cr>\r?)$",
    re.MULTILINE | re.IGNORECASE,
)
_HEADING_RE: Final = re.compile(r"^##[ \t]", re.MULTILINE)


# ---------------------------------------------------------------------------
# errors and small value types


class ReleaseError(Exception):
    """A refused request (unknown package, malformed version, ...): exit status 2."""

    exit_code: int = 2


class TagMismatchError(ReleaseError):
    """The tag's version is not the package's ``__about__`` version: exit status 1."""

    exit_code = 1


class Version(NamedTuple):
    """A plain ``MAJOR.MINOR.PATCH`` release version; ordered like a tuple."""

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def bumped(self, part: str) -> Version:
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        if part == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        raise ReleaseError(f"unknown version part {part!r}: expected one of {', '.join(BUMP_PARTS)}")


def parse_version(text: str) -> Version:
    """Parse ``X.Y.Z`` (non-negative integers, no leading zeros, nothing else)."""
    match = _VERSION_RE.fullmatch(text)
    if match is None:
        raise ReleaseError(f"malformed version {text!r}: expected X.Y.Z, e.g. 0.3.1")
    major, minor, patch = (int(group) for group in match.groups())
    return Version(major, minor, patch)


def normalize_name(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Package:
    """One package of the monorepo."""

    name: str
    directory: Path
    about: Path
    changelog: Path
    pyproject: Path

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")


# ---------------------------------------------------------------------------
# discovery and versions


def default_root() -> Path:
    """The repository this file belongs to (``tools/`` lives at its top)."""
    return Path(__file__).resolve().parents[1]


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ReleaseError(f"cannot read {path}: {error}") from error


def _package_from_dir(directory: Path) -> Package:
    pyproject = directory / "pyproject.toml"
    data = _load_toml(pyproject)
    project = data.get("project", {})
    name = project.get("name") if isinstance(project, dict) else None
    if not isinstance(name, str) or not name:
        name = directory.name
    about_rel = data.get("tool", {}).get("hatch", {}).get("version", {}).get("path")
    if not isinstance(about_rel, str) or not about_rel:
        about_rel = f"src/{name.replace('-', '_')}/__about__.py"
    return Package(
        name=name,
        directory=directory,
        about=directory / about_rel,
        changelog=directory / "CHANGELOG.md",
        pyproject=pyproject,
    )


def list_packages(root: Path) -> list[Package]:
    """Every ``packages/*/pyproject.toml`` under ``root``, sorted by name."""
    packages_dir = Path(root) / "packages"
    if not packages_dir.is_dir():
        raise ReleaseError(f"no packages/ folder under {root}")
    found = [_package_from_dir(d) for d in sorted(packages_dir.iterdir()) if (d / "pyproject.toml").is_file()]
    return sorted(found, key=lambda package: package.name)


def find_package(root: Path, name: str) -> Package:
    wanted = normalize_name(name)
    packages = list_packages(root)
    for package in packages:
        if normalize_name(package.name) == wanted:
            return package
    known = ", ".join(package.name for package in packages)
    raise ReleaseError(f"unknown package {name!r} (known: {known})")


def _read_text(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return handle.read()
    except OSError as error:
        raise ReleaseError(f"cannot read {path}: {error}") from error


def _version_from_about(text: str, path: Path) -> str:
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as error:
        raise ReleaseError(f"cannot parse {path}: {error.msg} (line {error.lineno})") from error
    for node in tree.body:
        value: ast.expr | None = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target: ast.expr = node.targets[0]
            value = node.value
        elif isinstance(node, ast.AnnAssign):
            target = node.target
            value = node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "__version__":
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
            raise ReleaseError(f"{path}: __version__ is not a string literal")
    raise ReleaseError(f'{path}: no __version__ = "X.Y.Z" assignment')


def read_version(root: Path, package: str) -> Version:
    """The version in ``package``'s ``__about__.py``, parsed (never imported)."""
    found = find_package(root, package)
    return _read_version_of(found)


def _read_version_of(package: Package) -> Version:
    text = _read_text(package.about)
    raw = _version_from_about(text, package.about)
    try:
        return parse_version(raw)
    except ReleaseError as error:
        raise ReleaseError(f"{package.about}: {error}") from None


# ---------------------------------------------------------------------------
# bump


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` through a temporary file in the same folder."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _new_about_text(text: str, path: Path, new: Version) -> str:
    new_text, count = _ABOUT_ASSIGN_RE.subn(
        lambda m: f"{m.group('head')}{m.group('q')}{new}{m.group('q')}", text, count=1
    )
    if count != 1:
        raise ReleaseError(f'{path}: cannot find the __version__ = "X.Y.Z" line to rewrite')
    return new_text


def _new_changelog_text(text: str, path: Path, new: Version, today: dt.date) -> tuple[str, str]:
    """The changelog with a ``## NEW — DATE`` heading, and a note on what changed."""
    heading = f"## {new} — {today.isoformat()}"
    unreleased = list(_UNRELEASED_RE.finditer(text))
    if len(unreleased) > 1:
        raise ReleaseError(f"{path}: {len(unreleased)} 'unreleased' headings; keep at most one")
    existing = re.compile(rf"^##[ \t]+\[?{re.escape(str(new))}\]?(?=[ \t\r\n]|$)", re.MULTILINE)
    for match in existing.finditer(text):
        if not unreleased or match.start() != unreleased[0].start():
            raise ReleaseError(f"{path}: already has a heading for {new}")
    if unreleased:
        match = unreleased[0]
        renamed = text[: match.start()] + heading + match.group("cr") + text[match.end() :]
        return renamed, f"renamed '{match.group('version')} — unreleased' heading"
    newline = "\r\n" if "\r\n" in text else "\n"
    first = _HEADING_RE.search(text)
    if first is not None:
        inserted = text[: first.start()] + heading + newline + newline + text[first.start() :]
        return inserted, "inserted heading"
    body = text.rstrip("\r\n")
    separator = newline + newline if body else ""
    return body + separator + heading + newline, "appended heading"


@dataclass(frozen=True)
class BumpResult:
    package: str
    old: Version
    new: Version
    changelog_note: str

    def __str__(self) -> str:
        note = self.changelog_note
        return f"{self.package}: {self.old} -> {self.new} (CHANGELOG: {note})"


def bump_version(
    root: Path,
    package: str,
    part: str | None = None,
    *,
    to: str | None = None,
    today: dt.date | None = None,
) -> BumpResult:
    """Raise ``package``'s version by ``part`` (major/minor/patch) or to ``to``.

    Rewrites only that package's ``__about__.py`` and ``CHANGELOG.md``, each
    atomically; if the second write fails, the first file is put back.
    """
    if (part is None) == (to is None):
        raise ReleaseError("give exactly one of a part (major, minor, patch) or --to X.Y.Z")
    if part is not None and part not in BUMP_PARTS:
        raise ReleaseError(f"unknown version part {part!r}: expected one of {', '.join(BUMP_PARTS)}")
    found = find_package(root, package)
    about_text = _read_text(found.about)
    old = _read_version_of(found)
    new = old.bumped(part) if part is not None else parse_version(str(to))
    if new <= old:
        raise ReleaseError(f"{found.name}: new version {new} is not greater than the current {old}")
    if not found.changelog.is_file():
        raise ReleaseError(f"{found.name}: no CHANGELOG.md at {found.changelog}")
    changelog_text = _read_text(found.changelog)
    new_about = _new_about_text(about_text, found.about, new)
    new_changelog, note = _new_changelog_text(changelog_text, found.changelog, new, today or dt.date.today())
    write_atomic(found.about, new_about)
    try:
        write_atomic(found.changelog, new_changelog)
    except BaseException:
        write_atomic(found.about, about_text)
        raise
    return BumpResult(found.name, old, new, note)


# ---------------------------------------------------------------------------
# tags


def parse_tag(tag: str) -> tuple[str, Version]:
    """Split ``<package>-v<X.Y.Z>`` (a ``refs/tags/`` prefix is allowed)."""
    text = tag.strip().removeprefix("refs/tags/")
    name, sep, raw_version = text.rpartition("-v")
    if not sep or not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", name):
        raise ReleaseError(f"malformed tag {tag!r}: expected <package>-v<X.Y.Z>, e.g. xpcs-kernels-v0.3.1")
    try:
        version = parse_version(raw_version)
    except ReleaseError:
        raise ReleaseError(f"malformed tag {tag!r}: version {raw_version!r} is not X.Y.Z") from None
    return name, version


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def check_tag(root: Path, tag: str) -> str:
    """The package ``tag`` releases, once its ``__about__`` version is checked."""
    name, tag_version = parse_tag(tag)
    found = find_package(root, name)
    current = _read_version_of(found)
    if current != tag_version:
        raise TagMismatchError(
            f"tag {tag!r} is for {found.name} {tag_version}, but "
            f"{_display(found.about, root)} says {current}; bump the package first "
            f"(tools/release.py bump {found.name} --to {tag_version})"
        )
    return found.name


# ---------------------------------------------------------------------------
# requirements and ranges


@dataclass(frozen=True)
class ParsedRequirement:
    name: str
    extras: tuple[str, ...]
    specifier: str
    url: str | None
    marker: str | None


_NAME_PATTERN: Final = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_REQUIREMENT_RE: Final = re.compile(
    rf"\s*(?P<name>{_NAME_PATTERN})\s*(?:\[(?P<extras>[^\]]*)\])?\s*(?P<rest>[^;]*?)\s*(?:;(?P<marker>.*))?"
)
_CLAUSE_RE: Final = re.compile(r"\s*(?P<op>~=|===|==|!=|<=|>=|<|>)\s*(?P<version>[^\s,]+)\s*")
_RELEASE_RE: Final = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def _packaging(module: str) -> Any:
    """A ``packaging`` submodule, or None where ``packaging`` is not importable."""
    try:
        return importlib.import_module(f"packaging.{module}")
    except ImportError:
        return None


def _parse_requirement_fallback(text: str) -> ParsedRequirement:
    match = _REQUIREMENT_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a PEP 508 requirement: {text!r}")
    rest = match.group("rest")
    extras_text = match.group("extras") or ""
    extras = tuple(e.strip() for e in extras_text.split(",") if e.strip())
    if any(not re.fullmatch(_NAME_PATTERN, extra) for extra in extras):
        raise ValueError(f"malformed extras in {text!r}")
    marker = match.group("marker")
    url: str | None = None
    specifier = ""
    if rest.startswith("@"):
        url = rest[1:].strip()
        if not url:
            raise ValueError(f"empty URL in {text!r}")
    elif rest:
        inner = rest[1:-1] if rest.startswith("(") and rest.endswith(")") else rest
        clauses = [clause.strip() for clause in inner.split(",")]
        for clause in clauses:
            if not _CLAUSE_RE.fullmatch(clause):
                raise ValueError(f"malformed version specifier {clause!r} in {text!r}")
        specifier = ",".join(re.sub(r"\s+", "", clause) for clause in clauses)
    return ParsedRequirement(
        name=match.group("name"),
        extras=extras,
        specifier=specifier,
        url=url,
        marker=marker.strip() if marker is not None else None,
    )


def parse_requirement(text: str, *, use_packaging: bool = True) -> ParsedRequirement:
    """Parse a PEP 508 requirement with ``packaging`` (if importable) or a regex.

    Raises ValueError on a malformed requirement.
    """
    requirements = _packaging("requirements") if use_packaging else None
    if requirements is None:
        return _parse_requirement_fallback(text)
    try:
        parsed = requirements.Requirement(text)
    except requirements.InvalidRequirement as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else "invalid"
        raise ValueError(f"not a PEP 508 requirement: {text!r} ({detail})") from None
    marker = parsed.marker
    return ParsedRequirement(
        name=str(parsed.name),
        extras=tuple(sorted(str(extra) for extra in parsed.extras)),
        specifier=str(parsed.specifier),
        url=None if parsed.url is None else str(parsed.url),
        marker=None if marker is None else str(marker),
    )


def _release(text: str) -> tuple[int, ...]:
    if not _RELEASE_RE.fullmatch(text):
        raise ValueError(f"cannot evaluate version {text!r} without the 'packaging' library")
    return tuple(int(part) for part in text.split("."))


def _padded(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)), b + (0,) * (width - len(b))


def _prefix_match(candidate: tuple[int, ...], prefix: tuple[int, ...]) -> bool:
    padded = candidate + (0,) * max(0, len(prefix) - len(candidate))
    return padded[: len(prefix)] == prefix


def _clause_contains(candidate: tuple[int, ...], raw_candidate: str, op: str, raw: str) -> bool:
    if op == "===":
        return raw_candidate == raw
    if op in ("==", "!=") and raw.endswith(".*"):
        result = _prefix_match(candidate, _release(raw[:-2]))
        return result if op == "==" else not result
    target = _release(raw)
    if op == "~=":
        if len(target) < 2:
            raise ValueError(f"'~={raw}' needs at least two version components")
        low, high = _padded(candidate, target)
        return low >= high and _prefix_match(candidate, target[:-1])
    left, right = _padded(candidate, target)
    results = {
        "==": left == right,
        "!=": left != right,
        "<=": left <= right,
        ">=": left >= right,
        "<": left < right,
        ">": left > right,
    }
    return results[op]


def specifier_contains(specifier: str, version: str, *, use_packaging: bool = True) -> bool:
    """Whether ``version`` satisfies the comma-separated ``specifier`` (empty: any).

    Without ``packaging`` only plain release versions (``1``, ``1.2``, ``1.2.3``,
    ``1.2.*``) are understood; anything else raises ValueError.
    """
    specifiers = _packaging("specifiers") if use_packaging else None
    if specifiers is not None:
        try:
            spec_set = specifiers.SpecifierSet(specifier)
        except specifiers.InvalidSpecifier as error:
            raise ValueError(f"malformed version specifier {specifier!r}") from error
        return bool(spec_set.contains(version, prereleases=True))
    candidate = _release(version)
    for clause in filter(None, (c.strip() for c in specifier.split(","))):
        match = _CLAUSE_RE.fullmatch(clause)
        if match is None:
            raise ValueError(f"malformed version specifier {clause!r}")
        if not _clause_contains(candidate, version, match.group("op"), match.group("version")):
            return False
    return True


@dataclass(frozen=True)
class Violation:
    package: str
    field: str
    requirement: str
    reason: str

    def __str__(self) -> str:
        return f"{self.package}: {self.field}: {self.requirement!r}: {self.reason}"


def _requirement_fields(project: dict[str, Any]) -> Iterator[tuple[str, object]]:
    yield "dependencies", project.get("dependencies", [])
    optional = project.get("optional-dependencies", {})
    if isinstance(optional, dict):
        for extra, requirements in optional.items():
            yield f"optional-dependencies.{extra}", requirements
    else:
        yield "optional-dependencies", optional


def check_ranges(root: Path, *, use_packaging: bool = True) -> list[Violation]:
    """Requirements on sibling ``xpcs-*`` packages that are not satisfied ranges."""
    packages = list_packages(root)
    versions = {normalize_name(p.name): str(_read_version_of(p)) for p in packages}
    violations: list[Violation] = []
    for package in packages:
        project = _load_toml(package.pyproject).get("project", {})
        own = normalize_name(package.name)
        for field, requirements in _requirement_fields(project if isinstance(project, dict) else {}):
            if not isinstance(requirements, list):
                violations.append(Violation(package.name, field, repr(requirements), "not a list"))
                continue
            for text in requirements:
                violation = _check_one(
                    package.name,
                    own,
                    field,
                    text,
                    versions,
                    use_packaging=use_packaging,
                )
                if violation is not None:
                    violations.append(violation)
    return violations


def _check_one(
    package: str,
    own: str,
    field: str,
    text: object,
    versions: dict[str, str],
    *,
    use_packaging: bool,
) -> Violation | None:
    if not isinstance(text, str):
        return Violation(package, field, repr(text), "not a string")
    reason = _range_problem(text, own, versions, use_packaging=use_packaging)
    return None if reason is None else Violation(package, field, text, reason)


def _range_problem(text: str, own: str, versions: dict[str, str], *, use_packaging: bool) -> str | None:
    """Why ``text`` is not an acceptable requirement on a sibling (None: it is fine)."""
    try:
        parsed = parse_requirement(text, use_packaging=use_packaging)
    except ValueError as error:
        # A path or a bare URL is no requirement at all: flag it if it may be a sibling.
        suspicious = SIBLING_PREFIX in text.lower() or "/" in text or "\\" in text
        return f"not a valid requirement ({error})" if suspicious else None
    name = normalize_name(parsed.name)
    problem: str | None = None
    if not name.startswith(SIBLING_PREFIX):
        pass  # a third-party requirement: not ours to check
    elif parsed.url is not None:
        problem = "points at a path or URL ('@'); use a version range instead"
    elif name == own:
        pass  # a self-reference pulling in one's own extras, e.g. "xpcs-numpy[testing]"
    elif name not in versions:
        problem = f"{parsed.name} is not a package of this repository"
    elif not parsed.specifier:
        problem = "no version range; use e.g. '>=0.1,<0.2'"
    else:
        current = versions[name]
        try:
            if not specifier_contains(parsed.specifier, current, use_packaging=use_packaging):
                problem = f"{parsed.name} is at {current}, outside '{parsed.specifier}'"
        except ValueError as error:
            problem = str(error)
    return problem


# ---------------------------------------------------------------------------
# command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="release.py",
        description="Version, changelog and tag helpers for the xpcs monorepo.",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="repository root (default: the folder above tools/)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="every package with its version")
    bump = commands.add_parser("bump", help="raise a package's version and date its CHANGELOG")
    bump.add_argument("package")
    bump.add_argument("part", nargs="?", metavar="{major,minor,patch}")
    bump.add_argument("--to", metavar="X.Y.Z", help="an explicit new version")
    bump.add_argument("--date", metavar="YYYY-MM-DD", help="the CHANGELOG date (default: today)")
    tag = commands.add_parser("check-tag", help="check a <package>-v<version> tag; print the package")
    tag.add_argument("tag")
    commands.add_parser("check-ranges", help="check the version ranges between sibling packages")
    return parser


def _run(args: argparse.Namespace) -> int:
    root: Path = args.root if args.root is not None else default_root()
    if args.command == "list":
        rows = [(package.name, _read_version_of(package)) for package in list_packages(root)]
        width = max((len(name) for name, _ in rows), default=0)
        for name, version in rows:
            print(f"{name:<{width}}  {version}")
        return 0
    if args.command == "bump":
        today: dt.date | None = None
        if args.date is not None:
            try:
                today = dt.date.fromisoformat(args.date)
            except ValueError:
                raise ReleaseError(f"malformed date {args.date!r}: expected YYYY-MM-DD") from None
        print(bump_version(root, args.package, args.part, to=args.to, today=today))
        return 0
    if args.command == "check-tag":
        print(check_tag(root, args.tag))
        return 0
    if args.command == "check-ranges":
        violations = check_ranges(root)
        for violation in violations:
            print(violation, file=sys.stderr)
        if violations:
            print(f"{len(violations)} version-range violation(s)", file=sys.stderr)
            return 1
        count = len(list_packages(root))
        print(f"ok: sibling requirements of {count} packages are satisfied ranges")
        return 0
    raise AssertionError(args.command)  # pragma: no cover - argparse rejects other commands


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
