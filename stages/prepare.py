"""Prepare: scale the pixels to [0, 1], as the lesson does with `x_train / 255.0`.

Reads:  --raw; params prepare.train_size and prepare.test_size.
Writes: --train-set/ with x_train.npy (float32, n x 28 x 28, in [0, 1]) and y_train.npy
        (uint8 digits 0-9), and --test-set/ with x_test.npy and y_test.npy. Two outputs, so
        that a change to the test images alone does not retrain the model.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from pipeline import artifacts, cli, config
from pipeline.config import whole

# MNIST's sizes: a setting may keep fewer images, never more.
SETTINGS = {
    "prepare.train_size": whole(1, 60_000),
    "prepare.test_size": whole(1, 10_000),
}


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 pixels 0-255 -> float32 in [0, 1], as the lesson computes it: in float64, then cast."""
    # A pixel has only 256 values, so each is scaled once, the lesson's way, and the images are
    # looked up in that table. The bytes are the same as `(images / 255.0).astype(np.float32)`,
    # without the float64 copy of every image (376 MB for the training set, and most of this
    # stage's time).
    if images.dtype != np.uint8:
        raise ValueError(f"images have dtype {images.dtype}; normalize expects uint8 pixels")
    scaled = (np.arange(256) / 255.0).astype(np.float32)
    return scaled[images]


def prepare(raw: Path, train_dir: Path, test_dir: Path, *, train_size: int, test_size: int) -> None:
    # Both splits are read and scaled before either is written, so that a raw file download did
    # not write (broken, or with other arrays) ends in one line and leaves no split half-made.
    try:
        with np.load(raw, allow_pickle=False) as mnist:
            splits = {
                "train": (train_dir, mnist["x_train"][:train_size], mnist["y_train"][:train_size]),
                "test": (test_dir, mnist["x_test"][:test_size], mnist["y_test"][:test_size]),
            }
        scaled = {split: normalize(images) for split, (_, images, _) in splits.items()}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise cli.StageError(
            f"{raw} is not the MNIST file the download stage writes ({error})"
        ) from None
    for split, (folder, _, labels) in splits.items():
        with artifacts.atomic_dir(folder) as tmp:
            artifacts.write_split(tmp, split, scaled[split], labels)
        print(f"prepare: {split}: {len(labels)} images scaled to [0, 1]")


def main(argv: list[str] | None = None) -> None:
    args = cli.arguments("prepare", ("raw", "train-set", "test-set"), argv)
    settings = config.read_params(SETTINGS)
    prepare(
        args.raw,
        args.train_set,
        args.test_set,
        train_size=settings["prepare.train_size"],
        test_size=settings["prepare.test_size"],
    )


if __name__ == "__main__":
    cli.run(main)
