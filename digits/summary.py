"""The confusion summary's tables, shared by render (Markdown) and page (HTML)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def most_confused(matrix: np.ndarray, top: int) -> pd.DataFrame:
    """The off-diagonal cells with the most images: which digit was taken for which."""
    true, predicted = np.nonzero(~np.eye(len(matrix), dtype=bool))
    pairs = pd.DataFrame({"true": true, "predicted": predicted, "count": matrix[true, predicted]})
    pairs = pairs[pairs["count"] > 0]
    order = pairs.sort_values(["count", "true", "predicted"], ascending=[False, True, True])
    return order.head(top)


def per_digit_table(matrix: np.ndarray, per_class: pd.DataFrame) -> pd.DataFrame:
    """One row per digit: how many test images, how many right, and the scores, formatted.
    A digit with no test image (a small `prepare.test_size`) has no recall to show: no row."""
    per_class = per_class[per_class["support"] > 0]
    return pd.DataFrame(
        {
            "digit": per_class["digit"],
            "test images": per_class["support"],
            "right": np.diag(matrix)[per_class["digit"]],
            "recall": [f"{r:.2%}" for r in per_class["recall"]],
            "precision": [f"{p:.3f}" for p in per_class["precision"]],
            "F1": [f"{f:.3f}" for f in per_class["f1"]],
        }
    )


def confused_pairs_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """most_confused's pairs as the reader sees them: `4 -> 9` and how many images."""
    arrows = [f"{t} -> {p}" for t, p in zip(pairs["true"], pairs["predicted"], strict=True)]
    return pd.DataFrame({"true -> predicted": arrows, "images": pairs["count"].to_numpy()})
