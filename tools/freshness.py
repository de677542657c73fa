"""The freshness gate of a pull request: the committed dvc.lock must match the code and params.

Run after `dvc pull` has restored what the DVC remote holds (or with nothing restored, when no
remote is configured): `python -m tools.freshness`.

- With every output in place, `dvc status` must be empty: then `dvc repro` has nothing to
  run. Each stage it names fails the gate, in one line.
- With outputs missing (no remote, or not pushed to it), a stage whose command, params or
  source files (code, pins, the author's course files) differ from what dvc.lock records
  fails the gate, in one line. The others are rebuilt here with `dvc repro`, and each stage
  whose outputs then have other bytes than the committed dvc.lock records is reported as a
  warning naming it, in GitHub's workflow-command format, not as a failure: bytes across CPU
  makes are not promised for every stage (docs/reproducibility.md).

The rebuild leaves this runner's dvc.lock and outputs in the workspace, for the steps after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tools import dvc

# What `dvc status` says of an output that is not in the workspace.
ABSENT = {"deleted", "not in cache"}


def outputs(root: Path) -> list[str]:
    """Every output the pipeline declares, relative to `root`."""
    # DVC is imported here, by the tool, and never by a stage: the stages run without it.
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return [
            Path(out.fs_path).resolve().relative_to(root.resolve()).as_posix()
            for out in repo.index.outs
        ]


def derived(path: str, outs: list[str]) -> bool:
    """Whether a dependency is built by the pipeline: an output, inside one or holding one."""
    dep = PurePosixPath(path)
    return any(
        dep == PurePosixPath(out)
        or dep.is_relative_to(out)
        or PurePosixPath(out).is_relative_to(dep)
        for out in outs
    )


def missing_outputs(status: dict[str, list[Any]]) -> bool:
    """Whether `dvc status` reports an output that is not in the workspace."""
    return any(
        state in ABSENT
        for entries in status.values()
        for entry in entries
        if isinstance(entry, dict)
        for state in entry.get("changed outs", {}).values()
    )


def stale_stages(
    status: dict[str, list[Any]], outs: list[str], rebuilding: bool
) -> dict[str, list[str]]:
    """The stages whose dvc.lock entry does not match the code and params, with what differs.

    When `rebuilding`, outputs are missing, so a stage may differ only because what it reads
    is not built yet: then only its command, params and source files count.
    """
    stale: dict[str, list[str]] = {}
    for stage, entries in status.items():
        reasons = []
        for entry in entries:
            if isinstance(entry, str):  # "changed command", "always changed"
                reasons.append("its command" if entry == "changed command" else entry)
                continue
            for path, state in entry.get("changed deps", {}).items():
                if isinstance(state, dict):  # params: {"params.yaml": {"train": "modified"}}
                    reasons.append(f"{path} ({', '.join(sorted(state))})")
                elif not (rebuilding and derived(path, outs)):
                    reasons.append(f"{path} ({state})")
            if not rebuilding:
                reasons += [
                    f"{path} ({state})" for path, state in entry.get("changed outs", {}).items()
                ]
        if reasons:
            stale[stage] = reasons
    return stale


def out_hashes(lock: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """Each stage's outputs in a parsed dvc.lock, with their hashes."""
    return {
        stage: {out["path"]: out.get("md5") for out in entry.get("outs", [])}
        for stage, entry in (lock.get("stages") or {}).items()
    }


def other_bytes(committed: dict[str, Any], rebuilt: dict[str, Any]) -> dict[str, list[str]]:
    """The stages whose outputs have other hashes in `rebuilt` than in `committed`."""
    before, after = out_hashes(committed), out_hashes(rebuilt)
    differing = {}
    for stage, outs in after.items():
        changed = [path for path, md5 in outs.items() if before.get(stage, {}).get(path) != md5]
        if changed:
            differing[stage] = changed
    return differing


def dvc_status(root: Path) -> dict[str, list[Any]]:
    result = subprocess.run(
        [dvc(), "status", "--json"], cwd=root, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"error: dvc status failed: {' '.join(result.stderr.split())}")
    return json.loads(result.stdout or "{}")


def check(root: Path) -> int:
    """The gate: 0 when dvc.lock matches the code and params, 1 otherwise."""
    status = dvc_status(root)
    rebuilding = missing_outputs(status)
    stale = stale_stages(status, outputs(root), rebuilding)
    for stage, reasons in stale.items():
        print(
            f"error: {stage}: dvc.lock does not match {', '.join(reasons)}; "
            "run `dvc repro` and commit dvc.lock",
            file=sys.stderr,
        )
    if stale:
        return 1
    if not status:
        print("dvc.lock matches the code and params, and every output is in place.")
        return 0
    # Outputs are missing: build them here and compare their bytes with the committed ones.
    lock_file = root / "dvc.lock"
    committed = yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}
    # The stages run as `python -m stages.<name>`: the python beside this one, as `make` sets
    # PATH, whatever the caller's PATH (a CI step calls .venv/bin/python directly).
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    repro = subprocess.run([dvc(), "repro"], cwd=root, env=os.environ | {"PATH": path})
    if repro.returncode != 0:
        print("error: dvc repro failed (its output is above)", file=sys.stderr)
        return 1
    rebuilt = yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}
    differing = other_bytes(committed, rebuilt)
    for stage, paths in differing.items():
        print(
            f"::warning::{stage} gave other bytes on this runner than dvc.lock records "
            f"({', '.join(paths)}); bytes across CPU makes are not promised for every stage "
            "(docs/reproducibility.md)"
        )
    print(
        "dvc.lock matches the code and params; the missing outputs were rebuilt here, "
        f"{len(differing)} stage(s) with other bytes."
    )
    return 0


def main() -> int:
    return check(Path.cwd())


if __name__ == "__main__":
    sys.exit(main())
