"""The shipped quiz on a real build: the key answers every question with this build's numbers,
the student page gives nothing away, marks answers right and wrong by keyboard, prints as a
handout, and editing the quiz reruns only what renders it.

Uses a copy of the session's small build with the default variations (tests/conftest.py).
"""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import pytest
import yaml

from courseware import audience, lesson, quiz
from tests.helpers import (
    BROWSER_ARGS,
    ROOT,
    chromium,
    copy_build,
    course_rebuilt,
    readable,
    run,
    run_stage,
    set_params,
    stages_run,
    workspace,
    would_rerun,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, variants_build) -> Path:
    return copy_build(variants_build[0], tmp_path_factory.mktemp("quiz") / "project")


def expected_answers(project: Path) -> dict[str, set[str]]:
    """The computed questions' answers, from reports/ with this test's own code."""
    reports = project / "reports"
    metrics = json.loads((reports / "metrics.json").read_text())["test"]
    matrix = pd.read_csv(reports / "confusion_matrix.csv").drop(columns="true").to_numpy()
    wrong = matrix.sum(axis=1) - np.diag(matrix)
    table = pd.read_csv(reports / "comparison/variants.csv")
    # The scikit-learn model, tested on another split, is not in the race.
    table = table[table["tested_on"] == "MNIST's test images"]
    best = table.loc[table["test_accuracy"] == table["test_accuracy"].max(), "variant"]
    return {
        "test-accuracy": pytest.approx(metrics["accuracy"] * 100, abs=1e-6),
        "weights": metrics["weights"],
        "most-confused-digit": {str(d) for d in np.flatnonzero(wrong == wrong.max())},
        "best-model": set(best),
    }


def key_answers(project: Path) -> dict[str, str]:
    """Each question of the key, by its number: the text of its right answer(s)."""
    key = (project / "reports/instructor/digit-predictor/answer_key.html").read_text()
    found = {}
    for number, body in re.findall(
        r'<section class="key-question" id="question-(\d+)">(.*?)</section>', key, flags=re.S
    ):
        right = re.findall(r'<li class="right-choice">(.*?)</li>', body, flags=re.S)
        number_answer = re.search(r"Right for this build: <strong>([^<]*)</strong>", body)
        found[int(number)] = (right, number_answer.group(1) if number_answer else None, body)
    return found


def computed_in_key(project: Path) -> dict[str, set[str]]:
    quiz = yaml.safe_load((project / "course/digit-predictor/quiz.yaml").read_text())["questions"]
    topics = {entry["topic"]: number for number, entry in enumerate(quiz, start=1)}
    answers = key_answers(project)
    accuracy = answers[topics["test-accuracy"]][1]
    weights = answers[topics["weights"]][1]
    return {
        "test-accuracy": float(accuracy.split("%")[0].replace(",", "")),
        "weights": int(weights.split(" ")[0].replace(",", "")),
        "most-confused-digit": set(answers[topics["most-confused-digit"]][0]),
        "best-model": set(answers[topics["best-model"]][0]),
    }


def test_the_key_holds_every_question_with_its_answer_and_this_builds_numbers(project):
    questions = yaml.safe_load((project / "course/digit-predictor/quiz.yaml").read_text())[
        "questions"
    ]
    answers = key_answers(project)
    assert sorted(answers) == list(range(1, len(questions) + 1))
    for number, (right, value, body) in answers.items():
        assert right or value, f"question {number} has no answer in the key"
        assert 'class="explanation"' in body
    assert computed_in_key(project) == expected_answers(project)


def test_a_retraining_reruns_the_values_the_page_and_the_key(project):
    """What DVC reruns when a setting of the model changes, from `dvc status`, without
    retraining (tests.helpers.would_rerun); that the key then follows the new reports is the
    next test, in-process."""
    set_params(project, train__epochs=2)
    try:
        ran = would_rerun(project)
        assert {"train", "values", "page@digit-predictor", "answer_key@digit-predictor"} <= set(ran)
    finally:
        run(["git", "checkout", "params.yaml"], project)


