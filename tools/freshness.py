"""The freshness gate of a pull request: the committed dvc.lock must be consistent, and match the
code and params.

Run after `dvc pull` has restored what the DVC remote holds, or with nothing restored (a fresh
clone, no remote): `python -m tools.freshness`. Two checks need no output at all:

- dvc.lock agrees with itself: each dependency that a stage of the pipeline writes has, in its
  consumer's entry, the hash the producer's entry records for that output. For a folder the
  hash is DVC's `.dir` hash, recomputed from the producers' entries (`dir_hash`) when the
  consumer reads a folder holding outputs, or a path inside a folder output. A stage rebuilt on
  its own (`dvc repro --single-item`) and committed without the stages that read its outputs,
  a hash edited by hand, or a stage, dependency or output dvc.yaml declares and dvc.lock does
  not record, fails here.
- Each stage's command, params and source files (code, pins, the author's course files, every
  dependency no stage writes) match what dvc.lock records (`dvc status`).

Each stage that fails either check is one line naming it. Then:

- With every output in place, `dvc status` must be empty: then `dvc repro` has nothing to run.
- With outputs missing, they are rebuilt here with `dvc repro`, and each stage whose outputs
  then have other bytes than the committed dvc.lock records is reported as a warning naming it,
  in GitHub's workflow-command format, not as a failure: bytes across CPU makes are not
  promised for every stage (docs/reproducibility.md). With `--no-build`, nothing is built: the
  two checks above are the whole gate, as in the pull-request job that runs for forks too.

The rebuild leaves this runner's dvc.lock and outputs in the workspace, for the steps after.
CI runs the base commit's copy on a pull request's files, from the pull request's folder:
`PYTHONPATH=<base> python -P -m tools.freshness` (-P keeps the current folder off sys.path).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tools import dvc

# What `dvc status` says of an output that is not in the workspace.
ABSENT = {"deleted", "not in cache"}
# The suffix DVC gives the hash of a folder: the hash of its listing, kept in the cache as a file.
DIR = ".dir"

# A folder output's listing ({relpath: md5}), read from the DVC cache by its `.dir` hash; None
# when the cache does not hold it (a fresh clone, nothing pulled).
Listing = Callable[[str], "dict[str, str] | None"]


@dataclass(frozen=True)
class Pipeline:
    """What dvc.yaml declares: each stage, in order, with the paths it reads and writes, and
    each output with its stage; with the DVC cache's folder listings, and the workspace's files
    as DVC sees them (those under a folder, without what .dvcignore and DVC ignore)."""

    deps: dict[str, list[str]]
    outs: dict[str, list[str]]
    producers: dict[str, str]
    listing: Listing
    files: Callable[[Path], list[Path]]

    @property
    def stages(self) -> list[str]:
        return list(self.deps)


def pipeline(root: Path) -> Pipeline:
    """The stages and outputs of the pipeline in `root`, paths relative to it."""
    # DVC is imported here, by the tool, and never by a stage: the stages run without it.
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    top = root.resolve()

    def relative(fs_path: str) -> str:
        return Path(fs_path).resolve().relative_to(top).as_posix()

    with Repo(str(root)) as repo:
        deps, outs, producers = {}, {}, {}
        for stage in repo.index.stages:
            # Params are checked by `dvc status`, against dvc.lock's `params`.
            deps[stage.name] = [
                relative(dep.fs_path) for dep in stage.deps if not isinstance(dep, ParamsDependency)
            ]
            outs[stage.name] = [relative(out.fs_path) for out in stage.outs]
            producers.update(dict.fromkeys(outs[stage.name], stage.name))
        cache, ignore, fs = repo.cache.local, repo.dvcignore, repo.fs

    def listing(oid: str) -> dict[str, str] | None:
        try:
            entries = json.loads(Path(cache.oid_to_path(oid)).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return {entry["relpath"]: entry["md5"] for entry in entries}

    def files(folder: Path) -> list[Path]:
        return [Path(name) for name in ignore.find(fs, str(folder.resolve()))]

    return Pipeline(deps, outs, producers, listing, files)


def derived(path: str, outs: list[str] | dict[str, str]) -> bool:
    """Whether a dependency is built by the pipeline: an output, inside one or holding one."""
    dep = PurePosixPath(path)
    return any(
        dep == PurePosixPath(out)
        or dep.is_relative_to(out)
        or PurePosixPath(out).is_relative_to(dep)
        for out in outs
    )


def dir_hash(entries: dict[str, str]) -> str:
    """DVC's hash of a folder holding `entries` ({path inside it: md5}), as dvc-data computes
    it (dvc_data/hashfile/tree.py, Tree.as_bytes and Tree.digest): the md5 of the JSON list of
    {"md5", "relpath"} objects, sorted by relpath, each with its keys sorted, in json.dumps's
    default separators, and ".dir" after it. Only files are listed, at any depth."""
    listing = [{"md5": md5, "relpath": relpath} for relpath, md5 in sorted(entries.items())]
    text = json.dumps(listing, sort_keys=True).encode("utf-8")
    return hashlib.md5(text).hexdigest() + DIR


def file_md5(path: Path) -> str:
    """A file's hash as DVC 3 records it (`hash: md5`): the md5 of its bytes."""
    digest = hashlib.md5()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_files(pipe: Pipeline, root: Path, folder: str, outs: list[str]) -> dict[str, str]:
    """The files in a workspace folder that no stage writes (a README kept in git, the
    .gitignore files DVC writes beside outputs), with their md5, by their path inside it: DVC
    lists them in the folder's hash too. What .dvcignore (and DVC itself) ignores is left out;
    so are `outs`, the outputs in the folder, which count as their producers record them."""
    base = (root / folder).resolve()
    found = {}
    for path in pipe.files(base):
        relpath = path.relative_to(base).as_posix()
        inside = PurePosixPath(folder, relpath)
        if not any(inside == PurePosixPath(out) or inside.is_relative_to(out) for out in outs):
            found[relpath] = file_md5(path)
    return found


