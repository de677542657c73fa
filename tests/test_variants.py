"""The lesson's variations, built by `dvc repro` beside the lesson's model, each cached on its
own, compared in a table, a figure and the course page.

Runs in a copy of the session's small build with the default variants (tests/conftest.py:
2,000 real MNIST training images and 500 test images; the lesson's own model trains one
epoch there). What a setting reruns is read from `dvc status` and DVC's graph
(tests.helpers.would_rerun), after running for real the settings stages, which take no
training and whose bytes decide which trainings follow (issue 32: the retrainings took a
minute of the suite). Adding a variation runs its settings stage for real, and reverting
it compare; compare itself runs in-process on the build's reports.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from stages import compare
from tests.conftest import DEFAULT_VARIANTS
from tests.helpers import (
    BUILT_AFTER_MODELS,
    COURSE_STAGES,
    copy_build,
    run,
    set_params,
    set_variants,
    stages_run,
    would_rerun,
)

pytestmark = pytest.mark.slow

NAMES = list(DEFAULT_VARIANTS)


def variant_stages(*names: str) -> set[str]:
    return {f"{stage}@{name}" for stage in ("variant_settings", "variant_train", "variant_evaluate")
            for name in names}  # fmt: skip


def repro(project) -> set[str]:
    return set(stages_run(run(["dvc", "repro"], project).stdout))


def settings_then_would_rerun(project) -> set[str]:
    """Run every variation's settings stage that `dvc status` lists, for real (they write
    the settings each variation trains with, and train nothing); then what `dvc repro`
    would run after them. Both together: what a `dvc repro` would run."""
    settings = [stage for stage in would_rerun(project) if stage.startswith("variant_settings@")]
    if settings:
        ran = stages_run(run(["dvc", "repro", "--single-item", *settings], project).stdout)
        assert sorted(ran) == sorted(settings)
    return set(settings) | set(would_rerun(project))


def restore(project) -> None:
    run(["git", "checkout", "params.yaml"], project)
    run(["dvc", "repro"], project)


@pytest.fixture(scope="module")
def project(tmp_path_factory, variants_build):
    project, built = variants_build
    lesson = ["download", "prepare", "train", "evaluate", "render", "sklearn"]
    assert set(built) == {*lesson, *variant_stages(*NAMES), *BUILT_AFTER_MODELS}
    assert built.index("compare") > max(built.index(s) for s in variant_stages(*NAMES))
    return copy_build(project, tmp_path_factory.mktemp("variants") / "project")


def test_the_defaults_are_the_lessons_baseline_assignment_and_what_next():
    assert DEFAULT_VARIANTS == {
        "logistic": {"model": {"hidden_units": []}},
        "assignment": {
            "instructor_only": True,
            "model": {"hidden_units": [128, 64], "activation": "leaky_relu"},
            "train": {
                "optimizer": "rmsprop",
                "epochs": 10,
                "augmentation": {"rotation": 10, "zoom": 0.1, "shift": 0.1},
            },
        },
        "cnn": {"model": {"kind": "cnn", "hidden_units": [128]}, "train": {"epochs": 3}},
    }


def test_the_comparison_table_lists_the_lesson_then_each_variant(project):
    table = pd.read_csv(project / "reports/comparison/variants.csv")
    # The scikit-learn model last, saying it was tested on another split, with no epochs.
    assert list(table["variant"]) == ["lesson", *NAMES, "sklearn"]
    assert list(table["tested_on"][:4]) == ["MNIST's test images"] * 4
    assert table["tested_on"][4] == (
        "another split: 500 random images of 2,500, not MNIST's test images"
    )
    assert table["test_images"][4] == 500 and pd.isna(table["epochs"][4])
    assert list(table["changes"][:2]) == ["nothing: the lesson's settings", "model.hidden_units=[]"]
    assert table["changes"][3] == "model.hidden_units=[128]; model.kind=cnn; train.epochs=3"
    # Epochs run: the lesson's one (set by the small project), the variants' own.
    assert list(table["epochs"][:4]) == [1, 1, 10, 3]
    # Weights: 784 x 10 + 10 for logistic regression; the lesson's 784 x 128 + 128 + 1,290.
    assert list(table["weights"][:2]) == [101_770, 7_850]
    for name in NAMES:
        metrics = json.loads((project / f"reports/variants/{name}/metrics.json").read_text())
        row = table[table["variant"] == name].iloc[0]
        assert row["test_accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
    curves = pd.read_csv(project / "reports/comparison/curves.csv")
    assert curves.groupby("variant", sort=False).size().to_dict() == {
        "lesson": 1, "logistic": 1, "assignment": 10, "cnn": 3
    }  # fmt: skip


def test_dvc_metrics_and_plots_read_each_variant(project):
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout)
    files = next(iter(shown.values()))["data"]
    assert set(files) == {"reports/metrics.json", "reports/sklearn/metrics.json"} | {
        f"reports/variants/{name}/metrics.json" for name in NAMES
    }
    plots = json.loads(run(["dvc", "plots", "show", "--json"], project).stdout)
    assert "Training curves of the lesson and its variations" in plots["data"]


def test_the_page_shows_the_variations(project):
    page = (project / "reports/lessons/digit-predictor/index.html").read_text()
    section = page[page.index('<section class="built-in" id="variations"') :]
    section = section[: section.index("</section>")]
    for name in ["lesson", *NAMES, "sklearn"]:
        assert f"<tr><td>{name}</td>" in section
    assert "tested on another split" in section


def test_a_variants_own_setting_reruns_only_that_variant_then_compare_and_page(project):
    restore(project)
    cnn = {"model": {"kind": "cnn", "hidden_units": [128]}, "train": {"epochs": 2}}
    variants = dict(DEFAULT_VARIANTS, cnn=cnn)
    assert variants != DEFAULT_VARIANTS
    set_variants(project, variants)
    assert set(would_rerun(project)) == variant_stages("cnn") | set(COURSE_STAGES)


def test_a_lesson_setting_reruns_every_variant_that_does_not_set_its_own(project):
    restore(project)
    set_params(project, train__epochs=2)
    ran = settings_then_would_rerun(project)
    # Every variant's settings are resolved again, but only logistic's change: the assignment
    # and the CNN set their own epochs, so they are not trained again.
    assert ran == {"train", "evaluate", "render", *COURSE_STAGES} | (
        variant_stages(*NAMES) - variant_stages("assignment", "cnn")
        | {"variant_settings@assignment", "variant_settings@cnn"}
    )


def test_a_new_lesson_width_leaves_the_cnn_as_it_is(project):
    """The CNN has its own dense head (hidden_units in its variant), so widening the lesson's
    network retrains the lesson's model and the variants that inherit the width only."""
    restore(project)
    set_params(project, model__hidden_units=[64])
    ran = settings_then_would_rerun(project)
    assert {"train", "variant_train@assignment"} & ran == {"train"}
    assert "variant_train@cnn" not in ran and "variant_settings@cnn" in ran
    settings = json.loads((project / "reports/variants/cnn/settings.json").read_text())
    assert settings["model"]["hidden_units"] == [128]


