"""The quiz: its form checked question by question, its answers computed from the build, and
what students may see of it decided in courseware/audience.py. Small inputs; the shipped quiz on
a real build, in a browser and printed, is in tests/test_quiz_page.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from courseware import audience, lesson, quiz
from pipeline.cli import StageError
from stages import notebooks
from tests.helpers import ROOT

VALUES = {
    "metrics": {"test": {"accuracy": 0.97612, "weights": 101770}},
    "models": ["lesson", "logistic", "cnn"],
    "best": {"name": "cnn", "names": ["cnn"], "accuracy": 0.99},
    "confusion": {"most_confused_digit": {"digits": [7, 9], "count": 49}},
    "variants": {"cnn": {"instructor_only": False}},
}

CHOICE = {"topic": "t", "question": "Why /255?", "choices": ["a", "b", "c"], "answer": 2,
          "explanation": "Because."}  # fmt: skip


def write_quiz(tmp_path: Path, *questions) -> Path:
    path = tmp_path / "quiz.yaml"
    path.write_text(yaml.safe_dump({"questions": list(questions)}))
    return path


def answered(tmp_path, *questions, values=VALUES) -> list[quiz.Question]:
    path = write_quiz(tmp_path, *questions)
    return quiz.answer(quiz.load(path), values, path)


def test_the_shipped_quiz_covers_the_courses_topics_and_four_computed_questions():
    questions = quiz.load(ROOT / "course/digit-predictor/quiz.yaml")
    topics = {question["topic"] for question in questions}
    assert {"lesson-objective", "why-normalise", "hidden-activation", "softmax", "argmax",
            "why-mnist", "dense-layer", "overfitting", "how-it-learns",
            "normalise-gains"} <= topics  # fmt: skip
    computed = {q["topic"]: q for q in questions if "answer" not in q}
    assert computed["test-accuracy"]["number"] == "metrics.test.accuracy * 100"
    assert (computed["weights"]["number"], computed["weights"]["tolerance"]) == (
        "metrics.test.weights", 0
    )  # fmt: skip
    assert computed["best-model"]["answer_from"] == "best.names"
    assert computed["best-model"]["optional"] is True
    assert computed["most-confused-digit"]["answer_from"] == "confusion.most_confused_digit.digits"


def test_answers_are_computed_from_the_values(tmp_path):
    questions = answered(
        tmp_path,
        CHOICE,
        {"topic": "acc", "question": "Accuracy in %?", "number": "metrics.test.accuracy * 100",
         "tolerance": 0.05, "unit": "%", "explanation": "{{ metrics.test.accuracy | percent }}"},
        {"topic": "best", "question": "Best?", "choices_from": "models",
         "answer_from": "best.names", "explanation": "It is {{ best.name }}."},
        {"topic": "digit", "question": "Which?", "choices": [str(d) for d in range(10)],
         "answer_from": "confusion.most_confused_digit.digits", "explanation": "Row sums."},
    )  # fmt: skip
    assert [q.kind for q in questions] == ["choice", "number", "choice", "choice"]
    assert questions[0].right == [1]
    assert (questions[1].value, questions[1].tolerance, questions[1].unit) == (
        pytest.approx(97.612), 0.05, "%"
    )  # fmt: skip
    assert questions[1].explanation == "<p>97.61%</p>\n"
    assert (questions[2].choices, questions[2].right) == (["lesson", "logistic", "cnn"], [2])
    assert questions[2].explanation == "<p>It is cnn.</p>\n"
    assert questions[3].right == [7, 9]  # A tie accepts each tied digit.
    assert [q.computed for q in questions] == [False, True, True, True]


def test_a_question_the_build_cannot_answer_stops_the_build_unless_optional(tmp_path):
    one_model = {**VALUES, "models": ["lesson"], "best": {"names": ["lesson"]}}
    best = {"topic": "best", "question": "Best?", "choices_from": "models",
            "answer_from": "best.names", "explanation": "x"}  # fmt: skip
    with pytest.raises(quiz.QuizError) as error:
        answered(tmp_path, CHOICE, best, values=one_model)
    assert str(error.value) == (
        f"{tmp_path / 'quiz.yaml'}: question 2: cannot be answered by this build (choices_from "
        "gives ['lesson'], fewer than 2 choices); mark it `optional: true` to leave it out when so"
    )
    kept = answered(tmp_path, best | {"optional": True}, CHOICE, values=one_model)
    assert [(q.number, q.topic) for q in kept] == [(1, "t")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"answer": 4}, "question 2: answer 4 is not one of the choices: a number from 1 to 3"),
        ({"answer": "b"}, "question 2: answer 'b' is not one of the choices: a number from 1"),
        ({"explanation": ""}, "question 2: has no explanation (a text)"),
        ({"choices": ["only"]}, "question 2: choices must be a list of at least 2 texts"),
        ({"number": "1"}, "question 2: needs exactly one of: choices + answer, choices + "),
        ({"answer_from": "models"}, "question 2: needs exactly one of: choices + answer, "),
        ({"hint": "x"}, "question 2: unknown key hint; allowed: answer, answer_from, choices"),
        ({"topic": "t"}, "question 2: topic 't' is used twice"),
        ({"optional": "yes"}, "question 2: optional must be true or false"),
    ],
)
def test_a_malformed_question_is_named_by_its_number(tmp_path, change, message):
    path = write_quiz(tmp_path, CHOICE, {**CHOICE, "topic": "u", **change})
    with pytest.raises(quiz.QuizError) as error:
        quiz.answer(quiz.load(path), VALUES, path)
    assert str(error.value).startswith(f"{path}: {message}")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"choices": ["0", "1"], "answer_from": "confusion.most_confused_digit.digits"},
         "answer_from gives 7, 9, not among the choices (0, 1)"),
        ({"number": "metrics.test.acuracy * 100"},
         "unknown value metrics.test.acuracy; did you mean metrics.test.accuracy?"),
        ({"number": "metrics.test.accuracy *"}, "'metrics.test.accuracy *' is not an expression"),
    ],
)  # fmt: skip
def test_a_computed_answer_that_names_no_choice_or_value_is_named(tmp_path, entry, message):
    question = {"topic": "x", "question": "Q?", "explanation": "E.", **entry}
    path = write_quiz(tmp_path, question)
    with pytest.raises(quiz.QuizError) as error:
        quiz.answer(quiz.load(path), VALUES, path)
    assert str(error.value).startswith(f"{path}: question 1: {message}")


def test_a_broken_quiz_file_is_one_line(tmp_path):
    path = tmp_path / "quiz.yaml"
    path.write_text("questions:\n  - topic: [a\n")
    with pytest.raises(quiz.QuizError, match=r"quiz.yaml: not valid YAML at line \d+$"):
        quiz.load(path)
    path.write_text("- just a list\n")
    with pytest.raises(quiz.QuizError, match=r"quiz.yaml: expected `questions:`, a list"):
        quiz.load(path)


def test_answers_travel_encoded_and_decode_with_the_builds_salt(tmp_path):
    questions = answered(tmp_path, CHOICE, {**CHOICE, "topic": "u"})
    salt = audience.salt(b'{"a": 1}')
    encoded = audience.encode_answers(questions, salt)
    assert encoded[0] != encoded[1]  # The same answer, but each question has its own stream.
    for question, text in zip(questions, encoded, strict=True):
        seed = audience.question_seed(salt, question.number)
        assert audience.decode(text, seed)["right"] == [1]
        assert audience.decode(text, seed)["explanation"] == "<p>Because.</p>\n"
    other = audience.salt(b'{"a": 2}')
    with pytest.raises((ValueError, UnicodeDecodeError)):
        audience.decode(encoded[0], audience.question_seed(other, 1))


def test_students_get_an_instructor_only_variations_score_but_not_its_settings():
    values = {
        "variants": {
            "assignment": {"instructor_only": True, "accuracy": 0.97, "changes": "x=1",
                           "settings": {"model": {}}, "epochs": 10, "weights": 109386},
            "cnn": {"instructor_only": False, "accuracy": 0.99, "changes": "kind=cnn",
                    "settings": {"model": {}}, "epochs": 3, "weights": 184586},
        }
    }  # fmt: skip
    shown = audience.student_values(values)
    assert shown["variants"]["assignment"] == {"instructor_only": True, "accuracy": 0.97}
    assert shown["variants"]["cnn"] == values["variants"]["cnn"]
    assert values["variants"]["assignment"]["changes"] == "x=1"  # The instructor's are whole.
    assert audience.hidden_variants(values) == ["assignment"]


def test_students_get_no_solution_cells_and_the_instructor_no_stubs():
    text = (
        "---\njupytext: {}\n---\n# T\n\n```{code-cell} ipython3\nx = 1\n```\n\n"
        "```{code-cell} ipython3\n:tags: [solution]\nx = {{ secret }}\n```\n\n"
        "```{code-cell} ipython3\n:tags: [exercise, setup]\nraise NotImplementedError\n```\n"
    )

    def code(source: str) -> list[str]:
        filled = lesson.fill(source, {"secret": 2}, "lesson.md")
        return [part.text for part in lesson.parse(filled, "lesson.md") if part.kind == "code"]

    assert code(text) == ["x = 1\n", "x = 2\n", "raise NotImplementedError\n"]
    student = audience.for_students(text, "lesson.md")
    assert "secret" not in student  # Blanked before any value is filled in...
    assert student.count("\n") == text.count("\n")  # ...line for line.
    assert lesson.fill(student, {}, "lesson.md")  # So a student's fill never needs it.
    assert code(student) == ["x = 1\n", "raise NotImplementedError\n"]
    assert code(audience.for_the_instructor(text, "lesson.md")) == ["x = 1\n", "x = 2\n"]


def test_choices_show_what_the_author_wrote_not_yaml_11s_reading_of_it(tmp_path):
    """YAML 1.1 reads yes/no/on/off as booleans and 0.10 as 0.1; a choice is shown as
    written, while the format's own flags (`optional: true`) stay booleans."""
    path = tmp_path / "quiz.yaml"
    path.write_text(
        "questions:\n"
        "  - topic: t\n    question: Is it?\n    choices: [yes, no, on, off, true]\n"
        "    answer: 1\n    explanation: E.\n"
        "  - topic: u\n    question: Which?\n    choices: [0.10, 1e3, ~, '7']\n"
        "    answer: 4\n    optional: true\n    explanation: E.\n",
        encoding="utf-8",
    )
    loaded = quiz.load(path)
    assert loaded[1]["optional"] is True and loaded[0]["answer"] == 1
    questions = quiz.answer(loaded, VALUES, path)
    assert questions[0].choices == ["yes", "no", "on", "off", "true"]
    assert questions[0].choice_sources == ["yes", "no", "on", "off", "true"]
    assert questions[1].choices == ["0.10", "1e3", "~", "7"]
    assert questions[0].answer_text() == "yes"


