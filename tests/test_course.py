"""The shipped lesson on real builds: every number it quotes is the build's, every part of the
course's plan is a section, the values file is documented name by name, editing the lesson
reruns the page only, and the page reads well on a projector and on a phone.

Uses copies of the session's small builds (tests/conftest.py): the lesson alone, and the
lesson with the default variations.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages import values
from tests.helpers import (
    BROWSER_ARGS,
    ROOT,
    add_an_epoch,
    chromium,
    copy_build,
    course_rebuilt,
    run,
    run_stage,
    set_params,
    stages_run,
    workspace,
    would_rerun,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory, variants_build) -> Path:
    return copy_build(variants_build[0], tmp_path_factory.mktemp("course") / "project")


@pytest.fixture(scope="module")
def lesson_only(tmp_path_factory, lesson_build) -> Path:
    return copy_build(lesson_build[0], tmp_path_factory.mktemp("lesson") / "project")


def page_text(project: Path) -> str:
    """The page as a reader sees its text: tags and the script left out, entities decoded."""
    page = (project / "reports/lessons/digit-predictor/index.html").read_text()
    page = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def recomputed(project: Path) -> dict:
    """What the lesson quotes, computed again from reports/ with this test's own code."""
    reports = project / "reports"
    metrics = json.loads((reports / "metrics.json").read_text())["test"]
    matrix = pd.read_csv(reports / "confusion_matrix.csv").drop(columns="true").to_numpy()
    table = pd.read_csv(reports / "comparison/variants.csv")
    # Only the models scored on MNIST's test images are ranked; the scikit-learn model, tested
    # on a split of its own, is listed apart.
    sklearn = table[table["variant"] == "sklearn"].iloc[0]
    table = table[table["tested_on"] == "MNIST's test images"]
    history = pd.read_csv(reports / "history.csv")
    first = pd.read_csv(reports / "predictions.csv").iloc[0]
    off = matrix - np.diag(np.diag(matrix))
    recall = np.diag(matrix) / matrix.sum(axis=1)
    return {
        "accuracy": metrics["accuracy"],
        "right": int(np.trace(matrix)),
        "images": int(matrix.sum()),
        "weights": metrics["weights"],
        "top_pairs": {(int(t), int(p)) for t, p in zip(*np.nonzero(off == off.max()), strict=True)},
        "top_count": int(off.max()),
        "most_confused": {int(d) for d in np.flatnonzero(off.sum(axis=1) == off.sum(axis=1).max())},
        "hardest": int(recall.argmin()),
        "best": set(table.loc[table["test_accuracy"] == table["test_accuracy"].max(), "variant"]),
        "models": table.set_index("variant")["test_accuracy"].to_dict(),
        "sklearn": (sklearn["test_accuracy"], sklearn["tested_on"]),
        "epochs": len(history),
        "first": (int(first["true"]), int(first["predicted"]), float(first["confidence"])),
    }


def test_the_values_file_holds_what_the_reports_say(built):
    found = json.loads((built / "reports/values.json").read_text())
    expected = recomputed(built)
    test = found["metrics"]["test"]
    assert (test["accuracy"], test["right"], test["images"], test["weights"]) == (
        expected["accuracy"], expected["right"], expected["images"], expected["weights"]
    )  # fmt: skip
    top = found["confusion"]["top_pair"]
    assert (top["true"], top["predicted"]) in expected["top_pairs"]
    assert top["count"] == expected["top_count"]
    assert set(found["confusion"]["most_confused_digit"]["digits"]) == expected["most_confused"]
    assert found["confusion"]["hardest_digit"]["digit"] == expected["hardest"]
    assert (
        set(found["best"]["names"]) == expected["best"]
        and found["best"]["name"] in expected["best"]
    )
    models = {"lesson": found["lesson"], **found["variants"]}
    assert {name: model["accuracy"] for name, model in models.items()} == expected["models"]
    assert found["models"] == list(expected["models"])
    assert (found["sklearn"]["accuracy"], found["sklearn"]["tested_on"]) == expected["sklearn"]
    assert found["history"]["epochs"] == expected["epochs"]
    first = found["first"]
    assert (first["true"], first["predicted"], first["confidence"]) == pytest.approx(
        expected["first"]
    )


