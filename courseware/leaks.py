"""The last check before a student file is written: does it hold instructor-only material?

courseware/audience.py decides what students may see, and every student output is built from what
it leaves. This module checks the result, so that a way round that decision (a value quoted
where it should not be, a new output, a hand-made file in the site) is caught rather than
published. It searches a student file for five kinds of material, defined in docs/quiz.md:

  settings   an instructor-only variation's settings as the values file writes them: each
             `key=value` of its `changes`, and the same setting as a JSON pair
             (`"optimizer": "rmsprop"`), unless a model students see has that setting too;
  solution   a line of a solution cell (at least 12 characters once its indentation is
             stripped) that appears in no student cell;
  explanation a quiz explanation's whole text (at least 30 characters, white space folded);
  key        text only the answer key holds: each line of the session plan with at least 30
             characters of text that the student's lesson does not hold too, and each answer
             as the key states it ("Right for this build: ...");
  weights    eight consecutive weights of an instructor-only network, as the page writes them
             (base64 float32) or as decimal numbers (runs of whole numbers, such as zeros,
             say nothing of a network and are not searched).

Anything found stops the build with one line naming the kind and the file. Nothing here
writes a file.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from courseware import audience, course, lesson, quiz
from pipeline import config
from pipeline.cli import StageError

KINDS = ("settings", "solution", "explanation", "key", "weights")
RUN = 8  # consecutive weights that identify a network
SOLUTION_LINE = 12  # characters a solution line needs to be searched for
PROSE = 30  # characters an explanation or a line of the plan needs to be searched for


class LeakError(StageError):
    pass


@dataclass
class Withheld:
    """What no student file may hold, gathered from the build and the author's files."""

    settings: list[str] = field(default_factory=list)
    setting_pairs: list[tuple[str, re.Pattern]] = field(default_factory=list)
    solution: list[str] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))


def fold(text: str) -> str:
    """White space folded to single spaces, as the search compares texts."""
    return " ".join(text.split())


def html_text(markup: str) -> str:
    """The text a reader sees of some HTML: tags dropped, entities read."""
    return html.unescape(re.sub(r"<[^>]*>", " ", markup))


# Gathering ---------------------------------------------------------------------------------


def _json_pair(key: str, value: Any) -> re.Pattern:
    """`"key": value` as any JSON writer may space it."""
    parts = [re.escape(piece) for piece in re.split(r"\s+", json.dumps(value))]
    written = r"\s*".join(parts)
    written = written.replace(r"\,", r"\s*,\s*").replace(",", r"\s*,\s*")
    return re.compile(rf'"{re.escape(key)}"\s*:\s*{written}')


def setting_texts(values: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, re.Pattern]]]:
    """Kind `settings`: the instructor-only variations' changes, as `key=value` and as JSON
    pairs, less those a model students see shares."""
    hidden = audience.hidden_variants(values)
    visible: set[str] = set()
    for name, model in [("lesson", values["lesson"]), *values["variants"].items()]:
        if name not in hidden:
            visible.update(_written(key, value) for key, value in _settings_of(model).items())
    texts, pairs = [], []
    for name in hidden:
        model = values["variants"][name]
        settings = _settings_of(model)
        for change in filter(None, (part.strip() for part in model["changes"].split(";"))):
            key = change.split("=", 1)[0]
            if change in visible:
                continue
            texts.append(change)
            if key in settings:
                pairs.append((change, _json_pair(key.rsplit(".", 1)[-1], settings[key])))
    return texts, pairs


def _written(key: str, value: Any) -> str:
    """A setting as the values file's `changes` writes it (stages/compare.py)."""
    return f"{key}={value if isinstance(value, str) else json.dumps(value)}"


def _settings_of(model: Mapping[str, Any]) -> dict[str, Any]:
    return config.flatten(model.get("settings", {}))


def code_cells(text: str) -> Iterable[tuple[list[str], str]]:
    """Each code cell of a lesson's text: its tags and its code."""
    for token in lesson.markdown().parse(text):
        if token.type == "fence" and token.info.startswith("{code-cell}"):
            try:
                options, body, _ = lesson.options_of(token.content)
            except lesson.Mistake:
                continue  # audience.without_cells has refused it already.
            yield options["tags"], body


