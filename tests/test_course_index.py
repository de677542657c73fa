"""The course of several lessons: the course list and its mistakes, each lesson's facts, the
home pages, the navigation, and, on the shared small build, what a lesson edit reruns, the
README's "add a lesson" followed word for word, and the links in Chromium."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from courseware import course
from pipeline.cli import StageError
from stages import home, page
from tests.helpers import (
    LESSONS,
    ROOT,
    copy_build,
    course_rebuilt,
    run,
    stages_run,
)

LESSON = """---
summary: {summary}
model: {model}
---
# {title}

Some text.
"""
PLAN = """# Plan

| part | minutes | what |
| --- | --- | --- |
| Opening | 5-7 | hello |
| Work | 10 | the rest |
| Close | 10–15 | bye |
"""


def write_course(root: Path, lessons: dict[str, str | None], listed: list | None = None) -> Path:
    """A course folder: course.yaml listing `listed` (default: the lessons), and a folder per
    lesson holding lesson.md (with the given summary) and plan.md."""
    folder = root / "course"
    folder.mkdir()
    (folder / "course.yaml").write_text(
        yaml.safe_dump({"title": "A course", "lessons": listed or list(lessons)}), encoding="utf-8"
    )
    for name, summary in lessons.items():
        (folder / name).mkdir()
        text = LESSON.format(summary=summary, model="none", title=f"Lesson {name}")
        (folder / name / "lesson.md").write_text(text, encoding="utf-8")
        (folder / name / "plan.md").write_text(PLAN, encoding="utf-8")
    return folder / "course.yaml"


# The course list and a lesson's facts, in-process.


def test_the_course_list_gives_the_title_and_the_lessons_in_order(tmp_path):
    path = write_course(tmp_path, {"b-second": "Two.", "a-first": "One."})
    listed, lessons, warnings = course.read_lessons(path)
    assert listed == course.Course("A course", ("b-second", "a-first"))
    assert [item.name for item in lessons] == ["b-second", "a-first"]
    assert lessons[0] == course.Lesson("b-second", "Lesson b-second", "Two.", "none", (25, 32))
    assert warnings == []
    assert course.contents(listed, lessons) == {
        "title": "A course",
        "lessons": [
            {"name": "b-second", "title": "Lesson b-second"},
            {"name": "a-first", "title": "Lesson a-first"},
        ],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title: T\nlessons: [a, b, a]\n", "the lesson 'a' is listed twice; a name is listed once"),
        ("title: T\nlessons: [a, B]\n", "lesson 'B' is not a folder name of lowercase letters"),
        ("title: T\nlessons: [a, ../b]\n", "lesson '../b' is not a folder name"),
        ("lessons: [a]\n", "`title:` must be the course's title, as text"),
        ("title: T\nlessons: a\n", "`lessons:` must list the lessons' folder names, in order"),
        ("title: T\nlessons: []\n", "`lessons:` must list the lessons' folder names, in order"),
        ("title: T\nlesons: [a]\n", "unknown key 'lesons'; known: title, lessons"),
        ("title: T\ntitle: U\nlessons: [a]\n", "the key 'title' is given twice (line 2)"),
        ("- a\n", "expected `title:` and `lessons:`"),
        ("title: [\n", "(line 2)"),
    ],
)
def test_each_mistake_in_the_course_list_is_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "course.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(course.CourseError) as error:
        course.read_course(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_listed_lesson_without_its_folder_or_lesson_is_refused_naming_it(tmp_path):
    path = write_course(tmp_path, {"one": "One."}, listed=["one", "two"])
    with pytest.raises(course.CourseError, match=r"lists the lesson 'two', but .*/two/ is missing"):
        course.read_lessons(path)
    (path.parent / "two").mkdir()
    with pytest.raises(course.CourseError) as error:
        course.read_lessons(path)
    assert (
        str(error.value)
        == f"{path.parent / 'two/lesson.md'}: missing; every lesson's folder holds one"
    )
    (path.parent / "two/lesson.md").write_text(LESSON.format(summary="S", model="none", title="T"))
    (path.parent / "two/quiz.yml").write_text("questions: []\n")
    near_miss = r"two/quiz.yml: not a file the build reads; did you mean quiz.yaml\?"
    with pytest.raises(course.CourseError, match=near_miss):
        course.read_lessons(path)


def test_a_folder_the_list_leaves_out_is_a_warning_and_is_not_built(tmp_path):
    path = write_course(tmp_path, {"one": "One.", "two": "Two."}, listed=["one"])
    _, lessons, warnings = course.read_lessons(path)
    assert [item.name for item in lessons] == ["one"]
    assert warnings == [
        f"warning: {path.parent / 'two'}/ is not in {path}, so it is not built; "
        "list it under lessons:"
    ]


@pytest.mark.parametrize(
    ("front", "message"),
    [
        ("model: none\n", "its front matter needs `summary:`, one line"),
        ("summary: One.\n", "its front matter needs `model:`, the network its code describes"),
        ("summary: [a]\nmodel: none\n", "its front matter needs `summary:`"),
        (
            "summary: One.\nmodel: none\n: [\n",
            "its front matter (between the --- lines) is not YAML",
        ),
    ],
)
def test_a_lesson_without_its_summary_or_model_is_refused_naming_its_file(tmp_path, front, message):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "lesson.md").write_text(f"---\n{front}---\n# Title\n", encoding="utf-8")
    with pytest.raises(course.CourseError) as error:
        course.describe(folder)
    assert str(error.value).startswith(f"{folder / 'lesson.md'}: {message}")


def test_a_lesson_needs_a_title_and_its_plan_a_minutes_table(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "lesson.md").write_text("---\nsummary: S\nmodel: none\n---\nNo heading.\n")
    with pytest.raises(course.CourseError, match="has no title; begin it with a `# Title` line"):
        course.describe(folder)
    (folder / "lesson.md").write_text("---\nsummary: S\nmodel: none\n---\n# T\n")
    assert course.describe(folder).minutes is None  # No plan: no length.
    (folder / "plan.md").write_text("# Plan\n\nTalk, then practise.\n")
    with pytest.raises(course.CourseError) as error:
        course.describe(folder)
    assert str(error.value).startswith(
        f"{folder / 'plan.md'}: has no table with a `minutes` column"
    )


def test_the_plans_minutes_add_up_as_ranges():
    assert course.plan_minutes(PLAN) == (25, 32)
    assert course.plan_minutes(PLAN.replace("5-7", "about five")) == (20, 25)
    assert course.plan_minutes("| a | b |\n| - | - |\n| 1 | 2 |\n") is None
    shipped = (ROOT / "course/digit-predictor/plan.md").read_text(encoding="utf-8")
    low, high = course.plan_minutes(shipped)
    assert 30 <= low <= high <= 180


def test_the_model_a_lesson_names_is_checked_against_the_build():
    values = {
        "settings": {"train": {"epochs": 5}},
        "variants": {"cnn": {"settings": {"train": {"epochs": 3}}}, "hidden": {"accuracy": 1}},
    }
    assert course.check_model("lesson", values, "l.md") == {"train": {"epochs": 5}}
    assert course.check_model("cnn", values, "l.md") == {"train": {"epochs": 3}}
    assert course.check_model("none", values, "l.md") is None
    unknown = "l.md: model: wide is not a model of this build; known: lesson, none, cnn, hidden"
    with pytest.raises(course.CourseError, match=unknown):
        course.check_model("wide", values, "l.md")
    with pytest.raises(course.CourseError, match="model: hidden is an instructor-only variation"):
        course.check_model("hidden", values, "l.md")


# The home pages and the navigation, in-process.


def test_the_home_pages_list_the_lessons_in_order_with_links_summaries_and_lengths(tmp_path):
    path = write_course(tmp_path, {"second": "Two & more.", "first": "One."})
    style = ROOT / "templates/page.css"
    template = ROOT / "templates/home.html.j2"
    out = tmp_path / "reports"
    home.home("student", path, template, style, out / "index.html", out / "contents.json")
    home.home("instructor", path, template, style, out / "instructor/index.html", None)
    student = (out / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', student)
    assert links == [
        "lessons/second/index.html",
        "lessons/second/index.html",
        "lessons/second/second.ipynb",
        "lessons/first/index.html",
        "lessons/first/index.html",
        "lessons/first/first.ipynb",
    ]
    assert "Two &amp; more." in student and "(25–32 minutes)" in student
    assert json.loads((out / "contents.json").read_text())["lessons"][0]["name"] == "second"
    teacher = (out / "instructor/index.html").read_text(encoding="utf-8")
    assert re.findall(r'href="([^"]+)"', teacher)[:4] == [
        "../index.html",
        "second/answer_key.html",
        "second/answer_key.html",
        "second/answer_key.ipynb",
    ]
    assert "For the instructor only" in teacher and "For the instructor only" not in student


def test_a_lesson_page_links_home_and_its_neighbours_relatively():
    contents = {
        "title": "C",
        "lessons": [{"name": n, "title": n.upper()} for n in ("one", "two", "three")],
    }
    first = page.navigation(contents, "one", "p")
    assert first == {
        "course": "C",
        "home": "../../index.html",
        "previous": None,
        "next": {"title": "TWO", "href": "../two/index.html"},
    }
    middle = page.navigation(contents, "two", "p")
    assert middle["previous"] == {"title": "ONE", "href": "../one/index.html"}
    assert middle["next"] == {"title": "THREE", "href": "../three/index.html"}
    assert page.navigation(contents, "three", "p")["next"] is None
    with pytest.raises(StageError, match="p: the lesson 'four' is not in the course's contents"):
        page.navigation(contents, "four", "p")


def test_the_home_stage_run_as_dvc_runs_it_ends_a_mistake_in_one_line(tmp_path):
    path = write_course(tmp_path, {"one": "One."}, listed=["one", "one"])
    result = subprocess.run(
        [sys.executable, "-m", "stages.home", "--audience", "student", "--course", str(path)]
        + ["--template", str(ROOT / "templates/home.html.j2")]
        + ["--style", str(ROOT / "templates/page.css")]
        + ["--home", str(tmp_path / "index.html"), "--contents", str(tmp_path / "c.json")]
        + ["--data", str(path), "--offline-data", str(tmp_path / "data")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        result.stderr == f"error: {path}: the lesson 'one' is listed twice; a name is listed once\n"
    )
    assert not (tmp_path / "index.html").exists()


# On the shared small build.


@pytest.fixture(scope="module")
def project(lesson_build, tmp_path_factory) -> Path:
    return copy_build(lesson_build[0], tmp_path_factory.mktemp("course") / "project")


def test_the_example_course_builds_and_its_home_lists_its_lessons_in_order(lesson_build):
    built = lesson_build[0]
    titles = [course.describe(ROOT / "course" / name).title for name in LESSONS]
    text = html.unescape((built / "reports/index.html").read_text(encoding="utf-8"))
    assert len(LESSONS) >= 2
    places = [text.index(f">{title}</a></h2>") for title in titles]
    assert places == sorted(places)
    for name in LESSONS:
        assert (built / f"reports/lessons/{name}/index.html").is_file()
        assert (built / f"reports/lessons/{name}/{name}.ipynb").is_file()
        assert (built / f"reports/instructor/{name}/answer_key.html").is_file()


def plain_words(text: str) -> str:
    """The longest run of plain words in a question (no markup, no values), to find it by."""
    return max(re.findall(r"[A-Za-z][A-Za-z ,']+[A-Za-z]", text), key=len)


def test_each_lessons_answer_key_holds_its_own_quiz(lesson_build):
    built = lesson_build[0]
    questions = {}
    for name in LESSONS:
        quiz_file = ROOT / "course" / name / "quiz.yaml"
        if quiz_file.exists():
            tree = yaml.safe_load(quiz_file.read_text(encoding="utf-8"))
            # An optional question this small build cannot answer is left out of the key.
            questions[name] = [
                plain_words(item["question"])
                for item in tree["questions"]
                if not item.get("optional")
            ]
    assert len(questions) >= 2
    for name, words in questions.items():
        key = html.unescape(
            (built / f"reports/instructor/{name}/answer_key.html").read_text(encoding="utf-8")
        )
        assert key.count('class="key-question"') >= len(words), name
        assert [text for text in words if text not in key] == [], name
        for other, theirs in questions.items():
            if other != name:
                assert [text for text in theirs if len(text) > 25 and text in key] == []


def test_editing_the_second_lesson_reruns_that_lesson_and_the_homes_only(project):
    name = LESSONS[1]
    lesson = project / f"course/{name}/lesson.md"
    original = lesson.read_text(encoding="utf-8")
    lesson.write_text(original + "\nA line the author added.\n", encoding="utf-8")
    try:
        ran = stages_run(run(["dvc", "repro"], project).stdout)
        assert ran == course_rebuilt(name)
        assert "A line the author added." in (
            project / f"reports/lessons/{name}/index.html"
        ).read_text(encoding="utf-8")
    finally:
        lesson.write_text(original, encoding="utf-8")
        run(["dvc", "repro"], project)


def readme_lesson() -> tuple[str, str, list[str]]:
    """The README's "add a lesson": where it says to save the example, the example, and the
    shell lines after it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    where = re.search(r"Save\s+this\s+example\s+as\s+`([^`]+)`", readme)
    example = re.search(r"^````md\n(.*?)^````$", readme, flags=re.M | re.S)
    shell = re.search(r"^````$\n+```sh\n(.*?)^```$", readme, flags=re.M | re.S)
    assert where and example and shell, "the README's 'add a lesson' is not where it was"
    return where.group(1), example.group(1), shell.group(1).splitlines()


