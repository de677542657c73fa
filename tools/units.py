"""Split a build over several machines: the pipeline's work units, one per machine.

A unit is a set of stages that one machine (a worker) builds and pushes to the DVC remote:

- `lesson`: what `dvc repro render` builds (download, prepare, train, evaluate, render);
- `sklearn`: what `dvc repro sklearn` builds (download, then the logistic-regression lesson's
  scikit-learn model), when dvc.yaml has that stage;
- one unit per variation in params.yaml, named as the variation: what
  `dvc repro variant_evaluate@<name>` builds (download and prepare, then its own three stages).

The stages in no unit (compare and the course stages after it) need every unit's outputs: the
assembling machine runs them after `dvc repro --pull` has brought the units' stages from the
remote's run-cache. The units come from DVC's own resolution of dvc.yaml (its `foreach` over
params.yaml's variations), never from a list kept by hand.

    python -m tools.units list [--json]   the units (--json: their names, for a CI matrix)
    python -m tools.units run NAME [--pull] [--push]
                                          build one unit here (--pull: take from the remote
                                          what it already holds); --push: push its outputs
                                          and the run-cache to the default remote
    python -m tools.units assemble        dvc repro --pull, refusing to build any unit's stage

A unit builds what a commit describes, and only that: `run` and `assemble` refuse a working
tree whose pipeline inputs (dvc.yaml, params.yaml, the stages' code) differ from the commit,
and `run` refuses to push a stage that has other outputs than the committed dvc.lock records
for the same inputs, since that would mix two builds of one commit. Why these rules, and the
commands for each machine: docs/several-machines.md. Errors end in one line on stderr.

This is a tool, not a pipeline stage: it imports DVC and none of the stages.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools import dvc

LESSON = "lesson"
# The stage whose upstream stages, with itself, make a unit: the lesson's last stage, and each
# variation's (a `foreach` group in dvc.yaml, expanded by DVC as `variant_evaluate@<name>`).
LESSON_TARGET = "render"
# The logistic-regression lesson's model: a unit of its own, named as its stage, so that a
# worker fits it and the assembling machine does not.
SKLEARN = "sklearn"
VARIATION_GROUP = "variant_evaluate"
LOCK_FILE = "dvc.lock"
DOCS = "docs/several-machines.md"


class UnitsError(Exception):
    """A problem the user can fix; its message is one line saying what and how."""


@dataclass(frozen=True)
class Unit:
    name: str
    target: str
    stages: tuple[str, ...]  # In the order DVC builds them, the target last.


@dataclass(frozen=True)
class Plan:
    """The pipeline split into units, and the stages the assembling machine runs."""

    units: tuple[Unit, ...]
    assembled: tuple[str, ...]
    inputs: tuple[str, ...]  # dvc.yaml, params.yaml and every stage's deps.

    def unit(self, name: str) -> Unit:
        for unit in self.units:
            if unit.name == name:
                return unit
        known = ", ".join(unit.name for unit in self.units)
        if not name:
            raise UnitsError(f"name the unit to run; known units: {known}")
        raise UnitsError(f"unknown unit {name!r}; known units: {known}")

    def units_of(self, stage: str) -> list[str]:
        return [unit.name for unit in self.units if stage in unit.stages]


def project_root() -> Path:
    """The DVC project holding the current folder."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Path(Repo.find_root())
    except NotDvcRepoError:
        raise UnitsError("not inside a DVC project; run from the project folder") from None


def plan(root: Path) -> Plan:
    """Ask DVC to resolve the pipeline, and split its stages into units."""
    import networkx as nx
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            stages = list(repo.index.stages)
            graph = repo.index.graph
    except DvcException as error:
        raise UnitsError(f"cannot resolve the pipeline: {_one_line(error)}") from None
    by_name = {stage.addressing: stage for stage in stages}
    if LESSON_TARGET not in by_name:
        raise UnitsError(f"dvc.yaml has no stage {LESSON_TARGET!r}, the lesson's last stage")
    targets = {LESSON: LESSON_TARGET}
    if SKLEARN in by_name:
        targets[SKLEARN] = SKLEARN
    for name in by_name:
        group, _, key = name.partition("@")
        if group == VARIATION_GROUP and key:
            if key in targets:
                owner = "the lesson's stages" if key == LESSON else f"the stage {key}"
                raise UnitsError(
                    f"params.yaml: a variation named {key!r} would share its unit's name "
                    f"with {owner}; rename the variation"
                )
            targets[key] = name
    # DVC's graph points from a stage to the stages it depends on: the target's descendants
    # are its upstream stages. They are listed upstream first, and where the graph leaves the
    # order open (download or variant_settings@cnn first?), in dvc.yaml's order: DVC's own
    # order there changes from run to run.
    position = {stage: index for index, stage in enumerate(stages)}
    units = []
    for name, target in targets.items():
        members = graph.subgraph({by_name[target], *nx.descendants(graph, by_name[target])})
        order = nx.lexicographical_topological_sort(members.reverse(), key=position.get)
        units.append(Unit(name, target, tuple(stage.addressing for stage in order)))
    in_units = {stage for unit in units for stage in unit.stages}
    assembled = tuple(name for name in by_name if name not in in_units)
    inputs = {"dvc.yaml"} | {
        os.path.normpath(dep.def_path) for stage in stages for dep in stage.deps if dep.def_path
    }
    return Plan(tuple(units), assembled, tuple(sorted(inputs)))


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _git(root: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True)