def test_choices_that_quote_values_reach_the_notebooks_filled_in(tmp_path):
    (question,) = answered(
        tmp_path,
        {"topic": "w", "question": "How many weights?", "explanation": "E.",
         "choices": ["{{ metrics.test.weights | thousands }}", "{{ best.name }}", "10"],
         "answer_from": "metrics.test.weights | thousands"},
    )  # fmt: skip
    assert question.choice_sources == ["101,770", "cnn", "10"]
    assert question.choices == ["101,770", "cnn", "10"]
    assert question.right == [0]  # The computed answer is matched with the filled choice.
    template = (ROOT / "templates/notebook.md.j2").read_text(encoding="utf-8")
    for instructor in (False, True):
        shown = notebooks.sections(template, {"settings": {}}, [question], instructor).quiz()
        assert "{{" not in shown and "   - cnn\n" in shown
    assert "   - 101,770 **(right)**\n" in shown  # The instructor's notebook marks it.


def test_equal_computed_choices_are_shown_once_and_right_if_any_copy_is(tmp_path):
    """A student never sees two identical choices, one of them marked wrong."""
    computed, filled = answered(
        tmp_path,
        {"topic": "c", "question": "Q?", "explanation": "E.",
         "choices_from": "[best.name, 'lesson', 'cnn', 'logistic']", "answer_from": "'cnn'"},
        {"topic": "f", "question": "Q?", "explanation": "E.",
         "choices": ["lesson", "{{ best.name }}", "cnn"], "answer": 3},
    )  # fmt: skip
    assert (computed.choices, computed.right) == (["cnn", "lesson", "logistic"], [0])
    assert (filled.choices, filled.choice_sources, filled.right) == (
        ["lesson", "cnn"], ["lesson", "cnn"], [1]
    )  # fmt: skip
    assert filled.answer_text() == "cnn"