def test_the_readmes_add_a_lesson_builds_a_lesson_on_the_home_page_and_in_the_links(
    project, tmp_path
):
    built = copy_build(project, tmp_path / "project")
    path, example, lines = readme_lesson()
    name = Path(path).parent.name
    (built / path).parent.mkdir()
    (built / path).write_text(example, encoding="utf-8")
    assert lines[-1].split("#")[0].strip() == "make repro"
    for line in lines[:-1]:
        subprocess.run(line, shell=True, cwd=built, check=True)
    # `make repro` is `dvc repro` with the stages run at once; dvc repro says what ran.
    ran = stages_run(run(["dvc", "repro"], built).stdout)
    # The new lesson's stages and the home pages; the contents (the lessons' names and titles)
    # changed, so every lesson's page and notebooks, which link their neighbours, follow. No
    # answer key of another lesson, and no training.
    every = [*LESSONS, name]
    assert ran == [
        "home",
        *[f"notebook@{lesson}" for lesson in every],
        *[f"key_notebook@{lesson}" for lesson in every],
        *[f"page@{lesson}" for lesson in every],
        f"answer_key@{name}",
        "instructor_home",
    ]
    assert not {"train", "values"} & set(ran)
    home_page = (built / "reports/index.html").read_text(encoding="utf-8")
    assert f'href="lessons/{name}/index.html"' in home_page
    assert "Where the network goes wrong" in home_page
    new_page = (built / f"reports/lessons/{name}/index.html").read_text(encoding="utf-8")
    assert f'rel="prev" href="../{LESSONS[-1]}/index.html"' in new_page
    assert 'rel="next"' not in new_page
    metrics = json.loads((built / "reports/values.json").read_text())["metrics"]["test"]
    assert f"test digits right: {metrics['accuracy']:.2%}." in html.unescape(new_page)
    before = (built / f"reports/lessons/{LESSONS[-1]}/index.html").read_text(encoding="utf-8")
    assert f'rel="next" href="../{name}/index.html"' in before


