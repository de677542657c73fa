"""Fail closed: nothing instructor-only reaches a student output.

The flag that makes a variation instructor-only is the variation's own setting; everything a
student reads is filled from the student's values; the comparison figure students see leaves
the instructor-only variations out; and the last check (courseware/leaks.py) stops the page, the
student's notebook and `make site` when any of five kinds of instructor-only material is
planted in them. The rules and messages are tested in-process; the planted kinds on a copy of
the session's small build with the default variations.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from courseware import audience, leaks, lesson, quiz
from pipeline import artifacts, config, names
from stages import compare, notebooks, page, variants
from tests.helpers import LESSONS, ROOT, copy_build, run, stage_entry

# The values of a build with one instructor-only variation, enough for the rules below.
VALUES = {
    "lesson": {"instructor_only": False, "changes": "nothing", "accuracy": 0.97,
               "settings": {"model": {"hidden_units": [128]}, "train": {"optimizer": "adam"}}},
    "variants": {
        "assignment": {"instructor_only": True, "accuracy": 0.98, "epochs": 10, "weights": 9,
                       "changes": "model.hidden_units=[128, 64]; train.optimizer=rmsprop",
                       "settings": {"model": {"hidden_units": [128, 64]},
                                    "train": {"optimizer": "rmsprop"}}},
        "wide": {"instructor_only": False, "accuracy": 0.975, "epochs": 5, "weights": 8,
                 "changes": "train.optimizer=rmsprop",
                 "settings": {"model": {"hidden_units": [128]},
                              "train": {"optimizer": "rmsprop"}}},
    },
}  # fmt: skip


def shipped_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def check_variation(tree: dict, name: str = "assignment") -> dict:
    rules = variants.rules_for(name)
    return config.check(tree, config.sections(rules), rules, optional=(f"variants.{name}",))


# The flag ---------------------------------------------------------------------------------


def test_the_shipped_assignment_is_marked_instructor_only_by_its_own_flag():
    params = shipped_params()
    assert "course" not in params
    assert names.instructor_only(params["variants"]) == ["assignment"]
    checked = check_variation(params)
    assert checked["variants.assignment.instructor_only"] is True
    resolved = variants.resolve(checked, "assignment")
    assert "instructor_only" not in resolved["changes"]  # Not a setting it trains with.


def test_a_misspelt_flag_is_an_unknown_key_refused_in_one_line():
    params = shipped_params()
    del params["variants"]["assignment"]["instructor_only"]
    params["variants"]["assignment"]["instructor_onyl"] = True
    with pytest.raises(config.ParamsError) as error:
        check_variation(params)
    assert str(error.value).startswith(
        "params.yaml: unknown key variants.assignment.instructor_onyl; allowed: "
    )
    assert "variants.assignment.instructor_only" in str(error.value)


def test_a_flag_that_is_not_true_or_false_is_refused():
    params = shipped_params()
    params["variants"]["assignment"]["instructor_only"] = "assignment"
    with pytest.raises(config.ParamsError, match=r"instructor_only = 'assignment' is not true"):
        check_variation(params)


def test_the_old_course_list_is_refused_rather_than_half_honoured():
    params = shipped_params()
    params["course"] = {"instructor_only": ["assigment"]}
    with pytest.raises(config.ParamsError) as error:
        check_variation(params)
    assert "course.instructor_only is no longer read" in str(error.value)
    assert "instructor_only: true" in str(error.value)


def test_variations_without_the_flag_and_no_variations_work():
    assert names.instructor_only({}) == []
    assert names.instructor_only(None) == []
    assert names.instructor_only({"cnn": {"model": {"kind": "cnn"}}}) == []
    params = shipped_params()
    params["variants"] = {"wide": {"model": {"hidden_units": [256]}}}
    assert check_variation(params, "wide")["model.hidden_units"] == [128]


# Student outputs from student values only --------------------------------------------------


def test_the_lesson_quoting_an_instructor_only_value_stops_naming_file_line_and_value():
    text = "# T\n\nThe solution uses {{ variants.assignment.settings.train.optimizer }}.\n"
    shown = audience.student_values(VALUES)
    with pytest.raises(lesson.LessonError) as error:
        lesson.fill(text, shown, "course/lesson.md")
    assert str(error.value) == (
        "course/lesson.md:3: variants.assignment.settings is instructor-only (the variation "
        "assignment is marked instructor_only: true), and a student's page or notebook may "
        "not quote it"
    )
    # The instructor's outputs quote it.
    assert "rmsprop" in lesson.fill(text, VALUES, "course/lesson.md")


@pytest.mark.parametrize(
    "field",
    [
        {"question": "Which optimizer? {{ variants.assignment.settings.train.optimizer }}"},
        {"explanation": "It took {{ variants.assignment.epochs }} epochs."},
        {"choices": ["{{ variants.assignment.changes }}", "b"]},
    ],
)
def test_a_quiz_question_quoting_an_instructor_only_value_stops_naming_the_question(field):
    entry = {"topic": "t", "question": "Q?", "explanation": "Because.", "choices": ["a", "b"]}
    entry |= {"answer": 1, **field}
    questions = [{"topic": "first", "question": "Q?", "explanation": "E.", "number": "1"}, entry]
    with pytest.raises(quiz.QuizError) as error:
        quiz.answer(questions, audience.student_values(VALUES), "course/quiz.yaml")
    assert re.fullmatch(
        r"course/quiz.yaml: question 2: variants\.assignment\.(settings|epochs|changes) is "
        r"instructor-only \(the variation assignment is marked instructor_only: true\), and a "
        r"student's page or notebook may not quote it",
        str(error.value),
    )
    assert quiz.answer(questions, VALUES, "course/quiz.yaml")  # The key answers it.


CELL = "---\njupytext: {{}}\n---\n# T\n\n```{{code-cell}} ipython3\n{options}\nx = 1\n```\n"


def test_a_code_cells_options_may_not_use_jinja():
    text = CELL.format(options=':tags: [{{ "solution" }}]')
    for decide in (audience.for_students, audience.for_the_instructor):
        with pytest.raises(lesson.LessonError) as error:
            decide(text, "course/lesson.md")
        assert str(error.value).startswith(
            "course/lesson.md:7: a code cell's options may not use {{ }} or {% %}"
        )


def test_a_code_cell_whose_options_do_not_read_is_refused_not_kept():
    text = CELL.format(options=":tags: solution, [")
    with pytest.raises(lesson.LessonError) as error:
        audience.for_students(text, "course/lesson.md")
    assert str(error.value).startswith("course/lesson.md:7: :tags: ")


# The figure ------------------------------------------------------------------------------


def test_the_students_comparison_figure_leaves_the_instructor_only_variation_out(tmp_path):
    """compare draws curves.png for students without the hidden variation, and
    instructor/curves.png with every model; the instructor's notebook attaches the latter."""
    history = {"epoch": [0, 1], "loss": [0.5, 0.3], "accuracy": [0.8, 0.9]}
    metrics = {"test": {"accuracy": 0.9, "loss": 0.3, "macro_f1": 0.9, "images": 9, "weights": 10}}
    reports, models = tmp_path / "variants", tmp_path / "models"
    artifacts.write_csv(tmp_path / "history.csv", __import__("pandas").DataFrame(history))
    artifacts.write_json(tmp_path / "metrics.json", metrics)
    # The scikit-learn model has no epochs: no curve, in either figure.
    artifacts.write_json(tmp_path / "sklearn.json", {**metrics, "images": 45})
    for name, epochs in (("secret", 3), ("open", 2)):
        folder = reports / name
        artifacts.write_json(folder / "settings.json", {"changes": {"train.epochs": epochs}})
        artifacts.write_json(folder / "metrics.json", metrics)
        frame = {key: [value[0]] * epochs for key, value in history.items()}
        frame["epoch"] = list(range(epochs))
        artifacts.write_csv(folder / "history.csv", __import__("pandas").DataFrame(frame))
        (models / name).mkdir(parents=True)
    out = tmp_path / "comparison"
    compare.compare(
        tmp_path / "metrics.json", tmp_path / "history.csv", reports, models, out,
        tmp_path / "sklearn.json", names=["secret", "open"], hidden=["secret"],
    )  # fmt: skip
    curves = compare.curves_table(
        {name: __import__("pandas").read_csv(path) for name, path in
         [("lesson", tmp_path / "history.csv"), ("secret", reports / "secret/history.csv"),
          ("open", reports / "open/history.csv")]}
    )  # fmt: skip
    drawn = tmp_path / "drawn"
    artifacts.write_png(compare.curves_figure(curves, ["lesson", "open"]), drawn / "students.png")
    artifacts.write_png(
        compare.curves_figure(curves, ["lesson", "secret", "open"]), drawn / "all.png"
    )
    assert (out / "curves.png").read_bytes() == (drawn / "students.png").read_bytes()
    assert (out / "instructor/curves.png").read_bytes() == (drawn / "all.png").read_bytes()
    assert (drawn / "students.png").read_bytes() != (drawn / "all.png").read_bytes()
    student = notebooks.figure_files(tmp_path, out, instructor=False)
    teacher = notebooks.figure_files(tmp_path, out, instructor=True)
    assert student["curves"] == out / "curves.png"
    assert teacher["curves"] == out / "instructor/curves.png"


