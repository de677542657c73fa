"""`make pythons`: `make repro` and `make test` with each Python the project supports.

For each of Python 3.11, 3.12 and 3.13 it finds an interpreter (on PATH, else among pyenv's
builds), clones the current commit into a folder of its own, and runs `make repro` and
`make test` there with PYTHON set to that interpreter, so that each gets a fresh .venv of its
version. It runs one version after the other (a build and the tests already use every core),
keeps a log per version, and ends with a table: how `make repro` went, whether it left the
clone as committed (the committed dvc.lock, byte for byte), and pytest's closing line.

Only committed work is tested: a clone has HEAD, not the work tree's changes.

    python3 tools/pythons.py            all three (about half an hour on 2 cores)
    python3 tools/pythons.py --list     only say which interpreters it finds
    python3 tools/pythons.py --only 3.12

Standard library only, so that it runs with any Python 3 before any .venv exists.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = ("3.11", "3.12", "3.13")
# What a candidate interpreter is asked: its version and its own path. A pyenv shim answers
# with the real interpreter's path, or fails where that version is not selected.
PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3]); print(sys.executable)"
# pytest's closing line, as in "===== 232 passed in 273.45s (0:04:33) =====".
PYTEST_SUMMARY = re.compile(r"^=+ (.*\bin [\d.]+s\b.*?) =+$")
# Variables a parent `make` passes on (its options, its command-line variables such as ARGS),
# and a venv's activation: each run in a clone starts as if typed in a fresh shell.
INHERITED = ("MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "MAKELEVEL", "VIRTUAL_ENV")


@dataclass
class Found:
    version: str  # as asked for: "3.12"
    full: str  # as it says: "3.12.1"
    path: str  # the interpreter itself, not a shim
    where: str  # "PATH" or "pyenv"


@dataclass
class Result:
    found: Found
    repro_ok: bool = False
    repro_seconds: float = 0.0
    clean: str = "not run"
    test_ok: bool = False
    test_line: str = "not run"


def in_a_venv(folder: Path) -> bool:
    """Whether a PATH folder is a venv's bin/: its interpreter must not stand for a Python
    version, and it must not come before the clone's own .venv (`make` puts the project's
    .venv/bin first on PATH)."""
    return (folder.parent / "pyvenv.cfg").is_file()


def probe(candidate: Path, version: str) -> tuple[str, str] | None:
    """(full version, path) if `candidate` runs and is Python `version`, else None."""
    try:
        answer = subprocess.run(
            [str(candidate), "-c", PROBE], capture_output=True, text=True, timeout=60
        )
    except OSError:
        return None
    lines = answer.stdout.split()
    if answer.returncode != 0 or len(lines) != 2:
        return None
    full, path = lines
    return (full, path) if full.startswith(version + ".") else None


def pyenv_root(env: dict[str, str]) -> Path:
    if env.get("PYENV_ROOT"):
        return Path(env["PYENV_ROOT"])
    return Path(env.get("HOME", str(Path.home()))) / ".pyenv"


def find(version: str, env: dict[str, str]) -> Found | None:
    """Python `version`: `python3.X` in a PATH folder (not a venv's), else pyenv's newest build
    of it under $PYENV_ROOT/versions (pyenv's shims only answer for the versions selected)."""
    for folder in env.get("PATH", "").split(os.pathsep):
        if not folder or in_a_venv(Path(folder)):
            continue
        candidate = Path(folder) / f"python{version}"
        if candidate.is_file() and (answer := probe(candidate, version)):
            return Found(version, *answer, where="PATH")
    builds = [
        folder
        for folder in (pyenv_root(env) / "versions").glob(f"{version}.*")
        if re.fullmatch(rf"{re.escape(version)}\.\d+", folder.name)
    ]
    for folder in sorted(builds, key=lambda f: int(f.name.rsplit(".", 1)[1]), reverse=True):
        if answer := probe(folder / "bin" / f"python{version}", version):
            return Found(version, *answer, where="pyenv")
    return None


def clean_env(env: dict[str, str]) -> dict[str, str]:
    path = [f for f in env.get("PATH", "").split(os.pathsep) if f and not in_a_venv(Path(f))]
    kept = {key: value for key, value in env.items() if key not in INHERITED}
    return kept | {"PATH": os.pathsep.join(path)}


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def step(command: list[str], cwd: Path, log: Path, env: dict[str, str]) -> tuple[int, float, str]:
    """Run `command` with its output appended to `log`; its exit code, seconds and output."""
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n===== {' '.join(command)} (in {cwd})\n")
        out.flush()
        start = log.stat().st_size
        began = time.monotonic()
        code = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        seconds = time.monotonic() - began
    with log.open(encoding="utf-8") as written:
        written.seek(start)
        return code.returncode, seconds, written.read()


def pytest_line(output: str, code: int) -> str:
    lines = [m.group(1) for line in output.splitlines() if (m := PYTEST_SUMMARY.match(line))]
    return lines[-1] if lines else f"no pytest summary (make test exited {code})"


def run_one(found: Found, sha: str, workdir: Path, env: dict[str, str], keep: bool) -> Result:
    result = Result(found)
    clone = workdir / f"py{found.version}"
    log = workdir / "logs" / f"python{found.version}.log"
    say = f"Python {found.version}:"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    git("checkout", "--quiet", "--detach", sha, cwd=clone)

    print(f"{say} make repro PYTHON={found.path} (log: {log})", flush=True)
    code, result.repro_seconds, _ = step(["make", "repro", f"PYTHON={found.path}"], clone, log, env)
    result.repro_ok = code == 0
    changed = git("status", "--porcelain", cwd=clone).splitlines()
    result.clean = "yes" if not changed else "no: " + ", ".join(c[3:] for c in changed[:4])
    print(f"{say} repro {'ok' if result.repro_ok else 'FAILED'} in {result.repro_seconds:.0f} s")

    print(f"{say} make test PYTHON={found.path}", flush=True)
    code, seconds, output = step(["make", "test", f"PYTHON={found.path}"], clone, log, env)
    result.test_ok = code == 0
    result.test_line = pytest_line(output, code)
    print(
        f"{say} test {'ok' if result.test_ok else 'FAILED'} in {seconds:.0f} s: {result.test_line}"
    )

    # A clone that passed is only disk (a .venv of TensorFlow, a DVC cache): its log says it
    # all. One that failed stays, to be looked into.
    if passed(result) and not keep:
        shutil.rmtree(clone)
    return result


def passed(result: Result) -> bool:
    return result.repro_ok and result.clean == "yes" and result.test_ok


def table(results: list[Result]) -> str:
    rows = [
        "| Python | interpreter | make repro | clean after repro | make test |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        repro = f"{'ok' if r.repro_ok else 'FAILED'} ({r.repro_seconds:.0f} s)"
        test = f"{'ok' if r.test_ok else 'FAILED'}: {r.test_line}"
        rows.append(f"| {r.found.full} | {r.found.path} | {repro} | {r.clean} | {test} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="only list the interpreters found")
    parser.add_argument("--only", nargs="+", choices=VERSIONS, help="run only these versions")
    parser.add_argument("--workdir", type=Path, help="where the clones and logs go (new)")
    parser.add_argument("--keep", action="store_true", help="keep the clones that passed")
    args = parser.parse_args(argv)
    versions = args.only or VERSIONS

    # Every interpreter is found before anything is cloned: a run that would stop at its last
    # version for want of an interpreter would waste the half hour before it.
    env = dict(os.environ)
    found = {version: find(version, env) for version in versions}
    for version, interp in found.items():
        if interp:
            print(f"Python {version}: {interp.path} ({interp.full}, from {interp.where})")
    missing = [version for version, interpreter in found.items() if interpreter is None]
    if missing:
        names = " and ".join(", ".join(missing).rsplit(", ", 1))
        print(
            f"error: Python {names} not found (looked in PATH and pyenv); "
            f"make pythons needs {', '.join(VERSIONS[:-1])} and {VERSIONS[-1]}",
            file=sys.stderr,
        )
        return 1
    if args.list:
        return 0

    sha = git("rev-parse", "HEAD")
    dirty = (
        " (the work tree's uncommitted changes are not included)"
        if git("status", "--porcelain")
        else ""
    )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="make-pythons-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if any(workdir.iterdir()):
        print(f"error: {workdir} is not empty; give a new folder to --workdir", file=sys.stderr)
        return 1
    (workdir / "logs").mkdir()
    print(
        f"Testing HEAD {sha[:7]} in fresh clones{dirty}; clones and logs in {workdir}", flush=True
    )

    results = [run_one(found[v], sha, workdir, clean_env(env), args.keep) for v in versions]
    print()
    print(table(results))
    failed = [r.found.version for r in results if not passed(r)]
    if failed:
        print(f"failed: Python {', '.join(failed)} (logs in {workdir / 'logs'})", file=sys.stderr)
        return 1
    print(f"All passed; logs in {workdir / 'logs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