def check_committed(root: Path, units: Plan) -> None:
    """Refuse unless the pipeline's inputs in the working tree are the commit's.

    The inputs are dvc.yaml, params.yaml and every stage's deps (the ones git tracks: the
    stages' code, requirements.lock). A change to one would build, and push, what no commit
    describes. Other files (the README, dvc.lock, which builds rewrite, and the .gitignore
    files DVC keeps beside outputs) may differ: the next unit on the same machine still
    builds the same commit.
    """
    head = _git(root, "rev-parse", "--short", "--verify", "HEAD")
    if head.returncode != 0:
        raise UnitsError("the project has no git commit; a unit builds what a commit describes")
    changed = _git(
        root, "diff", "--name-only", "HEAD", "--", *units.inputs, ":(exclude,glob)**/.gitignore"
    )
    files = changed.stdout.split()
    if changed.returncode != 0:
        raise UnitsError(f"git diff failed: {_one_line(changed.stderr)}")
    if files:
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        verb = "differs" if len(files) == 1 else "differ"
        raise UnitsError(
            f"{shown} {verb} from the commit (HEAD {head.stdout.strip()}): a unit builds what "
            "a commit describes, so that the machines building one commit push one build; commit "
            f"the change, or undo it (git checkout -- {files[0]})"
        )