# The last check, on a real build ----------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory, variants_build) -> Path:
    return copy_build(variants_build[0], tmp_path_factory.mktemp("closed") / "project")


def build_page(project: Path, monkeypatch) -> None:
    """The first lesson's page stage's main(), in-process, as dvc.yaml runs it."""
    monkeypatch.chdir(project)
    page.main(stage_entry("page@digit-predictor", project)["cmd"].split()[3:])


def secrets(project: Path) -> dict[str, str]:
    """One instance of each kind, read from the build with this test's own code."""
    values = json.loads((project / "reports/values.json").read_text(encoding="utf-8"))
    quiz_tree = yaml.safe_load(
        (project / "course/digit-predictor/quiz.yaml").read_text(encoding="utf-8")
    )
    plan = (project / "course/digit-predictor/plan.md").read_text(encoding="utf-8")
    student_lesson = (project / "course/digit-predictor/lesson.md").read_text(encoding="utf-8")
    plan_line = next(
        line.strip(" -*") for line in plan.splitlines()
        if len(line.strip(" -*")) > 40 and "{{" not in line and "`" not in line
        and "|" not in line and line.strip(" -*") not in student_lesson
    )  # fmt: skip
    network = json.loads(
        (project / "reports/variants/assignment/network.json").read_text(encoding="utf-8")
    )
    kernel = next(layer["kernel"] for layer in network["layers"] if "kernel" in layer)
    weights = np.frombuffer(base64.b64decode(kernel), dtype="<f4")[1000:1008]
    return {
        "settings": values["variants"]["assignment"]["changes"].split("; ")[-1],
        "solution": 'stack.append(layers.RandomZoom(0.1, fill_mode="constant"))',
        "explanation": next(
            q["explanation"] for q in quiz_tree["questions"] if "{{" not in q["explanation"]
        ),
        "key": plan_line,
        "weights": " ".join(repr(float(w)) for w in weights),
        "weights in base64": kernel[4001:4061],
    }


