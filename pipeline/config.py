"""Settings: the rules a stage module declares for the params it reads, and their checks.

Each stage module owns its settings: `SETTINGS` maps every params.yaml key it reads to a rule;
`read_params(SETTINGS)` reads and checks those keys' sections and nothing else (a typo in a
render setting stops render, not train), flattened (`{"train.epochs": 5, ...}`). A mistake ends
in one line naming the key, the value and what is allowed. dvc.yaml declares the same sections
under each stage's `params`; tests/test_declarations.py holds the two to each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pipeline.cli import StageError

PARAMS_FILE = Path("params.yaml")
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


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "is not true or false"


def section(value: Any) -> str | None:
    """A whole section, read as it is: for a stage that quotes settings another stage owns
    and checks (and that runs first)."""
    return None if isinstance(value, Mapping) and value else "is not a section of settings"


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
    them (see `sections`). Keys outside them are neither read nor checked; keys under
    `optional` may be left out. Raises ParamsError naming the key.
    """
    if not isinstance(tree, Mapping):
        raise ParamsError(f"{file}: expected a mapping of sections, got {_shown(tree)}")
    if isinstance(tree.get("course"), Mapping) and "instructor_only" in tree["course"]:
        # The old list ignored a misspelt name, and so showed that variation to students; a
        # file that still holds it must not build as if the list were honoured.
        raise ParamsError(
            f"{file}: course.instructor_only is no longer read; mark each variation instead, "
            "with instructor_only: true beside its model and train settings"
        )
    flat = flatten(tree, keep=rules.keys())
    values: dict[str, Any] = {}
    for name in declared:
        allowed = _under(name, list(rules))
        if not allowed:
            raise ParamsError(f"{file}: {name} is read but has no rule")
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
    """params.yaml, or a settings file a stage wrote (JSON, which YAML reads too)."""
    kind = "JSON" if Path(path).suffix == ".json" else "YAML"
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found; run `dvc repro` in the project") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}: not valid {kind}{where}") from None


def sections(rules: Mapping[str, Rule]) -> list[str]:
    """The params sections a stage with these rules reads, as dvc.yaml declares them: `train`
    for `train.epochs`; a variation's overrides, `variants.<name>.train.epochs`, are the
    section `variants.<name>`, since the other variations are not this stage's business."""
    found = []
    for key in rules:
        parts = key.split(".")
        found.append(".".join(parts[:2]) if parts[0] == "variants" and len(parts) > 2 else parts[0])
    return list(dict.fromkeys(found))


def read_params(
    rules: Mapping[str, Rule],
    *,
    together: Callable[[dict[str, Any]], str | None] | None = None,
    optional: Sequence[str] = (),
    file: Path = PARAMS_FILE,
) -> dict[str, Any]:
    """The settings `rules` names, read from `file` (params.yaml, or the JSON file of a
    variation's resolved settings) and checked; `together` checks them against each other
    and returns a problem or None."""
    values = check(read_yaml(file), sections(rules), rules, Path(file), optional=optional)
    problem = together(values) if together else None
    if problem:
        raise ParamsError(f"{file}: {problem}")
    return values
