"""Values: everything a lesson may quote from this build, gathered into one file.

The lesson, the quiz and the answer key quote the build through the names in this file
(`{{ metrics.test.accuracy | percent }}`), and through nothing else, so that a number in the
course material is always this build's. docs/values.md lists every name.

Reads:  --metrics, --settings (what the lesson's model trained with), --history,
        --predictions (the first test image), --confusion, --per-class, --confused-pairs,
        --figures (their names), --comparison (the variations' scores), --variant-reports
        (each variation's settings), --sklearn-metrics (the scikit-learn model's iterations
        and split), --raw and --model (their digests); params `prepare`, `render` and
        `sklearn`, the sections a lesson may quote, which their own stages check;
        `variants`, for the variations marked `instructor_only: true`, whose settings only
        the instructor's outputs show.
Writes: --values, one JSON file.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import artifacts, cli, config, names

# The variations (for who may see each: its variant_settings stage checks the flag), and the
# sections a lesson may quote, which their own stages (prepare, render, sklearn) check and
# which run before this one.
SETTINGS = {
    "variants": names.variants_section,
    "prepare": config.section,
    "render": config.section,
    "sklearn": config.section,
}

# The packages whose versions decide what a build produces. TensorFlow is the distribution
# tensorflow-cpu on Linux x86-64 and Windows, tensorflow elsewhere (see requirements.in).
PACKAGES = {
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "matplotlib": ("matplotlib",),
    "dvc": ("dvc",),
    "sklearn": ("scikit-learn",),
    "scipy": ("scipy",),
}


def array_digests(path: Path) -> dict[str, str]:
    """The sha256 of each MNIST array's bytes in the raw file: what a notebook checks a copy of
    the file against before it trusts it (the file's own bytes differ with how it was saved)."""
    with np.load(path) as data:
        return {
            name: hashlib.sha256(np.ascontiguousarray(data[name]).tobytes()).hexdigest()
            for name in ("x_train", "y_train", "x_test", "y_test")
        }


def md5(path: Path) -> str:
    """The digest DVC records for a file in dvc.lock."""
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """The versions of the packages that decide what a build produces. Python's own version
    is left out: it changes no byte of the outputs (the same pins install on 3.11 to 3.13),
    and written here it would make every Python give another values file."""
    found = {}
    for package, distributions in PACKAGES.items():
        found[package] = "not installed"
        for distribution in distributions:
            try:
                found[package] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def confusion_values(matrix: np.ndarray, per_class: pd.DataFrame, pairs: pd.DataFrame) -> dict:
    """The mistakes a lesson talks about: the pairs most often confused, the digit most often
    read as another (the confusion matrix's row with the largest sum off the diagonal; every
    tied digit in `digits`), and the digits the model reads best and worst (by recall).

    A small test set (`prepare.test_size: 20`) may hold no image of some digit: its recall is
    undefined (evaluate writes 0), so it is left out of the best, the worst, the most confused
    (in a tie at 0 mistakes) and the rows per digit. The test set has at least one image, so
    some digit always remains."""
    wrong_by_digit = matrix.sum(axis=1) - np.diag(matrix)
    most = int(wrong_by_digit.max())
    shown = matrix.sum(axis=1) > 0
    tied = [int(digit) for digit in np.flatnonzero((wrong_by_digit == most) & shown)]
    per_class = per_class[per_class["support"] > 0]
    recall = per_class.set_index("digit")["recall"]
    pair_list = [
        {"true": int(row.true), "predicted": int(row.predicted), "count": int(row.count)}
        for row in pairs.itertuples()
    ]
    return {
        "pairs": pair_list,
        "top_pair": pair_list[0] if pair_list else {"true": None, "predicted": None, "count": 0},
        "most_confused_digit": {"digit": tied[0], "digits": tied, "count": most},
        "easiest_digit": {"digit": int(recall.idxmax()), "recall": float(recall.max())},
        "hardest_digit": {"digit": int(recall.idxmin()), "recall": float(recall.min())},
        "per_digit": [
            {
                "digit": int(row.digit),
                "images": int(row.support),
                "right": int(matrix[int(row.digit), int(row.digit)]),
                "recall": float(row.recall),
                "precision": float(row.precision),
                "f1": float(row.f1),
            }
            for row in per_class.itertuples()
        ],
    }


def model_values(row: Any, settings: dict, instructor_only: bool = False) -> dict:
    """One row of compare's table, with the settings the model trained with."""
    return {
        "instructor_only": instructor_only,
        "changes": row.changes,
        "accuracy": float(row.test_accuracy),
        "loss": float(row.test_loss),
        "macro_f1": float(row.macro_f1),
        "weights": int(row.weights),
        "epochs": int(row.epochs),
        "settings": {key: settings[key] for key in ("model", "train")},
    }


def sklearn_values(row: Any, metrics: dict, settings: dict) -> dict:
    """The scikit-learn model's row of compare's table, with how it was split and fitted. It
    was scored on its own random test part, not on the Keras models' test images, so it
    stays out of `models` and `best`: only scores on the same images rank models."""
    images, train = metrics["images"], metrics["train"]["images"]
    return {
        "changes": row.changes,
        "tested_on": row.tested_on,
        "accuracy": float(row.test_accuracy),
        "loss": float(row.test_loss),
        "macro_f1": float(row.macro_f1),
        "weights": int(row.weights),
        "iterations": metrics["iterations"],
        "converged": metrics["converged"],
        "images": images,
        "train_images": train,
        "test_images": metrics["test"]["images"],
        "train_share": train / images,
        "settings": settings,
    }


def gather(
    *,
    metrics: dict,
    settings: dict,
    history: pd.DataFrame,
    predictions: pd.DataFrame,
    matrix: np.ndarray,
    per_class: pd.DataFrame,
    pairs: pd.DataFrame,
    figures: list[str],
    comparison: pd.DataFrame,
    variant_settings: dict[str, dict],
    sklearn: dict,
    params: dict[str, Any],
    instructor_only: list[str],
    files: dict[str, dict[str, str]],
    package_versions: dict[str, str],
) -> dict[str, Any]:
    test = dict(metrics["test"])
    test["right"] = int(np.trace(matrix))
    test["wrong"] = int(matrix.sum()) - test["right"]
    lesson = comparison.iloc[0]
    keras = comparison[comparison["variant"] != names.SKLEARN]
    models = {
        row.variant: model_values(
            row,
            settings if index == 0 else variant_settings[row.variant],
            index > 0 and row.variant in instructor_only,
        )
        for index, row in enumerate(keras.itertuples())
    }
    sklearn_row = next(comparison[comparison["variant"] == names.SKLEARN].itertuples())
    best = max(models.values(), key=lambda model: model["accuracy"])["accuracy"]
    first = predictions.iloc[0]
    return {
        "metrics": {"test": test},
        "settings": {key: settings[key] for key in ("model", "train")},
        "params": params,
        "history": {
            "epochs": len(history),
            "first": {
                "accuracy": float(history["accuracy"].iloc[0]),
                "loss": float(history["loss"].iloc[0]),
            },
            "last": {
                "accuracy": float(history["accuracy"].iloc[-1]),
                "loss": float(history["loss"].iloc[-1]),
            },
        },  # fmt: skip
        "first": {
            "true": int(first["true"]),
            "predicted": int(first["predicted"]),
            "confidence": float(first["confidence"]),
        },
        "confusion": confusion_values(matrix, per_class, pairs),
        "lesson": models[lesson.variant],
        "variants": {name: model for name, model in models.items() if name != lesson.variant},
        "models": list(models),
        "sklearn": sklearn_values(sklearn_row, sklearn["metrics"], sklearn["settings"]),
        "best": {
            "name": next(name for name, model in models.items() if model["accuracy"] == best),
            "names": [name for name, model in models.items() if model["accuracy"] == best],
            "accuracy": best,
        },
        "figures": figures,
        "build": {"versions": package_versions, **files},
    }


def write_values(
    metrics_path: Path,
    settings_path: Path,
    history_path: Path,
    predictions_path: Path,
    confusion_path: Path,
    per_class_path: Path,
    confused_path: Path,
    figures: Path,
    comparison: Path,
    variant_reports: Path,
    sklearn_metrics: Path,
    raw: Path,
    model: Path,
    values_path: Path,
    *,
    params: dict[str, Any],
    sklearn_settings: dict[str, Any],
    instructor_only: list[str],
) -> dict[str, Any]:
    table = pd.read_csv(Path(comparison) / "variants.csv")
    variations = [name for name in list(table["variant"])[1:] if name != names.SKLEARN]
    gathered = gather(
        metrics=json.loads(Path(metrics_path).read_text(encoding="utf-8")),
        settings=json.loads(Path(settings_path).read_text(encoding="utf-8")),
        history=pd.read_csv(history_path),
        predictions=pd.read_csv(predictions_path, nrows=1),
        matrix=pd.read_csv(confusion_path).drop(columns="true").to_numpy(),
        per_class=pd.read_csv(per_class_path),
        pairs=pd.read_csv(confused_path),
        figures=sorted(
            path.stem for path in [*Path(figures).glob("*.png"), *Path(comparison).glob("*.png")]
        ),
        comparison=table,
        variant_settings={
            name: json.loads(
                (Path(variant_reports) / name / "settings.json").read_text(encoding="utf-8")
            )
            for name in variations
        },
        sklearn={
            "metrics": json.loads(Path(sklearn_metrics).read_text(encoding="utf-8")),
            "settings": sklearn_settings,
        },
        params=params,
        instructor_only=instructor_only,
        files={
            "data": {"path": str(raw), "md5": md5(raw), "sha256": array_digests(raw)},
            "model": {"path": str(model), "md5": md5(model)},
        },
        package_versions=versions(),
    )
    artifacts.write_json(values_path, gathered)
    print(f"values: {len(lesson_names(gathered))} names in {values_path}")
    return gathered


def lesson_names(tree: Any, prefix: str = "") -> list[str]:
    """The dotted names of the values' leaves (lists count as one value)."""
    if not isinstance(tree, dict):
        return [prefix.removesuffix(".")]
    return [name for key, value in tree.items() for name in lesson_names(value, f"{prefix}{key}.")]


def main(argv: list[str] | None = None) -> None:
    files = ("metrics", "settings", "history", "predictions", "confusion", "per-class")
    files += ("confused-pairs", "figures", "comparison", "variant-reports", "sklearn-metrics")
    files += ("raw", "model")
    args = cli.arguments("values", (*files, "values"), argv)
    settings = config.read_params(SETTINGS)
    write_values(
        args.metrics,
        args.settings,
        args.history,
        args.predictions,
        args.confusion,
        args.per_class,
        args.confused_pairs,
        args.figures,
        args.comparison,
        args.variant_reports,
        args.sklearn_metrics,
        args.raw,
        args.model,
        args.values,
        params={name: settings[name] for name in ("prepare", "render")},
        sklearn_settings=settings["sklearn"],
        instructor_only=names.instructor_only(settings["variants"]),
    )


if __name__ == "__main__":
    cli.run(main)
