"""The quiz: the author's questions (course/quiz.yaml), answered with this build's values.

`load` reads and checks the file; `answer` computes each question's choices and right answer
from the values file (a question that cannot be computed for this build stops the build,
unless it marks itself optional), and renders its text. Nothing here writes a file, and
nothing here decides what students may see: courseware/audience.py does.

docs/quiz.md describes the format for authors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml
from markdown_it import MarkdownIt

from courseware import lesson
from pipeline.cli import StageError

WAYS = {
    ("choices", "answer"),
    ("choices", "answer_from"),
    ("choices_from", "answer_from"),
    ("number",),
}
KEYS = {"topic", "question", "explanation", "choices", "answer", "choices_from", "answer_from",
        "number", "tolerance", "unit", "optional"}  # fmt: skip


class QuizError(StageError):
    def __init__(self, path: Path | str, number: int | None, message: str):
        where = f"{path}: question {number}" if number else f"{path}"
        super().__init__(f"{where}: {message}")


@dataclass
class Question:
    """One question as a reader meets it: text and choices as HTML, and its right answer:
    the indexes of the right choices, or a number with its tolerance."""

    number: int
    topic: str
    text: str
    explanation: str
    choices: list[str] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    value: float | None = None
    tolerance: float = 0.0
    unit: str = ""
    computed: bool = False
    # The same texts in Markdown, values filled in, for the notebooks.
    source: str = ""
    explanation_source: str = ""
    choice_sources: list[str] = field(default_factory=list)

    @property
    def answer_source(self) -> str:
        return self.answer_text()

    @property
    def kind(self) -> str:
        return "number" if self.value is not None else "choice"

    def answer_text(self) -> str:
        """The right answer as the key shows it."""
        if self.kind == "number":
            tolerance = format_number(self.tolerance)
            return f"{format_number(self.value)}{self.unit} (within {tolerance}{self.unit})"
        return " or ".join(self.choices[index] for index in self.right)


def format_number(value: float) -> str:
    """A number as a person writes it: 101770 -> '101,770', 97.61 -> '97.61'."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.6f}".rstrip("0").rstrip(".")


class QuizLoader(yaml.SafeLoader):
    """YAML that keeps each choice as the author wrote it.

    YAML 1.1 reads a plain `yes`, `no`, `on` or `off` as a boolean and `0.10` as the number
    0.1, so `choices: [yes, no]` showed "True" and "False". A teacher writes such choices as
    text, so every plain scalar in a `choices` list is read as its text; everywhere else the
    file reads as ordinary YAML (`optional: true` stays a boolean, `answer: 2` a number).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        for key, value in node.value:
            if key.value == "choices" and isinstance(value, yaml.SequenceNode):
                for item in value.value:
                    if isinstance(item, yaml.ScalarNode) and item.style is None:
                        item.tag = "tag:yaml.org,2002:str"
        return super().construct_mapping(node, deep=deep)


def load_if_any(path: Path) -> list[dict[str, Any]]:
    """The questions of a lesson's quiz file, or none for a lesson without one."""
    return load(path) if Path(path).exists() else []


