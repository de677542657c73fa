"""The one place that reads params.yaml.

`load(stage)` checks the whole file against SCHEMA before any stage does work, then hands
the stage only what dvc.yaml declares for it: the params keys listed under the stage's
`params:`, and the `paths.*` entries that appear among its `deps:` and `outs:`. Reading
anything else raises, so a stage cannot depend on a setting or a file that DVC does not
track for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stages.cli import StageError

PARAMS_FILE = Path("params.yaml")
DVC_FILE = Path("dvc.yaml")

SOURCES = ("auto", "canonical", "mirror")
KINDS = ("dense", "cnn")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "elu", "gelu")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
MNIST_TRAIN_IMAGES = 60_000
MNIST_TEST_IMAGES = 10_000
NUM_CLASSES = 10


class ParamsError(StageError):
    """A params.yaml problem, worded as one line for the person who edited the file."""


# A rule returns None when the value is allowed, or the phrase saying what is allowed.
Rule = Callable[[Any], "str | None"]


def whole(low: int, high: int) -> Rule:
    def rule(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"is not a whole number from {low} to {high}"

    return rule


def _is_number(value: Any) -> bool:
    # YAML's true and false are ints to Python; as a number they are a mistake.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fraction(value: Any) -> str | None:
    """0 up to, but not including, 1."""
    return None if _is_number(value) and 0 <= value < 1 else "is not a number from 0 below 1"


def positive_number(value: Any) -> str | None:
    return None if _is_number(value) and value > 0 else "is not a number above 0"


def number_between(low: float, high: float, unit: str) -> Rule:
    def rule(value: Any) -> str | None:
        ok = _is_number(value) and low <= value <= high
        return None if ok else f"is not a number of {unit} from {low} to {high}"

    return rule


def one_of(*names: str) -> Rule:
    def rule(value: Any) -> str | None:
        return None if value in names else f"is not one of {', '.join(names)}"

    return rule


def widths(value: Any) -> str | None:
    ok = isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 65_536 for v in value
    )
    return None if ok else "is not a list of layer widths from 1 to 65536, such as [128, 64] or []"


def relative_path(value: Any) -> str | None:
    ok = isinstance(value, str) and value != "" and not Path(value).is_absolute()
    return None if ok else "is not a relative path inside the project"


def data_source(value: Any) -> str | None:
    if value in SOURCES or (isinstance(value, str) and Path(value).is_file()):
        return None
    return f"is not one of {', '.join(SOURCES)} or the path of an existing mnist.npz"


PATH_KEYS = (
    "raw",
    "train_set",
    "test_set",
    "model",
    "history",
    "metrics",
    "predictions",
    "per_class",
    "confusion",
    "figures",
    "summary",
    "page",
)

SCHEMA: dict[str, Rule] = {
    **{f"paths.{key}": relative_path for key in PATH_KEYS},
    "data.source": data_source,
    "prepare.train_size": whole(1, MNIST_TRAIN_IMAGES),
    "prepare.test_size": whole(1, MNIST_TEST_IMAGES),
    "model.kind": one_of(*KINDS),
    "model.hidden_units": widths,
    "model.activation": one_of(*ACTIVATIONS),
    "model.leaky_relu_slope": fraction,
    "model.dropout": fraction,
    "train.epochs": whole(1, 1000),
    "train.batch_size": whole(1, MNIST_TRAIN_IMAGES),
    "train.optimizer": one_of(*OPTIMIZERS),
    "train.learning_rate": positive_number,
    "train.seed": whole(0, 2**31 - 1),
    "train.validation_split": fraction,
    "train.early_stopping_patience": whole(0, 1000),
    "train.augmentation.rotation": number_between(0, 180, "degrees"),
    "train.augmentation.zoom": fraction,
    "train.augmentation.shift": fraction,
    "render.grid_size": whole(1, 100),
    "render.misclassified": whole(0, MNIST_TEST_IMAGES),
    "render.confused_pairs": whole(1, 90),
}


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'train': {'epochs': 5}} -> {'train.epochs': 5}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def validate(tree: Any) -> dict[str, Any]:
    """Check a parsed params.yaml; return it flattened, or raise ParamsError naming the key."""
    if not isinstance(tree, Mapping):
        raise ParamsError(f"{PARAMS_FILE}: expected a mapping of sections, got {tree!r}")
    flat = flatten(tree)
    for key in flat:
        if key not in SCHEMA:
            section = key.rsplit(".", 1)[0]
            known = [k for k in SCHEMA if k.rsplit(".", 1)[0] == section]
            allowed = ", ".join(known) if known else "sections " + ", ".join(_sections())
            raise ParamsError(f"{PARAMS_FILE}: unknown key {key}; allowed: {allowed}")
    for key, rule in SCHEMA.items():
        if key not in flat:
            raise ParamsError(f"{PARAMS_FILE}: {key} is missing")
        problem = rule(flat[key])
        if problem:
            raise ParamsError(f"{PARAMS_FILE}: {key} = {flat[key]!r} {problem}")
    _check_together(flat)
    return flat


def _sections() -> list[str]:
    return list(dict.fromkeys(key.split(".")[0] for key in SCHEMA))


def _check_together(flat: dict[str, Any]) -> None:
    grid, test_size = flat["render.grid_size"], flat["prepare.test_size"]
    if grid * grid > test_size:
        raise ParamsError(
            f"{PARAMS_FILE}: render.grid_size = {grid} needs {grid * grid} test images, "
            f"but prepare.test_size is {test_size}"
        )
    if flat["train.early_stopping_patience"] > 0 and flat["train.validation_split"] == 0:
        raise ParamsError(
            f"{PARAMS_FILE}: train.early_stopping_patience = "
            f"{flat['train.early_stopping_patience']} needs train.validation_split above 0"
        )


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found; run from the project root") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}: not valid YAML{where}") from None


@dataclass(frozen=True)
class StageParams:
    """What one stage may read: its declared params and its declared paths."""

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
            raise KeyError(
                f"paths.{name} is not among the deps or outs of stages.{self.stage} in {DVC_FILE}"
            )
        return self.paths[name]


_INTERPOLATION = re.compile(r"\$\{\s*([\w.]+)\s*\}")


def declared(stage: str, flat: dict[str, Any], dvc_spec: Any) -> StageParams:
    """Pick out of `flat` what dvc.yaml declares for `stage`."""
    stages = dvc_spec.get("stages", {}) if isinstance(dvc_spec, Mapping) else {}
    if stage not in stages:
        raise ParamsError(f"{DVC_FILE}: no stage named {stage!r}")
    spec = stages[stage]
    values: dict[str, Any] = {}
    for entry in spec.get("params", []):
        names = [entry] if isinstance(entry, str) else [k for v in entry.values() for k in v]
        for name in names:
            values.update({k: v for k, v in flat.items() if k == name or k.startswith(name + ".")})
    files = []
    for kind in ("deps", "outs", "metrics", "plots"):
        for entry in spec.get(kind, []):
            # An entry is a path, or a mapping {path: options} for outputs with settings.
            files.extend(entry if isinstance(entry, Mapping) else [entry])
    paths = {}
    for file in files:
        for ref in _INTERPOLATION.findall(file):
            if ref.startswith("paths."):
                paths[ref.removeprefix("paths.")] = Path(flat[ref])
    return StageParams(stage, values, paths)


def load(stage: str) -> StageParams:
    """Validate ./params.yaml and return what `stage` declares in ./dvc.yaml."""
    flat = validate(read_yaml(PARAMS_FILE))
    return declared(stage, flat, read_yaml(DVC_FILE))


def artifact_path(name: str) -> Path:
    """Where the pipeline puts `paths.<name>`, for tools that run outside it (stages.predict)."""
    return Path(validate(read_yaml(PARAMS_FILE))[f"paths.{name}"])
