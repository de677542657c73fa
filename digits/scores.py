"""Scores of a digit reader on its test images: one row per image, the confusion matrix and
precision, recall and F1 per digit, from the true digits and the predicted probabilities.

Shared by the Keras models' evaluate stage and the scikit-learn model's stage, so that every
model of the course is scored by the same rules and written in the same tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NUM_CLASSES = 10


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
