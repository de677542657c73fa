"""The lesson as notebooks: valid, standing alone, with this build's settings and figures, the
student's without solutions or answers, and proved by running them (at a reduced size, and
offline: tests/helpers.OFFLINE_MNIST says how).

Uses copies of the session's small builds (tests/conftest.py).
"""

from __future__ import annotations

import ast
import base64
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from stages import notebooks
from tests.helpers import (
    BROWSER_ARGS,
    add_an_epoch,
    chromium,
    copy_build,
    execute_notebook,
    printed,
    run,
    run_stage,
    set_params,
    workspace,
    would_rerun,
)

pytestmark = pytest.mark.slow

# The reduced size, as papermill would inject it after the cell tagged `parameters`.
REDUCED = "TRAIN_SIZE = 2000\nTEST_SIZE = 500\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory, variants_build) -> Path:
    return copy_build(variants_build[0], tmp_path_factory.mktemp("notebooks") / "project")


# The first lesson's notebooks, by the names these tests give them.
NOTEBOOKS = {
    "lesson.ipynb": "reports/lessons/digit-predictor/digit-predictor.ipynb",
    "answer_key.ipynb": "reports/instructor/digit-predictor/answer_key.ipynb",
}


def read(project: Path, name: str) -> nbformat.NotebookNode:
    return nbformat.read(project / NOTEBOOKS[name], as_version=4)


def normalised(code: str) -> str:
    return " ".join(code.split())


def code_cells(notebook, tag: str | None = None) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"
            and (tag is None or tag in cell.metadata.get("tags", []))]  # fmt: skip


def test_both_notebooks_are_valid_and_the_students_leaks_nothing(built):
    student, key = read(built, "lesson.ipynb"), read(built, "answer_key.ipynb")
    nbformat.validate(student)
    nbformat.validate(key)
    solutions = code_cells(key, "solution")
    assert solutions, "the key has no solution cell: nothing to search for"
    text = normalised(json.dumps([cell.source for cell in student.cells]))
    student_code = normalised(" ".join(cell.source for cell in code_cells(student)))
    for cell in solutions:
        assert normalised(cell.source) not in student_code
    assert code_cells(student, "exercise") and not code_cells(key, "exercise")
    # The quiz's answers and explanations are in the key only.
    key_text = json.dumps([cell.source for cell in key.cells])
    for marker in ("**(right)**", "*Why:*", "*Answer:*"):
        assert marker in key_text  # The search has teeth: the key has each of them.
        assert marker not in text
    settings = json.loads((built / "reports/variants/assignment/settings.json").read_text())
    assert "leaky_relu" in json.dumps(settings)  # the assignment's settings, left out below
    changes = "; ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}"
                        for k, v in settings["changes"].items())  # fmt: skip
    assert normalised(changes) not in text


def test_the_students_code_stands_alone_and_sets_every_setting_to_this_builds(built):
    student = read(built, "lesson.ipynb")
    imported = set()
    for cell in code_cells(student):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module.split(".")[0])
    # Keras, Matplotlib and NumPy, and the standard library's hashlib and pathlib, with which
    # the code checks a copy of MNIST beside the notebook.
    assert imported == {"keras", "matplotlib", "numpy", "hashlib", "pathlib"}
    source = "\n".join(cell.source for cell in code_cells(student))
    assert "keras.datasets.mnist.load_data()" in source and "/ 255" in source
    settings = json.loads((built / "reports/settings.json").read_text())
    flat = {f"{section}.{key}": value for section in ("model", "train")
            for key, value in settings[section].items() if not isinstance(value, dict)}  # fmt: skip
    flat |= {f"train.augmentation.{k}": v for k, v in settings["train"]["augmentation"].items()}
    assert len(flat) == 15
    for key, value in flat.items():
        assert f"{notebooks.setting_constant(key)} = {value!r}" in source, key


