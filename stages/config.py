"""The shared machinery that hands a stage its settings and files, checked.

A stage calls `load(stage, rules, files)`. DVC itself resolves what dvc.yaml declares for the
stage (its params keys, deps and outs, after `${...}` templating and `foreach`), and `load`:

- reads from params.yaml only the declared keys, and checks them, and nothing else, against
  `rules`, the rules for the stage's own settings that the stage module declares (so a typo in
  a render setting stops render, not train);
- takes the stage's files from its command line (`--model models/model.keras`: dvc.yaml writes
  each path once, in `vars`, and passes it in the stage's `cmd`) and refuses any that is not
  among the stage's deps or outs.

Reading a key that was not declared raises, so a stage cannot depend on a setting or a file
that DVC does not track for it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import math
import os
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stages.cli import StageError

PARAMS_FILE = Path("params.yaml")
DVC_FILE = Path("dvc.yaml")
NUM_CLASSES = 10
# A longer text in params.yaml is a pasted mistake, not a setting.
LONGEST_TEXT = 255


class ParamsError(StageError):
    """A params.yaml problem, worded as one line for the person who edited the file."""


# A rule returns None when the value is allowed, or the phrase saying what is allowed.
Rule = Callable[[Any], "str | None"]


def _is_number(value: Any) -> bool:
    # YAML's true and false are ints to Python; as a number they are a mistake. So are .nan
    # and .inf, which no setting means.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def whole(low: int, high: int) -> Rule:
    def rule(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"is not a whole number from {low} to {high}"

    return rule


def fraction(value: Any) -> str | None:
    """0 up to, but not including, 1."""
    return None if _is_number(value) and 0 <= value < 1 else "is not a number from 0 below 1"


def positive_number(value: Any) -> str | None:
    ok = _is_number(value) and 0 < value <= 1e6
    return None if ok else "is not a number above 0 (at most 1e6)"


def number_between(low: float, high: float, unit: str) -> Rule:
    def rule(value: Any) -> str | None:
        ok = _is_number(value) and low <= value <= high
        return None if ok else f"is not a number of {unit} from {low} to {high}"

    return rule


def one_of(*names: str) -> Rule:
    def rule(value: Any) -> str | None:
        ok = isinstance(value, str) and value in names
        return None if ok else f"is not one of {', '.join(names)}"

    return rule


def widths(value: Any) -> str | None:
    ok = (
        isinstance(value, list)
        and len(value) <= 16
        and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65_536 for v in value)
    )
    if ok:
        return None
    return "is not a list of up to 16 layer widths from 1 to 65536, such as [128, 64] or []"


def flatten(
    tree: Mapping[str, Any], prefix: str = "", keep: Collection[str] = ()
) -> dict[str, Any]:
    """{'train': {'epochs': 5}} -> {'train.epochs': 5}; lists, and the keys in `keep` (whose
    rule takes the whole mapping), stay values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and dotted not in keep:
            flat.update(flatten(value, f"{dotted}.", keep))
        else:
            flat[dotted] = value
    return flat


def _is_under(key: str, name: str) -> bool:
    """Whether `key` is `name` or lies under it (`train.epochs` under `train`)."""
    return key == name or key.startswith(name + ".")


def _under(name: str, keys: Sequence[str]) -> list[str]:
    """The keys that are `name` or lie under it."""
    return [key for key in keys if _is_under(key, name)]


def _shown(value: Any) -> str:
    """The value as the message quotes it: whole, unless it is too long for one line."""
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


def check(
    tree: Any,
    declared: Sequence[str],
    rules: Mapping[str, Rule],
    file: Path = PARAMS_FILE,
    *,
    optional: Sequence[str] = (),
) -> dict[str, Any]:
    """The declared keys of a parsed params file, flattened and checked against `rules`.

    `declared` holds keys and whole sections (`train.epochs`, `render`), as dvc.yaml lists
    them. Keys outside them are neither read nor checked; keys under `optional` may be left
    out. Raises ParamsError naming the key.
    """
    if not isinstance(tree, Mapping):
        raise ParamsError(f"{file}: expected a mapping of sections, got {_shown(tree)}")
    flat = flatten(tree, keep=rules.keys())
    values: dict[str, Any] = {}
    for name in declared:
        allowed = _under(name, list(rules))
        if not allowed:
            raise ParamsError(f"{file}: {name} is declared in {DVC_FILE} but has no rule")
        present = _under(name, list(flat))
        for key in present:
            if key not in rules and any(rule.startswith(key + ".") for rule in allowed):
                if flat[key] == {}:
                    continue  # An empty section: its keys are checked as missing below.
                raise ParamsError(
                    f"{file}: {key} = {_shown(flat[key])} is not a section holding "
                    f"{', '.join(_under(key, allowed))}"
                )
            if key not in rules:
                # A mapping where a value belongs flattens to keys below it: name the value.
                parent = next((rule for rule in allowed if key.startswith(rule + ".")), None)
                if parent is not None:
                    value = _nested(tree, parent)
                    raise ParamsError(f"{file}: {parent} = {_shown(value)} {rules[parent](value)}")
                section = key.split(".")[0]
                raise ParamsError(
                    f"{file}: unknown key {key}; allowed: {', '.join(_under(section, list(rules)))}"
                )
        for key in allowed:
            if key not in flat:
                if any(_is_under(key, name) for name in optional):
                    continue
                raise ParamsError(f"{file}: {key} is missing")
            problem = rules[key](flat[key])
            if problem:
                raise ParamsError(f"{file}: {key} = {_shown(flat[key])} {problem}")
            values[key] = flat[key]
    return values


