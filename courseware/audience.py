"""What only the instructor may see, decided here and nowhere else.

Instructor-only:
- which choice of a quiz question is right, and the explanations: the student page carries
  them encoded, for its script to reveal once a student has answered (`encode_answers`);
- code cells tagged `solution` (`SOLUTION_TAG`); students get the cells tagged `exercise`,
  stubs that say what to write, in their place, and the instructor's notebook leaves those out;
- the settings, and so the networks, curves and code, of the variations params.yaml marks
  `instructor_only: true` (the assignment's, by default): students see their scores, as the
  target to reach;
- the session plan, and the answer key's own files.

Every student output is made from what `for_students` and `student_values` leave, and is
searched before it is written for what they leave out (courseware/leaks.py). The instructor's
outputs use the author's files and the values as they are.

The encoding of the answers is reversible by design: it keeps the answers out of sight of a
glance at the page's source, not from a student who reads its script.
"""

from __future__ import annotations

import base64
import copy
import difflib
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from courseware import lesson

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"


def without_cells(source: str, tag: str, path: Path | str) -> str:
    """The author's lesson with the code cells tagged `tag` blanked out, line for line (so
    that a mistake elsewhere is still reported on its line), before any value is filled in:
    a student's output never fills in, or shows, a solution. Which cells go is decided on the
    author's text as written, so a cell's options may not be filled in later (`:tags:` from
    `{{ }}` would decide after the fact), and a cell whose options do not read is refused
    rather than kept."""
    lines = source.splitlines(keepends=True)
    # A fence left open would blank, or keep, everything after it: refused first, named at
    # the line where it opened.
    for token in lesson.check_fences(source, path):
        if token.type != "fence":
            continue
        if not token.info.startswith("{code-cell}"):
            _refuse_hidden_cells(token, path)
            continue
        first = token.map[0] + 1
        for number, line in enumerate(token.content.splitlines(), start=first + 1):
            if not line.startswith(":"):
                break
            if "{{" in line or "{%" in line:
                raise lesson.LessonError(
                    path,
                    number,
                    "a code cell's options may not use {{ }} or {% %}: which cells students "
                    "get is decided before values are filled in; write the option as it is",
                )
        try:
            options = lesson.options_of(token.content, first)[0]
        except lesson.Mistake as mistake:
            raise lesson.LessonError(path, mistake.line, str(mistake)) from None
        _refuse_near_misses(options["tags"], path, first + 1)
        if tag in options["tags"]:
            for number in range(token.map[0], token.map[1]):
                lines[number] = "\n"
    return "".join(lines)


# The tags that decide who gets a cell. A tag that is nearly one of them (`Solution`,
# `solutions`, `soluton`) would keep a solution for students without a word, so it is refused.
AUDIENCE_TAGS = (SOLUTION_TAG, EXERCISE_TAG)


def _near_miss(tag: str) -> str | None:
    if tag in AUDIENCE_TAGS:
        return None
    found = difflib.get_close_matches(tag.lower(), AUDIENCE_TAGS, n=1, cutoff=0.75)
    return found[0] if found else None


def _refuse_near_misses(tags: list[str], path: Path | str, line: int) -> None:
    for tag in tags:
        meant = _near_miss(tag)
        if meant:
            raise lesson.LessonError(
                path,
                line,
                f"tag {tag!r} is not one the build knows; did you mean {meant}? (only "
                f"{meant!r}, exactly, decides who gets the cell)",
            )


_TAGS_LINE = re.compile(r"\s*:tags:(.*)")


def _refuse_hidden_cells(token: Any, path: Path | str) -> None:
    """A cell tagged for the instructor inside another fence (a figure's, or a longer fence
    showing an example) is not a cell the build can take out: it would reach students as
    text."""
    for number, line in enumerate(token.content.splitlines(), start=token.map[0] + 2):
        found = _TAGS_LINE.match(line)
        if found and any(
            word in AUDIENCE_TAGS or _near_miss(word)
            for word in re.findall(r"[A-Za-z_-]+", found.group(1))
        ):
            raise lesson.LessonError(
                path,
                number,
                "a cell tagged for the instructor inside another fence reaches students as "
                "text; close the fence that holds it first",
            )


def for_students(source: str, path: Path | str) -> str:
    return without_cells(source, SOLUTION_TAG, path)


def for_the_instructor(source: str, path: Path | str) -> str:
    return without_cells(source, EXERCISE_TAG, path)


def hidden_variants(values: Mapping[str, Any]) -> list[str]:
    """The variations whose settings only the instructor may see, in the comparison's order."""
    return [name for name, model in values["variants"].items() if model.get("instructor_only")]


# What a student output may not quote of an instructor-only variation.
WITHHELD = ("settings", "changes", "epochs", "weights")


class StudentValues(dict):
    """The values a student output may quote, knowing the names left out of them, so that a
    lesson or quiz quoting one is told why it cannot, not that the name does not exist."""

    withheld: dict[str, str]

    def why_withheld(self, name: str) -> str | None:
        """Why a student output may not quote `name`, if it is instructor-only; else None."""
        for hidden, variation in self.withheld.items():
            if name == hidden or name.startswith((hidden + ".", hidden + "[")):
                return (
                    f"{name} is instructor-only (the variation {variation} is marked "
                    "instructor_only: true), and a student's page or notebook may not quote it"
                )
        return None


def student_values(values: Mapping[str, Any]) -> StudentValues:
    """The values a student output may quote: an instructor-only variation keeps its scores
    but loses what it changes, the settings it trained with, and what would give them away
    (its epochs, and its weights, which follow from its layers)."""
    shown = StudentValues(copy.deepcopy(dict(values)))
    shown.withheld = {}
    for name in hidden_variants(values):
        model = shown["variants"][name]
        for key in WITHHELD:
            shown.withheld[f"variants.{name}.{key}"] = name
            del model[key]
    return shown


def salt(values_file: bytes) -> int:
    """A number that changes with every build, from its values file."""
    return int.from_bytes(hashlib.sha256(values_file).digest()[:4], "big")


def keystream(seed: int) -> Iterator[int]:
    """Bytes from mulberry32, a small generator that templates/quiz.js computes the same way."""
    state = seed & 0xFFFFFFFF
    while True:
        state = (state + 0x6D2B79F5) & 0xFFFFFFFF
        mixed = ((state ^ (state >> 15)) * (state | 1)) & 0xFFFFFFFF
        mixed = ((mixed + (((mixed ^ (mixed >> 7)) * (mixed | 61)) & 0xFFFFFFFF)) ^ mixed) & (
            0xFFFFFFFF
        )
        yield (mixed ^ (mixed >> 14)) & 0xFF


def question_seed(build_salt: int, number: int) -> int:
    """Each question's own stream, so two questions with the same answer differ."""
    return (build_salt ^ (number * 0x9E3779B1)) & 0xFFFFFFFF


def encode(data: Any, seed: int) -> str:
    """JSON data XORed with the keystream, in base64."""
    plain = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.b64encode(xor(plain, seed)).decode()


def decode(text: str, seed: int) -> Any:
    return json.loads(xor(base64.b64decode(text), seed).decode())


def xor(data: bytes, seed: int) -> bytes:
    stream = keystream(seed)
    return bytes(byte ^ next(stream) for byte in data)


def encode_answers(questions: list[Any], build_salt: int) -> list[str]:
    """Each question's answer and explanation, encoded for the student page."""
    return [
        encode(
            {
                "right": question.right,
                "value": question.value,
                "tolerance": question.tolerance,
                "explanation": question.explanation,
            },
            question_seed(build_salt, question.number),
        )
        for question in questions
    ]