def load(path: Path) -> list[dict[str, Any]]:
    """The questions of the quiz file, checked for their form (not yet for their answers)."""
    text = lesson.read_course_text(path)
    try:
        tree = yaml.load(text, Loader=QuizLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise QuizError(path, None, f"not valid YAML{where}") from None
    except RecursionError:
        raise QuizError(path, None, "not a quiz: its YAML nests too deeply") from None
    questions = tree.get("questions") if isinstance(tree, Mapping) else None
    if not isinstance(questions, list) or not questions:
        raise QuizError(path, None, "expected `questions:`, a list of questions")
    topics: set[str] = set()
    for number, entry in enumerate(questions, start=1):
        _check_form(entry, path, number)
        if entry["topic"] in topics:
            raise QuizError(path, number, f"topic {entry['topic']!r} is used twice")
        topics.add(entry["topic"])
    return questions


def _check_form(entry: Any, path: Path | str, number: int) -> None:
    if not isinstance(entry, Mapping):
        raise QuizError(path, number, "is not a mapping of topic, question, explanation, ...")
    unknown = sorted(str(key) for key in set(entry) - KEYS)
    if unknown:
        raise QuizError(
            path, number, f"unknown key {unknown[0]}; allowed: {', '.join(sorted(KEYS))}"
        )
    for key in ("topic", "question", "explanation"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise QuizError(path, number, f"has no {key} (a text)")
    ways = {way for way in WAYS if all(key in entry for key in way)}
    given = {key for key in ("choices", "answer", "choices_from", "answer_from", "number")
             if key in entry}  # fmt: skip
    if len(ways) != 1 or given != set(next(iter(ways))):
        raise QuizError(
            path,
            number,
            "needs exactly one of: choices + answer, choices + answer_from, "
            "choices_from + answer_from, number (+ tolerance)",
        )
    if "choices" in entry:
        choices = entry["choices"]
        if not (isinstance(choices, list) and len(choices) >= 2
                and all(isinstance(c, (str, int, float)) for c in choices)):  # fmt: skip
            raise QuizError(path, number, "choices must be a list of at least 2 texts")
        written = [str(choice) for choice in choices]
        for later, choice in enumerate(written):
            if choice in written[:later]:
                first = written.index(choice) + 1
                raise QuizError(
                    path, number, f"choices {first} and {later + 1} are the same text: {choice!r}"
                )
    if "answer" in entry:
        answer, count = entry["answer"], len(entry["choices"])
        if not (isinstance(answer, int) and not isinstance(answer, bool) and 1 <= answer <= count):
            raise QuizError(
                path,
                number,
                f"answer {answer!r} is not one of the choices: a number from 1 to {count}",
            )
    tolerance = entry.get("tolerance", 0)
    if "number" in entry and not (
        isinstance(tolerance, (int, float))
        and not isinstance(tolerance, bool)
        and math.isfinite(tolerance)
        and tolerance >= 0
    ):
        raise QuizError(
            path, number, f"tolerance {tolerance!r} is not a finite number of at least 0"
        )
    if not isinstance(entry.get("optional", False), bool):
        raise QuizError(path, number, "optional must be true or false")


class NotComputable(Exception):
    """The build cannot answer this question (for example, with one model there is no best)."""


def answer(
    questions: list[dict[str, Any]], values: Mapping[str, Any], path: Path | str
) -> list[Question]:
    """Each question with its text rendered and its answer computed from `values`; optional
    questions the build cannot answer are left out, numbered on without them."""
    answered: list[Question] = []
    # One Markdown parser for every text of the quiz: making one costs more than a question's
    # rendering.
    parser = lesson.markdown()
    for number, entry in enumerate(questions, start=1):
        try:
            question = _answer(entry, values, path, number, parser)
        except NotComputable as why:
            if entry.get("optional", False):
                continue
            raise QuizError(
                path,
                number,
                f"cannot be answered by this build ({why}); "
                "mark it `optional: true` to leave it out when so",
            ) from None
        question.number = len(answered) + 1
        answered.append(question)
    return answered


def _answer(
    entry: Mapping[str, Any], values: Mapping[str, Any], path: Any, number: int, parser: MarkdownIt
) -> Question:
    def text(markdown_text: str, block: bool = True) -> str:
        return render(_fill(markdown_text, values, path, number), block)

    def render(filled: str, block: bool = True) -> str:
        return parser.render(filled) if block else parser.renderInline(filled)

    question = Question(
        number, entry["topic"], text(entry["question"], block=False), text(entry["explanation"])
    )
    question.computed = "answer" not in entry
    question.source = _fill(entry["question"], values, path, number).strip()
    question.explanation_source = _fill(entry["explanation"], values, path, number).strip()
    if "number" in entry:
        value = _evaluate(entry["number"], values, path, number)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise NotComputable(f"number gives {value!r}, not a number")
        question.value = float(value)
        question.tolerance = float(entry.get("tolerance", 0))
        question.unit = str(entry.get("unit", ""))
        return question
    if "choices" in entry:
        written = [str(choice) for choice in entry["choices"]]
    else:
        computed = _evaluate(entry["choices_from"], values, path, number)
        if not isinstance(computed, list) or len(computed) < 2:
            raise NotComputable(f"choices_from gives {computed!r}, fewer than 2 choices")
        written = [str(choice) for choice in computed]
    # A choice may quote values, as the question does: the page and the notebooks both show
    # it filled in, and a computed answer is matched with the text the reader sees.
    filled = [_fill(choice, values, path, number).strip() for choice in written]
    if "answer" in entry:
        right = {entry["answer"] - 1}
    else:
        accepted = _evaluate(entry["answer_from"], values, path, number)
        accepted = accepted if isinstance(accepted, list) else [accepted]
        missing = [str(each) for each in accepted if str(each) not in filled]
        if missing or not accepted:
            raise QuizError(
                path,
                number,
                f"answer_from gives {', '.join(missing) or 'nothing'}, "
                f"not among the choices ({', '.join(filled)})",
            )
        right = {filled.index(str(each)) for each in accepted}
    # Choices that come out equal for this build (computed ones, or two that quote values
    # equal here) are shown once, and that one is right if any of them was: a student must
    # never meet the same text twice, once right and once wrong.
    shown = list(dict.fromkeys(filled))
    if len(shown) < 2:
        raise NotComputable(
            f"its choices come out as one: {shown[0]}, fewer than 2 different choices"
        )
    question.choice_sources = shown
    question.choices = [render(choice, block=False) for choice in shown]
    question.right = sorted({shown.index(filled[index]) for index in right})
    return question


def _environment() -> jinja2.Environment:
    return lesson.environment()


def _evaluate(expression: str, values: Mapping[str, Any], path: Any, number: int) -> Any:
    """A Jinja2 expression over the values file, as plain Python data."""
    environment = _environment()
    try:
        compiled = environment.compile_expression(str(expression), undefined_to_none=False)
        result = compiled(**lesson.ValueTree(values))
        if isinstance(result, jinja2.Undefined):
            result._fail_with_undefined_error()
        return lesson.finite(lesson.plain(result))
    except lesson.NotFinite as error:
        raise QuizError(path, number, f"{expression!r} gives {error}") from None
    except NameError:
        # What Jinja's code for a constant that is not finite (1e309) raises; see lesson.py.
        raise QuizError(path, number, f"{expression!r} gives {lesson.INFINITE}") from None
    except jinja2.TemplateSyntaxError as error:
        if lesson.misspelt_filter(error):
            raise QuizError(path, number, lesson.misspelt_filter(error)) from None
        raise QuizError(
            path, number, f"{expression!r} is not an expression ({error.message})"
        ) from None
    except jinja2.UndefinedError as error:
        raise QuizError(path, number, lesson.unknown_value_message(str(error), values)) from None
    except jinja2.TemplateError as error:
        # The sandbox's refusals: an attribute or a size outside what a quiz may compute.
        why = str(error).rstrip(".")
        raise QuizError(
            path, number, f"{expression!r} reaches outside the values ({why})"
        ) from None
    except (TypeError, ValueError, ArithmeticError) as error:
        raise NotComputable(f"{expression!r}: {error}") from None


def _fill(text: str, values: Mapping[str, Any], path: Any, number: int) -> str:
    try:
        return lesson.fill(text, values, path)
    except lesson.LessonError as error:
        # The line within one question's text says little; the question's number says where.
        message = str(error).split(": ", 1)[1] if ": " in str(error) else str(error)
        raise QuizError(path, number, message) from None
