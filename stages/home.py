"""Home: the course's home page, its lessons in order, and the instructor's home beside it.

Reads:  --course (course/course.yaml: the course's title and its lessons, in order; each
        lesson's folder beside it gives the lesson's title, summary and length),
        --template (the home page's markup) and --style (inlined).
Writes: --home, one self-contained HTML file: for students (the course's home page, linking
        each lesson's page and notebook), or with --audience instructor, the instructor's home
        (linking each lesson's answer key and solved notebook). For students, also
        --contents, the course's title and each lesson's name and title in order, from which
        every lesson page takes its navigation, and --offline-data, a copy of --data (the
        verified MNIST file) that the home page offers for a classroom without internet: each
        notebook uses it from its own folder, after checking its arrays' digests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import jinja2

from courseware import course
from pipeline import artifacts, cli


def home_page(
    title: str,
    lessons: list[course.Lesson],
    template: str,
    style: str,
    instructor: bool,
    offline_data: str | None = None,
    offline_megabytes: int | None = None,
) -> str:
    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    return environment.from_string(template).render(
        title=title,
        lessons=lessons,
        style=style,
        instructor=instructor,
        offline_data=offline_data,
        offline_megabytes=offline_megabytes,
    )


def home(
    audience: str,
    course_path: Path,
    template: Path,
    style: Path,
    home_path: Path,
    contents_path: Path | None,
    data: Path | None = None,
    offline_data: Path | None = None,
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
        offline_data=Path(offline_data).name if offline_data else None,
        offline_megabytes=round(Path(data).stat().st_size / 1e6) if data else None,
    )
    if data is not None and offline_data is not None:
        # Copied whole or not at all, as every output is: a cut-off copy of the data is worse
        # than none.
        with artifacts.atomic_file(offline_data) as tmp:
            shutil.copyfile(data, tmp)
    if contents_path is not None:
        contents = json.dumps(course.contents(listed, lessons), indent=2, ensure_ascii=False)
        artifacts.write_text(contents_path, contents + "\n")
    artifacts.write_text(home_path, text)
    print(f"home: {home_path}, {len(lessons)} lessons, for the {audience}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.home")
    parser.add_argument("--audience", choices=("student", "instructor"), required=True)
    parser.add_argument("--contents", type=Path, help="the lessons' names and titles, as JSON")
    parser.add_argument("--data", type=Path, help="the verified MNIST file")
    parser.add_argument("--offline-data", type=Path, help="its copy, offered on the home page")
    args = cli.arguments("home", ("course", "template", "style", "home"), argv, parser)
    student = [args.contents, args.data, args.offline_data]
    if any(path is None for path in student) if args.audience == "student" else any(student):
        parser.error("--contents, --data and --offline-data go with the students' home, and only")
    home(
        args.audience,
        args.course,
        args.template,
        args.style,
        args.home,
        args.contents,
        args.data,
        args.offline_data,
    )


if __name__ == "__main__":
    cli.run(main)
