"""Page: one self-contained HTML page telling the lesson's story for this build.

Reads:  files only, each named on its command line: --metrics, --confusion, --per-class,
        --confused-pairs, --settings (what the lesson's model trained with, shown), --figures
        (the PNGs are embedded), --raw and --model (for their digests), --comparison (the
        variations' table and curves), --network and each variation's network.json under
        --variant-reports (the weights the "Try it" section runs), --script and --style
        (inlined).
Writes: paths.page, an HTML file with no outside references: it works offline, can be mailed
        or published as it is, and reads on a phone as on a projector.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stages import artifacts, cli, config, summary

# The packages whose versions decide what a build produces.
# TensorFlow is the distribution tensorflow-cpu on Linux x86-64 and Windows, tensorflow
# elsewhere (see requirements.in).
PACKAGES = {
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "matplotlib": ("matplotlib",),
    "dvc": ("dvc",),
}

# Each figure render draws, with its alt text and its caption.
FIGURES = {
    "prediction_grid": (
        "A grid of test digits, each titled with the predicted and the true digit, "
        "blue when the prediction is right and red when it is wrong",
        "The first test digits: Pred is the model's answer, True the label; "
        "blue is right, red is wrong.",
    ),
    "first_prediction": (
        "The first test image with the model's prediction and its confidence",
        "The first test image, as the lesson shows it.",
    ),
    "training_curves": (
        "Line charts of loss and accuracy for each training epoch",
        "Loss and accuracy after each epoch, with validation curves when part of the "
        "training images was held out.",
    ),
    "confusion_matrix": (
        "A 10 by 10 heatmap counting test images by true digit (rows) and predicted digit "
        "(columns)",
        "Confusion matrix: rows are the true digits, columns the predictions; everything off "
        "the diagonal is a mistake.",
    ),
    "misclassified": (
        "A gallery of misclassified test digits, each titled with the prediction and the label",
        "Misclassified test digits: would you have read them right?",
    ),
}


def md5(path: Path) -> str:
    """The digest DVC records for a file in dvc.lock."""
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def embedded_image(path: Path, alt: str, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def table(frame: pd.DataFrame) -> str:
    return f'<div class="table">{frame.to_html(index=False, border=0, escape=True)}</div>'


def settings_table(settings: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        {"setting": list(settings), "value": [json.dumps(v) for v in settings.values()]}
    )


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package, distributions in PACKAGES.items():
        found[package] = "not installed"
        for distribution in distributions:
            try:
                found[package] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def variations_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """compare's table, formatted for reading."""
    return pd.DataFrame(
        {
            "model": comparison["variant"],
            "what it changes": comparison["changes"],
            "test accuracy": [f"{a:.2%}" for a in comparison["test_accuracy"]],
            "test loss": [f"{loss:.4f}" for loss in comparison["test_loss"]],
            "macro F1": [f"{f:.4f}" for f in comparison["macro_f1"]],
            "weights": [f"{w:,}" for w in comparison["weights"]],
            "epochs": comparison["epochs"],
        }
    )


def variations_section(frame: pd.DataFrame, curves_png: Path) -> str:
    """The lesson's model beside its variations: compare's table and training curves."""
    if len(frame) < 2:
        return (
            "<h2>Variations</h2>\n<p>This build has no variations: <code>variants</code> "
            "in <code>params.yaml</code> is empty.</p>"
        )
    curves = embedded_image(
        curves_png,
        "Line charts of training loss and accuracy per epoch, one line per model",
        "Training loss and accuracy per epoch of the lesson's model and each variation.",
    )
    return (
        '<h2>Variations</h2>\n<p>The lesson\'s baseline, its assignment and its "what next", '
        "trained on the same images and scored on the same test images as the lesson's "
        "model. Each changes only the settings named.</p>\n"
        f"{table(variations_table(frame))}\n{curves}"
    )


def read_networks(lesson: Path, variant_reports: Path, names: list[str]) -> list[dict]:
    """The lesson's network, then each variation's `names` (in compare's order), named for
    the page."""
    paths = [Path(lesson)] + [Path(variant_reports) / name / "network.json" for name in names]
    return [
        {"name": name, **json.loads(path.read_text())}
        for name, path in zip(["lesson", *names], paths, strict=True)
    ]


def try_it_section(networks: list[dict]) -> str:
    """A drawing area and an image control; page.js answers with every network.

    Without JavaScript, the controls stay hidden and the note says why.
    """
    # The weights travel as JSON inside the page; "</" could end the script element early.
    data = json.dumps(networks, separators=(",", ":")).replace("</", "<\\/")
    many = len(networks) > 1
    return f"""<h2>Try it: draw a digit</h2>
<section id="try-it">
<p>Draw one digit in the square with the mouse, a finger or a pen, or open a photo or scan of
one. The network{"s" if many else ""} of this build read{"" if many else "s"} it here, in
your browser, without sending anything anywhere.</p>
<noscript><p>Trying the model needs JavaScript, which is off in this browser; the rest of the
page reads without it.</p></noscript>
<div class="controls try" hidden>
<div>
<canvas class="pad" aria-label="Drawing area: draw one digit here"></canvas>
<div class="buttons"><button type="button" class="clear">Clear</button>
<label>or open an image: <input type="file" accept="image/*"></label></div>
</div>
<div>
<output name="digit" aria-live="polite">Draw a digit, or open an image of one.</output>
<p>What the network saw, 28 x 28 as in MNIST:<br>
<canvas class="seen" width="28" height="28" aria-label="The 28 by 28 image the network read">
</canvas></p>
<div class="bars" aria-label="The probability of each digit"></div>
<ul class="others" aria-label="The answer of each variation"></ul>
</div>
</div>
<script type="application/json" id="networks">{data}</script>
</section>"""


