"""Tests of tools/release.py on a small fake monorepo, plus checks on the real one."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RELEASE_PY = REPO_ROOT / "tools" / "release.py"
DAY = dt.date(2025, 3, 14)


def _load_release() -> ModuleType:
    name = "xpcs_tools_release"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, RELEASE_PY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


release = _load_release()

try:
    import packaging.specifiers  # noqa: F401

    HAVE_PACKAGING = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_PACKAGING = False

# ---------------------------------------------------------------------------
# the fake monorepo


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_package(
    root: Path,
    name: str,
    version: str,
    dependencies: list[str],
    *,
    optional: dict[str, list[str]] | None = None,
    changelog: str | None = None,
) -> Path:
    directory = root / "packages" / name
    module = name.replace("-", "_")
    optional = optional if optional is not None else {"test": ["pytest>=8"]}
    lines = [
        "[build-system]",
        'requires = ["hatchling>=1.26"]',
        'build-backend = "hatchling.build"',
        "",
        "[project]",
        f'name = "{name}"',
        'dynamic = ["version"]',
        f"dependencies = [{', '.join(_toml_str(d) for d in dependencies)}]",
        "",
        "[project.optional-dependencies]",
        *(f"{key} = [{', '.join(_toml_str(r) for r in reqs)}]" for key, reqs in optional.items()),
        "",
        "[tool.hatch.version]",
        f'path = "src/{module}/__about__.py"',
    ]
    _write(directory / "pyproject.toml", "\n".join(lines) + "\n")
    _write(directory / "src" / module / "__about__.py", f'__version__ = "{version}"\n')
    _write(directory / "src" / module / "__init__.py", "")
    if changelog is None:
        changelog = f"""
        # Changelog of {name}

        The format follows Keep a Changelog.

        ## {version} — unreleased

        - First release.
        """
    _write(directory / "CHANGELOG.md", changelog)
    return directory


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    make_package(root, "xpcs-core", "0.2.0", ["numpy>=1.26"])
    make_package(
        root,
        "xpcs-extra",
        "1.4.2",
        ["numpy>=1.26", "xpcs-core>=0.2,<0.3"],
        optional={
            "jax": ["xpcs-core[jax]>=0.2,<0.3 ; python_version >= '3.11'"],
            "testing": ["pytest>=8"],
            "test": ["xpcs-extra[testing]"],  # a self-reference needs no range
        },
    )
    make_package(
        root,
        "xpcs-app",
        "0.1.0",
        ["xpcs-core ~= 0.2.0", "xpcs-extra>=1.4,<2"],
        changelog="# Changelog\n\n## 0.0.9 — 2024-01-01\n\n- Older.\n",
    )
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def about(root: Path, name: str) -> str:
    module = name.replace("-", "_")
    return (root / "packages" / name / "src" / module / "__about__.py").read_text(encoding="utf-8")


def changelog(root: Path, name: str) -> str:
    return (root / "packages" / name / "CHANGELOG.md").read_text(encoding="utf-8")


def run_main(root: Path, *args: str) -> int:
    result: int = release.main(["--root", str(root), *args])
    return result


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert captured.out == ""
    return lines[0]


@pytest.fixture(params=["packaging", "fallback"])
def use_packaging(request: pytest.FixtureRequest) -> bool:
    if request.param == "packaging" and not HAVE_PACKAGING:
        pytest.skip("packaging is not installed")
    return bool(request.param == "packaging")


# ---------------------------------------------------------------------------
# list and read_version


def test_list_prints_every_package_sorted(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(repo, "list") == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows == [
        ["xpcs-app", "0.1.0"],
        ["xpcs-core", "0.2.0"],
        ["xpcs-extra", "1.4.2"],
    ]


def test_read_version_parses_without_importing(repo: Path) -> None:
    path = repo / "packages" / "xpcs-core" / "src" / "xpcs_core" / "__about__.py"
    path.write_text('raise SystemExit("imported!")\n__version__ = "3.2.1"\n', encoding="utf-8")
    assert release.read_version(repo, "xpcs-core") == release.Version(3, 2, 1)
    assert str(release.read_version(repo, "xpcs_Core")) == "3.2.1"  # names are normalized


@pytest.mark.parametrize(
    "content",
    [
        '__version__ = "0.2"\n',
        "__version__ = get()\n",
        "VERSION = '1.0.0'\n",
        "__version__ = (\n",
    ],
)
def test_list_refuses_a_broken_about_file(
    repo: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    path = repo / "packages" / "xpcs-core" / "src" / "xpcs_core" / "__about__.py"
    path.write_text(content, encoding="utf-8")
    assert run_main(repo, "list") == 2
    assert "__about__.py" in one_error_line(capsys)


def test_missing_packages_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(tmp_path, "list") == 2
    assert "no packages/ folder" in one_error_line(capsys)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.0.0", (0, 0, 0)), ("1.2.3", (1, 2, 3)), ("10.20.30", (10, 20, 30))],
)
def test_parse_version_accepts(text: str, expected: tuple[int, int, int]) -> None:
    assert release.parse_version(text) == expected


@pytest.mark.parametrize("text", ["1.2", "1.2.3.4", "v1.2.3", "1.2.3rc1", "01.2.3", "1.2.x", "", " 1.2.3"])
def test_parse_version_rejects(text: str) -> None:
    with pytest.raises(release.ReleaseError, match="malformed version"):
        release.parse_version(text)


# ---------------------------------------------------------------------------
# bump


@pytest.mark.parametrize(
    ("part", "expected"),
    [("patch", "1.4.3"), ("minor", "1.5.0"), ("major", "2.0.0")],
)
def test_bump_part_rewrites_about_and_renames_unreleased_heading(
    repo: Path, part: str, expected: str
) -> None:
    before = snapshot(repo)
    result = release.bump_version(repo, "xpcs-extra", part, today=DAY)
    assert (str(result.old), str(result.new)) == ("1.4.2", expected)
    assert about(repo, "xpcs-extra") == f'__version__ = "{expected}"\n'
    log = changelog(repo, "xpcs-extra")
    assert f"## {expected} — 2025-03-14\n\n- First release.\n" in log
    assert "unreleased" not in log
    after = snapshot(repo)
    changed = {key for key in before if before[key] != after.get(key)}
    assert changed == {
        "packages/xpcs-extra/CHANGELOG.md".replace("/", os.sep),
        "packages/xpcs-extra/src/xpcs_extra/__about__.py".replace("/", os.sep),
    }
    assert set(after) == set(before)  # no temporary files left behind


def test_bump_to_via_cli(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(repo, "bump", "xpcs-core", "--to", "0.10.0", "--date", "2025-01-02") == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "xpcs-core: 0.2.0 -> 0.10.0 (CHANGELOG: renamed '0.2.0 — unreleased' heading)"
    ]
    assert release.read_version(repo, "xpcs-core") == release.Version(0, 10, 0)
    assert "## 0.10.0 — 2025-01-02\n" in changelog(repo, "xpcs-core")


def test_bump_uses_today_by_default(repo: Path) -> None:
    release.bump_version(repo, "xpcs-core", "patch")
    assert f"## 0.2.1 — {dt.date.today().isoformat()}\n" in changelog(repo, "xpcs-core")


def test_bump_inserts_heading_when_none_is_unreleased(repo: Path) -> None:
    result = release.bump_version(repo, "xpcs-app", "minor", today=DAY)
    assert result.changelog_note == "inserted heading"
    assert changelog(repo, "xpcs-app") == (
        "# Changelog\n\n## 0.2.0 — 2025-03-14\n\n## 0.0.9 — 2024-01-01\n\n- Older.\n"
    )


def test_bump_appends_heading_to_a_changelog_without_headings(repo: Path) -> None:
    path = repo / "packages" / "xpcs-core" / "CHANGELOG.md"
    path.write_text("# Changelog\n\n\n", encoding="utf-8")
    release.bump_version(repo, "xpcs-core", "patch", today=DAY)
    assert path.read_text(encoding="utf-8") == "# Changelog\n\n## 0.2.1 — 2025-03-14\n"


def test_bump_keeps_crlf_line_endings(repo: Path) -> None:
    path = repo / "packages" / "xpcs-core" / "CHANGELOG.md"
    path.write_bytes(b"# Changelog\r\n\r\n## 0.2.0 - Unreleased\r\n\r\n- x\r\n")
    release.bump_version(repo, "xpcs-core", "patch", today=DAY)
    assert path.read_bytes() == b"# Changelog\r\n\r\n## 0.2.1 \xe2\x80\x94 2025-03-14\r\n\r\n- x\r\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bump", "xpcs-nope", "patch"], "unknown package 'xpcs-nope'"),
        (["bump", "xpcs-core", "--to", "0.3"], "malformed version '0.3'"),
        (["bump", "xpcs-core", "--to", "v0.3.0"], "malformed version"),
        (["bump", "xpcs-core", "--to", "0.2.0"], "not greater than the current 0.2.0"),
        (["bump", "xpcs-core", "--to", "0.1.9"], "not greater than the current 0.2.0"),
        (["bump", "xpcs-core", "huge"], "unknown version part 'huge'"),
        (["bump", "xpcs-core"], "exactly one of"),
        (["bump", "xpcs-core", "patch", "--to", "0.3.0"], "exactly one of"),
        (["bump", "xpcs-core", "patch", "--date", "14/03/2025"], "malformed date"),
    ],
)
def test_bump_refusals_exit_2_and_write_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    before = snapshot(repo)
    assert run_main(repo, *args) == 2
    assert message in one_error_line(capsys)
    assert snapshot(repo) == before


def test_bump_refuses_when_the_changelog_already_has_the_version(repo: Path) -> None:
    path = repo / "packages" / "xpcs-app" / "CHANGELOG.md"
    path.write_text(
        "# Changelog\n\n## 0.1.1 — 2024-02-02\n\n## 0.0.9 — 2024-01-01\n",
        encoding="utf-8",
    )
    before = snapshot(repo)
    with pytest.raises(release.ReleaseError, match=r"already has a heading for 0\.1\.1"):
        release.bump_version(repo, "xpcs-app", "patch", today=DAY)
    assert snapshot(repo) == before


def test_bump_refuses_two_unreleased_headings(repo: Path) -> None:
    path = repo / "packages" / "xpcs-app" / "CHANGELOG.md"
    path.write_text("## 0.2.0 — unreleased\n\n## 0.1.1 — unreleased\n", encoding="utf-8")
    with pytest.raises(release.ReleaseError, match="2 'unreleased' headings"):
        release.bump_version(repo, "xpcs-app", "patch", today=DAY)


def test_bump_refuses_a_missing_changelog(repo: Path) -> None:
    (repo / "packages" / "xpcs-app" / "CHANGELOG.md").unlink()
    with pytest.raises(release.ReleaseError, match=r"no CHANGELOG\.md"):
        release.bump_version(repo, "xpcs-app", "patch", today=DAY)
    assert release.read_version(repo, "xpcs-app") == release.Version(0, 1, 0)


def test_bump_writes_atomically(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real_replace = os.replace

    def fake_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append((os.fspath(src), os.fspath(dst)))
        if os.fspath(dst).endswith("CHANGELOG.md"):
            raise OSError("disk full")
        real_replace(src, dst)

    before = snapshot(repo)
    monkeypatch.setattr(os, "replace", fake_replace)
    with pytest.raises(OSError, match="disk full"):
        release.bump_version(repo, "xpcs-core", "patch", today=DAY)
    # every write went through a temporary file in the target's own folder
    assert calls
    assert all(Path(src).parent == Path(dst).parent and src != dst for src, dst in calls)
    # the failed CHANGELOG write put __about__.py back and left no temporary file
    assert snapshot(repo) == before


# ---------------------------------------------------------------------------
# check-tag


def test_check_tag_prints_the_package(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(repo, "check-tag", "xpcs-extra-v1.4.2") == 0
    assert capsys.readouterr().out == "xpcs-extra\n"
    assert release.check_tag(repo, "refs/tags/xpcs-core-v0.2.0") == "xpcs-core"


def test_parse_tag_splits_on_the_last_v() -> None:
    assert release.parse_tag("xpcs-viz-v1.0.0") == (
        "xpcs-viz",
        release.Version(1, 0, 0),
    )


def test_check_tag_mismatch_exits_1(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(repo, "check-tag", "xpcs-extra-v1.4.3") == 1
    line = one_error_line(capsys)
    assert "xpcs-extra 1.4.3" in line
    assert "says 1.4.2" in line


@pytest.mark.parametrize(
    "tag",
    [
        "xpcs-core",
        "xpcs-core-0.2.0",
        "xpcs-core-v0.2",
        "xpcs-core-v0.2.0rc1",
        "-v0.2.0",
        "xpcs-core-v",
        "v0.2.0",
    ],
)
def test_check_tag_malformed_exits_2(repo: Path, capsys: pytest.CaptureFixture[str], tag: str) -> None:
    assert run_main(repo, "check-tag", "--", tag) == 2
    assert "malformed tag" in one_error_line(capsys)


def test_check_tag_unknown_package_exits_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(repo, "check-tag", "xpcs-nope-v0.2.0") == 2
    assert "unknown package 'xpcs-nope'" in one_error_line(capsys)


# ---------------------------------------------------------------------------
# check-ranges


def test_check_ranges_clean_repo(repo: Path, use_packaging: bool, capsys: pytest.CaptureFixture[str]) -> None:
    assert release.check_ranges(repo, use_packaging=use_packaging) == []
    assert run_main(repo, "check-ranges") == 0
    assert capsys.readouterr().out.startswith("ok:")


def test_check_ranges_reports_every_violation(
    repo: Path, use_packaging: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    make_package(
        repo,
        "xpcs-bad",
        "0.1.0",
        [
            "xpcs-core @ file:///src/packages/xpcs-core",  # a path
            "xpcs-extra",  # no range
            "xpcs-core>=0.3,<0.4",  # not satisfied by 0.2.0
            "../xpcs-core",  # not a requirement at all
            "xpcs-ghost>=0.1",  # not a package here
            "numpy @ https://example.invalid/numpy.whl",  # third party: not checked
            "requests",
        ],
        optional={
            "jax": ["xpcs-extra[jax]>=2,<3"],  # optional dependencies count too
            # even a self-reference
            "test": ["xpcs-bad[jax] @ https://example.invalid/x.whl"],
        },
    )
    violations = release.check_ranges(repo, use_packaging=use_packaging)
    found = {(v.field, v.requirement) for v in violations}
    assert found == {
        ("dependencies", "xpcs-core @ file:///src/packages/xpcs-core"),
        ("dependencies", "xpcs-extra"),
        ("dependencies", "xpcs-core>=0.3,<0.4"),
        ("dependencies", "../xpcs-core"),
        ("dependencies", "xpcs-ghost>=0.1"),
        ("optional-dependencies.jax", "xpcs-extra[jax]>=2,<3"),
        ("optional-dependencies.test", "xpcs-bad[jax] @ https://example.invalid/x.whl"),
    }
    assert all(v.package == "xpcs-bad" for v in violations)
    reasons = {v.requirement: v.reason for v in violations}
    assert "'@'" in reasons["xpcs-core @ file:///src/packages/xpcs-core"]
    assert "no version range" in reasons["xpcs-extra"]
    assert "at 0.2.0" in reasons["xpcs-core>=0.3,<0.4"]
    assert "not a package of this repository" in reasons["xpcs-ghost>=0.1"]

    assert run_main(repo, "check-ranges") == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "7 version-range violation(s)"
    assert len(err) == 8


def test_check_ranges_notices_a_bumped_sibling(repo: Path) -> None:
    release.bump_version(repo, "xpcs-core", "minor", today=DAY)  # 0.3.0 leaves >=0.2,<0.3
    violations = release.check_ranges(repo)
    assert {(v.package, v.requirement) for v in violations} == {
        ("xpcs-extra", "xpcs-core>=0.2,<0.3"),
        ("xpcs-extra", "xpcs-core[jax]>=0.2,<0.3 ; python_version >= '3.11'"),
        ("xpcs-app", "xpcs-core ~= 0.2.0"),
    }


@pytest.mark.parametrize(
    ("specifier", "version", "expected"),
    [
        ("", "0.1.0", True),
        (">=0.1,<0.2", "0.1.0", True),
        (">=0.1,<0.2", "0.1.9", True),
        (">=0.1,<0.2", "0.2.0", False),
        (">0.1", "0.1.0", False),
        (">0.1", "0.1.1", True),
        ("<=0.1", "0.1.0", True),
        ("==0.1", "0.1.0", True),
        ("==0.1.*", "0.1.5", True),
        ("==0.1.*", "0.2.0", False),
        ("!=0.1.*", "0.2.0", True),
        ("!=0.1.0", "0.1.0", False),
        ("~=0.2", "0.9.0", True),
        ("~=0.2", "1.0.0", False),
        ("~=0.2.0", "0.2.7", True),
        ("~=0.2.0", "0.3.0", False),
        ("~=0.2.1", "0.2.0", False),
        ("===0.1.0", "0.1.0", True),
    ],
)
def test_specifier_contains(specifier: str, version: str, expected: bool, use_packaging: bool) -> None:
    assert release.specifier_contains(specifier, version, use_packaging=use_packaging) is expected


def test_fallback_cannot_evaluate_pre_releases() -> None:
    with pytest.raises(ValueError, match="without the 'packaging' library"):
        release.specifier_contains(">=0.1rc1", "0.1.0", use_packaging=False)


@pytest.mark.parametrize(
    "text",
    [
        "xpcs-core >= 0.2, < 0.3",
        "xpcs-core[jax, io](>=0.2,<0.3)",
        "xpcs-core>=0.2; os_name == 'nt'",
    ],
)
def test_parse_requirement_agrees_with_packaging(text: str) -> None:
    fallback = release.parse_requirement(text, use_packaging=False)
    assert fallback.name == "xpcs-core"
    assert release.specifier_contains(fallback.specifier, "0.2.5", use_packaging=False)
    if HAVE_PACKAGING:
        real = release.parse_requirement(text, use_packaging=True)
        assert (real.name, set(real.extras), real.url) == (
            fallback.name,
            set(fallback.extras),
            fallback.url,
        )
        assert release.specifier_contains(real.specifier, "0.2.5") is True


# ---------------------------------------------------------------------------
# the command line script itself, and the real repository


def test_script_runs_as_a_command(repo: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(RELEASE_PY),
            "--root",
            str(repo),
            "check-tag",
            "xpcs-app-v0.1.0",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "xpcs-app\n", "")


def test_real_repository_ranges_are_satisfied() -> None:
    assert [str(v) for v in release.check_ranges(REPO_ROOT)] == []
    assert len(release.list_packages(REPO_ROOT)) >= 8


def test_real_repository_tag_of_xpcs_protocol() -> None:
    version = release.read_version(REPO_ROOT, "xpcs-protocol")
    assert release.check_tag(REPO_ROOT, f"xpcs-protocol-v{version}") == "xpcs-protocol"
    bumped = version.bumped("patch")
    with pytest.raises(release.TagMismatchError):
        release.check_tag(REPO_ROOT, f"xpcs-protocol-v{bumped}")