KINDS = ["settings", "solution", "explanation", "key", "weights", "weights in base64"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_planted_stops_the_page(project, monkeypatch, kind):
    """Planted in the lesson's text; the plan's line in a quiz question, since a line the
    student's lesson holds too is not the key's alone."""
    planted = secrets(project)[kind]
    author_file = project / (
        "course/digit-predictor/quiz.yaml" if kind == "key" else "course/digit-predictor/lesson.md"
    )
    original = author_file.read_text(encoding="utf-8")
    before = (project / "reports/lessons/digit-predictor/index.html").read_bytes()
    if kind == "key":
        tree = yaml.safe_load(original)
        tree["questions"][0]["question"] = planted
        author_file.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    else:
        author_file.write_text(original + f"\n## Extra\n\n{planted}\n", encoding="utf-8")
    try:
        with pytest.raises(leaks.LeakError) as error:
            build_page(project, monkeypatch)
    finally:
        author_file.write_text(original, encoding="utf-8")
    assert str(error.value).startswith(
        "reports/lessons/digit-predictor/index.html: a student file would hold "
        "instructor-only material "
        f"({kind.split()[0]}: "
    )
    assert (
        project / "reports/lessons/digit-predictor/index.html"
    ).read_bytes() == before  # Nothing written.


def test_the_unplanted_build_passes_the_check_and_the_key_does_not(project):
    found = leaks.read_withheld(
        values_path=project / "reports/values.json",
        lesson_path=project / "course/digit-predictor/lesson.md",
        quiz_path=project / "course/digit-predictor/quiz.yaml",
        plan_path=project / "course/digit-predictor/plan.md",
        variant_reports=project / "reports/variants",
    )
    for name in ("index.html", "digit-predictor.ipynb"):
        text = (project / "reports/lessons/digit-predictor" / name).read_text(encoding="utf-8")
        assert leaks.search(leaks.views(name, text), found) is None
    # The search has teeth: the instructor's outputs are full of what it looks for.
    for name in ("answer_key.html", "answer_key.ipynb"):
        text = (project / "reports/instructor/digit-predictor" / name).read_text(encoding="utf-8")
        assert leaks.search(leaks.views(name, text), found) is not None
    assert all(getattr(found, kind) for kind in ("settings", "solution", "explanation", "key"))
    assert len(found.weights) > 100_000


def test_a_planted_explanation_stops_the_students_notebook(project):
    quiz_file = project / "course/digit-predictor/quiz.yaml"
    original = quiz_file.read_text(encoding="utf-8")
    tree = yaml.safe_load(original)
    explanation = secrets(project)["explanation"]
    tree["questions"][0]["question"] = explanation.replace("\n", " ")
    before = (project / "reports/lessons/digit-predictor/digit-predictor.ipynb").read_bytes()
    quiz_file.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    try:
        result = run(
            ["dvc", "repro", "--single-item", "notebook@digit-predictor"], project, check=False
        )
    finally:
        quiz_file.write_text(original, encoding="utf-8")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode != 0
    assert errors and errors[0].startswith(
        "error: reports/lessons/digit-predictor/digit-predictor.ipynb: a student file would "
        "hold instructor-only material "
        "(explanation: "
    )
    assert "Traceback" not in result.stderr
    run(["dvc", "checkout", "reports/lessons/digit-predictor/digit-predictor.ipynb"], project)
    assert (
        project / "reports/lessons/digit-predictor/digit-predictor.ipynb"
    ).read_bytes() == before


def test_make_site_searches_every_file_it_publishes(project, monkeypatch):
    from tools import site

    page_file = project / "reports/lessons/digit-predictor/index.html"
    original = page_file.read_bytes()
    planted = secrets(project)["key"]
    page_file.write_bytes(original.replace(b"</body>", f"<p>{planted}</p></body>".encode()))
    try:
        with pytest.raises(site.SiteError) as error:
            site.build_site(project, project / "_site", None)
    finally:
        page_file.write_bytes(original)
    assert "a student file would hold instructor-only material (key: " in str(error.value)
    assert not (project / "_site").exists()
    written = site.build_site(project, project / "_site", None)
    assert sorted(path.relative_to(project / "_site").as_posix() for path in written) == sorted(
        ["index.html", "mnist.npz"]
        + [f"lessons/{name}/{file}" for name in LESSONS for file in ("index.html", f"{name}.ipynb")]
    )


def test_the_default_build_hides_the_assignment_from_students(project):
    """Its changes, settings and network stay out of the page and the notebook; its score is
    shown as the target."""
    page_text = (project / "reports/lessons/digit-predictor/index.html").read_text(encoding="utf-8")
    values = json.loads((project / "reports/values.json").read_text(encoding="utf-8"))
    assert values["variants"]["assignment"]["instructor_only"] is True
    for change in values["variants"]["assignment"]["changes"].split("; "):
        assert change not in page_text
    assert "assignment" in page_text
    assert (project / "reports/comparison/instructor/curves.png").is_file()
    assert (project / "reports/comparison/curves.png").read_bytes() != (
        project / "reports/comparison/instructor/curves.png"
    ).read_bytes()


def test_a_question_quoting_an_instructor_only_value_stops_the_page(project, monkeypatch):
    quiz_file = project / "course/digit-predictor/quiz.yaml"
    original = quiz_file.read_text(encoding="utf-8")
    tree = yaml.safe_load(original)
    tree["questions"][0]["question"] = (
        "Which optimizer? {{ variants.assignment.settings.train.optimizer }}"
    )
    quiz_file.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    try:
        with pytest.raises(quiz.QuizError) as error:
            build_page(project, monkeypatch)
    finally:
        quiz_file.write_text(original, encoding="utf-8")
    assert str(error.value).startswith(
        "course/digit-predictor/quiz.yaml: question 1: variants.assignment.settings is "
        "instructor-only"
    )


@pytest.mark.parametrize("tag", ["Solution", "solutions", "soluton", "excercise"])
def test_a_tag_that_is_nearly_solution_or_exercise_is_refused(tag):
    text = CELL.format(options=f":tags: [{tag}]")
    with pytest.raises(lesson.LessonError) as error:
        audience.for_students(text, "course/lesson.md")
    assert str(error.value).startswith(f"course/lesson.md:7: tag {tag!r} is not one the build")
    assert "did you mean" in str(error.value)
    # Other tags (Jupyter's own, papermill's) are the author's business.
    assert audience.for_students(CELL.format(options=":tags: [hide-input]"), "l.md")


def test_a_solution_cell_inside_another_fence_is_refused():
    text = (
        "# T\n\n````{figure} grid\n:alt: a grid\n```{code-cell} ipython3\n:tags: [solution]\n"
        "secret = 42\n```\n````\n"
    )
    with pytest.raises(lesson.LessonError) as error:
        audience.for_students(text, "course/lesson.md")
    assert str(error.value).startswith(
        "course/lesson.md:6: a cell tagged for the instructor inside another fence"
    )


def test_a_solution_cell_left_open_stops_the_students_lesson_too():
    """Blanking from an open fence would take the rest of the lesson with it, silently."""
    text = (
        "# T\n\nIntro.\n\n```{code-cell} ipython3\n:tags: [solution]\nsecret = 42\n\n"
        "## Next\n\n```{code-cell} ipython3\nx = 1\n```\n"
    )
    with pytest.raises(lesson.LessonError) as error:
        audience.for_students(text, "course/lesson.md")
    assert str(error.value).startswith("course/lesson.md:5: ")
    assert "never closed" in str(error.value) or "open" in str(error.value)


def test_the_page_searches_the_notebook_it_carries(project, monkeypatch):
    notebook = project / "reports/lessons/digit-predictor/digit-predictor.ipynb"
    original = notebook.read_bytes()
    tree = json.loads(original)
    tree["cells"][0]["source"] = secrets(project)["solution"]
    notebook.write_text(json.dumps(tree), encoding="utf-8")
    try:
        with pytest.raises(leaks.LeakError) as error:
            build_page(project, monkeypatch)
    finally:
        notebook.write_bytes(original)
    assert str(error.value).startswith(
        "reports/lessons/digit-predictor/digit-predictor.ipynb: a student file would hold "
        "instructor-only material (solution: "
    )


def test_make_site_says_in_one_line_when_the_values_are_not_json(project):
    from tools import site

    values_file = project / "reports/values.json"
    original = values_file.read_bytes()
    values_file.write_text("{ not json", encoding="utf-8")
    try:
        with pytest.raises(site.SiteError) as error:
            site.build_site(project, project / "_site2", None)
    finally:
        values_file.write_bytes(original)
    assert str(error.value).startswith("cannot gather what students may not see: ")
    assert "\n" not in str(error.value)