def test_adding_a_variant_builds_only_it_and_reverting_trains_nothing(project):
    """A new variation reruns its own three stages and the course after compare, and no other
    stage: read from `dvc status` and DVC's graph (tests.helpers.would_rerun), as `make
    repro`'s scheduler reads them, instead of training it (issue 32: 46 s of the suite). Its
    settings stage then runs for real and writes the variation's folder; reverting
    params.yaml runs compare alone, which deletes that folder (DVC leaves the outputs of a
    stage gone from dvc.yaml where they are), and the comparison and the page keep their
    bytes: nothing is trained, and `dvc status` is clean.

    Moved: the comparison table with the added variation in params.yaml's order, and compare
    deleting a removed variation's model folder as well as its reports, to
    test_compare_lists_an_added_variation_and_deletes_a_removed_ones_folders below; a
    variation's model written by its train stage, to this module's build (DVC fails a stage
    that leaves a declared output unwritten); stages restored from the run-cache after a
    revert, to tests/test_pipeline.py
    (test_reverting_a_change_restores_the_results_from_the_run_cache).
    """
    restore(project)
    shown = ("reports/comparison/variants.csv", "reports/lessons/digit-predictor/index.html")
    before = {name: (project / name).read_bytes() for name in shown}
    set_variants(project, {**DEFAULT_VARIANTS, "wide": {"model": {"hidden_units": [256]}}})
    assert set(would_rerun(project)) == variant_stages("wide") | set(COURSE_STAGES)
    ran = stages_run(
        run(["dvc", "repro", "--single-item", "variant_settings@wide"], project).stdout
    )
    assert ran == ["variant_settings@wide"]
    assert (project / "reports/variants/wide/settings.json").is_file()

    run(["git", "checkout", "params.yaml"], project)
    reverted = repro(project)
    assert reverted == {"compare"}
    assert not (project / "reports/variants/wide").exists()
    assert {name: (project / name).read_bytes() for name in before} == before
    status = run(["dvc", "status", "--json"], project).stdout
    assert json.loads(status) == {}, status


