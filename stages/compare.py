"""Compare: the lesson's model beside its variations, as one table and one figure.

The lesson's theory asks why a baseline, a deeper network or a CNN does better or worse;
this stage puts their scores side by side so the course page can answer with this build's
own numbers.

Reads:  params `variants` (their names and which are `instructor_only`: each variant's
        settings are its own stages' business); the lesson's metrics and history
        (--metrics, --history) and, for each variant, the folder --variant-reports/<name>/
        (settings.json, metrics.json, history.csv).
Writes: --comparison/ with variants.csv (variant, what it changes, test accuracy, test
        loss, macro F1, weights, epochs run), curves.csv (loss and accuracy per epoch and
        variant, for `dvc plots`), curves.png (the training curves on one figure, for
        students: without the instructor-only variations) and instructor/curves.png (the
        same with every model, for the instructor's outputs).
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
from pipeline.names import INSTRUCTOR_FIGURES, LESSON

SETTINGS = {"variants": names.variants_section}


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
    names: list[str],
    hidden: list[str] = (),
) -> None:
    """The lesson first, then the variants `names`, in that order (params.yaml's). The
    folders of variants no longer in params.yaml are deleted first. The curves students see
    leave out the `hidden` (instructor-only) variations, whose epochs and curves would give
    their settings away; the instructor's copy draws every model."""
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
    table = pd.DataFrame(rows)
    curves = curves_table(histories)
    with artifacts.atomic_dir(comparison) as tmp:
        artifacts.write_csv(tmp / "variants.csv", table)
        artifacts.write_csv(tmp / "curves.csv", curves)
        order = list(table["variant"])
        shown = [name for name in order if name not in hidden]
        artifacts.write_png(curves_figure(curves, shown), tmp / "curves.png")
        (tmp / INSTRUCTOR_FIGURES).mkdir()
        artifacts.write_png(curves_figure(curves, order), tmp / INSTRUCTOR_FIGURES / "curves.png")
    best = table.loc[table["test_accuracy"].idxmax()]
    print(
        f"compare: {len(table)} models in {comparison}; best {best['variant']} "
        f"({best['test_accuracy']:.4f})"
    )


def main(argv: list[str] | None = None) -> None:
    files = ("metrics", "history", "variant-reports", "variant-models", "comparison")
    args = cli.arguments("compare", files, argv)
    settings = config.read_params(SETTINGS)
    compare(
        args.metrics,
        args.history,
        args.variant_reports,
        args.variant_models,
        args.comparison,
        names=list(settings["variants"] or {}),
        hidden=names.instructor_only(settings["variants"]),
    )


if __name__ == "__main__":
    cli.run(main)