def _lock_stages(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UnitsError(f"{LOCK_FILE} is not valid YAML") from None
    stages = tree.get("stages") if isinstance(tree, dict) else None
    return stages if isinstance(stages, dict) else {}


def committed_lock(root: Path) -> dict[str, Any]:
    """The stages the commit's dvc.lock records (none if it has no dvc.lock)."""
    shown = _git(root, "show", f"HEAD:{LOCK_FILE}")
    return _lock_stages(shown.stdout if shown.returncode == 0 else None)


def workspace_lock(root: Path) -> dict[str, Any]:
    path = root / LOCK_FILE
    return _lock_stages(path.read_text(encoding="utf-8") if path.exists() else None)


def _files(entries: Any) -> dict[str, Any]:
    """A lock entry's deps or outs as path -> md5 (a folder's md5 ends in .dir)."""
    return {entry.get("path"): entry.get("md5") for entry in entries or []}


def other_outputs(committed: dict[str, Any], built: dict[str, Any], stage: str) -> list[str]:
    """The outputs of `stage` whose md5 differs between the committed lock entry and the
    built one, when both record the same inputs (command, deps and params); otherwise none.

    Other inputs mean the committed entry is an older build of the stage (the commit changed
    a setting without building), not another build of the same one.
    """
    old, new = committed.get(stage), built.get(stage)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    same_inputs = (
        old.get("cmd") == new.get("cmd")
        and _files(old.get("deps")) == _files(new.get("deps"))
        and old.get("params") == new.get("params")
    )
    if not same_inputs:
        return []
    before, after = _files(old.get("outs")), _files(new.get("outs"))
    return sorted(
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    )


def check_same_build(root: Path, stages: Sequence[str], holder: str, consequence: str) -> None:
    """Refuse when a stage has other outputs than the committed dvc.lock records for the same
    inputs; the message says who has them (`holder`) and what pushing them would do."""
    committed, built = committed_lock(root), workspace_lock(root)
    for stage in stages:
        paths = other_outputs(committed, built, stage)
        if paths:
            raise UnitsError(
                f"{stage}: {holder} other outputs than the committed {LOCK_FILE} records for the "
                f"same inputs ({', '.join(paths)}); {consequence} (see {DOCS})"
            )


def default_remote(root: Path) -> str:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        remote = repo.config["core"].get("remote")
    if not remote:
        raise UnitsError(
            "no default DVC remote to share the build through; add one with "
            f"`dvc remote add -d <name> <url>` (see {DOCS})"
        )
    return remote


def _use_this_environment() -> None:
    """Put this interpreter's folder first on PATH, as `make` does, so that the stages' own
    `python -m stages...` commands run in the same environment as the tool."""
    folder = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([folder, os.environ.get("PATH", "")])


def run_unit(root: Path, name: str, pull: bool, push: bool) -> None:
    """Build one unit with `dvc repro` (--pull: taking from the remote what it already
    holds), check it against the committed dvc.lock, and push its outputs and the run-cache."""
    units = plan(root)
    unit = units.unit(name)
    check_committed(root, units)
    remote = default_remote(root) if push or pull else None
    _use_this_environment()
    command = ["repro", *(["--pull"] if pull else []), unit.target]
    print(f"unit {unit.name}: dvc {' '.join(command)}", flush=True)
    built = subprocess.run([dvc(), *command], cwd=root)
    if built.returncode != 0:
        raise UnitsError(
            f"unit {unit.name}: dvc {' '.join(command)} failed (exit code {built.returncode}); "
            "DVC's message is above"
        )
    consequence = "pushing them would mix two builds of one commit"
    check_same_build(
        root,
        unit.stages,
        "this machine built or pulled" if pull else "this machine built",
        consequence + (", so nothing was pushed" if push else ""),
    )
    if not push:
        return
    # `--run-cache` sends every run-cache entry of this machine, but the outputs of the targets
    # only (not those the entries name), so every stage of the unit is a target: the assembling
    # machine needs both, the entry to find a stage's outputs and the outputs to check out.
    print(f"unit {unit.name}: dvc push --run-cache to remote {remote!r}", flush=True)
    pushed = subprocess.run(
        [dvc(), "push", "--run-cache", *unit.stages], cwd=root, capture_output=True, text=True
    )
    if pushed.returncode != 0:
        said = [line for line in pushed.stderr.splitlines() if line.startswith("ERROR")]
        reason = said[-1].removeprefix("ERROR:").strip() if said else _one_line(pushed.stderr)
        raise UnitsError(
            f"unit {unit.name} is built here but its push to remote {remote!r} failed "
            f"({reason}); run the same command again to push it"
        )
    print(pushed.stdout.strip(), flush=True)


class HeldBack(Exception):
    """Raised instead of running a stage's command that the assembling machine may not run."""


@contextmanager
def commands_guarded(may_run: Callable[[str], bool]) -> Iterator[None]:
    """Within the block, DVC runs a stage's command only if `may_run(stage name)`; restoring
    a stage's outputs from the run-cache or the remote goes on as usual.

    DVC has no option for this: `dvc repro --pull` builds whatever it cannot pull. Its one
    place that starts a stage's command is `dvc.stage.run.cmd_run` (DVC 3.67, pinned in
    requirements.lock), called after every way of restoring the stage has been tried; the
    guard replaces it for the block.
    """
    from dvc.stage import run as stage_run

    original = stage_run.cmd_run

    def guarded(stage: Any, *arguments: Any, **options: Any) -> Any:
        if not may_run(stage.addressing):
            raise HeldBack(f"{stage.addressing} was not run on the assembling machine")
        return original(stage, *arguments, **options)

    stage_run.cmd_run = guarded
    try:
        yield
    finally:
        stage_run.cmd_run = original


class _Kept(logging.Handler):
    """Keeps the messages of the warnings and errors logged to it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(_one_line(record.getMessage()))


def _not_missing_cache(record: logging.LogRecord) -> bool:
    """False for DVC's warning that outputs are on neither this machine nor the remote."""
    return not str(record.getMessage()).startswith("Some of the cache files do not exist")


def assemble(root: Path) -> None:
    """`dvc repro --pull`, refusing to run any stage of a unit: every one must come from the
    remote, and only the assembled stages (compare and the course after it) run here.

    Unlike `run`, it needs no check against the committed dvc.lock afterwards: for a stage
    that dvc.lock records with the same inputs, DVC restores exactly the recorded outputs or
    none (and then the stage would run, which is refused here), never another build of it.
    """
    # Importing dvc sets up its console logging, as the `dvc` command has it: DVC says which
    # stage it pulls, restores or runs.
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    units = plan(root)
    check_committed(root, units)
    default_remote(root)
    _use_this_environment()
    in_units = {stage for unit in units.units for stage in unit.stages}
    refused: list[str] = []
    failures = _Kept()

    def may_run(stage: str) -> bool:
        if stage in in_units:
            refused.append(stage)
            return False
        return True

    # With keep-going, DVC goes on past a refused stage to every other unit (so one run names
    # every missing unit) and skips what depends on it, the assembled stages among them, so
    # that they never run on part of the build; its warnings about each, which would repeat
    # the refusal, are kept here instead of printed.
    reproduce_log = logging.getLogger("dvc.repo.reproduce")
    reproduce_log.addHandler(failures)
    reproduce_log.propagate = False
    # `--pull` looks on the remote for every stage's outputs, the assembled stages' too, which
    # no worker pushes since they are built here (the course's home page is ready as soon as
    # the data is): DVC's warning that they are missing says nothing, and a unit's missing
    # outputs are named by the refusal above. DVC prints it through its console handlers.
    console = logging.getLogger("dvc").handlers
    for handler in console:
        handler.addFilter(_not_missing_cache)
    try:
        with commands_guarded(may_run), Repo(str(root)) as repo:
            # A run that ends in an error takes back, on its way out, the .gitignore entries
            # DVC added for the outputs it restored, but the outputs stay: the next run then
            # skips their stages without adding the entries again, and reports/variants (a dep
            # of compare and page, .gitignore files included) would differ from one machine's
            # build. So this run keeps them.
            # DVC has no public way to keep them: this replaces a method of DVC's own
            # (SCMContext.ignore_remove, DVC 3.67), as commands_guarded replaces cmd_run;
            # tests/test_units_dvc.py fails if either is no longer where this expects it.
            repo.scm_context.ignore_remove = lambda path: None
            repo.reproduce(pull=True, on_error="keep-going")
    except DvcException as error:
        failures.messages.append(_one_line(error))
    finally:
        for handler in console:
            handler.removeFilter(_not_missing_cache)
        reproduce_log.removeHandler(failures)
        reproduce_log.propagate = True
    if failures.messages and not refused:
        raise UnitsError(f"dvc repro --pull failed: {failures.messages[0]}")
    if refused:
        commands = []
        for stage in refused:
            command = f"python -m tools.units run {units.units_of(stage)[0]} --push"
            if command not in commands:
                commands.append(command)
        verb, its = ("is", "its") if len(refused) == 1 else ("are", "their")
        raise UnitsError(
            f"{', '.join(refused)} {verb} not on the remote (no worker pushed {its} outputs and "
            "run-cache), and this machine builds no unit; build and push with: "
            + "; ".join(commands)
        )


class _Arguments(argparse.ArgumentParser):
    """argparse that raises a one-line error instead of printing its usage."""

    def error(self, message: str):
        raise UnitsError(f"{self.prog}: {message}")


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Arguments(prog="python -m tools.units", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Arguments)
    listing = commands.add_parser("list", help="list the units and their stages")
    listing.add_argument("--json", action="store_true", help="print the unit names as JSON")
    running = commands.add_parser("run", help="build one unit here")
    # Optional here, so that `make unit` without NAME= gets the list of units.
    running.add_argument(
        "name", metavar="NAME", nargs="?", default="", help="a unit, as `list` names it"
    )
    running.add_argument(
        "--pull", action="store_true", help="take from the remote what it already holds"
    )
    running.add_argument(
        "--push", action="store_true", help="push its outputs and the run-cache to the remote"
    )
    commands.add_parser("assemble", help="dvc repro --pull, building no unit's stage")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        arguments = parse(sys.argv[1:] if argv is None else argv)
        root = project_root()
        # DVC names a stage of the project's dvc.yaml by its name alone from the project's
        # folder, and as `../dvc.yaml:train` from a folder below it.
        os.chdir(root)
        if arguments.command == "list":
            units = plan(root)
            if arguments.json:
                print(json.dumps([unit.name for unit in units.units]))
            else:
                width = max(len(unit.name) for unit in units.units)
                for unit in units.units:
                    print(f"{unit.name:<{width}}  {' '.join(unit.stages)}")
                print(f"assembled from them: {' '.join(units.assembled)}")
        elif arguments.command == "run":
            run_unit(root, arguments.name, arguments.pull, arguments.push)
        else:
            assemble(root)
    except UnitsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