def _nested(tree: Mapping[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found; run from the project folder") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}: not valid YAML{where}") from None


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found; run `dvc repro`, which writes it") from None
    except (ValueError, UnicodeDecodeError):
        raise ParamsError(f"{path}: not valid JSON") from None


@dataclass(frozen=True)
class Declared:
    """What dvc.yaml declares for one stage, as DVC resolves it."""

    stage: str
    params: tuple[str, ...]
    deps: frozenset[str]
    outs: frozenset[str]

    @property
    def files(self) -> frozenset[str]:
        return self.deps | self.outs


def declared(stage: str, root: Path | None = None) -> Declared:
    """Ask DVC what `stage` declares: its params.yaml keys, and the paths of its deps and outs.

    Importing DVC and resolving dvc.yaml takes about half a second, in every stage process;
    so the first process resolves every stage of dvc.yaml and keeps the answers (see
    `_remembered`) for the processes that follow, until an input of the resolution changes.
    """
    root = root or Path(".")
    inputs = _resolution_inputs(root)
    found = _remembered(root, inputs).get(stage)
    if found is None:
        found = _resolve(stage, root, inputs)
    params, params_files, deps, outs = found
    for params_file in params_files:
        if Path(params_file).name != PARAMS_FILE.name:
            raise ParamsError(f"{DVC_FILE}: stage {stage} reads params from {params_file}")
    return Declared(stage, tuple(params), frozenset(deps), frozenset(outs))


# What DVC resolved, kept in DVC's own scratch folder (which git ignores, and which queued
# experiments do not copy), with a digest of every input of the resolution.
DECLARATIONS = Path(".dvc/tmp/stage-declarations.json")


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _digests(root: Path, names: Sequence[str | Path]) -> dict[str, str | None]:
    """The sha256 of each named file under `root`; None for one that cannot be read."""
    return {str(name): _digest(root / name) for name in names}


def _resolution_inputs(root: Path) -> dict[str, str | None]:
    """Digests of what every resolution of dvc.yaml reads: dvc.yaml, params.yaml (its default
    `vars`) and DVC itself (its version file). The files dvc.yaml names under `vars` are added
    to them when the answers are kept."""
    spec = importlib.util.find_spec("dvc")
    dvc_version = Path(spec.origin).with_name("_version.py") if spec and spec.origin else None
    digests = _digests(root, (DVC_FILE, PARAMS_FILE))
    digests["dvc"] = _digest(dvc_version) if dvc_version else None
    return digests


def _remembered(root: Path, inputs: dict[str, str | None]) -> dict[str, Any]:
    """The kept declarations, if every input they were resolved from is unchanged."""
    try:
        kept = json.loads((root / DECLARATIONS).read_text())
        vars_files = [name for name in kept["inputs"] if name not in inputs]
        if kept["inputs"] != inputs | _digests(root, vars_files):
            return {}
        return {
            name: found
            for name, found in kept["stages"].items()
            if isinstance(found, list) and len(found) == 4
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _resolve(stage: str, root: Path, inputs: dict[str, str | None]) -> list[Any]:
    """Resolve dvc.yaml with DVC and keep the answers for every stage; return `stage`'s."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    from stages import artifacts

    try:
        with Repo(str(root)) as repo:
            try:
                every = repo.stage.collect(str(root / DVC_FILE))
            except DvcException:
                every = []  # Some stage does not resolve; DVC names it when it runs.
            wanted = next((each for each in every if each.name == stage), None)
            if wanted is None:
                (wanted,) = repo.stage.collect(f"{root / DVC_FILE}:{stage}")
    except DvcException as error:
        raise ParamsError(f"{DVC_FILE}: cannot resolve stage {stage!r} ({error})") from None
    if every:
        kept = {
            "inputs": inputs | _digests(root, _vars_files(read_yaml(root / DVC_FILE))),
            "stages": {each.name: _declarations(each) for each in every},
        }
        # Kept only to save time: a folder that cannot be written is no error.
        with contextlib.suppress(OSError):
            artifacts.write_json(root / DECLARATIONS, kept)
    return _declarations(wanted)


def _declarations(stage: Any) -> list[Any]:
    """A resolved DVC stage's params keys, params files, dep paths and out paths."""
    from dvc.dependency.param import ParamsDependency

    params, params_files, deps = [], [], []
    for dep in stage.deps:
        if isinstance(dep, ParamsDependency):
            params.extend(dep.params)
            params_files.append(dep.def_path)
        else:
            deps.append(os.path.normpath(dep.def_path))
    outs = [os.path.normpath(out.def_path) for out in stage.outs]
    return [params, params_files, sorted(deps), sorted(outs)]


def _vars_files(pipeline: Any) -> list[str]:
    """The files dvc.yaml's `vars` lists name (`file.yaml` or `file.yaml:key,...`), at the
    top and in each stage."""
    if not isinstance(pipeline, Mapping):
        return []
    stages = pipeline.get("stages")
    stages = stages.values() if isinstance(stages, Mapping) else []
    lists = [pipeline.get("vars"), *(s.get("vars") for s in stages if isinstance(s, Mapping))]
    entries = [entry for entries in lists if isinstance(entries, list) for entry in entries]
    return sorted({entry.split(":")[0] for entry in entries if isinstance(entry, str)})


@dataclass(frozen=True)
class StageParams:
    """What one stage may read: its declared params and its declared files."""

    stage: str
    values: dict[str, Any]
    paths: dict[str, Path]

    def __getitem__(self, key: str) -> Any:
        if key not in self.values:
            raise KeyError(f"{key} is not declared under stages.{self.stage}.params in {DVC_FILE}")
        return self.values[key]

    def declared_keys(self) -> list[str]:
        """The declared params keys, dotted."""
        return list(self.values)

    def path(self, name: str) -> Path:
        if name not in self.paths:
            raise KeyError(f"--{_option(name)} is not among the files of stages.{self.stage}")
        return self.paths[name]


def _option(name: str) -> str:
    return name.replace("_", "-")


class _Arguments(argparse.ArgumentParser):
    """argparse that raises instead of printing its usage and exiting."""

    def error(self, message: str):
        raise StageError(f"{self.prog}: {message}")


def parse_files(
    stage: str, names: Sequence[str], argv: Sequence[str], optional: Sequence[str] = ()
) -> dict[str, Path]:
    """The stage's files from its command line: `--train-set data/prepared/train ...`."""
    parser = _Arguments(prog=f"python -m stages.{stage.split('@')[0]}", add_help=False)
    for name in [*names, *optional]:
        parser.add_argument(f"--{_option(name)}", dest=name, required=name in names, metavar="PATH")
    parsed = parser.parse_args(list(argv))
    return {name: Path(value) for name in [*names, *optional] if (value := getattr(parsed, name))}


def stage_name(default: str) -> str:
    """The running stage's name: DVC's under `dvc repro` (DVC_STAGE, as in `train@cnn`),
    else `default`."""
    return os.environ.get("DVC_STAGE", default)


def load(
    stage: str,
    rules: Mapping[str, Rule],
    files: Sequence[str] = (),
    *,
    together: Callable[[dict[str, Any]], str | None] | None = None,
    optional: Sequence[str] = (),
    argv: Sequence[str] | None = None,
) -> StageParams:
    """Check what `stage` declares and hand it over.

    Under `dvc repro` the stage's name comes from DVC (DVC_STAGE, as in `train@cnn`).
    `together` checks the values against each other and returns a problem or None.
    A stage of a variant gets its settings from the file `--settings` names (written by the
    variant_settings stage, a declared dep) instead of params.yaml, checked by the same rules.
    """
    stage = stage_name(stage)
    argv = sys.argv[1:] if argv is None else argv
    paths = parse_files(stage, files, argv, optional=("settings",))
    found = declared(stage)
    for name, path in paths.items():
        if os.path.normpath(path) not in found.files:
            raise ParamsError(
                f"{DVC_FILE}: --{_option(name)} {path} is not among the deps or outs of "
                f"stages.{stage}"
            )
    if "settings" in paths:
        settings = paths.pop("settings")
        sections = list(dict.fromkeys(key.split(".")[0] for key in rules))
        values = check(read_json(settings), sections, rules, settings)
    else:
        values = check(read_yaml(PARAMS_FILE), found.params, rules, optional=optional)
    problem = together(values) if together else None
    if problem:
        raise ParamsError(f"{PARAMS_FILE}: {problem}")
    return StageParams(stage, values, paths)


def output_of(stage: str, suffix: str, root: Path | None = None) -> Path:
    """The output of `stage` whose name ends in `suffix`, as DVC resolves dvc.yaml."""
    matches = sorted(path for path in declared(stage, root).outs if path.endswith(suffix))
    if not matches:
        raise ParamsError(f"{DVC_FILE}: stage {stage} has no {suffix} output")
    return (root or Path(".")) / matches[0]
