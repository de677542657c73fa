"""Notebooks: the lesson as notebooks students run, and the instructor's solved copy.

The author's lesson is already a notebook in jupytext's MyST format; this stage fills in the
build's values, reads it with jupytext, puts the figures it shows inside the notebook (cell
attachments) and the page's own sections as Markdown, and checks that the code sets every
model.* and train.* setting of the lesson's model to this build's value, so that a student who
runs it trains the network this build trained.

Reads:  --audience (student or instructor), --lesson (course/<name>/lesson.md), --quiz (its
        questions, if it has a quiz), --contents (the course's lessons, for links to them),
        --values, --template (the
        page's sections in Markdown), --figures and --comparison (the PNGs; the instructor's
        from --comparison/instructor/ where there is one); --plan and --variant-reports
        (the instructor-only networks), for the student's, only to make sure none of them
        reaches it (courseware/leaks.py).
Writes: --notebook: for the student, exercises as stubs and no solutions or answers
        (courseware/audience.py decides); for the instructor, the exercises solved and the quiz
        answered. dvc.yaml runs it once for each, as two stages, so that the instructor's is
        declared where the student's site can leave it out.
"""

from __future__ import annotations

import argparse
import ast
import base64
import json
from pathlib import Path
from typing import Any

import jinja2
import jupytext
import nbformat

from courseware import audience, course, leaks, lesson, quiz
from pipeline import artifacts, cli, config
from pipeline.names import INSTRUCTOR_FIGURES


class NotebookError(cli.StageError):
    pass


def setting_constant(key: str) -> str:
    """The name the lesson's code gives a setting: `train.epochs` -> `EPOCHS`."""
    return key.rsplit(".", 1)[-1].upper()


def check_settings(cells: list[Any], settings: dict[str, Any], path: Path | str) -> None:
    """Every model.* and train.* setting appears in the code as `CONSTANT = value`, with this
    build's value; otherwise the notebook would train another network than the build. A
    lesson with no code (text and figures only) has no network to train, and passes."""
    if not any(cell.cell_type == "code" for cell in cells):
        return
    assigned: dict[str, Any] = {}
    for cell in cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id.isupper():
                    try:
                        assigned.setdefault(target.id, ast.literal_eval(node.value))
                    except ValueError:
                        continue
    for key, value in config.flatten(settings).items():
        name = setting_constant(key)
        if name not in assigned:
            raise NotebookError(
                f"{path}: the lesson's code does not set {key} ({name} = {value!r}), so its "
                "notebook would train another network than this build; add it to a code cell"
            )
        if assigned[name] != value:
            raise NotebookError(
                f"{path}: the lesson's code sets {name} = {assigned[name]!r}, but this build "
                f"trained with {key} = {value!r}"
            )


def sections(template: str, values: dict, questions: list, instructor: bool) -> Any:
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    environment.filters.update(lesson.FILTERS)
    settings = config.flatten(values["settings"])
    return environment.from_string(template).make_module(
        {
            "values": values,
            "questions": questions,
            "instructor": instructor,
            "settings_rows": [(key, json.dumps(value)) for key, value in settings.items()],
        }
    )


def markdown_cell(source: str, images: dict[str, str], built_in: Any) -> Any:
    """A Markdown cell with its `{figure}` directives as attached images and its `{build}`
    directives as the page's sections in Markdown."""
    lines = source.splitlines(keepends=True)
    attachments = {}
    for token in reversed(lesson.markdown().parse(source)):
        if token.type != "fence" or not token.info.startswith(("{figure}", "{build}")):
            continue
        name = token.info.split("}", 1)[1].strip()
        if token.info.startswith("{figure}"):
            options, caption, _ = lesson.options_of(token.content)
            attachments[f"{name}.png"] = {"image/png": images[name]}
            text = f"![{options['alt']}](attachment:{name}.png)\n\n*{caption.strip()}*\n"
        else:
            text = str(getattr(built_in, name.replace("-", "_"))()).strip() + "\n"
        lines[token.map[0] : token.map[1]] = [text]
    cell = nbformat.v4.new_markdown_cell("".join(lines).strip())
    if attachments:
        cell.attachments = dict(sorted(attachments.items()))
    return cell