class Unknown(Exception):
    """The hash a producer gives a dependency cannot be known from dvc.lock and the cache."""


def recorded(
    out: str, lock_outs: dict[str, dict[str, str | None]], producers: dict[str, str]
) -> str:
    """The hash the producer's dvc.lock entry records for one of its outputs."""
    md5 = lock_outs.get(producers[out], {}).get(out)
    if not md5:
        raise Unknown(f"{producers[out]} records no hash for {out}")
    return md5


def files_of(out: str, md5: str, listing: Listing, producer: str) -> dict[str, str]:
    """An output's files, {path inside it: md5}: itself when a file, its listing when a folder."""
    if not md5.endswith(DIR):
        return {"": md5}
    files = listing(md5)
    if files is None:
        raise Unknown(
            f"the listing of {out}, {producer}'s output, is not in the DVC cache: "
            "pull or build it to check"
        )
    return files


def expected(
    dep: str, lock_outs: dict[str, dict[str, str | None]], pipe: Pipeline, root: Path
) -> tuple[str, list[str]]:
    """The hash a derived dependency should have, from its producers' entries, and those
    producers: an output's own hash, or the `.dir` hash recomputed for a path inside a folder
    output or a folder holding outputs."""
    producers, listing = pipe.producers, pipe.listing
    if dep in producers:
        return recorded(dep, lock_outs, producers), [producers[dep]]
    path = PurePosixPath(dep)
    holder = next((out for out in producers if path.is_relative_to(out)), None)
    if holder is not None:
        # Inside a folder output: its entry, or the part of its listing under the path.
        producer = producers[holder]
        files = files_of(holder, recorded(holder, lock_outs, producers), listing, producer)
        inside = path.relative_to(holder).as_posix()
        if inside in files:
            return files[inside], [producer]
        part = {
            PurePosixPath(relpath).relative_to(inside).as_posix(): md5
            for relpath, md5 in files.items()
            if PurePosixPath(relpath).is_relative_to(inside)
        }
        if not part:
            raise Unknown(f"{holder}, {producer}'s output, holds no {inside}")
        return dir_hash(part), [producer]
    # A folder holding outputs: their files, and the files in it that no stage writes.
    held = sorted(out for out in producers if PurePosixPath(out).is_relative_to(dep))
    entries = source_files(pipe, root, dep, held)
    for out in held:
        relpath = PurePosixPath(out).relative_to(dep).as_posix()
        for inner, md5 in files_of(
            out, recorded(out, lock_outs, producers), listing, producers[out]
        ).items():
            entries[f"{relpath}/{inner}" if inner else relpath] = md5
    return dir_hash(entries), list(dict.fromkeys(producers[out] for out in held))


