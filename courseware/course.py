"""The course: its title and lessons (course/course.yaml), and what each lesson's folder says
of itself (course/<name>/: lesson.md, and optionally quiz.yaml and plan.md).

The home pages list the lessons from here, and every lesson page takes its neighbours from
here, so that the order, the names and the titles are read in one place and checked in one
place. Each mistake is named in one line with the file it is in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin

from courseware import lesson
from pipeline.cli import StageError

# A lesson's name is its folder's name and part of its pages' addresses: kept to what reads
# the same in a URL, on a USB stick and in a DVC stage name (`page@<name>`).
NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
LESSON_FILE = "lesson.md"
QUIZ_FILE = "quiz.yaml"
PLAN_FILE = "plan.md"
# What the lesson's code cells describe: the lesson's own network, none (a lesson without a
# network of its own to train), or one of the variations, by name.
OWN_MODEL, NO_MODEL = "lesson", "none"
# Names a file in a lesson's folder is easily mistaken for.
NEAR_MISSES = {
    "quiz.yml": QUIZ_FILE,
    "quiz.yaml.txt": QUIZ_FILE,
    "lesson.markdown": LESSON_FILE,
    "lesson.myst": LESSON_FILE,
    "plan.markdown": PLAN_FILE,
}


class CourseError(StageError):
    pass


@dataclass(frozen=True)
class Course:
    title: str
    lessons: tuple[str, ...]


@dataclass(frozen=True)
class Lesson:
    """What the home pages and the lesson pages' navigation say of one lesson."""

    name: str
    title: str
    summary: str
    model: str
    minutes: tuple[int, int] | None  # the plan's total, as (shortest, longest); None: no plan


def _strict_loader() -> type[yaml.SafeLoader]:
    """A YAML loader that refuses a mapping holding one key twice (PyYAML keeps the last)."""

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return loader.construct_mapping(node)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def read_course(path: Path | str) -> Course:
    """The course list: a `title` and `lessons`, the lessons' folder names in order."""
    text = lesson.read_course_text(path)
    try:
        data = yaml.load(text, Loader=_strict_loader())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(error, "problem", None) or "not YAML"
        raise CourseError(f"{path}: {problem}{where}") from None
    if not isinstance(data, dict):
        raise CourseError(f"{path}: expected `title:` and `lessons:`, a list of lesson names")
    unknown = sorted(set(data) - {"title", "lessons"})
    if unknown:
        raise CourseError(f"{path}: unknown key {unknown[0]!r}; known: title, lessons")
    title, lessons = data.get("title"), data.get("lessons")
    if not isinstance(title, str) or not title.strip():
        raise CourseError(f"{path}: `title:` must be the course's title, as text")
    if not isinstance(lessons, list) or not lessons:
        raise CourseError(f"{path}: `lessons:` must list the lessons' folder names, in order")
    for name in lessons:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise CourseError(
                f"{path}: lesson {name!r} is not a folder name of lowercase letters, digits "
                "and '-', such as digit-predictor"
            )
        if lessons.count(name) > 1:
            raise CourseError(f"{path}: the lesson {name!r} is listed twice; a name is listed once")
    return Course(title.strip(), tuple(lessons))


def check_folders(course_path: Path | str, course: Course) -> list[str]:
    """Refuse a listed lesson without its folder or lesson.md; return a warning for each
    folder beside course.yaml that the list leaves out (it is not built)."""
    root = Path(course_path).parent
    for name in course.lessons:
        folder = root / name
        if not folder.is_dir():
            raise CourseError(f"{course_path}: lists the lesson {name!r}, but {folder}/ is missing")
        if not (folder / LESSON_FILE).is_file():
            raise CourseError(f"{folder / LESSON_FILE}: missing; every lesson's folder holds one")
        for path in sorted(folder.iterdir()):
            if path.name in NEAR_MISSES:
                raise CourseError(
                    f"{path}: not a file the build reads; did you mean {NEAR_MISSES[path.name]}?"
                )
    return [
        f"warning: {folder}/ is not in {course_path}, so it is not built; list it under lessons:"
        for folder in sorted(root.iterdir())
        if folder.is_dir() and not folder.name.startswith((".", "_"))
        if folder.name not in course.lessons
    ]


def front_matter(text: str, path: Path | str) -> dict[str, Any]:
    """The lesson's YAML front matter (its jupytext header), as a mapping."""
    tokens = MarkdownIt("commonmark").use(front_matter_plugin).parse(text)
    found = next((token for token in tokens if token.type == "front_matter"), None)
    if found is None:
        return {}
    try:
        data = yaml.safe_load(found.content)
    except yaml.YAMLError:
        raise CourseError(f"{path}: its front matter (between the --- lines) is not YAML") from None
    if not isinstance(data, dict):
        raise CourseError(f"{path}: its front matter must be `key: value` lines")
    return data


