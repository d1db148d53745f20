"""Test packages of the xpcs monorepo in isolation, each in a fresh virtual environment.

For every package, ``pip wheel --no-deps`` builds a wheel into a temporary folder. Then,
for each package asked for, a new virtual environment gets ``<package>[test]`` from
``pip install --find-links <wheels>``: sibling packages come from those wheels (pinned to
the versions in the tree), third-party ones from the package index, and nothing else
comes in. The environment must import the package from its own site-packages, must not
have JAX unless the package is xpcs-jax, and then runs the package's own tests from the
repository root (so ``pytest.toml`` applies)::

    python tools/isolation.py xpcs-protocol
    python tools/isolation.py xpcs-fit xpcs-kernels
    python tools/isolation.py --all
    python tools/isolation.py xpcs-protocol --no-tests   # install and import only

Exit status: 0 every package passed, 1 one failed, 2 a bad request (unknown package, no
package named, a wheel that does not build).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import release  # tools/release.py: one way to find packages and read versions

ROOT = Path(__file__).resolve().parents[1]
JAX_PACKAGE = "xpcs-jax"


class RequestError(Exception):
    """A request that cannot go ahead: exit status 2."""


@dataclass(frozen=True)
class Package:
    """A package of the monorepo (as the release helper finds it) with its version."""

    name: str
    directory: Path
    version: str

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")


@dataclass
class Outcome:
    package: str
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


def discover(root: Path) -> list[Package]:
    """Every package with its ``__about__`` version, found the way tools/release.py finds them."""
    try:
        found = [
            Package(p.name, p.directory, str(release.read_version(root, p.name)))
            for p in release.list_packages(root)
        ]
    except release.ReleaseError as exc:
        raise RequestError(str(exc)) from exc
    if not found:
        raise RequestError(f"no packages under {root / 'packages'}")
    return found


def select(packages: Sequence[Package], names: Sequence[str], *, every: bool) -> list[Package]:
    if every and names:
        raise RequestError("name packages or give --all, not both")
    if every:
        return list(packages)
    if not names:
        raise RequestError("name at least one package, or give --all")
    by_name = {release.normalize_name(p.name): p for p in packages}
    chosen: list[Package] = []
    for name in names:
        package = by_name.get(release.normalize_name(name))
        if package is None:
            known = ", ".join(p.name for p in packages)
            raise RequestError(f"unknown package {name!r} (known: {known})")
        if package not in chosen:
            chosen.append(package)
    return chosen


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without anything that would leak the outer Python in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave no __pycache__ in the source tree
    env.update(extra)
    return env


def run(
    command: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path,
    env: dict[str, str],
    capture: bool = False,
    label: str | None = None,
) -> subprocess.CompletedProcess[str]:
    printable = label or " ".join(str(part) for part in command)
    print(f"$ {printable}", flush=True)
    return subprocess.run(
        [os.fspath(part) for part in command],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=capture,
        check=False,
    )


def build_wheels(python: str, packages: Sequence[Package], wheel_dir: Path, *, quiet: bool) -> None:
    """One ``pip wheel --no-deps`` over every package; each must leave one wheel."""
    command: list[str | os.PathLike[str]] = [python, "-m", "pip", "wheel", "--no-deps"]
    if quiet:
        command.append("--quiet")
    command += ["--wheel-dir", wheel_dir, *(p.directory for p in packages)]
    result = run(command, cwd=ROOT, env=clean_env())
    if result.returncode != 0:
        raise RequestError(f"building the wheels failed (pip exit {result.returncode})")
    for package in packages:
        wheels = list(wheel_dir.glob(f"{package.module}-{package.version}-*.whl"))
        if len(wheels) != 1:
            raise RequestError(f"expected one wheel of {package.name} {package.version}")


def venv_python(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


_CHECK_SCRIPT = """
import importlib, importlib.util, json, sys
module = importlib.import_module(sys.argv[1])
print(json.dumps({
    "file": getattr(module, "__file__", None),
    "version": getattr(module, "__version__", None),
    "jax": importlib.util.find_spec("jax") is not None,
}))
"""


def check_install(
    vpy: Path, venv: Path, package: Package, siblings: Sequence[Package], outcome: Outcome
) -> None:
    env = clean_env()
    # the package imports from the environment's site-packages, not from the source tree
    result = run(
        [vpy, "-c", _CHECK_SCRIPT, package.module],
        cwd=venv,
        env=env,
        capture=True,
        label=f"{vpy} -c <import {package.module}, report its file and version>",
    )
    if result.returncode != 0:
        outcome.failures.append(f"import {package.module} failed:\n{result.stderr.strip()}")
        return
    info = json.loads(result.stdout.strip().splitlines()[-1])
    module_file = Path(str(info["file"])).resolve()
    if venv.resolve() not in module_file.parents:
        outcome.failures.append(f"{package.module} imported from {module_file}, not the venv")
    if info["version"] not in (None, package.version):
        outcome.failures.append(
            f"{package.module}.__version__ is {info['version']}, expected {package.version}"
        )
    # JAX must never come in by default
    if package.name != JAX_PACKAGE:
        jax = run([vpy, "-c", "import jax"], cwd=venv, env=env, capture=True)
        if jax.returncode == 0:
            outcome.failures.append("`import jax` succeeds: JAX was pulled in by default")
        else:
            outcome.notes.append("import jax fails (good)")
    # sibling distributions are the versions of this tree
    listing = run([vpy, "-m", "pip", "list", "--format=json"], cwd=venv, env=env, capture=True)
    if listing.returncode != 0:
        outcome.failures.append(f"pip list failed: {listing.stderr.strip()}")
        return
    versions = {release.normalize_name(p.name): p.version for p in siblings}
    installed = sorted(
        (str(item["name"]), str(item["version"]))
        for item in json.loads(listing.stdout)
        if release.normalize_name(str(item["name"])).startswith("xpcs-")
    )
    for name, version in installed:
        expected = versions.get(release.normalize_name(name))
        if expected is None:
            outcome.failures.append(f"{name} {version} is not a package of this tree")
        elif version != expected:
            outcome.failures.append(f"{name} {version} installed, the tree has {expected}")
    outcome.notes.append("xpcs packages: " + ", ".join(f"{n} {v}" for n, v in installed))


def run_tests(vpy: Path, package: Package, outcome: Outcome) -> None:
    tests = package.directory / "tests"
    if not tests.is_dir():
        outcome.failures.append(f"no tests folder {tests} (use --no-tests)")
        return
    backend = "jax" if package.name == JAX_PACKAGE else "numpy"
    command: list[str | os.PathLike[str]] = [
        vpy,
        "-m",
        "pytest",
        tests.relative_to(ROOT).as_posix(),
        "-p",
        "no:cacheprovider",
        "-c",
        "pytest.toml",
    ]
    result = run(command, cwd=ROOT, env=clean_env(XPCS_TEST_BACKEND=backend))
    if result.returncode == 5:
        outcome.failures.append("pytest collected no tests")
    elif result.returncode != 0:
        outcome.failures.append(f"pytest failed (exit {result.returncode})")
    else:
        outcome.notes.append(f"tests passed (XPCS_TEST_BACKEND={backend})")


def isolate(
    python: str,
    package: Package,
    siblings: Sequence[Package],
    work: Path,
    *,
    tests: bool,
    quiet: bool,
) -> Outcome:
    outcome = Outcome(package.name)
    start = time.monotonic()
    print(f"\n=== {package.name} {package.version} ===", flush=True)
    venv = work / f"venv-{package.name}"
    if run([python, "-m", "venv", venv], cwd=work, env=clean_env()).returncode != 0:
        outcome.failures.append("creating the virtual environment failed")
        return outcome
    vpy = venv_python(venv)
    install: list[str | os.PathLike[str]] = [vpy, "-m", "pip", "install"]
    if quiet:
        install.append("--quiet")
    install += [
        "--find-links",
        work / "wheels",
        "--constraint",
        work / "constraints.txt",
        f"{package.name}[test]",
    ]
    if run(install, cwd=work, env=clean_env()).returncode != 0:
        outcome.failures.append(f"pip install {package.name}[test] failed")
    else:
        check_install(vpy, venv, package, siblings, outcome)
        if tests and outcome.passed:
            run_tests(vpy, package, outcome)
    outcome.seconds = time.monotonic() - start
    return outcome


def summary(outcomes: Sequence[Outcome]) -> str:
    width = max(len(o.package) for o in outcomes)
    lines = ["", "=== isolation summary ==="]
    for outcome in outcomes:
        status = "PASS" if outcome.passed else "FAIL"
        lines.append(f"{status}  {outcome.package:<{width}}  ({outcome.seconds:.0f} s)")
        for failure in outcome.failures:
            lines.extend(f"        {line}" for line in failure.splitlines())
        lines.extend(f"        {note}" for note in outcome.notes)
    passed = sum(o.passed for o in outcomes)
    lines.append(f"{passed} of {len(outcomes)} package(s) passed")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isolation.py",
        description="Install each package with only its declared dependencies and test it.",
    )
    parser.add_argument("packages", nargs="*", metavar="PACKAGE")
    parser.add_argument("--all", action="store_true", help="every package of the tree")
    parser.add_argument("--no-tests", action="store_true", help="only install, import and check for JAX")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter that builds the wheels and the venvs (default: this one)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--verbose", action="store_true", help="full pip output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        every = discover(ROOT)
        chosen = select(every, args.packages, every=args.all)
    except RequestError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="xpcs-isolation-"))
    try:
        wheels = work / "wheels"
        wheels.mkdir()
        try:
            build_wheels(args.python, every, wheels, quiet=not args.verbose)
        except RequestError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        # pin the siblings to this tree's versions: a same-named release on the index
        # must not stand in for the wheel just built
        constraints = "".join(f"{p.name}=={p.version}\n" for p in every)
        (work / "constraints.txt").write_text(constraints, encoding="utf-8")
        outcomes = [
            isolate(
                args.python,
                package,
                every,
                work,
                tests=not args.no_tests,
                quiet=not args.verbose,
            )
            for package in chosen
        ]
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(summary(outcomes))
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