@pytest.mark.parametrize("width", [1280, 375])
def test_every_link_of_the_course_leads_within_its_folder_and_back_home(
    lesson_build, browser, width
):
    reports = lesson_build[0] / "reports"
    view = browser.new_page(viewport={"width": width, "height": 800})
    requests = []
    view.on("request", lambda request: requests.append(request.url))
    home_url = (reports / "index.html").as_uri()
    view.goto(home_url)
    lesson_links = view.eval_on_selector_all(
        "ol.lessons h2 a", "links => links.map(link => link.href)"
    )
    assert lesson_links == [(reports / f"lessons/{name}/index.html").as_uri() for name in LESSONS]
    for index, name in enumerate(LESSONS):
        view.goto(home_url)
        view.click(f"#lesson-{name} h2 a")
        view.wait_for_load_state()
        assert view.url == lesson_links[index]
        # Forward through every lesson by its "next" link, back by "previous", then home.
        if index + 1 < len(LESSONS):
            view.locator("nav.course-nav").first.locator("a[rel=next]").click()
            view.wait_for_load_state()
            assert view.url == lesson_links[index + 1]
            view.locator("nav.course-nav").first.locator("a[rel=prev]").click()
            view.wait_for_load_state()
            assert view.url == lesson_links[index]
        view.locator("nav.course-nav").last.get_by_text("Course home").click()
        view.wait_for_load_state()
        assert view.url == home_url
    assert requests and all(url.startswith(reports.as_uri() + "/") for url in requests), requests
    view.close()
