"""Compare: the lesson's model beside its variations, as one table and one figure.

The lesson's theory asks why a baseline, a deeper network or a CNN does better or worse;
this stage puts their scores side by side so the course page can answer with this build's
own numbers.

Reads:  params `variants` (their names and which are `instructor_only`: each variant's
        settings are its own stages' business); the lesson's metrics and history
        (--metrics, --history); for each variant, the folder --variant-reports/<name>/
        (settings.json, metrics.json, history.csv); and the scikit-learn model's metrics
        (--sklearn-metrics), the logistic-regression lesson's.
Writes: --comparison/ with variants.csv (variant, what it changes, test accuracy, test
        loss, macro F1, weights, epochs run, test images, what they were: the Keras models'
        are MNIST's test images, the scikit-learn model's another split, so its row says so
        and has no epochs), curves.csv (loss and accuracy per epoch and Keras model, for
        `dvc plots`), curves.png (the training curves on one figure, for students: without
        the instructor-only variations) and instructor/curves.png (the same with every Keras
        model, for the instructor's outputs). The scikit-learn model has no epochs, so no
        curve.
Removes: the folders under --variant-reports and --variant-models of variations that
        params.yaml no longer names. DVC leaves the outputs of a stage that is gone from
        dvc.yaml where they are; without this, a removed variation's files would stay in the
        workspace and in the folders this stage and the page read, and `dvc status` would
        report both changed until someone deleted them by hand.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pipeline import artifacts, cli, config, names
from pipeline.names import INSTRUCTOR_FIGURES, LESSON, SKLEARN

SETTINGS = {"variants": names.variants_section}
# What the Keras models were scored on: the same test images, MNIST's own.
MNIST_TEST = "MNIST's test images"


def describe(changes: Mapping[str, Any]) -> str:
    """What a variant changes, as the settings it overrides: `model.kind=cnn; train.epochs=3`."""
    if not changes:
        return "nothing: the lesson's settings"
    return "; ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in changes.items()
    )


def row(name: str, changes: str, metrics: Mapping[str, Any], history: pd.DataFrame) -> dict:
    test = metrics["test"]
    return {
        "variant": name,
        "changes": changes,
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "macro_f1": test["macro_f1"],
        "weights": test["weights"],
        "epochs": len(history),
        "test_images": test["images"],
        "tested_on": MNIST_TEST,
    }


def sklearn_row(metrics: Mapping[str, Any]) -> dict:
    """The scikit-learn model's row: scored on its own random test part, which is not the
    Keras models' test images, and fitted in iterations, not epochs."""
    test = metrics["test"]
    return {
        "variant": SKLEARN,
        "changes": "another model: scikit-learn's LogisticRegression",
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "macro_f1": test["macro_f1"],
        "weights": test["weights"],
        "epochs": None,
        "test_images": test["images"],
        "tested_on": (
            f"another split: {test['images']:,} random images of {metrics['images']:,}, "
            "not MNIST's test images"
        ),
    }


def curves_table(histories: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Loss and accuracy per epoch (counted from 1) of every model, in one long table."""
    frames = [
        pd.DataFrame(
            {
                "variant": name,
                "epoch": history["epoch"] + 1,
                "loss": history["loss"],
                "accuracy": history["accuracy"],
            }
        )
        for name, history in histories.items()
    ]
    return pd.concat(frames, ignore_index=True)


def curves_figure(curves: pd.DataFrame, order: list[str]) -> Figure:
    figure = Figure(figsize=(10, 4), layout="constrained")
    for axes, metric in zip(figure.subplots(1, 2), ("loss", "accuracy"), strict=True):
        for name in order:
            mine = curves[curves["variant"] == name]
            axes.plot(mine["epoch"], mine[metric], marker="o", label=name)
        axes.set_xlabel("epoch")
        # Epochs are whole: with five or fewer, Matplotlib would otherwise mark 1.5, 2.5, ...
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(f"training {metric}")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle("Training curves of the lesson and its variations")
    return figure


def read_variant(folder: Path) -> tuple[dict, dict, pd.DataFrame]:
    settings = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    return settings, metrics, pd.read_csv(folder / "history.csv")


def remove_others(folder: Path, names: list[str]) -> list[str]:
    """Delete the subfolders of `folder` not named in `names`; return what was deleted."""
    if not Path(folder).is_dir():
        return []
    gone = sorted(
        each.name for each in Path(folder).iterdir() if each.is_dir() and each.name not in names
    )
    for name in gone:
        shutil.rmtree(Path(folder) / name)
    return gone


def compare(
    metrics_path: Path,
    history_path: Path,
    variant_reports: Path,
    variant_models: Path,
    comparison: Path,
    sklearn_metrics: Path,
    names: list[str],
    hidden: list[str] = (),
) -> None:
    """The lesson first, then the variants `names`, in that order (params.yaml's), then the
    scikit-learn model. The folders of variants no longer in params.yaml are deleted first
    (the scikit-learn model's are elsewhere). The curves students see leave out the `hidden`
    (instructor-only) variations, whose epochs and curves would give their settings away;
    the instructor's copy draws every Keras model."""
    for folder in (variant_reports, variant_models):
        for name in remove_others(folder, names):
            print(f"compare: removed {Path(folder) / name}: the variation {name} is gone")
    histories = {LESSON: pd.read_csv(history_path)}
    lesson_metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    rows = [row(LESSON, describe({}), lesson_metrics, histories[LESSON])]
    for name in names:
        settings, metrics, history = read_variant(variant_reports / name)
        histories[name] = history
        rows.append(row(name, describe(settings["changes"]), metrics, history))
    rows.append(sklearn_row(json.loads(Path(sklearn_metrics).read_text(encoding="utf-8"))))
    table = pd.DataFrame(rows).astype({"epochs": "Int64"})
    curves = curves_table(histories)
    with artifacts.atomic_dir(comparison) as tmp:
        artifacts.write_csv(tmp / "variants.csv", table)
        artifacts.write_csv(tmp / "curves.csv", curves)
        order = list(histories)
        shown = [name for name in order if name not in hidden]
        artifacts.write_png(curves_figure(curves, shown), tmp / "curves.png")
        (tmp / INSTRUCTOR_FIGURES).mkdir()
        artifacts.write_png(curves_figure(curves, order), tmp / INSTRUCTOR_FIGURES / "curves.png")
    # Only scores on the same test images say which model is best.
    same = table[table["tested_on"] == MNIST_TEST]
    best = same.loc[same["test_accuracy"].idxmax()]
    print(
        f"compare: {len(table)} models in {comparison}; best on MNIST's test images "
        f"{best['variant']} ({best['test_accuracy']:.4f})"
    )


def main(argv: list[str] | None = None) -> None:
    files = ("metrics", "history", "variant-reports", "variant-models", "comparison")
    args = cli.arguments("compare", (*files, "sklearn-metrics"), argv)
    settings = config.read_params(SETTINGS)
    compare(
        args.metrics,
        args.history,
        args.variant_reports,
        args.variant_models,
        args.comparison,
        args.sklearn_metrics,
        names=list(settings["variants"] or {}),
        hidden=names.instructor_only(settings["variants"]),
    )


if __name__ == "__main__":
    cli.run(main)
