"""Train: fit the lesson's network to the prepared training images.

Reads:  paths.train_set (x_train, y_train); params model.* and train.*.
Writes: paths.model (the trained Keras model) and paths.history (loss and accuracy per
        epoch, with val_loss and val_accuracy when train.validation_split > 0).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stages import artifacts, cli, config
from stages.config import fraction, number_between, one_of, positive_number, whole, widths

if TYPE_CHECKING:
    import keras

# What the network and its training can be: the vocabulary of model.* and train.*, which
# stages/model.py builds from.
KINDS = ("dense", "cnn")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "elu", "gelu")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
TRAIN_IMAGES = 60_000

# The rules for the settings this stage reads (the page, which shows them, checks them too).
SETTINGS = {
    "model.kind": one_of(*KINDS),
    "model.hidden_units": widths,
    "model.activation": one_of(*ACTIVATIONS),
    "model.leaky_relu_slope": fraction,
    "model.dropout": fraction,
    "train.epochs": whole(1, 1000),
    "train.batch_size": whole(1, TRAIN_IMAGES),
    "train.optimizer": one_of(*OPTIMIZERS),
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
    # Imported here rather than at the top, so that main() reports a params mistake at once
    # instead of after TensorFlow's import, which takes seconds.
    from stages.model import (
        ShuffledBatches,
        StopWhenInterrupted,
        build_model,
        keras,
        make_optimizer,
        seed_everything,
    )

    seed_everything(seed)
    images, labels = artifacts.read_split(train_set, "train")
    # Like fit(validation_split=...), hold out the last part of the images for validation.
    held_out = int(len(images) * validation_split)
    kept = len(images) - held_out
    batches = ShuffledBatches(images[:kept], labels[:kept], batch_size, seed)
    validation = (np.asarray(images[kept:]), np.asarray(labels[kept:])) if held_out else None
    model = build_model(**architecture, **(augmentation or {}), seed=seed)
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    model.summary(print_fn=lambda line, **_: print(line))
    with artifacts.atomic_file(history_path) as history_tmp:
        # A Ctrl-C or SIGTERM ends fit() at the next batch; leaving this block then raises,
        # and atomic_file removes the unfinished history.
        with cli.deferred_interrupts() as interrupts:
            callbacks = [
                keras.callbacks.CSVLogger(str(history_tmp)),
                StopWhenInterrupted(interrupts),
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
            history = model.fit(
                batches,
                epochs=epochs,
                validation_data=validation,
                callbacks=callbacks,
                verbose=2,
            )
            seconds = time.perf_counter() - started
        save_model(model, model_path)
    epochs_run = len(history.epoch)
    print(
        f"train: {epochs_run} epochs over {kept} images in {seconds:.1f} s "
        f"({kept * epochs_run / seconds:,.0f} images/s)"
    )
    return model


ARCHITECTURE_KEYS = ("kind", "hidden_units", "activation", "leaky_relu_slope", "dropout")
AUGMENTATION_KEYS = ("rotation", "zoom", "shift")


# TensorFlow splits each op across every core by default. A training step's ops are small (32
# images times a 784 x 128 kernel), and splitting them cost more than it saved: two epochs of
# the lesson's model took 5.8 s on one thread per op against 7.8 s (medians of five pairs, 2-core
# Xeon), the CNN's 8% less, the assignment's the same. The weights do not change: with op
# determinism, one thread per op gives the bytes of TensorFlow's default (tests/test_stages.py;
# make repro retrained all four networks to the same bytes). evaluate keeps the default, since
# its batches of 1,000 images are faster on both cores. A value set in the environment is kept.
# It is set for the stage's process, where it is read, not by main(), which tests also call.
THREADS_PER_OP = "1"


def main() -> None:
    params = config.load(
        "train", SETTINGS, ("train_set", "model", "history"), together=settings_together
    )
    train(
        params.path("train_set"),
        params.path("model"),
        params.path("history"),
        architecture={key: params[f"model.{key}"] for key in ARCHITECTURE_KEYS},
        epochs=params["train.epochs"],
        batch_size=params["train.batch_size"],
        optimizer=params["train.optimizer"],
        learning_rate=params["train.learning_rate"],
        seed=params["train.seed"],
        validation_split=params["train.validation_split"],
        early_stopping_patience=params["train.early_stopping_patience"],
        augmentation={key: params[f"train.augmentation.{key}"] for key in AUGMENTATION_KEYS},
    )


if __name__ == "__main__":
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", THREADS_PER_OP)
    cli.run(main)