def test_every_number_the_page_quotes_is_the_builds_in_the_format_shown(built):
    text = page_text(built)
    expected = recomputed(built)
    assert f"Test accuracy {expected['accuracy']:.2%}" in text
    assert f"{expected['right']:,} of {expected['images']:,} test images" in text
    assert f"{expected['weights']:,} weights" in text
    count = expected["top_count"]
    assert any(f"{count} test images of the digit {t} were read as {p}" in text
               for t, p in expected["top_pairs"])  # fmt: skip
    assert f"trained for {expected['epochs']} epochs" in text
    for name, accuracy in [*expected["models"].items(), ("sklearn", expected["sklearn"][0])]:
        assert re.search(rf"\b{name} [^%]*? {accuracy:.2%}", text), name
    best = json.loads((built / "reports/values.json").read_text())["best"]
    assert f"{best['accuracy']:.2%}" in text


def test_nothing_unresolved_survives_in_the_page(built):
    page = (built / "reports/lessons/digit-predictor/index.html").read_text()
    for marker in ("{{", "{%", "{#", "{code-cell}", "{figure}", "{build}", "Undefined"):
        assert marker not in page, marker


# The parts of the original course's session plan (../shared/course-outline.md), each a `##`
# section of the shipped lesson, in order.
PLAN = ["neural networks and deep learning", "how a neural network works", "mnist",
        "preparing the images", "the model in keras", "training", "evaluation", "predictions",
        "visualising the predictions and the mistakes", "activity", "wrap-up"]  # fmt: skip


def test_every_part_of_the_course_plan_is_a_section_in_order():
    headings = re.findall(
        r"^## (.+)$", (ROOT / "course/digit-predictor/lesson.md").read_text(), flags=re.M
    )
    found = [next((i for i, h in enumerate(headings) if part in h.lower()), None) for part in PLAN]
    assert None not in found, dict(zip(PLAN, found, strict=True))
    assert found == sorted(found)


def test_the_lesson_says_what_the_scores_mean_before_the_score_and_cites_mnist():
    source = " ".join((ROOT / "course/digit-predictor/lesson.md").read_text().split())
    score = source.index("```{build} score")
    for term in ("**Accuracy**", "**loss**", "**Macro F1**"):
        assert -1 < source.find(term) < score, term
    for credit in ("Yann LeCun", "Corinna Cortes", "Christopher J. C. Burges",
                   "Creative Commons Attribution-Share Alike 3.0"):  # fmt: skip
        assert credit in source


def documented_names() -> set[str]:
    doc = (ROOT / "docs/values.md").read_text()
    return set(re.findall(r"^\| `([^`]+)` \|", doc, flags=re.M))


def normalised_names(found: dict) -> set[str]:
    """The values file's names as docs/values.md writes them: a variation's as
    `variants.<name>.*`, a model's settings as `<model>.settings.*`."""
    names = set()
    for name in values.lesson_names(found):
        for variant in found["variants"]:
            name = name.replace(f"variants.{variant}.", "variants.<name>.")
        name = re.sub(r"^(lesson|variants\.<name>)\.settings\..*$", r"\1.settings.*", name)
        names.add(name)
    return names


def test_docs_values_lists_exactly_the_names_of_the_values_file(built):
    found = json.loads((built / "reports/values.json").read_text())
    assert found["variants"]  # So that the variations' names are checked too.
    assert documented_names() == normalised_names(found)


def test_an_edit_of_the_lesson_reruns_only_what_renders_it(lesson_only):
    lesson = lesson_only / "course/digit-predictor/lesson.md"
    original = lesson.read_text()
    lesson.write_text(original + "\nA note added by the author: {{ metrics.test.wrong }} wrong.\n")
    try:
        ran = stages_run(run(["dvc", "repro"], lesson_only).stdout)
        assert ran == course_rebuilt("digit-predictor")
        wrong = json.loads((lesson_only / "reports/values.json").read_text())["metrics"]
        assert f"A note added by the author: {wrong['test']['wrong']} wrong." in page_text(
            lesson_only
        )
    finally:
        lesson.write_text(original)
    assert stages_run(run(["dvc", "repro"], lesson_only).stdout) == []  # from the run-cache
    assert stages_run(run(["dvc", "repro"], lesson_only).stdout) == []


def test_a_new_setting_reruns_the_model_the_figures_and_the_page(lesson_only):
    """What DVC reruns when settings of the model and of the figures change, from `dvc status`,
    without retraining (tests.helpers.would_rerun); what the page then shows is the next test,
    in-process."""
    set_params(lesson_only, train__epochs=2, render__grid_size=3)
    try:
        ran = would_rerun(lesson_only)
        assert {"train", "render", "values", "page@digit-predictor"} <= set(ran)
    finally:
        run(["git", "checkout", "params.yaml"], lesson_only)