def test_the_figures_the_text_shows_travel_inside_the_notebook(built):
    student = read(built, "lesson.ipynb")
    attached = {name: data["image/png"] for cell in student.cells
                for name, data in cell.get("attachments", {}).items()}  # fmt: skip
    shown = set(
        re.findall(r"\(attachment:([\w.]+)\)", json.dumps([c.source for c in student.cells]))
    )
    assert shown == set(attached) and len(shown) == 6
    grid = (built / "reports/figures/prediction_grid.png").read_bytes()
    assert base64.b64decode(attached["prediction_grid.png"]) == grid


def test_a_setting_the_code_does_not_set_is_refused_in_one_line():
    cells = [nbformat.v4.new_code_cell("EPOCHS = 5\nDROPOUT = 0.0\n")]
    with pytest.raises(notebooks.NotebookError) as error:
        notebooks.check_settings(cells, {"train": {"epochs": 5, "batch_size": 32}}, "lesson.md")
    assert str(error.value) == (
        "lesson.md: the lesson's code does not set train.batch_size (BATCH_SIZE = 32), so its "
        "notebook would train another network than this build; add it to a code cell"
    )
    with pytest.raises(notebooks.NotebookError, match=r"sets EPOCHS = 5, but this build trained"):
        notebooks.check_settings(cells, {"train": {"epochs": 2}}, "lesson.md")


def run_notebook(project: Path, name: str, tmp_path: Path) -> nbformat.NotebookNode:
    """The notebook as a student would run it in a classroom without internet, at the reduced
    size: with the course's mnist.npz beside it, and Keras unable to download anything."""
    shutil.copy(project / "reports/mnist.npz", tmp_path / "mnist.npz")
    return execute_notebook(project / NOTEBOOKS[name], None, tmp_path, REDUCED)


def errors_of(cell) -> list[str]:
    return [
        output["ename"] for output in cell.get("outputs", []) if output["output_type"] == "error"
    ]


def test_the_student_notebook_runs_and_only_its_stubs_raise(built, tmp_path):
    ran = run_notebook(built, "lesson.ipynb", tmp_path)
    stubs = code_cells(ran, "exercise")
    assert stubs
    for cell in code_cells(ran):
        expected = ["NotImplementedError"] if cell in stubs else []
        assert errors_of(cell) == expected, (cell.source[:80], errors_of(cell))
    text = printed(code_cells(ran))
    accuracy = float(re.search(r"test accuracy: ([\d.]+)%", text).group(1)) / 100
    assert 0 <= accuracy <= 1
    assert "right on" in text and "of 500 test images" in text


def test_the_key_notebook_runs_every_cell(built, tmp_path):
    ran = run_notebook(built, "answer_key.ipynb", tmp_path)
    assert code_cells(ran, "solution")
    assert [errors_of(cell) for cell in code_cells(ran) if errors_of(cell)] == []
    assert re.search(
        r"the improved network: test accuracy [\d.]+%", printed(code_cells(ran, "solution"))
    )


def test_a_new_setting_reruns_the_notebooks(built):
    """What DVC reruns when a setting of the model changes, from `dvc status`, without
    retraining (tests.helpers.would_rerun). What an edit of the lesson reruns is
    tests/test_course.py::test_an_edit_of_the_lesson_reruns_only_what_renders_it, by a real
    `dvc repro`."""
    set_params(built, train__epochs=2)
    try:
        ran = would_rerun(built)
        assert {"train", "values", "notebook@digit-predictor", "key_notebook@digit-predictor"} <= (
            set(ran)
        )
    finally:
        run(["git", "checkout", "params.yaml"], built)