def test_computed_choices_that_all_come_out_equal_cannot_be_answered(tmp_path):
    entry = {"topic": "c", "question": "Q?", "explanation": "E.",
             "choices_from": "[best.name, best.name]", "answer_from": "best.name"}  # fmt: skip
    with pytest.raises(quiz.QuizError) as error:
        answered(tmp_path, entry)
    assert str(error.value) == (
        f"{tmp_path / 'quiz.yaml'}: question 1: cannot be answered by this build (its choices "
        "come out as one: cnn, fewer than 2 different choices); mark it `optional: true` to "
        "leave it out when so"
    )
    assert answered(tmp_path, entry | {"optional": True}) == []


def test_a_choice_written_twice_is_refused_in_one_line(tmp_path):
    path = write_quiz(tmp_path, {**CHOICE, "choices": ["a", "b", "a"]})
    with pytest.raises(quiz.QuizError) as error:
        quiz.load(path)
    assert str(error.value) == f"{path}: question 1: choices 1 and 3 are the same text: 'a'"


# A number that is not finite stops the build, named by question, even in an optional
# question: optional is for a build that has no answer, not for a broken one.
@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"number": "metrics.test.weights * 1e308"}, "'metrics.test.weights * 1e308' gives inf "
         "is not a finite number"),
        ({"number": "nan", "optional": True}, "'nan' gives nan is not a finite number"),
        ({"choices_from": "[1, broken]", "answer_from": "1"}, "'[1, broken]' gives nan is not "
         "a finite number"),
        ({"number": "1", "tolerance": float("inf")}, "tolerance inf is not a finite number of "
         "at least 0"),
    ],
)  # fmt: skip
def test_a_number_that_is_not_finite_stops_the_build(tmp_path, entry, message):
    question = {"topic": "x", "question": "Q?", "explanation": "E.", **entry}
    path = write_quiz(tmp_path, question)
    values = {**VALUES, "nan": float("nan"), "broken": float("nan")}
    with pytest.raises(quiz.QuizError) as error:
        quiz.answer(quiz.load(path), values, path)
    assert str(error.value).startswith(f"{path}: question 1: {message}")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("''.__class__", "reaches outside the values (access to attribute '__class__' of 'str'"),
        ("models.append('x')", "reaches outside the values (access to attribute 'append'"),
        ("range(10**9) | list", "unknown value range;"),
        ("cycler", "unknown value cycler;"),
        ("'x' * 10**9", "reaches outside the values (`*` would make 1,000,000,000 items)"),
        ("metrics.test.accuracy | precent", "unknown filter precent; did you mean percent?"),
    ],
)  # fmt: skip
def test_a_computed_answer_reaching_outside_the_values_is_one_line(tmp_path, expression, message):
    question = {"topic": "x", "question": "Q?", "explanation": "E.", "number": expression}
    path = write_quiz(tmp_path, question)
    with pytest.raises(quiz.QuizError) as error:
        quiz.answer(quiz.load(path), VALUES, path)
    if message.startswith("reaches"):
        message = f"{expression!r} {message}"
    assert str(error.value).startswith(f"{path}: question 1: {message}")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"questions:\n  - topic: caf\xe9\n", "quiz.yaml:2: is not UTF-8 text (byte 0xe9)"),
        (b"questions: []\x00", "quiz.yaml:1: is not text: it holds a NUL character"),
        (b"[" * 5000, "quiz.yaml: not a quiz: its YAML nests too deeply"),
        (b"questions:\n  - {topic: a, 1: b, hint: c}\n",
         "quiz.yaml: question 1: unknown key 1; allowed"),
        (b" \n\n", "quiz.yaml: is empty: a file saved blank, or the wrong file?"),
        (b"~\n", "quiz.yaml: expected `questions:`, a list of questions"),
        (b"42\n", "quiz.yaml: expected `questions:`, a list of questions"),
    ],
)  # fmt: skip
def test_a_quiz_file_that_is_no_quiz_is_one_line(tmp_path, content, message):
    path = tmp_path / "quiz.yaml"
    path.write_bytes(content)
    with pytest.raises(StageError) as error:
        quiz.load(path)
    assert str(error.value).startswith(f"{tmp_path}/{message}")


def test_a_missing_quiz_or_a_folder_is_named(tmp_path):
    with pytest.raises(lesson.LessonError, match=r"quiz.yaml: file not found$"):
        quiz.load(tmp_path / "quiz.yaml")
    (tmp_path / "quiz.yaml").mkdir()
    with pytest.raises(lesson.LessonError, match=r"quiz.yaml: is a folder, not a text file$"):
        quiz.load(tmp_path / "quiz.yaml")