def test_a_new_setting_changes_the_lessons_numbers_and_figures(lesson_only, tmp_path, monkeypatch):
    """The page follows a new setting of the figures and a new training: the grid's size is set
    to 3 in params.yaml, and the record of a training of two epochs with another accuracy put
    in place of the build's (reports/settings.json, history.csv and metrics.json, as train and
    evaluate write them); render, compare, values, the notebook and the page are run
    in-process (tests.helpers.run_stage), instead of retraining through `dvc repro` as this
    test once did (26 s). That a new setting reruns these stages is the test above; that train
    records params.yaml's settings, tests/test_notebooks.py's
    test_the_notebooks_follow_the_lesson_and_the_settings."""
    work = workspace(lesson_only, tmp_path / "work")
    monkeypatch.chdir(work)
    reports = work / "reports"
    old_page = (reports / "lessons/digit-predictor/index.html").read_text()
    old_grid = (reports / "figures/prediction_grid.png").read_bytes()
    assert "GRID_SIZE = 3" not in old_page and "trained for 2 epochs" not in page_text(work)
    set_params(work, render__grid_size=3)
    trained_with = json.loads((reports / "settings.json").read_text())
    trained_with["train"]["epochs"] = 2
    (reports / "settings.json").write_text(json.dumps(trained_with))
    add_an_epoch(reports / "history.csv")
    metrics = json.loads((reports / "metrics.json").read_text())
    metrics["test"]["accuracy"] = accuracy = metrics["test"]["accuracy"] / 2 + 0.4321
    (reports / "metrics.json").write_text(json.dumps(metrics))
    assert f"Test accuracy {accuracy:.2%}" not in page_text(work)
    for stage in (
        "render",
        "compare",
        "values",
        "notebook@digit-predictor",
        "page@digit-predictor",
    ):
        run_stage(stage)
    text = page_text(work)
    assert "trained for 2 epochs" in text
    assert f"Test accuracy {accuracy:.2%}" in text
    page = (reports / "lessons/digit-predictor/index.html").read_text()
    grid = (reports / "figures/prediction_grid.png").read_bytes()
    assert grid != old_grid
    assert f"base64,{base64.b64encode(grid).decode()}" in page  # the new 3 x 3 grid
    assert "GRID_SIZE = 3" in page


@pytest.mark.parametrize("width", [1280, 375])
def test_the_page_shows_the_lesson_and_its_figures_readably_with_no_request_out(built, width):
    from playwright.sync_api import sync_playwright

    url = (built / "reports/lessons/digit-predictor/index.html").as_uri()
    requests = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        view = browser.new_page(viewport={"width": width, "height": 900})
        view.on("request", lambda request: requests.append(request.url))
        view.goto(url, wait_until="load")
        assert "Simple Digit Predictor" in view.title()
        figures = view.eval_on_selector_all(
            "figure img",
            """images => images.map(i => ({natural: i.naturalWidth, shown: i.clientWidth,
                box: i.parentElement.clientWidth, scrolls: i.parentElement.scrollWidth}))""",
        )
        assert len(figures) == 6 and all(f["natural"] > 0 for f in figures), figures
        # The smallest text drawn in a figure is 8 points at 100 dpi, 11.1 pixels: shown at
        # 0.8 of its size or more, it stays above 9 CSS pixels.
        assert all(f["shown"] >= 0.8 * f["natural"] for f in figures), figures
        # What does not fit scrolls inside its own box, not the page.
        wide = [f for f in figures if f["shown"] > f["box"] + 1]
        assert all(f["scrolls"] > f["box"] for f in wide), wide
        assert wide or width == 1280, "no figure is wider than a phone: the check has no teeth"
        overflow = view.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page itself is wider than a {width}px screen"
        tables = view.eval_on_selector_all(
            ".table",
            """boxes => boxes.map(b => ({wide: b.scrollWidth > b.clientWidth,
                overflow: getComputedStyle(b).overflowX,
                cue: getComputedStyle(b).backgroundImage}))""",
        )
        assert tables and all(t["overflow"] == "auto" and "gradient" in t["cue"] for t in tables)
        if width == 375:
            assert any(t["wide"] for t in tables), (
                "no table is wider than a phone: test has no teeth"
            )
        browser.close()
    assert requests == [url]
