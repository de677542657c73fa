"""The course page: self-contained, described for screen readers, and it loads in a browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages import page, values
from tests.helpers import BROWSER_ARGS, ROOT, chromium


@pytest.fixture
def built_reports(reports_template, tmp_path):
    """What evaluate and render leave behind, for 30 test digits, without training
    (tests/helpers.py's `stand_in_reports`): made once per session (tests/conftest.py) and
    copied into the test's own folder, which it is, to change as the test likes."""
    shutil.copytree(reports_template, tmp_path, symlinks=True, dirs_exist_ok=True)
    return tmp_path


def make_page(built, lesson=ROOT / "course/digit-predictor/lesson.md", **settings):
    """The page of `built` for `lesson`, showing the lesson's settings with `settings` (dotted
    keys) set, through the values stage as the pipeline runs it."""
    reports = built / "reports"
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())
    trained_with = {"changes": {}, "model": shipped["model"], "train": shipped["train"]}
    for dotted, value in settings.items():
        section, key = dotted.split(".")
        trained_with[section][key] = value
    (reports / "settings.json").write_text(json.dumps(trained_with))
    values.write_values(
        reports / "metrics.json",
        reports / "settings.json",
        reports / "history.csv",
        reports / "predictions.csv",
        reports / "confusion.csv",
        reports / "per_class.csv",
        reports / "confused_pairs.csv",
        reports / "figures",
        reports / "comparison",
        reports / "variants",
        reports / "sklearn" / "metrics.json",
        built / "raw/mnist.npz",
        built / "model.keras",
        reports / "values.json",
        params={"prepare": {"train_size": 60, "test_size": 30}, "render": shipped["render"]},
        sklearn_settings=shipped["sklearn"],
        instructor_only=[],
    )
    out = reports / "index.html"
    notebook = reports / "lesson.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n')
    contents = reports / "contents.json"
    lessons = [{"name": Path(lesson).parent.name, "title": "This lesson"}]
    contents.write_text(json.dumps({"title": "A course", "lessons": lessons}))
    page.page(
        lesson,
        ROOT / "course/digit-predictor/quiz.yaml",
        ROOT / "course/digit-predictor/plan.md",
        contents,
        reports / "values.json",
        notebook,
        ROOT / "templates/page.html.j2",
        reports / "figures",
        reports / "comparison",
        reports / "network.json",
        reports / "variants",
        ROOT / "templates/page.js",
        ROOT / "templates/quiz.js",
        ROOT / "templates/page.css",
        out,
    )
    return out.read_text()


def test_the_page_states_the_score_and_settings_and_needs_nothing_from_outside(built_reports):
    text = make_page(built_reports)
    assert "Test accuracy <strong>80.00%</strong>" in text
    assert "<td>train.epochs</td><td>5</td>" in text
    assert "<td>model.hidden_units</td><td>[128]</td>" in text
    # The most-confused pairs: each of these mistakes happened once, listed by true digit.
    pairs = re.findall(r"<td>(\d -&gt; \d)</td>", text)
    assert pairs == ["0 -&gt; 1", "1 -&gt; 2", "4 -&gt; 5"]
    assert values.md5(built_reports / "model.keras") in text
    inline = r"data:(?:image/png|application/x-ipynb\+json);base64,"
    # Besides what it carries, the page links only the course's own pages, relatively (the
    # course's home, two folders up, and the lessons beside it) and places on itself.
    links = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert "../../index.html" in links
    relative = re.compile(r"(\.\./\.\./index\.html|\.\./[a-z0-9-]+/index\.html|#[\w-]+)")
    assert [
        link for link in links if not re.match(inline, link) and not relative.fullmatch(link)
    ] == []
    # The scripts, all inline: the networks' weights, the quiz's salt, page.js and quiz.js.
    assert re.findall(r"<script[^>]*>", text) == [
        '<script type="application/json" id="networks">',
        '<script type="application/json" id="quiz-salt">',
        "<script>",
    ]
    assert "http://" not in text and "https://" not in text
    assert (ROOT / "templates/page.js").read_text() in text
    assert (ROOT / "templates/quiz.js").read_text() in text
    assert (ROOT / "templates/page.css").read_text() in text
    images = re.findall(r"<img [^>]*>", text)
    assert len(images) == 6
    assert all(re.search(r'alt="[^"]{20,}"', image) for image in images)


