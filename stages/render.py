"""Render: draw the lesson's figures and the confusion summary from evaluate's results.

Reads:  --test-set (x_test, y_test), --predictions, --confusion, --per-class, --history;
        params render.*.
Writes: --figures/ with prediction_grid.png (the lesson's grid: blue when right, red when
        wrong), first_prediction.png, confusion_matrix.png, training_curves.png and
        misclassified.png; --confused-pairs, the render.confused_pairs most confused pairs
        (true, predicted, count), which the page shows; and --summary, a Markdown confusion
        summary.

No model is loaded here, so this stage never imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from digits import summary
from pipeline import artifacts, cli, config
from pipeline.config import whole

SETTINGS = {
    "render.grid_size": whole(1, 100),
    "render.misclassified": whole(0, 10_000),
    "render.confused_pairs": whole(1, 90),
}

RIGHT, WRONG = "blue", "red"


def new_figure(**options: Any) -> Figure:
    """A matplotlib Figure, drawn without pyplot or a display."""
    return Figure(**options)


def prediction_grid(
    images: np.ndarray, true: np.ndarray, predicted: np.ndarray, size: int
) -> Figure:
    """The lesson's grid of the first size x size test digits, titled 'Pred: p / True: t'."""
    figure = new_figure(figsize=(2 * size, 2 * size), layout="constrained")
    for i, axes in enumerate(figure.subplots(size, size, squeeze=False).flat):
        axes.imshow(images[i], cmap="binary")
        color = RIGHT if predicted[i] == true[i] else WRONG
        axes.set_title(f"Pred: {predicted[i]}\nTrue: {true[i]}", color=color)
        axes.axis("off")
    return figure


def first_prediction(image: np.ndarray, true: int, predicted: int, confidence: float) -> Figure:
    figure = new_figure(figsize=(4, 4.4), layout="constrained")
    axes = figure.subplots()
    axes.imshow(image, cmap="binary")
    color = RIGHT if predicted == true else WRONG
    axes.set_title(f"Predicted: {predicted} ({confidence:.1%} sure)\nTrue: {true}", color=color)
    axes.axis("off")
    return figure


def confusion_heatmap(matrix: np.ndarray) -> Figure:
    figure = new_figure(figsize=(7, 6), layout="constrained")
    axes = figure.subplots()
    # A log-like scale would hide the diagonal's size; plain counts, annotated, read best.
    shown = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(shown, ax=axes, label="test images")
    classes = range(len(matrix))
    axes.set_xticks(classes)
    axes.set_yticks(classes)
    axes.set_xlabel("predicted digit")
    axes.set_ylabel("true digit")
    axes.set_title("Confusion matrix (test set)")
    threshold = matrix.max() / 2
    for true in classes:
        for predicted in classes:
            count = matrix[true, predicted]
            color = "white" if count > threshold else "black"
            axes.text(
                predicted, true, str(count), ha="center", va="center", color=color, fontsize=8
            )
    return figure


def training_curves(history: pd.DataFrame) -> Figure:
    """Loss and accuracy per epoch, with the validation curves when there are any."""
    figure = new_figure(figsize=(10, 4), layout="constrained")
    epochs = history["epoch"] + 1
    for axes, metric in zip(figure.subplots(1, 2), ("loss", "accuracy"), strict=True):
        axes.plot(epochs, history[metric], marker="o", label=f"training {metric}")
        # Keras' CSVLogger writes empty val_ columns when there is no validation split.
        if history.get(f"val_{metric}", pd.Series(dtype=float)).notna().any():
            axes.plot(epochs, history[f"val_{metric}"], marker="o", label=f"validation {metric}")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.set_xticks(epochs)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle("Training curves")
    return figure


