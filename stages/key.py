"""Answer key: the instructor's copy of the course, from the same build as the student's.

Reads:  --quiz (a lesson's questions, course/<name>/quiz.yaml, if it has a quiz), --plan (its
        session plan, Markdown with values, if it has one), --values (every number they
        quote, and every variation's settings), --template (the key's markup) and --style.
Writes: --key, one self-contained HTML file: every question with its answer, its explanation
        and, for computed ones, this build's value; the assignment's solution (every
        variation's settings and scores); and the session plan. It is instructor-only: the
        student's site never holds it (courseware/audience.py says what else is).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from courseware import audience, course, lesson, quiz
from pipeline import artifacts, cli, config


def answer_key(
    *,
    questions: list[dict[str, Any]],
    quiz_path: Path,
    plan_text: str,
    plan_path: Path,
    values: dict[str, Any],
    template: str,
    style: str,
) -> str:
    answered = quiz.answer(questions, values, quiz_path)
    filled = lesson.fill(plan_text, values, plan_path)
    lesson.check_fences(filled, plan_path)
    plan = lesson.markdown().render(filled)
    models = {"lesson": values["lesson"], **values["variants"]}
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters.update(lesson.FILTERS)
    return environment.from_string(template).render(
        values=values,
        questions=answered,
        hidden=audience.hidden_variants(values),
        settings_of={
            name: [
                (key, json.dumps(value)) for key, value in config.flatten(model["settings"]).items()
            ]
            for name, model in models.items()
        },
        plan=plan,
        style=style,
    )


def key(
    quiz_path: Path,
    plan_path: Path,
    values_path: Path,
    template: Path,
    style: Path,
    key_path: Path,
) -> None:
    text = answer_key(
        questions=quiz.load_if_any(quiz_path),
        quiz_path=quiz_path,
        plan_text=course.optional_text(plan_path),
        plan_path=plan_path,
        values=json.loads(Path(values_path).read_text(encoding="utf-8")),
        template=Path(template).read_text(encoding="utf-8"),
        style=Path(style).read_text(encoding="utf-8"),
    )
    artifacts.write_text(key_path, text)
    print(f"answer_key: {key_path} ({len(text.encode()) / 2**10:.0f} KiB, for the instructor)")


def main(argv: list[str] | None = None) -> None:
    args = cli.arguments("key", ("quiz", "plan", "values", "template", "style", "key"), argv)
    key(args.quiz, args.plan, args.values, args.template, args.style, args.key)


if __name__ == "__main__":
    cli.run(main)