def notebook(
    source: str,
    path: Path | str,
    *,
    values: dict[str, Any],
    questions: list[dict[str, Any]],
    quiz_path: Path | str,
    images: dict[str, str],
    template: str,
    instructor: bool,
) -> Any:
    """The lesson as a notebook, for the instructor or (without what they alone may see) for
    students."""
    if instructor:
        source, shown = audience.for_the_instructor(source, path), values
    else:
        source, shown = audience.for_students(source, path), audience.student_values(values)
    filled = lesson.fill(source, shown, path)
    lesson.parse(filled, path, figures=values["figures"])  # The same checks as the page's.
    answered = quiz.answer(questions, shown, quiz_path)
    built_in = sections(template, shown, answered, instructor)
    read = jupytext.reads(filled, fmt="myst")
    cells = []
    for cell in read.cells:
        if cell.cell_type == "markdown":
            cells.append(markdown_cell(cell.source, images, built_in))
        elif cell.source.strip():
            code = nbformat.v4.new_code_cell(cell.source)
            if cell.metadata.get("tags"):
                code.metadata["tags"] = list(cell.metadata["tags"])
            cells.append(code)
    # The code must train the network the lesson names (`model:`): the lesson's own, a
    # variation students may see, or none at all.
    settings = course.check_model(course.model_of(source, path), shown, path)
    if settings is not None:
        check_settings(cells, settings, path)
    # The lesson's header names the kernel; a lesson without one runs on Python 3's.
    kernelspec = read.metadata.get("kernelspec") or {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    made = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernelspec})
    made.metadata["language_info"] = {"name": "python"}
    # Cell ids are random by default; numbered, the notebook's bytes repeat.
    for number, cell in enumerate(made.cells):
        cell.id = f"cell-{number}"
    nbformat.validate(made)
    return made


def figure_files(figures: Path, comparison: Path, instructor: bool) -> dict[str, Path]:
    """The PNGs a notebook may attach, by name; the instructor's comparison figures (which
    draw the instructor-only variations too) in place of the students'."""
    found = {path.stem: path for path in [*Path(figures).glob("*.png")]}
    found.update((path.stem, path) for path in Path(comparison).glob("*.png"))
    if instructor:
        found.update(
            (path.stem, path) for path in (Path(comparison) / INSTRUCTOR_FIGURES).glob("*.png")
        )
    return dict(sorted(found.items()))


def write_notebook(
    audience_name: str,
    lesson_path: Path,
    quiz_path: Path,
    plan_path: Path,
    contents_path: Path,
    values_path: Path,
    template: Path,
    figures: Path,
    comparison: Path,
    variant_reports: Path,
    notebook_path: Path,
) -> None:
    instructor = audience_name == "instructor"
    made = notebook(
        lesson.read_course_text(lesson_path),
        lesson_path,
        values=json.loads(Path(values_path).read_text(encoding="utf-8")),
        questions=quiz.load_if_any(quiz_path),
        quiz_path=quiz_path,
        images={
            name: base64.b64encode(path.read_bytes()).decode()
            for name, path in figure_files(figures, comparison, instructor).items()
        },
        template=Path(template).read_text(encoding="utf-8"),
        instructor=instructor,
    )
    text = nbformat.writes(made) + "\n"
    if not instructor:
        secrets = leaks.read_withheld(
            values_path=values_path,
            lesson_path=lesson_path,
            quiz_path=quiz_path,
            plan_path=plan_path,
            variant_reports=variant_reports,
        )
        leaks.check(notebook_path, text, secrets)
    artifacts.write_text(notebook_path, text)
    print(f"notebooks: {notebook_path}, for the {audience_name} ({len(made.cells)} cells)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.notebooks")
    parser.add_argument("--audience", choices=("student", "instructor"), required=True)
    files = ("lesson", "quiz", "plan", "contents", "values", "template", "figures", "comparison")
    args = cli.arguments("notebooks", (*files, "variant-reports", "notebook"), argv, parser)
    write_notebook(
        args.audience,
        args.lesson,
        args.quiz,
        args.plan,
        args.contents,
        args.values,
        args.template,
        args.figures,
        args.comparison,
        args.variant_reports,
        args.notebook,
    )


if __name__ == "__main__":
    cli.run(main)