def misclassified_gallery(images: np.ndarray, wrong: pd.DataFrame, count: int) -> Figure:
    """The first `count` misclassified test digits, each with what the model said."""
    shown = wrong.head(count)
    if shown.empty:
        if wrong.empty:
            message = "No misclassified digits to show"
        else:
            message = f"{len(wrong)} misclassified digits; render.misclassified is 0, so none shown"
        figure = new_figure(figsize=(5, 1.5))
        figure.text(0.5, 0.5, message, ha="center", va="center")
        return figure
    columns = min(len(shown), 5)
    rows = -(-len(shown) // columns)
    figure = new_figure(figsize=(2 * columns, 2.3 * rows), layout="constrained")
    for axes in figure.subplots(rows, columns, squeeze=False).flat:
        axes.axis("off")
    for axes, row in zip(figure.axes, shown.itertuples(), strict=False):
        axes.imshow(images[row.index], cmap="binary")
        axes.set_title(
            f"#{row.index}: Pred {row.predicted}\nTrue {row.true} ({row.confidence:.0%})",
            color=WRONG,
            fontsize=9,
        )
    figure.suptitle(f"Misclassified test digits (first {len(shown)} of {len(wrong)})")
    return figure


def markdown_table(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
    lines += [
        "| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def confusion_summary(matrix: np.ndarray, per_class: pd.DataFrame, confused: pd.DataFrame) -> str:
    total = int(matrix.sum())
    right = int(np.trace(matrix))
    pairs = summary.confused_pairs_table(confused)
    shown = markdown_table(pairs) if len(pairs) else "No digit was mistaken for another."
    return (
        "# Confusion summary\n\n"
        f"{right} of {total} test digits right ({right / total:.2%}).\n\n"
        "## Per digit\n\n"
        f"{markdown_table(summary.per_digit_table(matrix, per_class))}\n\n"
        "## Most confused pairs\n\n"
        f"{shown}\n"
    )


def render(
    test_set: Path,
    predictions_path: Path,
    confusion_path: Path,
    per_class_path: Path,
    history_path: Path,
    figures: Path,
    confused_path: Path,
    summary_path: Path,
    *,
    grid_size: int,
    misclassified: int,
    confused_pairs: int,
) -> None:
    images, _ = artifacts.read_split(test_set, "test")
    predictions = pd.read_csv(predictions_path)
    matrix = pd.read_csv(confusion_path).drop(columns="true").to_numpy()
    per_class = pd.read_csv(per_class_path)
    history = pd.read_csv(history_path)
    if grid_size * grid_size > len(predictions):
        raise cli.StageError(
            f"render.grid_size = {grid_size} needs {grid_size * grid_size} test images, "
            f"only {len(predictions)} were evaluated"
        )
    true, predicted = predictions["true"].to_numpy(), predictions["predicted"].to_numpy()
    wrong = predictions[predictions["true"] != predictions["predicted"]]
    first = predictions.iloc[0]

    with artifacts.atomic_dir(figures) as tmp:
        artifacts.write_png(
            prediction_grid(images, true, predicted, grid_size), tmp / "prediction_grid.png"
        )
        artifacts.write_png(
            first_prediction(
                images[0], int(first["true"]), int(first["predicted"]), first["confidence"]
            ),
            tmp / "first_prediction.png",
        )
        artifacts.write_png(confusion_heatmap(matrix), tmp / "confusion_matrix.png")
        artifacts.write_png(training_curves(history), tmp / "training_curves.png")
        artifacts.write_png(
            misclassified_gallery(images, wrong, misclassified), tmp / "misclassified.png"
        )
    confused = summary.most_confused(matrix, confused_pairs)
    artifacts.write_csv(confused_path, confused)
    artifacts.write_text(summary_path, confusion_summary(matrix, per_class, confused))
    print(f"render: 5 figures in {figures}, {len(wrong)} misclassified of {len(predictions)}")


def main(argv: list[str] | None = None) -> None:
    files = ("test-set", "predictions", "confusion", "per-class", "history", "figures")
    args = cli.arguments("render", (*files, "confused-pairs", "summary"), argv)
    settings = config.read_params(SETTINGS)
    render(
        args.test_set,
        args.predictions,
        args.confusion,
        args.per_class,
        args.history,
        args.figures,
        args.confused_pairs,
        args.summary,
        grid_size=settings["render.grid_size"],
        misclassified=settings["render.misclassified"],
        confused_pairs=settings["render.confused_pairs"],
    )


if __name__ == "__main__":
    cli.run(main)
