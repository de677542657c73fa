"""The logistic-regression lesson's files (course/logistic-regression/): its text, quiz and plan
fill in from a real small build's values, its quiz's computed answers equal a recomputation
from the sklearn stage's outputs, and its code cells, run as a student runs them, give the
stage's accuracy."""

from __future__ import annotations

import json
import pickle
import sys
import types

import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml

from courseware import audience, lesson, quiz
from tests.helpers import ROOT, copy_build, course_rebuilt, run, stages_run

pytestmark = pytest.mark.slow

FOLDER = ROOT / "course/logistic-regression"


@pytest.fixture(scope="module")
def built(lesson_build):
    project = lesson_build[0]
    values = json.loads((project / "reports/values.json").read_text(encoding="utf-8"))
    return project, values


def test_the_front_matter_gives_a_summary_and_no_keras_model():
    text = (FOLDER / "lesson.md").read_text(encoding="utf-8")
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["model"] == "none"
    assert header["summary"].startswith("The digit story told with scikit-learn")
    assert header["jupytext"]["text_representation"]["format_name"] == "myst"


def test_the_lesson_and_plan_fill_in_from_the_builds_values(built):
    _, values = built
    shown = audience.student_values(values)
    path = FOLDER / "lesson.md"
    filled = lesson.fill(lesson.read_course_text(path), shown, path)
    parts = lesson.parse(filled, path, figures=shown["figures"])
    assert [part.name for part in parts if part.kind == "build"] == [
        "notebook", "variations", "quiz"
    ]  # fmt: skip
    text = " ".join(filled.split())
    sklearn = values["sklearn"]
    assert (
        f"In this build that is {sklearn['train_images']:,} training images and "
        f"{sklearn['test_images']:,} test images." in text
    )
    assert f"IMAGES = {sklearn['settings']['images']}" in text
    plan = FOLDER / "plan.md"
    said = " ".join(lesson.fill(lesson.read_course_text(plan), values, plan).split())
    assert f"after {sklearn['iterations']:,} iterations" in said


def test_the_quizs_computed_answers_equal_a_recomputation_from_the_stages_outputs(built):
    project, values = built
    path = FOLDER / "quiz.yaml"
    questions = quiz.load(path)
    assert len(questions) == 12
    answered = {
        entry["topic"]: question
        for entry, question in zip(
            questions, quiz.answer(questions, audience.student_values(values), path), strict=True
        )
    }
    reports = project / "reports/sklearn"
    predictions = pd.read_csv(reports / "predictions.csv")
    metrics = json.loads((reports / "metrics.json").read_text(encoding="utf-8"))
    model = pickle.loads((project / "models/sklearn/model.pkl").read_bytes())
    images = yaml.safe_load((project / "params.yaml").read_text())["sklearn"]["images"]

    assert answered["training-share"].value == pytest.approx(
        100 * (images - len(predictions)) / images
    )
    assert answered["training-share"].value == pytest.approx(80.0)
    right = np.mean(predictions["true"] == predictions["predicted"])
    assert answered["test-accuracy"].value == pytest.approx(100 * right)
    assert answered["iterations"].value == model.n_iter_[0] == metrics["iterations"]
    assert sum(question.computed for question in answered.values()) == 3


def test_the_lessons_code_cells_give_the_stages_accuracy(built, monkeypatch):
    """The cells run in order as a student runs them, with MNIST from the build's verified
    file (Keras's loader would fetch it), at the build's small size."""
    project, values = built
    path = FOLDER / "lesson.md"
    filled = lesson.fill(lesson.read_course_text(path), values, path)
    parts = lesson.parse(filled, path, values["figures"])
    code = [part.text for part in parts if part.kind == "code"]

    def load_data():
        with np.load(project / "data/raw/mnist.npz") as mnist:
            return (mnist["x_train"], mnist["y_train"]), (mnist["x_test"], mnist["y_test"])

    keras = types.ModuleType("keras")
    keras.datasets = types.SimpleNamespace(mnist=types.SimpleNamespace(load_data=load_data))
    monkeypatch.setitem(sys.modules, "keras", keras)
    matplotlib.use("Agg")
    namespace: dict = {}
    for cell in code:
        exec(compile(cell, str(path), "exec"), namespace)
    assert namespace["IMAGES"] == values["sklearn"]["images"] == 2500
    assert len(namespace["x_test"]) == values["sklearn"]["test_images"]
    assert abs(namespace["accuracy"] - values["sklearn"]["accuracy"]) <= 0.005


def test_editing_the_lessons_files_reruns_no_training(built, tmp_path):
    project = copy_build(built[0], tmp_path / "project")
    for name in ("lesson.md", "quiz.yaml", "plan.md"):
        edited = project / "course/logistic-regression" / name
        edited.write_text(edited.read_text(encoding="utf-8") + "\n# An edit.\n", encoding="utf-8")
    ran = stages_run(run(["dvc", "repro"], project).stdout)
    assert ran == course_rebuilt("logistic-regression")  # No training, of any model.