def model_of(text: str, path: Path | str) -> str:
    """The `model:` a lesson's front matter names: the network its code describes."""
    model = front_matter(text, path).get("model")
    if not isinstance(model, str) or not model.strip():
        raise CourseError(
            f"{path}: its front matter needs `model:`, the network its code describes: "
            f"{OWN_MODEL}, {NO_MODEL} or a variation's name"
        )
    return model.strip()


def title_of(text: str) -> str | None:
    """The text of a lesson's first level-1 heading."""
    tokens = MarkdownIt("commonmark").use(front_matter_plugin).parse(text)
    for token, inline in zip(tokens, tokens[1:], strict=False):
        if token.type == "heading_open" and token.tag == "h1":
            return inline.content.strip()
    return None


_MINUTES = re.compile(r"(\d+)(?:\s*[-–]\s*(\d+))?")


def plan_minutes(text: str) -> tuple[int, int] | None:
    """The total length of a session plan: the sum of the `minutes` column of its first table
    that has one, as (shortest, longest). A cell such as `10-15` counts 10 and 15."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    column, shortest, longest, found = None, 0, 0, False
    cells: list[str] = []
    in_head = False
    for index, token in enumerate(tokens):
        if token.type == "thead_open":
            in_head, cells = True, []
        elif token.type == "thead_close":
            in_head = False
            headers = [cell.strip().lower() for cell in cells]
            column = headers.index("minutes") if "minutes" in headers else None
        elif token.type == "tr_open":
            cells = []
        elif token.type == "inline" and tokens[index - 1].type in ("th_open", "td_open"):
            cells.append(token.content)
        elif token.type == "tr_close" and not in_head and column is not None:
            match = _MINUTES.fullmatch(cells[column].strip()) if column < len(cells) else None
            if match:
                low = int(match.group(1))
                shortest, longest = shortest + low, longest + int(match.group(2) or low)
                found = True
        elif token.type == "table_close" and found:
            return shortest, longest
    return None


def describe(folder: Path | str) -> Lesson:
    """What a lesson's folder says of itself: its title (first heading), its summary and model
    (front matter) and its length (its plan's minutes)."""
    folder = Path(folder)
    path = folder / LESSON_FILE
    text = lesson.read_course_text(path)
    lesson.check_fences(text, path)
    meta = front_matter(text, path)
    summary = meta.get("summary")
    if not isinstance(summary, str) or not summary.strip() or "\n" in summary.strip():
        raise CourseError(
            f"{path}: its front matter needs `summary:`, one line saying what the lesson "
            "teaches, for the course's home page"
        )
    model = model_of(text, path)
    title = title_of(text)
    if not title:
        raise CourseError(f"{path}: has no title; begin it with a `# Title` line")
    plan = folder / PLAN_FILE
    minutes = None
    if plan.exists():
        plan_text = lesson.read_course_text(plan)
        # The same checks the answer key makes, so that a plan whose table a fence or front
        # matter left open swallows is refused here too, rather than shown without a length.
        lesson.check_fences(plan_text, plan)
        minutes = plan_minutes(plan_text)
        if minutes is None:
            raise CourseError(
                f"{plan}: has no table with a `minutes` column (such as 10 or 10-15 a row), "
                "from which the home page gives the lesson's length"
            )
    return Lesson(folder.name, title, summary.strip(), model, minutes)


def read_lessons(course_path: Path | str) -> tuple[Course, list[Lesson], list[str]]:
    """The course, each of its lessons described, and the warnings for unlisted folders."""
    course = read_course(course_path)
    warnings = check_folders(course_path, course)
    root = Path(course_path).parent
    return course, [describe(root / name) for name in course.lessons], warnings


def contents(course: Course, lessons: list[Lesson]) -> dict[str, Any]:
    """The course's contents as the lesson pages read them: its title and each lesson's name
    and title, in order. Only what the navigation shows, so that editing one lesson's text
    changes no other lesson's page."""
    return {
        "title": course.title,
        "lessons": [{"name": item.name, "title": item.title} for item in lessons],
    }


def check_model(model: str, values: Mapping[str, Any], path: Path | str) -> dict[str, Any] | None:
    """The settings of the network a lesson's code describes (None for `none`)."""
    if model == NO_MODEL:
        return None
    if model == OWN_MODEL:
        return values["settings"]
    variants = values.get("variants", {})
    if model not in variants:
        known = ", ".join([OWN_MODEL, NO_MODEL, *variants])
        raise CourseError(f"{path}: model: {model} is not a model of this build; known: {known}")
    if "settings" not in variants[model]:
        raise CourseError(
            f"{path}: model: {model} is an instructor-only variation; a lesson students read "
            "cannot describe its code"
        )
    return variants[model]["settings"]


def optional_text(path: Path | str) -> str:
    """An optional file of a lesson's folder (its plan), or nothing when it has none."""
    return lesson.read_course_text(path) if Path(path).exists() else ""