def test_the_variations_are_compared_with_the_lesson(built_reports):
    text = make_page(built_reports)
    section = text[text.index('<section class="built-in" id="variations"') :]
    section = section[: section.index("</section>")]
    rows = re.findall(r"<tr><td>(\w+)</td><td>([^<]*)</td><td>([\d.]+%)</td>", section)
    assert rows == [
        ("lesson", "nothing: the lesson&#39;s settings", "80.00%"),
        ("cnn", "model.kind=cnn", "90.00%"),
        (
            "sklearn",
            "another model: scikit-learn&#39;s LogisticRegression; tested on another split: "
            "14,000 random images of 70,000, not MNIST&#39;s test images",
            "95.00%",
        ),
    ]
    said = " ".join(re.sub(r"<[^>]+>", "", section).split())
    assert (
        "It was tested on another split: 14,000 images picked at random from 70,000, not the "
        "30 test images above. Its score is measured on other images, so it is not ranked with "
        "the others." in said
    )
    # It scored highest here, on its own split, and still is not the best model.
    found = json.loads((built_reports / "reports/values.json").read_text())
    assert found["models"] == ["lesson", "cnn"]
    assert found["best"] == {"name": "cnn", "names": ["cnn"], "accuracy": 0.9}
    assert found["sklearn"]["train_share"] == 0.8
    assert found["sklearn"]["iterations"] == 261


def test_setting_values_are_escaped(built_reports):
    text = make_page(built_reports, **{"model.activation": "<b>relu</b>"})
    assert "<b>relu</b>" not in text and "&lt;b&gt;" in text


def test_the_page_is_the_same_bytes_when_built_by_another_process(built_reports):
    """Another process, with another hash seed, must write the same page: nothing in it may
    depend on set or dict order, ids or the clock."""
    first = make_page(built_reports)
    code = (
        "import sys; from pathlib import Path; from tests.test_page import make_page; "
        "make_page(Path(sys.argv[1]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(built_reports)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONHASHSEED="12345"),
        check=True,
    )
    assert (built_reports / "reports/index.html").read_text() == first


def test_the_page_stage_reads_files_only():
    """The page shows what train and render wrote; it imports neither (nor matplotlib,
    which would be a third of the stage's time, nor TensorFlow)."""
    code = (
        "import sys, stages.page; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'matplotlib', 'tensorflow', 'keras', 'dvc'}), "
        "sorted(m for m in ('stages.train', 'stages.render', 'digits.model') if m in sys.modules))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[] []"


@pytest.mark.slow
def test_the_page_loads_in_a_real_browser_with_every_image_and_no_request_out(
    built_reports, tmp_path
):
    from playwright.sync_api import sync_playwright

    make_page(built_reports)
    url = (built_reports / "reports/index.html").as_uri()
    requests = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        for width, name in ((1280, "projector"), (375, "phone")):
            view = browser.new_page(viewport={"width": width, "height": 800})
            view.on("request", lambda request: requests.append(request.url))
            view.goto(url, wait_until="load")
            widths = view.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
            assert len(widths) == 6 and all(w > 0 for w in widths), widths
            assert "Test accuracy 80.00%" in view.inner_text(".score")
            overflow = view.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the page is wider than a {width}px screen"
            view.screenshot(path=tmp_path / f"{name}.png", full_page=True)
            view.close()
        browser.close()
    assert (tmp_path / "phone.png").stat().st_size > 10_000
    # The page itself, once per screen size, and nothing else: the images are inline data.
    assert requests == [url, url]
