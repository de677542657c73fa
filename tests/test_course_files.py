"""Odd course files: a lesson, quiz or plan that is no such file stops every stage that reads
it with one line naming the file, and leaves every previous output as it was.

In the spirit of the params fuzz (tests/test_config.py): each odd file is put in place of the
author's and run through the stages that read it, as dvc.yaml declares them (their `main()`,
in-process, with dvc.yaml's command), on a small build made without training
(tests/test_page.py's `built_reports`, then the values stage). A few go through
`python -m`, to see the one `error:` line and exit code 1 as a user does.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cli import StageError
from tests.helpers import CODE, PER_LESSON, ROOT, run_stage, stage_entry
from tests.test_page import built_reports  # noqa: F401 (a fixture)

PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
PATHS = PIPELINE["vars"][1]["paths"]
# The files of the course's first lesson, and its stages (with the home pages, which read them
# too); the others' are alike.
FIRST = "digit-predictor"
FOLDER = f"{PATHS['lessons']}/{FIRST}"
COURSE = {
    name: f"{FOLDER}/{file}"
    for name, file in [("lesson", "lesson.md"), ("quiz", "quiz.yaml"), ("plan", "plan.md")]
}
SHIPPED = {name: (ROOT / path).read_text(encoding="utf-8") for name, path in COURSE.items()}
LESSON_STAGES = ["home", *[f"{stage}@{FIRST}" for stage in PER_LESSON]]


def readers(name: str) -> list[str]:
    """The stages that read course file `name` (a file in their folder dep), in dvc.yaml's
    order."""
    return [
        stage
        for stage in LESSON_STAGES
        if any(COURSE[name].startswith(dep.rstrip("/") + "/") for dep in stage_entry(stage)["deps"])
    ]


COURSE_STAGES = list(dict.fromkeys(stage for name in COURSE for stage in readers(name)))


def outputs() -> dict[str, str]:
    """Every output of the course stages, by its bytes' digest."""
    found = {}
    for stage in COURSE_STAGES:
        for out in stage_entry(stage)["outs"]:
            path = Path(out)
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# Where tests/test_page.py's `built_reports` keeps what dvc.yaml names otherwise.
BUILT_AS = {"confusion": "reports/confusion.csv", "raw": "raw/mnist.npz", "model": "model.keras"}