def test_compare_lists_an_added_variation_and_deletes_a_removed_ones_folders(project, tmp_path):
    """compare, run in-process on this build's reports with a variation `wide` added (its
    folders a copy of logistic's): the table lists it in params.yaml's order, after the
    defaults and before the scikit-learn model; run again without it, compare deletes its
    reports and model folders and writes the build's own table again."""
    reports, models = tmp_path / "reports", tmp_path / "models"
    shutil.copytree(project / "reports/variants", reports)
    shutil.copytree(project / "models/variants", models)
    shutil.copytree(reports / "logistic", reports / "wide")
    shutil.copytree(models / "logistic", models / "wide")

    def compare_with(names: list[str]) -> pd.DataFrame:
        compare.compare(
            project / "reports/metrics.json",
            project / "reports/history.csv",
            reports,
            models,
            tmp_path / "comparison",
            project / "reports/sklearn/metrics.json",
            names=names,
            hidden=["assignment"],
        )
        return pd.read_csv(tmp_path / "comparison/variants.csv")

    table = compare_with([*NAMES, "wide"])
    assert list(table["variant"]) == ["lesson", *NAMES, "wide", "sklearn"]
    assert (models / "wide/model.keras").is_file()

    compare_with(NAMES)
    assert not (reports / "wide").exists() and not (models / "wide").exists()
    assert sorted(path.name for path in models.iterdir() if path.is_dir()) == sorted(NAMES)
    built = (project / "reports/comparison/variants.csv").read_bytes()
    assert (tmp_path / "comparison/variants.csv").read_bytes() == built


def test_a_bad_override_stops_that_variant_with_one_line(project):
    restore(project)
    set_variants(project, dict(DEFAULT_VARIANTS, cnn={"train": {"epochs": 0}}))
    result = run(["dvc", "repro"], project, check=False)
    assert result.returncode != 0
    assert (
        "error: params.yaml: variants.cnn.train.epochs = 0 is not a whole number from 1 to 1000\n"
        in result.stderr
    )
    assert "Traceback" not in result.stdout + result.stderr
    set_variants(project, dict(DEFAULT_VARIANTS, cnn={"model": {"kinds": "cnn"}}))
    result = run(["dvc", "repro"], project, check=False)
    assert "error: params.yaml: unknown key variants.cnn.model.kinds; allowed: " in result.stderr


def test_a_variation_named_lesson_is_refused_before_anything_trains(project):
    restore(project)
    set_variants(project, {"lesson": {"train": {"epochs": 2}}})
    result = run(["dvc", "repro"], project, check=False)
    assert result.returncode != 0
    assert (
        "error: params.yaml: variants.lesson is not allowed: the comparison calls the lesson's "
        "own model so; choose another name\n" in result.stderr
    )
    assert not any(
        stage.startswith(("variant_train", "compare")) for stage in stages_run(result.stdout)
    )
    assert "variant_settings@lesson" in stages_run(result.stdout)
    run(["git", "checkout", "params.yaml", "dvc.lock"], project)
    run(["dvc", "checkout"], project)
