"""The network's training, as every stage and tool that trains or describes it shares it: the
rules of the model.* and train.* settings, the steps per call into TensorFlow, and a .keras
file whose bytes depend only on the model.

The train stage (stages/train.py) fits a network with these; a variation's settings stage
(stages/variants.py) checks its overrides by the same rules; tools/probe.py trains as the
stage does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digits import model
from pipeline import artifacts
from pipeline.config import fraction, number_between, one_of, positive_number, whole, widths

if TYPE_CHECKING:
    import keras

TRAIN_IMAGES = 60_000

# The rules of the settings a network trains with.
SETTINGS = {
    "model.kind": one_of(*model.KINDS),
    "model.hidden_units": widths,
    "model.activation": one_of(*model.ACTIVATIONS),
    "model.leaky_relu_slope": fraction,
    "model.dropout": fraction,
    "train.epochs": whole(1, 1000),
    "train.batch_size": whole(1, TRAIN_IMAGES),
    "train.optimizer": one_of(*model.OPTIMIZERS),
    "train.learning_rate": positive_number,
    "train.seed": whole(0, 2**31 - 1),
    "train.validation_split": fraction,
    "train.early_stopping_patience": whole(0, 1000),
    "train.augmentation.rotation": number_between(0, 180, "degrees"),
    "train.augmentation.zoom": fraction,
    "train.augmentation.shift": fraction,
}


def settings_together(values: Mapping[str, Any]) -> str | None:
    """Early stopping watches the validation loss, so it needs images held out."""
    patience = values.get("train.early_stopping_patience", 0)
    if patience > 0 and values.get("train.validation_split") == 0:
        return f"train.early_stopping_patience = {patience} needs train.validation_split above 0"
    return None


# The threads each op of a training runs on, by network kind: what trained faster, measured
# with bench/threads.py (docs/benchmarks.md, "Threads per op"). A fixed number, never derived
# from the cores or from what else runs: the parallel build (tools/schedule.py) counts these
# threads against the cores. The count changes no byte of the trained model
# (tests/test_threads.py).
THREADS_PER_OP = {"dense": 1, "cnn": 2}


def threads_per_op(values: Mapping[str, Any]) -> int:
    """The threads each training op runs on, for the network `values` describe."""
    return THREADS_PER_OP[values["model.kind"]]


# Run this many batches per call into TensorFlow. It changes nothing in what is computed
# (still one optimizer step per batch), but removes most of the per-step Python overhead.
STEPS_PER_EXECUTION = 100


def save_model(model: keras.Model, dest: Path) -> None:
    """Save a .keras file whose bytes depend only on the model.

    Keras stamps the save time into metadata.json and memory addresses (Python `id()`s)
    into config.json as shared_object_id; both change from run to run.
    """
    with artifacts.atomic_file(dest) as tmp:
        model.save(tmp)
        artifacts.rewrite_zip(
            tmp, {"metadata.json": _drop_save_date, "config.json": _renumber_shared_objects}
        )


def _drop_save_date(metadata: bytes) -> bytes:
    fields = json.loads(metadata)
    fields.pop("date_saved", None)
    return json.dumps(fields).encode()


def _renumber_shared_objects(config_json: bytes) -> bytes:
    """Replace each shared_object_id by 1, 2, 3, ... in order of first appearance.

    Equal ids stay equal, which is all that loading needs from them.
    """
    numbers: dict[int, int] = {}

    def walk(node):
        if isinstance(node, dict):
            return {
                key: numbers.setdefault(value, len(numbers) + 1)
                if key == "shared_object_id"
                else walk(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return json.dumps(walk(json.loads(config_json))).encode()


ARCHITECTURE_KEYS = ("kind", "hidden_units", "activation", "leaky_relu_slope", "dropout")
AUGMENTATION_KEYS = ("rotation", "zoom", "shift")


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'train.augmentation.zoom': 0.1} -> {'train': {'augmentation': {'zoom': 0.1}}}."""
    tree: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, last = dotted.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree
