"""Train: fit the lesson's network to the prepared training images.

Reads:  --train-set (x_train, y_train); params model.* and train.*, or, for a variation,
        --settings, the file its variant_settings stage wrote.
Writes: --model (the trained Keras model), --history (loss and accuracy per epoch, with
        val_loss and val_accuracy when train.validation_split > 0) and, for the lesson's
        model, --trained-with (the settings it trained with, as variant_settings writes a
        variation's), which the page shows.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stages import artifacts, cli, config, model, repeatable
from stages.config import fraction, number_between, one_of, positive_number, whole, widths

if TYPE_CHECKING:
    import keras

TRAIN_IMAGES = 60_000

# The rules for the settings this stage reads.
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


def train(
    train_set: Path,
    model_path: Path,
    history_path: Path,
    *,
    architecture: Mapping[str, Any],
    epochs: int,
    batch_size: int,
    optimizer: str,
    learning_rate: float,
    seed: int,
    validation_split: float = 0.0,
    early_stopping_patience: int = 0,
    augmentation: Mapping[str, float] | None = None,
) -> keras.Model:
    """Fit the network described by `architecture` (build_model's keywords: kind,
    hidden_units, activation, ...), with `augmentation` (rotation, zoom, shift) if given."""
    keras = repeatable.import_keras()
    repeatable.seed_everything(seed)
    images, labels = artifacts.read_split(train_set, "train")
    # Like fit(validation_split=...), hold out the last part of the images for validation.
    held_out = int(len(images) * validation_split)
    kept = len(images) - held_out
    batches = model.shuffled_batches(images[:kept], labels[:kept], batch_size, seed)
    validation = (np.asarray(images[kept:]), np.asarray(labels[kept:])) if held_out else None
    network = model.build_model(**architecture, **(augmentation or {}), seed=seed)
    network.compile(
        optimizer=model.make_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    network.summary(print_fn=lambda line, **_: print(line))
    with artifacts.atomic_file(history_path) as history_tmp:
        # A Ctrl-C or SIGTERM ends fit() at the next batch; leaving this block then raises,
        # and atomic_file removes the unfinished history.
        with cli.deferred_interrupts() as interrupts:
            callbacks = [
                keras.callbacks.CSVLogger(str(history_tmp)),
                model.stop_when_interrupted(interrupts),
            ]
            if early_stopping_patience:
                callbacks.append(
                    keras.callbacks.EarlyStopping(
                        monitor="val_loss",
                        patience=early_stopping_patience,
                        restore_best_weights=True,
                    )
                )
            started = time.perf_counter()
            history = network.fit(
                batches,
                epochs=epochs,
                validation_data=validation,
                callbacks=callbacks,
                verbose=2,
            )
            seconds = time.perf_counter() - started
        save_model(network, model_path)
    epochs_run = len(history.epoch)
    print(
        f"train: {epochs_run} epochs over {kept} images in {seconds:.1f} s "
        f"({kept * epochs_run / seconds:,.0f} images/s)"
    )
    return network


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.train")
    parser.add_argument("--train-set", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--history", type=Path, required=True)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--settings", type=Path, help="a variation's settings (variant_settings)")
    where.add_argument("--trained-with", type=Path, help="where to record params.yaml's settings")
    args = parser.parse_args(argv)
    settings = args.settings or config.PARAMS_FILE
    values = config.read_params(SETTINGS, together=settings_together, file=settings)
    train(
        args.train_set,
        args.model,
        args.history,
        architecture={key: values[f"model.{key}"] for key in ARCHITECTURE_KEYS},
        epochs=values["train.epochs"],
        batch_size=values["train.batch_size"],
        optimizer=values["train.optimizer"],
        learning_rate=values["train.learning_rate"],
        seed=values["train.seed"],
        validation_split=values["train.validation_split"],
        early_stopping_patience=values["train.early_stopping_patience"],
        augmentation={key: values[f"train.augmentation.{key}"] for key in AUGMENTATION_KEYS},
    )
    if args.trained_with:
        artifacts.write_json(args.trained_with, {"changes": {}, **nest(values)})


if __name__ == "__main__":
    repeatable.one_thread_per_op()
    cli.run(main)