def test_the_computed_answers_follow_new_reports(project, tmp_path, monkeypatch):
    """The key's computed answers are the reports' own, whatever they say: the reports are
    changed as a retraining would change them (another accuracy, weight count, most confused
    digit and best model), and compare, values and the key are run in-process on them
    (tests.helpers.run_stage), instead of retraining through `dvc repro` as this test once did
    (42 s); that a retraining reruns these stages is the test above."""
    work = workspace(project, tmp_path / "work")
    monkeypatch.chdir(work)
    before = computed_in_key(work)
    metrics_file = work / "reports/metrics.json"
    metrics = json.loads(metrics_file.read_text())
    # The lesson's model the best of all, with another weight count.
    metrics["test"]["accuracy"] = 0.99990
    metrics["test"]["weights"] += 1234
    metrics_file.write_text(json.dumps(metrics))
    # A digit that was not the most confused becomes it.
    confusion_file = work / "reports/confusion_matrix.csv"
    matrix = pd.read_csv(confusion_file)
    digit = min(set(range(10)) - {int(d) for d in before["most-confused-digit"]})
    matrix.loc[matrix["true"] == digit, str((digit + 1) % 10)] += 1000
    matrix.to_csv(confusion_file, index=False)
    for stage in ("compare", "values", "answer_key@digit-predictor"):
        run_stage(stage)
    after = computed_in_key(work)
    assert after == expected_answers(work)
    changed = [topic for topic in before if before[topic] != after[topic]]
    assert changed == ["test-accuracy", "weights", "most-confused-digit", "best-model"], after


def test_the_key_shows_the_assignments_solution_and_the_session_plan(project):
    key = (project / "reports/instructor/digit-predictor/answer_key.html").read_text()
    settings = json.loads((project / "reports/variants/assignment/settings.json").read_text())
    assert "<h3>assignment (instructor only)</h3>" in key
    for dotted, value in settings["changes"].items():
        assert f"<td>{dotted}</td><td>{json.dumps(value)}</td>" in html.unescape(key)
    assert "Session plan" in key and "Before the session" in key


def student_leaks(page: str, key: str, project: Path) -> list[str]:
    """Instructor-only material found in the student page's source."""
    found = []
    for explanation in re.findall(r'<div class="explanation">(.*?)</div>', key, flags=re.S):
        words = readable(explanation)[:60]
        if words in readable(page):
            found.append(f"an explanation: {words}")
    for marker in ("right-choice", "(instructor only)", "instructor_only", "data-right",
                   "Right for this build", "Before the session"):  # fmt: skip
        if marker.lower() in page.lower():
            found.append(f"the marker {marker!r}")
    changes = json.loads((project / "reports/variants/assignment/settings.json").read_text())
    shown = "; ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}"
                      for k, v in changes["changes"].items())  # fmt: skip
    if shown in html.unescape(page):
        found.append("the assignment's settings")
    networks = re.search(r'id="networks">(.*?)</script>', page, flags=re.S)
    names = [network["name"] for network in json.loads(networks.group(1))] if networks else []
    if "assignment" in names:
        found.append("the assignment's network")
    weights = json.loads((project / "reports/variants/assignment/metrics.json").read_text())
    if f"{weights['test']['weights']:,}" in page:
        found.append("the assignment's weights, which give its layers away")
    return found


def test_the_student_page_holds_no_answer_explanation_or_instructor_only_material(project):
    page = (project / "reports/lessons/digit-predictor/index.html").read_text()
    key = (project / "reports/instructor/digit-predictor/answer_key.html").read_text()
    assert student_leaks(page, key, project) == []
    # The search has teeth: the key itself is full of what it looks for.
    assert len(student_leaks(key, key, project)) >= 5
    assert "assignment" in page  # Its score is shown, as the target to reach.


def test_editing_the_quiz_reruns_only_what_renders_it(project):
    quiz_file = project / "course/digit-predictor/quiz.yaml"
    original = quiz_file.read_text()
    quiz_file.write_text(original.replace("What is this lesson's goal?", "What is today's goal?"))
    try:
        ran = set(stages_run(run(["dvc", "repro"], project).stdout))
        assert ran == set(course_rebuilt("digit-predictor"))
        assert "What is today's goal?" in html.unescape(
            (project / "reports/lessons/digit-predictor/index.html").read_text()
        )
    finally:
        quiz_file.write_text(original)
        ran = stages_run(run(["dvc", "repro"], project).stdout)
    assert ran == []  # Both come back from the run-cache.