def as_recorded_by(producers: list[str]) -> str:
    if len(producers) == 1:
        return f"as {producers[0]} records it"
    return f"as {producers[0]} and {len(producers) - 1} other stages record it"


def inconsistent_stages(lock: dict[str, Any], pipe: Pipeline, root: Path) -> dict[str, list[str]]:
    """The stages whose dvc.lock entry is not the one `dvc repro` would have written after
    their producers', with what differs: no entry; a dependency or output dvc.yaml declares
    and the entry does not record; a dependency the pipeline writes, recorded with another hash
    than its producers' entries give it. Needs no output."""
    entries = lock.get("stages") or {}
    lock_outs = out_hashes(lock)
    problems: dict[str, list[str]] = {}
    for stage in pipe.stages:
        entry = entries.get(stage)
        if not entry:
            problems[stage] = ["dvc.yaml (no entry for this stage)"]
            continue
        reasons = problems.setdefault(stage, [])
        deps = {dep["path"]: dep.get("md5") for dep in entry.get("deps", [])}
        recorded_paths = {*deps, *lock_outs.get(stage, {})}
        reasons += [
            f"{path} (in dvc.yaml, not in dvc.lock)"
            for path in [*pipe.deps[stage], *pipe.outs[stage]]
            if path not in recorded_paths
        ]
        # What dvc.yaml no longer declares, DVC no longer reads: only the declared count.
        for path in pipe.deps[stage]:
            if path not in deps or not derived(path, pipe.producers):
                continue
            try:
                want, producers = expected(path, lock_outs, pipe, root)
            except Unknown as why:
                reasons.append(f"{path} ({why})")
                continue
            if deps[path] != want:
                reasons.append(f"{path} ({as_recorded_by(producers)})")
    return {stage: reasons for stage, reasons in problems.items() if reasons}


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
    is not built yet: then only its command, params and source files count (what it reads
    from other stages is held to their entries by `inconsistent_stages`).
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
        stage: {out["path"]: out.get("md5") for out in (entry or {}).get("outs", [])}
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


def read_lock(root: Path) -> dict[str, Any]:
    lock_file = root / "dvc.lock"
    if not lock_file.is_file():
        return {}
    return yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}


def check(root: Path, build: bool = True) -> int:
    """The gate: 0 when dvc.lock is consistent and matches the code and params, 1 otherwise."""
    status = dvc_status(root)
    rebuilding = missing_outputs(status)
    pipe = pipeline(root)
    committed = read_lock(root)
    failing = inconsistent_stages(committed, pipe, root)
    for stage, reasons in stale_stages(status, list(pipe.producers), rebuilding).items():
        # A path already named, from dvc.lock alone, is not named again from `dvc status`.
        named = {reason.split(" (")[0] for reason in failing.get(stage, [])}
        failing.setdefault(stage, []).extend(
            reason for reason in reasons if reason.split(" (")[0] not in named
        )
    order = {stage: index for index, stage in enumerate(pipe.stages)}
    for stage in sorted(failing, key=lambda name: order.get(name, len(order))):
        print(
            f"error: {stage}: dvc.lock does not match {', '.join(failing[stage])}; "
            "run `dvc repro` and commit dvc.lock",
            file=sys.stderr,
        )
    if failing:
        return 1
    if not status:
        print("dvc.lock matches the code and params, and every output is in place.")
        return 0
    if not build:
        print(
            "dvc.lock is consistent and matches the code and params; the outputs not in the "
            "workspace were not built (--no-build)."
        )
        return 0
    # Outputs are missing: build them here and compare their bytes with the committed ones.
    # The stages run as `python -m stages.<name>`: the python beside this one, as `make` sets
    # PATH, whatever the caller's PATH (a CI step calls .venv/bin/python directly).
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    repro = subprocess.run([dvc(), "repro"], cwd=root, env=os.environ | {"PATH": path})
    if repro.returncode != 0:
        print("error: dvc repro failed (its output is above)", file=sys.stderr)
        return 1
    differing = other_bytes(committed, read_lock(root))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.freshness",
        description="Check that the committed dvc.lock is consistent and matches the code and "
        "params; rebuild what is missing, unless --no-build.",
    )
    parser.add_argument(
        "--no-build",
        action="store_true",
        help="check dvc.lock only, and build nothing (the outputs may all be missing)",
    )
    args = parser.parse_args(argv)
    return check(Path.cwd(), build=not args.no_build)


if __name__ == "__main__":
    sys.exit(main())
