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
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from digits import model, repeatable, training
from pipeline import artifacts, cli, config

if TYPE_CHECKING:
    import keras

# The settings this stage reads: the network's and its training's, whose rules live with them.
SETTINGS = training.SETTINGS


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
        steps_per_execution=training.STEPS_PER_EXECUTION,
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
        training.save_model(network, model_path)
    epochs_run = len(history.epoch)
    print(
        f"train: {epochs_run} epochs over {kept} images in {seconds:.1f} s "
        f"({kept * epochs_run / seconds:,.0f} images/s)"
    )
    return network


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.train")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--settings", type=Path, help="a variation's settings (variant_settings)")
    where.add_argument("--trained-with", type=Path, help="where to record params.yaml's settings")
    args = cli.arguments("train", ("train-set", "model", "history"), argv, parser)
    settings = args.settings or config.PARAMS_FILE
    values = config.read_params(SETTINGS, together=training.settings_together, file=settings)
    # Before TensorFlow starts (train() imports it), which reads the count once.
    repeatable.threads_per_op(training.threads_per_op(values))
    train(
        args.train_set,
        args.model,
        args.history,
        architecture={key: values[f"model.{key}"] for key in training.ARCHITECTURE_KEYS},
        epochs=values["train.epochs"],
        batch_size=values["train.batch_size"],
        optimizer=values["train.optimizer"],
        learning_rate=values["train.learning_rate"],
        seed=values["train.seed"],
        validation_split=values["train.validation_split"],
        early_stopping_patience=values["train.early_stopping_patience"],
        augmentation={
            key: values[f"train.augmentation.{key}"] for key in training.AUGMENTATION_KEYS
        },
    )
    if args.trained_with:
        artifacts.write_json(args.trained_with, {"changes": {}, **training.nest(values)})


if __name__ == "__main__":
    cli.run(main)