def test_a_question_the_build_cannot_answer_stops_the_page_in_one_line(lesson_build, tmp_path):
    """The lesson alone has no variations, so no best one: the shipped question is optional
    and left out; made compulsory, it stops the build."""
    project = copy_build(lesson_build[0], tmp_path / "project")
    page = (project / "reports/lessons/digit-predictor/index.html").read_text()
    assert "Which model reached the highest test accuracy" not in page
    quiz_file = project / "course/digit-predictor/quiz.yaml"
    quiz_file.write_text(quiz_file.read_text().replace("optional: true", "optional: false"))
    result = run(["dvc", "repro"], project, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.fullmatch(
        r"error: course/digit-predictor/quiz.yaml: question \d+: cannot be answered by this "
        r"build \(choices_from "
        r"gives \['lesson'\], fewer than 2 choices\); mark it `optional: true` to leave it out "
        r"when so",
        errors[0],
    ), result.stderr
    assert "Traceback" not in result.stderr


def right_and_wrong(project: Path, topic: str) -> tuple[int, list[int], list[int]]:
    """A choice question's number on the page, its right and its wrong choices."""
    quiz = yaml.safe_load((project / "course/digit-predictor/quiz.yaml").read_text())["questions"]
    number = next(n for n, entry in enumerate(quiz, start=1) if entry["topic"] == topic)
    right, _, _ = key_answers(project)[number]
    entry = quiz[number - 1]
    choices = entry.get("choices")
    right_indexes = [choices.index(html.unescape(text)) for text in right] if choices else []
    return number, right_indexes, [i for i in range(len(choices or [])) if i not in right_indexes]


def answer_by_keyboard(view, number: int, choice: int | None = None, typed: str = "") -> str:
    """Answer question `number` with the keyboard only; the verdict's first line."""
    form = view.locator(f"form.question[data-number='{number}']")
    if choice is not None:
        form.locator("input[type=radio]").first.focus()
        view.keyboard.press("Space")
        for _ in range(choice):
            view.keyboard.press("ArrowDown")
    else:
        form.locator("input.number-answer").focus()
        view.keyboard.type(typed)
    view.keyboard.press("Tab")
    assert view.evaluate("document.activeElement.textContent") == "Check"
    view.keyboard.press("Enter")
    return form.locator(".verdict").inner_text().splitlines()[0]


def test_the_quiz_marks_answers_by_keyboard_and_prints_as_a_handout(project, tmp_path):
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader

    page_file = project / "reports/lessons/digit-predictor/index.html"
    url = page_file.as_uri()
    quiz = yaml.safe_load((project / "course/digit-predictor/quiz.yaml").read_text())["questions"]
    topics = {entry["topic"]: n for n, entry in enumerate(quiz, start=1)}
    accuracy = json.loads((project / "reports/metrics.json").read_text())["test"]["accuracy"]
    requests = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        view = browser.new_page(viewport={"width": 1000, "height": 900})
        view.on("request", lambda request: requests.append(request.url))
        view.goto(url, wait_until="load")
        # Every control has a name a screen reader announces.
        unnamed = view.eval_on_selector_all(
            "form.question input, form.question button",
            "controls => controls.filter(c => !(c.labels && c.labels.length) && "
            "!c.getAttribute('aria-label')).length",
        )
        assert unnamed == 0

        number, right, wrong = right_and_wrong(project, "softmax")
        assert answer_by_keyboard(view, number, choice=right[0]) == "Right."
        view.reload()
        assert answer_by_keyboard(view, number, choice=wrong[0]) == "Not right."

        tolerance = quiz[topics["test-accuracy"] - 1]["tolerance"]
        inside = f"{accuracy * 100 + tolerance * 0.9:.4f}"
        outside = f"{accuracy * 100 + tolerance * 1.1:.4f}"
        for typed, verdict in ((inside, "Right."), (outside, "Not right.")):
            view.reload()
            assert answer_by_keyboard(view, topics["test-accuracy"], typed=typed) == verdict

        # The handout: printed, with no drawing area or file control, and an answer box of
        # 2 cm or more under each question answered with a number, none under a choice.
        view.reload()
        view.emulate_media(media="print")
        shown = view.eval_on_selector_all(
            "canvas.pad, input[type=file], form.question button",
            "nodes => [nodes.length, nodes.filter(n => n.offsetParent !== null).length]",
        )
        assert shown == [len(quiz) + 2, 0], shown  # A button per question, the pad, the file.
        boxes = view.eval_on_selector_all(
            ".answer-box",
            "boxes => boxes.map(b => [b.closest('form').dataset.kind, "
            "b.getBoundingClientRect().height])",
        )
        numbers = view.locator("form.question[data-kind=number]").count()
        assert 0 < numbers < len(quiz)
        assert [kind for kind, _ in boxes] == ["number"] * numbers, boxes
        assert min(height for _, height in boxes) >= 2 / 2.54 * 96, boxes
        pdf = view.pdf(format="A4")
        browser.close()
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
    assert "1. What is this lesson's goal?" in text
    assert "Draw one digit" not in text and "open an image" not in text
    assert set(requests) == {url}


# How the page reads a typed number (docs/quiz.md): the number each question expects, what a
# student types, and the verdict. Commas in groups of three group thousands, as the page
# prints them; otherwise one comma is a decimal comma; a point is always a decimal point.
UNREAD = "This is not a number the page can read: write it as 101770, 101,770 or 97.61."
TYPED = [
    (101770, "101,770", "Right."),
    (101770, "101770", "Right."),
    (101770, " 101,770 ", "Right."),
    (101770, "101.770", "Not right."),
    (0.9761, "0.9761", "Right."),
    (0.9761, "0,9761", "Right."),
    (0.976, "0,976", "Right."),  # A leading 0 starts no group of thousands.
    (97.61, "97,61", "Right."),
    (97.61, "97.61", "Right."),
    (97610, "97,610", "Right."),  # Three digits after the comma: thousands.
    (1234567.5, "1,234,567.5", "Right."),
    (-0.5, "-0,5", "Right."),
    (1234.5, "1.234,5", UNREAD),
    (123456, "12,34,56", UNREAD),
    (1, "one", UNREAD),
    (1, "", "Type a number first."),
]  # fmt: skip


def quiz_page(tmp_path: Path, numbers: list[float]) -> Path:
    """The page's quiz section alone, from the page's own template and script: a number
    question (tolerance 0) for each of `numbers`, its answer encoded as the page encodes it."""
    path = tmp_path / "quiz.yaml"
    path.write_text(
        yaml.safe_dump({"questions": [
            {"topic": f"n{index}", "question": "How many?", "number": repr(number),
             "explanation": "Because."}
            for index, number in enumerate(numbers)
        ]}),
        encoding="utf-8",
    )  # fmt: skip
    questions = quiz.answer(quiz.load(path), {}, path)
    salt = audience.salt(b"a build")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters.update(lesson.FILTERS)
    template = (ROOT / "templates/page.html.j2").read_text(encoding="utf-8")
    page = tmp_path / "quiz.html"
    page.write_text(
        environment.from_string(template).render(
            values={"metrics": {"test": {"accuracy": 0.9}}},
            parts=[lesson.Part(kind="build", name="quiz")],
            unplaced=[],
            nav={"course": "", "home": "../../index.html", "previous": None, "next": None},
            title="Quiz",
            questions=questions,
            answers=audience.encode_answers(questions, salt),
            salt=salt,
            script=(ROOT / "templates/quiz.js").read_text(encoding="utf-8"),
            style="",
        ),
        encoding="utf-8",
    )
    return page


def test_the_number_box_reads_numbers_as_the_page_prints_them(tmp_path):
    from playwright.sync_api import sync_playwright

    page_file = quiz_page(tmp_path, [number for number, _, _ in TYPED])
    verdicts = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        view = browser.new_page()
        view.goto(page_file.as_uri(), wait_until="load")
        for number, (_, typed, _) in enumerate(TYPED, start=1):
            verdicts.append(answer_by_keyboard(view, number, typed=typed))
        browser.close()
    assert verdicts == [verdict for _, _, verdict in TYPED]


def test_the_weights_typed_as_the_page_prints_them_are_right(project):
    """The shipped question on this build's weights, typed with the page's thousands comma,
    and the test accuracy with a decimal comma."""
    from playwright.sync_api import sync_playwright

    quiz_entries = yaml.safe_load((project / "course/digit-predictor/quiz.yaml").read_text())[
        "questions"
    ]
    topics = {entry["topic"]: n for n, entry in enumerate(quiz_entries, start=1)}
    metrics = json.loads((project / "reports/metrics.json").read_text())["test"]
    weights, accuracy = metrics["weights"], metrics["accuracy"] * 100
    page = html.unescape((project / "reports/lessons/digit-predictor/index.html").read_text())
    assert f"{weights:,}" in page  # The page prints the weights with a thousands comma.
    typed = [
        ("weights", f"{weights:,}", "Right."),
        ("weights", str(weights), "Right."),
        ("weights", f"{weights + 1:,}", "Not right."),
        ("test-accuracy", f"{accuracy:.2f}".replace(".", ","), "Right."),
        ("test-accuracy", f"{accuracy:.2f}", "Right."),
    ]
    verdicts = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        view = browser.new_page()
        for topic, text, _ in typed:
            view.goto(
                (project / "reports/lessons/digit-predictor/index.html").as_uri(), wait_until="load"
            )
            verdicts.append(answer_by_keyboard(view, topics[topic], typed=text))
        browser.close()
    assert verdicts == [verdict for _, _, verdict in typed]