def solution_lines(instructor_text: str, student_text: str) -> list[str]:
    """Kind `solution`: lines of the solution cells that no student cell holds."""
    student = "\n".join(body for _, body in code_cells(student_text))
    found = []
    for tags, body in code_cells(instructor_text):
        if audience.SOLUTION_TAG in tags:
            for line in body.splitlines():
                line = line.strip()
                if len(line) >= SOLUTION_LINE and line not in student and line not in found:
                    found.append(line)
    return found


def prose(markdown_text: str) -> list[str]:
    """The forms a piece of Markdown may take in a student file: as written, and as text."""
    written = fold(markdown_text)
    shown = fold(html_text(lesson.markdown().render(markdown_text)))
    return [form for form in dict.fromkeys((written, shown)) if len(form) >= PROSE]


def explanations(answered: list[quiz.Question]) -> list[str]:
    return [form for question in answered for form in prose(question.explanation_source)]


def key_texts(plan: str, answered: list[quiz.Question], student_lesson: str) -> list[str]:
    """Kind `key`: the plan's lines that the student's lesson does not hold too (a plan may
    quote the lesson), and each answer in the key's words."""
    lesson_forms = prose(student_lesson)
    lines = [
        form
        for line in plan.splitlines()
        for form in prose(line.strip(" -*>|#\t"))
        if not any(form in text for text in lesson_forms)
    ]
    answers = [
        fold(f"Right for this build: {html_text(question.answer_text())}") for question in answered
    ]
    return list(dict.fromkeys(lines + answers))


def network_weights(network: Mapping[str, Any]) -> list[np.ndarray]:
    """Each weight array of a network.json, as float32."""
    arrays = []
    for layer in network.get("layers", []):
        for key in ("kernel", "bias"):
            if isinstance(layer.get(key), str):
                arrays.append(np.frombuffer(base64.b64decode(layer[key]), dtype="<f4"))
    return arrays


