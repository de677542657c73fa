"""The Makefile's own steps, checked without running them: `make test` gets its browser first,
`make pythons` refuses at once when an interpreter it needs is missing, and `make probe`
prepares the data before it probes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT, make_dry_run


def test_make_test_gets_the_browser_before_it_runs_pytest():
    dry_run = make_dry_run("test")
    assert "playwright install chromium" in dry_run and "-m pytest" in dry_run
    assert dry_run.index("playwright install chromium") < dry_run.index("-m pytest")


@pytest.mark.parametrize(
    ("jobs", "command"),
    [({"JOBS": ""}, "-m tools.schedule"), ({"JOBS": "1"}, "-m tools.schedule --jobs 1")],
)
def test_make_repro_builds_with_the_scheduler_and_passes_jobs_on(jobs, command):
    """`make repro` runs the stages at once (tools/schedule.py); `JOBS=1 make repro` asks it for
    one at a time, which is `dvc repro` itself (tests/test_schedule.py runs both)."""
    dry_run = make_dry_run("repro", env=jobs).splitlines()
    assert any(line.endswith(command) for line in dry_run), dry_run
    assert dry_run[-1].startswith("echo \"The course's home page: ")


@pytest.mark.parametrize("where", ["PATH", "pyenv"])
def test_make_pythons_refuses_in_one_line_before_cloning_when_a_python_is_missing(tmp_path, where):
    """Only this interpreter's version is there (on PATH or as a pyenv build): the other two
    are named in one line, and no clone is made."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    others = [v for v in ("3.11", "3.12", "3.13") if v != here]
    path, pyenv = tmp_path / "bin", tmp_path / "pyenv"
    bin_folder = path if where == "PATH" else pyenv / "versions" / f"{here}.99" / "bin"
    bin_folder.mkdir(parents=True)
    path.mkdir(exist_ok=True)
    wrapper = bin_folder / f"python{here}"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    workdir = tmp_path / "runs"

    refused = subprocess.run(
        [sys.executable, str(ROOT / "tools/pythons.py"), "--workdir", str(workdir)],
        env={"PATH": str(path), "HOME": str(tmp_path), "PYENV_ROOT": str(pyenv)},
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert refused.stderr == (
        f"error: Python {others[0]} and {others[1]} not found (looked in PATH and pyenv); "
        "make pythons needs 3.11, 3.12 and 3.13\n"
    )
    assert f"Python {here}: " in refused.stdout and f"from {where})" in refused.stdout
    assert not workdir.exists()


def test_make_probe_prepares_the_data_then_probes_into_docs_fingerprints():
    dry_run = make_dry_run("probe")
    assert "dvc repro prepare" in dry_run
    probe = dry_run.index("-m tools.probe --train-set data/prepared/train")
    assert dry_run.index("dvc repro prepare") < probe
    assert "--test-set data/prepared/test" in dry_run[probe:]
    assert "--fingerprints docs/fingerprints" in dry_run[probe:]
