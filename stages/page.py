"""Page: the course page, the author's lesson with this build's numbers, figures and sections.

Reads:  --lesson (the author's MyST-Markdown lesson, course/<name>/lesson.md, and the images
        it shows from its own folder, embedded), --quiz (its
        questions, if the lesson has a quiz), --plan (its session plan, if any, only to make
        sure none of it reaches the page), --contents (the course's lessons in order, for the
        links home, to the lessons before and after, and for a {ref} to another lesson),
        --notebook (the student's notebook, which the page offers to download),
        --values (every number they and the page's own sections quote), --template (the
        page's markup), --figures and --comparison (the PNGs, embedded), --network and each
        variation's network.json under --variant-reports (the weights the "Try it" section
        runs), --script, --quiz-script and --style (inlined).
        What students may see of them is decided by courseware/audience.py: the quiz's answers
        travel encoded, and instructor-only cells and variations' settings are left out;
        courseware/leaks.py searches the page for what was left out before it is written.
Writes: --page, one HTML file whose only links are relative ones to the course's other pages:
        it works offline, from a disk or a USB stick, can be mailed or published as it is, and
        reads on a phone as on a projector.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from courseware import audience, course, leaks, lesson, quiz
from pipeline import artifacts, cli, config

# The sections the page adds when the lesson does not place them, in this order: the quiz
# when the lesson has one, and the sections about the lesson's network when its code
# describes that network (`model: lesson`).
DEFAULT_ORDER = lesson.BUILT_IN
MODEL_SECTIONS = ("score", "try-it", "variations", "per-digit", "settings", "reproducibility")


def png_image(path: Path) -> dict[str, Any]:
    """A PNG as the page embeds it: base64 data and its size in pixels (from its header)."""
    data = Path(path).read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    return {"data": base64.b64encode(data).decode(), "width": width, "height": height}


def read_networks(lesson_network: Path, variant_reports: Path, names: list[str]) -> list[dict]:
    """The lesson's network, then each variation's `names`, named for the page."""
    paths = [Path(lesson_network)]
    paths += [Path(variant_reports) / name / "network.json" for name in names]
    return [
        {"name": name, **json.loads(path.read_text(encoding="utf-8"))}
        for name, path in zip(["lesson", *names], paths, strict=True)
    ]


def checked_notebook(notebook: Path, secrets: leaks.Withheld) -> bytes:
    """The student notebook's bytes, searched like the page: the page carries a copy of it
    (base64, for its download link), where the page's own search cannot read its text."""
    data = notebook.read_bytes()
    leaks.check(notebook, data.decode("utf-8", errors="replace"), secrets)
    return data


def navigation(contents: dict[str, Any], name: str, path: Path | str) -> dict[str, Any]:
    """The links of a lesson's page: the course's home, and the lessons before and after it,
    relative to the page (reports/lessons/<name>/index.html), so the course works from any
    folder."""
    names = [item["name"] for item in contents["lessons"]]
    if name not in names:
        raise course.CourseError(f"{path}: the lesson {name!r} is not in the course's contents")
    at = names.index(name)

    def link(item: dict[str, str]) -> dict[str, str]:
        return {"title": item["title"], "href": f"../{item['name']}/index.html"}

    return {
        "course": contents["title"],
        "home": "../../index.html",
        "previous": link(contents["lessons"][at - 1]) if at > 0 else None,
        "next": link(contents["lessons"][at + 1]) if at + 1 < len(names) else None,
    }


def title_of(parts: list[lesson.Part]) -> str:
    """The lesson's first level-1 heading, as text."""
    for part in parts:
        heading = re.search(r"<h1[^>]*>(.*?)</h1>", part.text, re.DOTALL)
        if part.kind == "html" and heading:
            return Markup(heading.group(1)).striptags()
    return "Course page"