def run_hashes(bits: np.ndarray, skip: np.ndarray | None = None) -> np.ndarray:
    """A 64-bit hash of each run of RUN consecutive 32-bit words (wrapping arithmetic)."""
    if len(bits) < RUN:
        return np.zeros(0, dtype=np.uint64)
    words = bits.astype(np.uint64)
    hashes = np.zeros(len(words) - RUN + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for offset in range(RUN):
            hashes = hashes * np.uint64(0x100000001B3) + words[offset : offset + len(hashes)]
    if skip is not None:
        hashes = hashes[~skip]
    return hashes


def weight_hashes(networks: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """Kind `weights`: every run of RUN weights of the hidden networks, less runs of whole
    numbers."""
    found = []
    for network in networks:
        for array in network_weights(network):
            if len(array) < RUN:
                continue
            whole = np.isfinite(array) & (array == np.round(array))
            windows = np.lib.stride_tricks.sliding_window_view(whole, RUN).all(axis=1)
            found.append(run_hashes(array.view("<u4"), skip=windows))
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.uint64)


def withheld(
    *,
    values: Mapping[str, Any],
    lesson_text: str,
    lesson_path: Path | str,
    questions: list[dict[str, Any]],
    quiz_path: Path | str,
    plan_text: str,
    plan_path: Path | str,
    hidden_networks: Iterable[Mapping[str, Any]],
) -> Withheld:
    """Everything of the five kinds, from the full values and the author's files."""
    texts, pairs = setting_texts(values)
    instructor = lesson.fill(
        audience.for_the_instructor(lesson_text, lesson_path), values, lesson_path
    )
    student = lesson.fill(
        audience.for_students(lesson_text, lesson_path),
        audience.student_values(values),
        lesson_path,
    )
    answered = quiz.answer(questions, values, quiz_path)
    plan = lesson.fill(plan_text, values, plan_path)
    return Withheld(
        settings=texts,
        setting_pairs=pairs,
        solution=solution_lines(instructor, student),
        explanation=explanations(answered),
        key=key_texts(plan, answered, student),
        weights=weight_hashes(hidden_networks),
    )


def merged(first: Withheld, second: Withheld) -> Withheld:
    """What neither of two lessons' student files may hold."""
    joined: dict[str, Any] = {}
    for item in fields(Withheld):
        ours, theirs = getattr(first, item.name), getattr(second, item.name)
        if isinstance(ours, np.ndarray):
            joined[item.name] = np.union1d(ours, theirs).astype(ours.dtype)
        else:
            joined[item.name] = ours + [found for found in theirs if found not in ours]
    return Withheld(**joined)


def read_withheld(
    *,
    values_path: Path,
    lesson_path: Path,
    quiz_path: Path,
    plan_path: Path,
    variant_reports: Path,
) -> Withheld:
    """`withheld`, from the build's files."""
    values = json.loads(Path(values_path).read_text(encoding="utf-8"))
    return withheld(
        values=values,
        lesson_text=lesson.read_course_text(lesson_path),
        lesson_path=lesson_path,
        questions=quiz.load_if_any(quiz_path),
        quiz_path=quiz_path,
        plan_text=course.optional_text(plan_path),
        plan_path=plan_path,
        hidden_networks=[
            json.loads((Path(variant_reports) / name / "network.json").read_text(encoding="utf-8"))
            for name in audience.hidden_variants(values)
        ],
    )


# Searching ---------------------------------------------------------------------------------


def views(name: str, content: str) -> list[str]:
    """The texts of a student file to search: a page as its source (entities read) and as
    the text a reader sees; a notebook as its cells' sources and outputs."""
    if name.endswith(".ipynb"):
        try:
            notebook = json.loads(content)
        except ValueError:
            return [content]
        if not isinstance(notebook, dict):
            return [content]
        pieces = []
        for cell in notebook.get("cells", []):
            pieces.append(_joined(cell.get("source", "")))
            for output in cell.get("outputs", []):
                pieces.append(_joined(output.get("text", "")))
                pieces += [_joined(v) for v in output.get("data", {}).values()]
        return ["\n".join(pieces)]
    return [html.unescape(content), html_text(content)]


def _joined(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
BASE64 = re.compile(r"[A-Za-z0-9+/]{44,}")


def found_weights(text: str, hashes: np.ndarray) -> bool:
    """Whether RUN consecutive hidden weights appear in `text`, as decimals or as base64 at
    any alignment. `hashes` is sorted, as weight_hashes returns it."""
    if not len(hashes):
        return False
    with np.errstate(over="ignore"):
        numbers = np.array([float(each) for each in NUMBER.findall(text)], dtype="<f4")
    candidates = [run_hashes(numbers.view("<u4"))]
    for run in BASE64.findall(text):
        for start in range(4):
            usable = (len(run) - start) // 4 * 4
            data = base64.b64decode(run[start : start + usable])
            for offset in range(4):
                words = len(data[offset:]) // 4
                bits = np.frombuffer(data, dtype="<u4", count=words, offset=offset)
                candidates.append(run_hashes(bits))
    found = np.concatenate(candidates)
    # A table of the hashes' low bits first, so that only the few candidates it lets through
    # are looked up in the sorted hashes (a page holds millions of candidate runs).
    table = np.zeros(1 << 24, dtype=bool)
    table[(hashes & np.uint64(0xFFFFFF)).astype(np.intp)] = True
    found = found[table[(found & np.uint64(0xFFFFFF)).astype(np.intp)]]
    places = np.minimum(np.searchsorted(hashes, found), len(hashes) - 1)
    return bool(np.any(hashes[places] == found))


def search(text_views: list[str], secrets: Withheld) -> tuple[str, str] | None:
    """The first instructor-only material found, as (kind, what), or None."""
    folded = [fold(view) for view in text_views]
    for text in secrets.settings:
        if any(text in view for view in text_views):
            return "settings", text
    for change, pattern in secrets.setting_pairs:
        if any(pattern.search(view) for view in text_views):
            return "settings", change
    for line in secrets.solution:
        if any(line in view for view in text_views):
            return "solution", line
    for kind in ("explanation", "key"):
        for text in getattr(secrets, kind):
            if any(text in view for view in folded):
                return kind, text
    if any(found_weights(view, secrets.weights) for view in text_views[:1]):
        return "weights", f"{RUN} consecutive weights of an instructor-only network"
    return None


def check(path: Path | str, content: str, secrets: Withheld) -> None:
    """Refuse a student file that holds instructor-only material, before it is written."""
    found = search(views(str(path), content), secrets)
    if found:
        kind, what = found
        shown = what if len(what) <= 80 else what[:77] + "..."
        raise LeakError(
            f"{path}: a student file would hold instructor-only material ({kind}: {shown!r}); "
            "nothing was written (docs/quiz.md says what students may not see)"
        )