@pytest.fixture
def course_build(built_reports, monkeypatch):  # noqa: F811 (the fixture imported above)
    """A folder laid out as the project (params.yaml, course/, stages/, reports/) holding a
    build of the shipped course, made by the values stage and the course stages themselves;
    the current folder."""
    monkeypatch.chdir(built_reports)
    for name, path in BUILT_AS.items():
        Path(PATHS[name]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, PATHS[name])
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["prepare"] = {"train_size": 60, "test_size": 30}
    params["variants"] = {"cnn": {"model": {"kind": "cnn"}}}
    Path("params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    trained_with = {"changes": {}, "model": params["model"], "train": params["train"]}
    Path(PATHS["settings"]).write_text(json.dumps(trained_with), encoding="utf-8")
    for folder in CODE:
        Path(folder).symlink_to(ROOT / folder)
    shutil.copytree(ROOT / "course", "course")
    for stage in ["values", *COURSE_STAGES]:
        run_stage(stage)
    return built_reports


# Odd texts for every course file.
JUNK = bytes(random.Random(27).randrange(256) for _ in range(4096))
ANY_FILE = {
    "latin-1": "# Café\n\nThe café's digits.\n".encode("latin-1"),
    "utf-16": "# Title\n\nText.\n".encode("utf-16"),
    "binary junk": JUNK,
    "a PNG": b"\x89PNG\r\n\x1a\n" + JUNK[:64],
    "a NUL": b"# Title\n\nText\x00more.\n",
    "empty": b"",
    "blank": b" \n\t\n",
    "a folder": "folder",
    "missing": "missing",
}
# Odd Markdown with Jinja, for the lesson and the plan: appended to the shipped file.
ODD_TEXT = {
    "class": "{{ ''.__class__ }}",
    "mro": "{{ metrics.test.accuracy.__class__.__mro__[1].__subclasses__() }}",
    "cycler": "{{ cycler }}",
    "range": "{{ range(10**9) | list | length }}",
    "lipsum": "{{ lipsum() }}",
    "joiner": "{{ joiner() }}",
    "self": "{{ self._TemplateReference__context }}",
    "include": "{% include 'course/plan.md' %}",
    "import": "{% import 'course/plan.md' as plan %}",
    "from import": "{% from 'course/plan.md' import x %}",
    "extends": "{% extends 'course/plan.md' %}",
    "inf": "{{ metrics.test.accuracy * 1e309 }}",
    "nan": "{{ (1e309 - 1e309) | percent }}",
    "huge power": "{{ metrics.test.images ** 1000000 }}",
    "huge text": "{{ 'digits' * 10**9 }}",
    "percent format": "{{ '%0999999999d' % 1 }}",
    "recursion": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "misspelt filter": "{{ metrics.test.accuracy | precent }}",
    "unknown value": "{{ metrics.test.acuracy }}",
    "open brace": "{{ metrics.test.accuracy",
    "open block": "{% for name in figures %}{{ name }}",
    "huge line": "x" * 2_000_000 + " {{ nothing }}",
    "unclosed figure": "```{figure} curves\n:alt: Curves\nCaption.\n\n## Next\n\nText.\n",
    "unclosed plain fence": "```python\nprint(1)\n\n## Next\n",
    "unclosed admonition": "```{note}\nA note.\n\n## Next\n\n```\n",
}
# Odd lessons: the shipped one with a fence left open mid-lesson, or its front matter.
LESSON = SHIPPED["lesson"]


def unclosed(kind: str) -> str:
    """The shipped lesson with its first `kind` fence left open (its closing line gone)."""
    lines = LESSON.splitlines(keepends=True)
    start = next(n for n, line in enumerate(lines) if line.startswith(f"```{{{kind}}}"))
    end = next(n for n in range(start + 1, len(lines)) if lines[n].strip() == "```")
    return "".join(lines[:end] + lines[end + 1 :])


ODD_LESSONS = {
    "front matter never closed": LESSON.replace("---\n\n#", "\n#", 1),
    "unclosed code-cell": unclosed("code-cell"),
    "unclosed figure mid-lesson": unclosed("figure"),
    "unclosed build": unclosed("build"),
}
# Odd quizzes: YAML that is no quiz, and questions that reach outside or are not finite.
QUESTION = "- topic: t\n  question: Q?\n  explanation: E.\n"
ODD_QUIZZES = {
    "a list": "- 1\n- 2\n",
    "a number": "42\n",
    "null": "~\n",
    "a text": "questions\n",
    "questions a mapping": "questions: {a: 1}\n",
    "no questions": "questions: []\n",
    "invalid YAML": "questions:\n\t- topic: a\n",
    "python object": "questions: !!python/object/apply:os.system ['echo hi']\n",
    "nested deep": "[" * 5000,
    "anchors": "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nquestions: [*b, *b]\n",
    "mixed keys": "questions:\n- {topic: a, 1: b, hint: c}\n",
    "inf number": f"questions:\n{QUESTION}  number: metrics.test.accuracy * 1e309\n",
    "nan number": f"questions:\n{QUESTION}  number: 1e309 - 1e309\n  optional: true\n",
    "inf tolerance": f"questions:\n{QUESTION}  number: '1'\n  tolerance: .inf\n",
    "class number": f"questions:\n{QUESTION}  number: \"''.__class__\"\n",
    "huge choices": f"questions:\n{QUESTION}  choices_from: models * 10**6\n  answer_from: '1'\n",
    "class question": "questions:\n- topic: t\n  question: \"{{ ''.__class__ }}\"\n"
    "  explanation: E.\n  choices: [a, b]\n  answer: 1\n",
    "include explanation": "questions:\n- topic: t\n  question: Q?\n"
    "  explanation: \"{% include 'course/plan.md' %}\"\n  choices: [a, b]\n  answer: 1\n",
    "misspelt filter": "questions:\n- topic: t\n"
    '  question: "{{ metrics.test.accuracy | precent }}"\n'
    "  explanation: E.\n  choices: [a, b]\n  answer: 1\n",
}
ODD_PLANS = {
    "front matter never closed": "---\ntitle: Plan\n\n# Plan\n",
    "unclosed code-cell": "# Plan\n\n```{code-cell} ipython3\nx = 1\n\nText.\n\n"
    "```{code-cell} ipython3\ny = 2\n```\n",
    "only Jinja": "{{ values }}\n",
}


def cases(name: str) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = dict(ANY_FILE)
    if name != "lesson":
        # A lesson may have no quiz or no plan: that is not odd (test_course_index.py).
        del found["missing"]
    if name in ("lesson", "plan"):
        found.update({key: f"{SHIPPED[name]}\n{text}\n".encode() for key, text in ODD_TEXT.items()})
    if name == "lesson":
        found.update({key: text.encode() for key, text in ODD_LESSONS.items()})
    if name == "quiz":
        found.update({key: text.encode() for key, text in ODD_QUIZZES.items()})
    if name == "plan":
        found.update({key: text.encode() for key, text in ODD_PLANS.items()})
    return found


def put(path: Path, content: bytes | str) -> None:
    """Put an odd file in place of the author's."""
    if path.is_dir():
        path.rmdir()
    else:
        path.unlink(missing_ok=True)
    if content == "folder":
        path.mkdir()
    elif content != "missing":
        path.write_bytes(content)


@pytest.mark.parametrize("name", sorted(COURSE))
def test_every_odd_course_file_stops_its_readers_in_one_line_and_keeps_the_outputs(
    course_build, name, capsys
):
    assert readers(name), f"no stage reads {COURSE[name]}"
    before = outputs()
    path = Path(COURSE[name])
    wrong = []
    for case, content in cases(name).items():
        put(path, content)
        stopped = []
        for stage in readers(name):
            try:
                run_stage(stage)
            except StageError as error:
                message = str(error)
                stopped.append(stage)
                if "\n" in message or not message.startswith(f"{path}"):
                    wrong.append(f"{case} / {stage}: {message[:300]!r}")
            except Exception as error:  # A traceback: what this test is here to find.
                wrong.append(f"{case} / {stage}: {type(error).__name__}: {str(error)[:200]}")
            # A stage that builds must build the same bytes: it does not use what is odd (the
            # instructor's notebook declares the plan, which only the student's outputs
            # search). Nothing else may change.
            if outputs() != before:
                wrong.append(f"{case} / {stage}: an output changed")
                before = outputs()
        if not stopped:
            wrong.append(f"{case}: built by every stage that reads {path}")
    put(path, SHIPPED[name].encode())
    capsys.readouterr()
    assert wrong == [], "\n".join(wrong)
    assert len(cases(name)) >= 10


def test_the_fuzz_covers_enough_odd_files():
    assert sum(len(cases(name)) for name in COURSE) >= 60


# Through `python -m`, as dvc runs a stage: one `error:` line and exit code 1.
@pytest.mark.parametrize(
    ("name", "content", "stage", "message"),
    [
        ("lesson", b"# Caf\xe9\n", f"page@{FIRST}",
         f"{FOLDER}/lesson.md:1: is not UTF-8 text (byte 0xe9)"),
        ("quiz", b"- 1\n", f"answer_key@{FIRST}",
         f"{FOLDER}/quiz.yaml: expected `questions:`, a list"),
        ("lesson", "folder", f"notebook@{FIRST}",
         f"{FOLDER}/lesson.md: is a folder, not a text file"),
        ("plan", (SHIPPED["plan"] + "{{ cycler.__init__ }}\n").encode(), f"answer_key@{FIRST}",
         "course/digit-predictor/plan.md:"),
    ],
)  # fmt: skip
def test_a_stage_run_as_dvc_runs_it_prints_one_error_line(
    course_build, name, content, stage, message
):
    before = outputs()
    put(Path(COURSE[name]), content)
    result = subprocess.run(
        shlex.split(stage_entry(stage)["cmd"]),
        env=dict(
            os.environ,
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            PYTHONPATH=str(ROOT),
        ),  # fmt: skip
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"error: {message}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert outputs() == before
