"""Evaluate: score the trained model on the test images, as the lesson's `model.evaluate`
and `model.predict` do, and break the score down per digit.

Reads:  paths.model; paths.test_set (x_test, y_test).
Writes: paths.metrics (test loss and accuracy, macro F1), paths.predictions (one row per
        test image: index, true, predicted, confidence), paths.confusion (the 10 x 10
        confusion matrix, rows true digits, columns predicted) and paths.per_class
        (precision, recall, F1 and support per digit).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stages import artifacts, cli, config
from stages.config import NUM_CLASSES


def confusion_matrix(
    true: np.ndarray, predicted: np.ndarray, classes: int = NUM_CLASSES
) -> np.ndarray:
    """Counts: row = true digit, column = predicted digit."""
    pairs = np.asarray(true, dtype=np.int64) * classes + np.asarray(predicted, dtype=np.int64)
    return np.bincount(pairs, minlength=classes * classes).reshape(classes, classes)


def per_class_scores(matrix: np.ndarray) -> pd.DataFrame:
    """Precision, recall and F1 per digit; 0 where a digit is never predicted or never present."""
    hits = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return pd.DataFrame(
        {
            "digit": np.arange(len(matrix)),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": actual,
        }
    )


def predictions_table(true: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "index": np.arange(len(true)),
            "true": np.asarray(true, dtype=np.int64),
            "predicted": probabilities.argmax(axis=1),
            "confidence": probabilities.max(axis=1).astype(np.float64),
        }
    )


def confusion_table(matrix: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame(matrix, columns=[str(d) for d in range(len(matrix))])
    table.insert(0, "true", np.arange(len(matrix)))
    return table


def evaluate(
    model_path: Path,
    test_set: Path,
    metrics_path: Path,
    predictions_path: Path,
    confusion_path: Path,
    per_class_path: Path,
) -> dict[str, float]:
    # Imported here so that a mistake is reported before TensorFlow's slow import.
    keras = cli.import_keras()

    model = keras.models.load_model(model_path)
    x_test, y_test = artifacts.read_split(test_set, "test")
    scores = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    probabilities = model.predict(x_test, verbose=0)

    table = predictions_table(y_test, probabilities)
    matrix = confusion_matrix(table["true"], table["predicted"])
    per_class = per_class_scores(matrix)
    metrics = {
        "test": {
            "loss": round(float(scores["loss"]), 6),
            "accuracy": round(float(scores["accuracy"]), 6),
            "macro_f1": round(float(per_class["f1"].mean()), 6),
            "images": len(table),
        }
    }
    artifacts.write_csv(predictions_path, table)
    artifacts.write_csv(confusion_path, confusion_table(matrix))
    artifacts.write_csv(per_class_path, per_class)
    artifacts.write_json(metrics_path, metrics)
    print(
        f"evaluate: test accuracy {metrics['test']['accuracy']:.4f}, "
        f"loss {metrics['test']['loss']:.4f} on {len(table)} images"
    )
    return metrics["test"]


def main() -> None:
    params = config.load(
        "evaluate", {}, ("model", "test_set", "metrics", "predictions", "confusion", "per_class")
    )
    evaluate(
        params.path("model"),
        params.path("test_set"),
        params.path("metrics"),
        params.path("predictions"),
        params.path("confusion"),
        params.path("per_class"),
    )


if __name__ == "__main__":
    cli.run(main)
