"""Logistic regression: the course's second lesson, told with scikit-learn.

All of MNIST's images as rows of 784 pixels, divided by 255, split at random into a training
and a test part (`train_test_split`), scikit-learn's `LogisticRegression` fitted on the
training part and scored on the test part. Its test part is not MNIST's 10,000 test digits
the Keras models are scored on: the comparison says so wherever the scores meet.

Reads:  --raw, the verified MNIST (its training images, then its test images, joined);
        params sklearn.* (how many images, the test share, the split's random state,
        max_iter and C).
Writes: --model (the fitted model, pickled), --metrics (test accuracy, loss and macro F1, the
        images of each part, the iterations the fit took and whether it converged),
        --predictions (one row per test image: its place in the test part, its place among
        the joined images, the true and the predicted digit, the confidence), --confusion
        and --per-class (as evaluate writes them for the Keras models).

Run as `python -m stages.logistic_regression`, the command starts again in an environment
that holds its arithmetic (digits/blas.py), so the same settings give the same bytes.
"""

from __future__ import annotations

import math
import pickle
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from digits import blas, scores
from pipeline import artifacts, cli, config
from pipeline.config import whole


def share(value: Any) -> str | None:
    """A test share strictly between 0 and 1, as train_test_split takes a fraction."""
    ok = config.fraction(value) is None and value > 0
    return None if ok else "is not a number above 0 and below 1"


# MNIST holds 70,000 images; fewer keep a small build fast.
SETTINGS = {
    "sklearn.images": whole(100, 70_000),
    "sklearn.test_size": share,
    "sklearn.random_state": whole(0, 2**32 - 1),
    "sklearn.max_iter": whole(1, 1_000_000),
    "sklearn.C": config.positive_number,
}
# The fewest images either part may hold: fewer make no fit or no score worth quoting.
SMALLEST_PART = 10


def parts(images: int, test_size: float) -> tuple[int, int]:
    """The images of the training and the test part, as train_test_split counts them."""
    test = math.ceil(test_size * images)
    return images - test, test


def parts_together(values: dict[str, Any]) -> str | None:
    train, test = parts(values["sklearn.images"], values["sklearn.test_size"])
    if min(train, test) < SMALLEST_PART:
        return (
            f"sklearn.test_size = {values['sklearn.test_size']} of sklearn.images = "
            f"{values['sklearn.images']} leaves {train} training and {test} test images; "
            f"each part needs at least {SMALLEST_PART}"
        )
    return None


def joined_mnist(raw: Path, images: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `images` of MNIST's training images followed by its test images, as rows of
    784 uint8 pixels, and their digits."""
    try:
        with np.load(raw, allow_pickle=False) as mnist:
            x = np.concatenate([mnist["x_train"], mnist["x_test"]])[:images]
            y = np.concatenate([mnist["y_train"], mnist["y_test"]])[:images]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise cli.StageError(
            f"{raw} is not the MNIST file the download stage writes ({error})"
        ) from None
    return x.reshape(len(x), -1), y


def logistic_regression(
    raw: Path,
    model_path: Path,
    metrics_path: Path,
    predictions_path: Path,
    confusion_path: Path,
    per_class_path: Path,
    *,
    images: int,
    test_size: float,
    random_state: int,
    max_iter: int,
    C: float,  # noqa: N803  (scikit-learn's name for it)
) -> dict[str, Any]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split

    pixels, digits = joined_mnist(raw, images)
    x = pixels / 255.0
    # The images' places among the joined ones go through the split with them, so that each
    # prediction names its image.
    x_train, x_test, y_train, y_test, _, place = train_test_split(
        x, digits, np.arange(len(x)), test_size=test_size, random_state=random_state
    )
    model = LogisticRegression(max_iter=max_iter, C=C)
    with blas.one_thread(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x_train, y_train)
        probabilities = model.predict_proba(x_test)
    converged = not any(issubclass(warning.category, ConvergenceWarning) for warning in caught)

    table = scores.predictions_table(y_test, probabilities)
    table.insert(1, "image", place)
    matrix = scores.confusion_matrix(table["true"], table["predicted"])
    per_class = scores.per_class_scores(matrix)
    iterations = int(model.n_iter_.max())
    metrics = {
        "test": {
            "accuracy": round(float(np.mean(table["true"] == table["predicted"])), 6),
            "loss": round(float(log_loss(y_test, probabilities, labels=model.classes_)), 6),
            "macro_f1": round(float(per_class["f1"].mean()), 6),
            "images": len(y_test),
            "weights": int(model.coef_.size + model.intercept_.size),
        },
        "train": {"images": len(y_train)},
        "images": len(x),
        "test_size": test_size,
        "iterations": iterations,
        "max_iter": max_iter,
        "converged": converged,
    }
    # Protocol 4, not 5: protocol 5 pickles each array with its order as a string ('C'),
    # which pickle writes once or again depending on whether Python made it the same object
    # as the model's key 'C', and Python 3.11 and 3.13 differ there (2 bytes, measured).
    # Protocol 4 gives the same bytes on both (docs/reproducibility.md).
    with artifacts.atomic_file(model_path) as tmp:
        tmp.write_bytes(pickle.dumps(model, protocol=4))
    artifacts.write_csv(predictions_path, table)
    artifacts.write_csv(confusion_path, scores.confusion_table(matrix))
    artifacts.write_csv(per_class_path, per_class)
    artifacts.write_json(metrics_path, metrics)
    ended = "converged" if converged else "stopped at max_iter without converging"
    print(
        f"logistic_regression: {ended} after {iterations} iterations on {len(y_train)} images; "
        f"test accuracy {metrics['test']['accuracy']:.4f} on {len(y_test)} images"
    )
    return metrics


def main(argv: list[str] | None = None) -> None:
    files = ("raw", "model", "metrics", "predictions", "confusion", "per-class")
    args = cli.arguments("logistic_regression", files, argv)
    settings = config.read_params(SETTINGS, together=parts_together)
    logistic_regression(
        args.raw,
        args.model,
        args.metrics,
        args.predictions,
        args.confusion,
        args.per_class,
        images=settings["sklearn.images"],
        test_size=settings["sklearn.test_size"],
        random_state=settings["sklearn.random_state"],
        max_iter=settings["sklearn.max_iter"],
        C=settings["sklearn.C"],
    )


if __name__ == "__main__":
    blas.run_held(__spec__.name, sys.argv[1:])
    cli.run(main)