def test_the_notebooks_follow_the_lesson_and_the_settings(built, tmp_path, monkeypatch):
    """The student's notebook takes the author's last word and the settings the model trained
    with: the lesson is edited, and the record of a training of two epochs put in place of the
    build's (reports/settings.json and history.csv, as train writes them), and values and the
    notebook stage are run in-process (tests.helpers.run_stage), instead of retraining through
    `dvc repro` as this test once did (32 s). That train records params.yaml's settings is
    checked here on the real build; that a new setting reruns the notebooks, the test above."""
    params = yaml.safe_load((built / "params.yaml").read_text())
    trained_with = json.loads((built / "reports/settings.json").read_text())
    assert (trained_with["model"], trained_with["train"]) == (params["model"], params["train"])
    assert params["train"]["epochs"] == 1  # The small build's, not the shipped params' 5.
    work = workspace(built, tmp_path / "work")
    monkeypatch.chdir(work)
    lesson = work / "course/digit-predictor/lesson.md"
    lesson.write_text(lesson.read_text() + "\nA last word from the author.\n")
    run_stage("notebook@digit-predictor")
    assert "A last word from the author." in json.dumps(read(work, "lesson.ipynb").cells[-1])
    source = "\n".join(c.source for c in code_cells(read(work, "lesson.ipynb")))
    assert "EPOCHS = 1" in source
    # Two epochs trained, as train would record them.
    trained_with["train"]["epochs"] = 2
    (work / "reports/settings.json").write_text(json.dumps(trained_with))
    add_an_epoch(work / "reports/history.csv")
    run_stage("values")
    run_stage("notebook@digit-predictor")
    source = "\n".join(c.source for c in code_cells(read(work, "lesson.ipynb")))
    assert "EPOCHS = 2" in source and "EPOCHS = 1" not in source
    text = json.dumps([c.source for c in read(work, "lesson.ipynb").cells])
    assert "This build trained for 2 epochs" in text


def test_the_page_offers_the_student_notebook_for_download_unchanged(built, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        view = browser.new_page(accept_downloads=True)
        view.goto((built / "reports/lessons/digit-predictor/index.html").as_uri())
        with view.expect_download() as download:
            view.get_by_role("link", name="Download this lesson as a notebook").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        browser.close()
    assert saved.name == "digit-predictor.ipynb"
    assert (
        saved.read_bytes()
        == (built / "reports/lessons/digit-predictor/digit-predictor.ipynb").read_bytes()
    )
    assert (built / "reports/lessons/digit-predictor/index.html").stat().st_size < 3 * 2**20


def loading_cells(project: Path) -> nbformat.NotebookNode:
    """The student notebook's cells up to the one that loads MNIST."""
    notebook = read(project, "lesson.ipynb")
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    last = next(i for i, cell in enumerate(cells) if "load_mnist()" in cell.source)
    notebook.cells = cells[: last + 1]
    return notebook


def test_the_notebook_loads_mnist_from_a_checked_copy_beside_it_and_refuses_another(
    built, tmp_path
):
    """The loading cells run in one kernel (one start, one import of Keras) in three folders
    in turn: with no copy, with the course's copy, with a copy one pixel off. The cell that
    loads MNIST defines load_mnist() and calls it, so each run of it reads the folder it runs
    in afresh. Three kernels took 18 s."""
    import numpy as np

    notebook = loading_cells(built)
    load = notebook.cells[-1]
    # No copy and no internet: Keras's download is what fails.
    (tmp_path / "none").mkdir()
    # The course's copy: loaded and used.
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(built / "reports/mnist.npz", good / "mnist.npz")
    # A file with one pixel changed: refused, naming the array.
    bad = tmp_path / "bad"
    bad.mkdir()
    with np.load(built / "reports/mnist.npz") as data:
        arrays = {name: data[name].copy() for name in data.files}
    arrays["x_test"][0, 0, 0] ^= 1
    np.savez(bad / "mnist.npz", **arrays)
    for folder in (good, bad):
        notebook.cells += [
            nbformat.v4.new_code_cell(f"import os\nos.chdir({str(folder)!r})"),
            nbformat.v4.new_code_cell(load.source),
        ]
    path = tmp_path / "lesson.ipynb"
    nbformat.write(notebook, path)
    ran = execute_notebook(path, None, tmp_path / "none")
    in_none, in_good, in_bad = (ran.cells[i] for i in (-5, -3, -1))
    assert [in_none.source, in_good.source, in_bad.source] == [load.source] * 3
    assert [errors_of(cell) for cell in ran.cells[:-5]] == [[]] * (len(ran.cells) - 5)
    assert errors_of(in_none) == ["OSError"]
    assert errors_of(in_good) == []
    assert "training images: (2000, 28, 28)" in printed([in_good])
    assert errors_of(in_bad) == ["ValueError"]
    assert "mnist.npz is not MNIST (x_test differs)" in json.dumps(in_bad.outputs)