def build_page(
    *,
    metrics: dict[str, Any],
    settings: dict[str, Any],
    matrix: np.ndarray,
    per_class: pd.DataFrame,
    figures: Path,
    confused: pd.DataFrame,
    digests: dict[str, str],
    package_versions: dict[str, str],
    variations: pd.DataFrame,
    curves_png: Path,
    networks: list[dict],
    script: str,
    style: str,
) -> str:
    test = metrics["test"]
    pairs = summary.confused_pairs_table(confused)
    stamp = pd.DataFrame(
        {
            "what": [*package_versions, *digests],
            "version or md5": [*package_versions.values(), *digests.values()],
        }
    )
    right = int(np.trace(matrix))
    images = {
        name: embedded_image(figures / f"{name}.png", alt, caption)
        for name, (alt, caption) in FIGURES.items()
    }
    confused_html = table(pairs) if len(pairs) else "<p>No digit was mistaken for another.</p>"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Simple Digit Predictor: test accuracy {test["accuracy"]:.2%}</title>
<style>
{style}</style>
</head>
<body>
<main>
<h1>Simple Digit Predictor Using Deep Learning</h1>
<p>A neural network learned to read handwritten digits from the training images of MNIST.
This page shows how it does on the {test["images"]:,} test images it never saw.</p>
<p class="score">Test accuracy <strong>{test["accuracy"]:.2%}</strong>
({right:,} of {test["images"]:,} right), test loss {test["loss"]:.4f},
macro F1 {test["macro_f1"]:.4f}.</p>

<h2>Predictions</h2>
<div class="pair">
{images["prediction_grid"]}
{images["first_prediction"]}
</div>

{try_it_section(networks)}

<h2>Training</h2>
{images["training_curves"]}

<h2>Where it goes wrong</h2>
{images["confusion_matrix"]}
<h3>Per digit</h3>
{table(summary.per_digit_table(matrix, per_class))}
<h3>Most confused pairs</h3>
{confused_html}
{images["misclassified"]}

{variations_section(variations, curves_png)}

<h2>Settings of this build</h2>
{table(settings_table(settings))}

<h2>Reproducibility</h2>
<p>Rebuilding with the same settings and these versions gives the same files, byte for byte.
The digests are those DVC records in <code>dvc.lock</code>.</p>
{table(stamp)}
</main>
<script>
{script}</script>
</body>
</html>
"""


def page(
    metrics_path: Path,
    confusion_path: Path,
    per_class_path: Path,
    confused_path: Path,
    settings_path: Path,
    figures: Path,
    raw: Path,
    model: Path,
    comparison: Path,
    network: Path,
    variant_reports: Path,
    script: Path,
    style: Path,
    page_path: Path,
) -> None:
    variations = pd.read_csv(Path(comparison) / "variants.csv")
    trained_with = json.loads(Path(settings_path).read_text())
    text = build_page(
        metrics=json.loads(Path(metrics_path).read_text()),
        settings=config.flatten({key: trained_with[key] for key in SHOWN_SECTIONS}),
        matrix=pd.read_csv(confusion_path).drop(columns="true").to_numpy(),
        per_class=pd.read_csv(per_class_path),
        figures=Path(figures),
        confused=pd.read_csv(confused_path),
        digests={str(raw): md5(raw), str(model): md5(model)},
        package_versions=versions(),
        variations=variations,
        curves_png=Path(comparison) / "curves.png",
        networks=read_networks(network, variant_reports, list(variations["variant"])[1:]),
        script=Path(script).read_text(),
        style=Path(style).read_text(),
    )
    artifacts.write_text(page_path, text)
    print(f"page: {page_path} ({len(text.encode()) / 2**10:.0f} KiB, self-contained)")


# What the page shows of the settings the lesson's model trained with.
SHOWN_SECTIONS = ("model", "train")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.page")
    files = ("metrics", "confusion", "per-class", "confused-pairs", "settings", "figures", "raw")
    files += ("model", "comparison", "network", "variant-reports", "script", "style", "page")
    for option in files:
        parser.add_argument(f"--{option}", type=Path, required=True)
    args = parser.parse_args(argv)
    page(
        args.metrics,
        args.confusion,
        args.per_class,
        args.confused_pairs,
        args.settings,
        args.figures,
        args.raw,
        args.model,
        args.comparison,
        args.network,
        args.variant_reports,
        args.script,
        args.style,
        args.page,
    )


if __name__ == "__main__":
    cli.run(main)