def build_page(
    *,
    lesson_text: str,
    lesson_path: Path,
    questions: list[dict[str, Any]],
    quiz_path: Path,
    values: dict[str, Any],
    build_salt: int,
    template: str,
    images: dict[str, dict[str, Any]],
    networks: list[dict],
    script: str,
    style: str,
    notebook: bytes,
    notebook_name: str = "lesson.ipynb",
    contents: dict[str, Any] | None = None,
) -> str:
    # Everything on the page is filled from the student's values: a question quoting an
    # instructor-only value stops here, naming it, rather than showing it.
    values = audience.student_values(values)
    answered = quiz.answer(questions, values, quiz_path)
    filled = lesson.fill(audience.for_students(lesson_text, lesson_path), values, lesson_path)
    # A {ref} may link the course's other lessons, by their folder's name.
    name = Path(lesson_path).parent.name
    links = lesson.course_links(contents, name) if contents else {}
    parts = lesson.parse(filled, lesson_path, figures=values["figures"], lessons=links)
    placed = [part.name for part in parts if part.kind == "build"]
    twice = sorted({name for name in placed if placed.count(name) > 1})
    if twice:
        raise lesson.LessonError(lesson_path, None, f"places {', '.join(twice)} more than once")
    if "quiz" in placed and not questions:
        raise lesson.LessonError(
            lesson_path, None, f"places the quiz, but {quiz_path} is missing: write it first"
        )
    model = course.model_of(lesson_text, lesson_path)
    course.check_model(model, values, lesson_path)
    unplaced = [
        name
        for name in DEFAULT_ORDER
        if name not in placed
        and (name != "quiz" or questions)
        and (name not in MODEL_SECTIONS or model == course.OWN_MODEL)
    ]
    if contents is None:
        contents = {"title": "", "lessons": [{"name": name, "title": title_of(parts)}]}
    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    environment.filters.update(lesson.FILTERS)
    settings = config.flatten(values["settings"])
    return environment.from_string(template).render(
        values=values,
        parts=parts,
        unplaced=unplaced,
        nav=navigation(contents, name, lesson_path),
        title=title_of(parts),
        # The build's figures the lesson shows; the author's own travel in their parts.
        images={
            part.name: images[part.name]
            for part in parts
            if part.kind == "figure" and not part.image
        },
        # The weights travel as JSON inside the page; "</" could end the script element early.
        networks_json=json.dumps(networks, separators=(",", ":")).replace("</", "<\\/"),
        networks=networks,
        questions=answered,
        answers=audience.encode_answers(answered, build_salt),
        salt=build_salt,
        notebook_data=base64.b64encode(notebook).decode(),
        notebook_name=notebook_name,
        settings_rows=[[key, json.dumps(value)] for key, value in settings.items()],
        script=script,
        style=style,
    )


def page(
    lesson_path: Path,
    quiz_path: Path,
    plan_path: Path,
    contents_path: Path,
    values_path: Path,
    notebook: Path,
    template: Path,
    figures: Path,
    comparison: Path,
    network: Path,
    variant_reports: Path,
    script: Path,
    quiz_script: Path,
    style: Path,
    page_path: Path,
) -> None:
    values_file = Path(values_path).read_bytes()
    values = json.loads(values_file)
    shown = [name for name in values["models"][1:] if name not in audience.hidden_variants(values)]
    secrets = leaks.read_withheld(
        values_path=values_path,
        lesson_path=lesson_path,
        quiz_path=quiz_path,
        plan_path=plan_path,
        variant_reports=variant_reports,
    )
    text = build_page(
        lesson_text=lesson.read_course_text(lesson_path),
        lesson_path=lesson_path,
        questions=quiz.load_if_any(quiz_path),
        quiz_path=quiz_path,
        values=values,
        build_salt=audience.salt(values_file),
        template=Path(template).read_text(encoding="utf-8"),
        images={
            path.stem: png_image(path)
            for path in [*Path(figures).glob("*.png"), *Path(comparison).glob("*.png")]
        },
        networks=read_networks(network, variant_reports, shown),
        script=Path(script).read_text(encoding="utf-8")
        + Path(quiz_script).read_text(encoding="utf-8"),
        style=Path(style).read_text(encoding="utf-8"),
        notebook=checked_notebook(Path(notebook), secrets),
        notebook_name=Path(notebook).name,
        contents=json.loads(Path(contents_path).read_text(encoding="utf-8")),
    )
    leaks.check(page_path, text, secrets)
    artifacts.write_text(page_path, text)
    print(f"page: {page_path} ({len(text.encode()) / 2**10:.0f} KiB, self-contained)")


def main(argv: list[str] | None = None) -> None:
    files = ("lesson", "quiz", "plan", "contents", "values", "notebook", "template", "figures")
    files += ("comparison", "network", "variant-reports", "script", "quiz-script", "style")
    args = cli.arguments("page", (*files, "page"), argv)
    page(
        args.lesson,
        args.quiz,
        args.plan,
        args.contents,
        args.values,
        args.notebook,
        args.template,
        args.figures,
        args.comparison,
        args.network,
        args.variant_reports,
        args.script,
        args.quiz_script,
        args.style,
        args.page,
    )


if __name__ == "__main__":
    cli.run(main)
