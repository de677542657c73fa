"""Home: the course's home page, its lessons in order, and the instructor's home beside it.

Reads:  --course (course/course.yaml: the course's title and its lessons, in order; each
        lesson's folder beside it gives the lesson's title, summary and length),
        --template (the home page's markup) and --style (inlined).
Writes: --home, one self-contained HTML file: for students (the course's home page, linking
        each lesson's page and notebook), or with --audience instructor, the instructor's home
        (linking each lesson's answer key and solved notebook). For students, also
        --contents, the course's title and each lesson's name and title in order, from which
        every lesson page takes its navigation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jinja2

from courseware import course
from pipeline import artifacts, cli


def home_page(
    title: str, lessons: list[course.Lesson], template: str, style: str, instructor: bool
) -> str:
    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    return environment.from_string(template).render(
        title=title, lessons=lessons, style=style, instructor=instructor
    )


def home(
    audience: str,
    course_path: Path,
    template: Path,
    style: Path,
    home_path: Path,
    contents_path: Path | None,
) -> None:
    listed, lessons, warnings = course.read_lessons(course_path)
    for warning in warnings:
        print(warning, file=sys.stderr)
    text = home_page(
        listed.title,
        lessons,
        Path(template).read_text(encoding="utf-8"),
        Path(style).read_text(encoding="utf-8"),
        instructor=audience == "instructor",
    )
    if contents_path is not None:
        contents = json.dumps(course.contents(listed, lessons), indent=2, ensure_ascii=False)
        artifacts.write_text(contents_path, contents + "\n")
    artifacts.write_text(home_path, text)
    print(f"home: {home_path}, {len(lessons)} lessons, for the {audience}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.home")
    parser.add_argument("--audience", choices=("student", "instructor"), required=True)
    parser.add_argument("--contents", type=Path, help="the lessons' names and titles, as JSON")
    args = cli.arguments("home", ("course", "template", "style", "home"), argv, parser)
    if (args.contents is None) == (args.audience == "student"):
        parser.error("--contents is written with the students' home, and only with it")
    home(args.audience, args.course, args.template, args.style, args.home, args.contents)


if __name__ == "__main__":
    cli.run(main)
