"""Check, without installing anything, that the locks install on every platform course authors use.

For each platform and Python version, uv resolves the pinned locks as an installer on that machine
would (`uv pip install --dry-run --python-platform ... --python-version ...`): environment markers
are evaluated for the target, and every package needs a wheel for it or a source distribution.
It asks the package index, so it needs the network. `make platforms` prints the table; the tests
run the same check.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCKS = (ROOT / "requirements.lock", ROOT / "requirements-dev.lock")
# uv's target triples, with the name a course author knows them by.
PLATFORMS = {
    "x86_64-unknown-linux-gnu": "Linux x86-64",
    "aarch64-unknown-linux-gnu": "Linux aarch64",
    "aarch64-apple-darwin": "macOS, Apple silicon",
    "x86_64-pc-windows-msvc": "Windows x86-64",
}
PYTHONS = ("3.11", "3.12", "3.13")

# uv's words when a pinned package publishes no wheel for the target.
NO_WHEEL = re.compile(
    r"Because ([A-Za-z0-9_.-]+)(?:\{[^}]*\})?==(\S+) has no wheels with a matching platform tag"
    r" \(e\.g\., `([^`]+)`\)"
)


def uv() -> str:
    """The uv installed beside this interpreter (requirements-dev.lock pins it)."""
    return str(Path(sys.executable).with_name("uv"))


def explain(output: str) -> str:
    """One line saying why uv could not install the locks for a target."""
    # uv wraps its messages to a width, so match on the text with its line breaks folded.
    missing = NO_WHEEL.search(" ".join(output.split()))
    if missing:
        name, version, tag = missing.groups()
        return f"{name}=={version} has no wheel for {tag}"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("error:", "cause:"))]
    return " ".join(errors or lines[-1:])[:300]


def check(platform: str, python: str, locks: tuple[Path, ...] = LOCKS) -> str | None:
    """None when the locks install on `platform` with `python`, otherwise why not."""
    with tempfile.TemporaryDirectory() as target:
        command = [uv(), "pip", "install", "--dry-run", "--no-deps", "--target", target]
        command += ["--python-platform", platform, "--python-version", python]
        for lock in locks:
            command += ["-r", str(lock)]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode == 0:
        return None
    return explain(result.stdout + result.stderr)


def main() -> int:
    failures = 0
    print(f"{'platform':<28} {'python':<7} result")
    for platform, name in PLATFORMS.items():
        for python in PYTHONS:
            problem = check(platform, python)
            failures += problem is not None
            result = "ok: every pin installs" if problem is None else problem
            print(f"{name:<28} {python:<7} {result}")
    print(f"{len(PLATFORMS) * len(PYTHONS) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
