"""MyST as Jupyter Book authors write it (issue 31): math, admonitions, cross-references and
the author's own images, in the page (MathML, boxes, links, data) and in the notebooks (LaTeX,
quotes, links, attachments); each mistake stops the build in one line naming its line.

Small lessons rendered in-process; the page through the page stage on a small build
(tests/test_page.py's fixture), and in Chromium at a phone's width.
"""

from __future__ import annotations

import base64
import re
import struct
import zlib
from pathlib import Path

import nbformat
import pytest

from courseware import audience, lesson
from stages import notebooks
from tests.helpers import BROWSER_ARGS, ROOT, chromium
from tests.test_page import built_reports, make_page  # noqa: F401 (a fixture)

HEADER = "---\njupytext:\n  text_representation: {format_name: myst}\nmodel: none\n---\n"
VALUES = {
    "metrics": {"test": {"accuracy": 0.97612, "weights": 101770}},
    "settings": {"model": {"hidden_units": [128]}, "train": {}},
    "variants": {},
    "figures": ["curves"],
}


def png(width: int, height: int) -> bytes:
    """A small red PNG, made here, so that the test knows its every byte."""
    rows = b"".join(b"\x00" + b"\xcc\x22\x22" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A lesson's folder holding the author's image `diagram.png` (and one in `images/`)."""
    (tmp_path / "course").mkdir()
    (tmp_path / "course/diagram.png").write_bytes(png(40, 20))
    (tmp_path / "course/images").mkdir()
    (tmp_path / "course/images/box.png").write_bytes(png(8, 8))
    (tmp_path / "secret.png").write_bytes(png(4, 4))
    return tmp_path / "course"


def parse(body: str, path: Path | str = "course/lesson.md", **lessons) -> list[lesson.Part]:
    filled = lesson.fill(HEADER + body, VALUES, path)
    return lesson.parse(filled, path, figures=VALUES["figures"], lessons=lessons)


def html(body: str, path: Path | str = "course/lesson.md", **lessons) -> str:
    return "".join(part.text for part in parse(body, path, **lessons) if part.kind == "html")


def maths(text: str) -> list[str]:
    return re.findall(r'<math display="(\w+)">', text)


# Math ------------------------------------------------------------------------------------


def test_inline_and_display_math_become_mathml_filled_from_the_values():
    text = html(
        "Softmax: $p_i = \\frac{e^{z_i}}{\\sum_j e^{z_j}}$, for each digit $i$.\n\n"
        "$$\n{{ metrics.test.weights }} = 784 \\times 128 + 128 + 128 \\times 10 + 10\n$$\n"
    )
    assert maths(text) == ["inline", "inline", "block"]
    assert "<mfrac>" in text and "<msub><mi>z</mi><mi>i</mi></msub>" in text
    assert "<mn>101770</mn><mo>&#x0003D;</mo><mn>784</mn><mo>&#x000D7;</mo>" in text
    assert "$" not in text and "\\frac" not in text
    # A display formula scrolls inside its own box on a narrow screen.
    assert '<div class="math-display" tabindex="0" role="region"' in text


@pytest.mark.parametrize(
    "prose",
    ["It costs $5.", "From $5 to $10 a month.", "It costs $5. The softmax of $z$ is here.",
     "A dollar written \\$x$ is no formula.", "$ x $ with blanks is text, as in pandoc."],
)  # fmt: skip
def test_a_dollar_in_prose_stays_text(prose):
    text = html(prose)
    shown = re.sub(r"<math .*?</math>", "MATH", text)
    assert "$" in shown
    assert maths(text) == (["inline"] if "$z$" in prose else [])
    assert "<p>It costs $5. The softmax of MATH is here.</p>" in shown or "$z$" not in prose


def test_a_number_with_thousands_commas_is_one_number_in_a_formula():
    text = html("$$\nw = {{ metrics.test.weights | thousands | replace(',', '{,}') }}\n$$\n")
    assert "<mi>w</mi><mo>&#x0003D;</mo><mn>101,770</mn></mrow></math>" in text


def test_math_text_is_escaped_in_the_page():
    text = html("$\\text{a<b}$")
    assert "<mtext>a&lt;b</mtext>" in text and "<b" not in text.replace("<b>", "")


# Admonitions -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["note", "tip", "warning", "important", "seealso"])
@pytest.mark.parametrize("fence", ["```", ":::"])
def test_admonitions_in_backtick_and_colon_fences_are_boxes(name, fence):
    text = html(f"{fence}{{{name}}}\nDivide by **255**, so $x \\le 1$.\n{fence}\n")
    title = lesson.ADMONITIONS[name]
    assert text == (
        f'<aside class="admonition {name}" aria-label="{title}">\n'
        f'<p class="admonition-title">{title}</p>\n'
        "<p>Divide by <strong>255</strong>, so "
        '<math display="inline"><mrow><mi>x</mi>'
        "<mo>&#x02264;</mo><mn>1</mn></mrow></math>.</p>\n</aside>\n"
    )


def test_an_admonition_takes_a_title_a_class_a_name_and_nests():
    text = html(
        "::::{tip} Scale **first**\n:class: wide\n:name: scaling\nOuter.\n\n"
        ":::{warning}\nInner.\n:::\n::::\n\nSee {ref}`scaling`.\n"
    )
    assert text.startswith(
        '<aside class="admonition tip wide" id="scaling" aria-label="Scale first">\n'
        '<p class="admonition-title">Scale <strong>first</strong></p>\n<p>Outer.</p>\n'
        '<aside class="admonition warning" aria-label="Warning">'
    )
    assert '<p>See <a href="#scaling">Scale first</a>.</p>' in text


# References ------------------------------------------------------------------------------


def test_references_link_headings_figures_equations_and_other_lessons(folder):
    text = (
        "(training)=\n## Training the network\n\nText.\n\n"
        "(grid)=\n```{figure} curves\n:alt: Curves\nThe **curves** of training.\n```\n\n"
        "$$\nL = -\\log p\n$$ (loss)\n\n"
        "See {ref}`training`, {ref}`the figure <grid>`, {ref}`grid`, {eq}`loss`, "
        "{ref}`Training <Training>` and {ref}`logistic`.\n"
    )
    parts = parse(text, folder / "lesson.md", logistic=("Logistic regression", "../logistic/"))
    assert parts[0].text.startswith('<h2 id="training">Training the network</h2>')
    assert parts[1].options["id"] == "grid"
    assert '<div class="math-display" id="loss"' in parts[2].text
    assert '<span class="equation-number">(1)</span>' in parts[2].text
    assert (
        '<p>See <a href="#training">Training the network</a>, <a href="#grid">the figure</a>, '
        '<a href="#grid">The curves of training.</a>, <a href="#loss">(1)</a>, '
        '<a href="#training">Training</a> and <a href="../logistic/">Logistic regression</a>.</p>'
    ) in parts[2].text


# The author's images ---------------------------------------------------------------------


def test_the_authors_images_are_inside_the_page_as_data(folder):
    parts = parse(
        "![A red diagram](diagram.png) and ![a box](images/box.png)\n\n"
        "```{figure} diagram.png\n:alt: The diagram again\nIts caption.\n```\n",
        folder / "lesson.md",
    )
    data = base64.b64encode((folder / "diagram.png").read_bytes()).decode()
    box = base64.b64encode((folder / "images/box.png").read_bytes()).decode()
    assert f'<img src="data:image/png;base64,{data}" alt="A red diagram" />' in parts[0].text
    assert f'<img src="data:image/png;base64,{box}" alt="a box" />' in parts[0].text
    figure = parts[1]
    assert (figure.kind, figure.name, figure.options["alt"]) == (
        "figure",
        "diagram.png",
        "The diagram again",
    )
    assert figure.image == {"mime": "image/png", "data": data, "width": 40, "height": 20}


# Mistakes: one line each, naming the lesson's line (the header is lines 1-5). ------------

MISTAKES = [
    (":::{danger}\nRun!\n:::\n",
     "lesson.md:6: unknown directive {danger}; known: {code-cell}, {figure}, {build}, {note}, "
     "{tip}, {warning}, {important}, {seealso}"),
    ("Text.\n\n$\\frac{a}{b$ here.\n",
     "lesson.md:8: the formula $\\frac{a}{b$ leaves a { unclosed"),
    ("Text\nand $\\softmax(z)$.\n",
     "lesson.md:7: the formula $\\softmax(z)$ uses \\softmax, which the page cannot draw "
     "(latex2mathml knows LaTeX's math commands, not macros)"),
    ("$$\nx_\n$$\n",
     "lesson.md:6: the formula $x_$ is not LaTeX the page can draw (missing super script or "
     "subscript)"),
    ("$\\frac{a}$\n", "lesson.md:6: the formula $\\frac{a}$ misses an argument (mfrac)"),
    ("(training)=\n## Training\n\nSee {ref}`trainig`.\n",
     "lesson.md:9: unknown reference 'trainig' in {ref}; did you mean training?"),
    ("See {ref}`nowhere`.\n",
     "lesson.md:6: unknown reference 'nowhere' in {ref}; the lesson has no (label)= targets"),
    ("(a)=\nSome text.\n\n{ref}`a`\n",
     "lesson.md:9: {ref}`a` needs its words, {ref}`words <a>`: its target is not before a "
     "heading, figure or box"),
    ("(a)=\n# A\n\n(a)=\n# B\n", "lesson.md:9: label 'a' is defined twice (first on line 6)"),
    ("(quiz)=\n# Q\n", "lesson.md:6: label 'quiz' is the page's own section's; choose another"),
    ("A {abbr}`MNIST (Modified NIST)`.\n",
     "lesson.md:6: unknown role {abbr}; known: {ref}, {eq}, {math}"),
    ("Text.\n\n![The diagram](diagram.svg)\n",
     "lesson.md:8: image 'diagram.svg' not found in the lesson's folder"),
    ("![A secret](../secret.png)\n",
     "lesson.md:6: image '../secret.png' is outside the lesson's folder"),
    ("![A logo](https://example.org/logo.png)\n",
     "lesson.md:6: image 'https://example.org/logo.png' is not a file in the lesson's folder; "
     "the page is one file that opens offline, so save the image beside the lesson and name "
     "it so"),
    ("![](diagram.png)\n",
     "lesson.md:6: image 'diagram.png' needs a text for screen readers: ![what it "
     "shows](diagram.png)"),
    ("```{figure} missing.png\n:alt: Gone\n```\n",
     "lesson.md:6: image 'missing.png' not found in the lesson's folder"),
    ("```{figure} ../secret.png\n:alt: Secret\n```\n",
     "lesson.md:6: image '../secret.png' is outside the lesson's folder"),
    (":::{code-cell} ipython3\nx = 1\n:::\n",
     "lesson.md:6: a {code-cell} is written in a ``` fence, as jupytext reads cells"),
    (":::{note}\n```{figure} curves\n:alt: C\n```\n:::\n",
     "lesson.md:7: a {figure} inside a {note} is not supported; place it outside the box"),
    (":::{note}\nOpen.\n\n## Next\n\nThe end.\n",
     "lesson.md:6: the {note} fence opened here is never closed"),
    (":::{note}\nOpen.\n\n## Next\n\n:::{tip}\nMore.\n:::\n",
     "lesson.md:6: the {note} fence opened here is never closed: it runs on into '## Next'"),
    ("$$\nx = 1\n```{code-cell} ipython3\nx = 2\n```\n$$\n",
     "lesson.md:6: the $$ formula opened here is never closed: it runs on into "
     "'```{code-cell} ipython3'; close it with $$"),
    (":::{note}\n:title: Mine\nText.\n:::\n",
     "lesson.md:6: the {note} takes the options :class: and :name:, not :title:"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), MISTAKES)
def test_each_mistake_stops_the_build_in_one_line(folder, body, message):
    (folder / "plain.txt").write_text("not an image")
    with pytest.raises(lesson.LessonError) as error:
        parse(body, folder / "lesson.md")
    shown = str(error.value)
    assert "\n" not in shown
    assert shown.startswith(f"{folder}/{message}"), shown


def test_a_formula_left_open_never_hides_a_solution_cell_from_the_students_filter():
    """A `$$` left open may not swallow a cell, which the students' filter would then miss
    and the page show as a formula: across a blank line it is no formula, and a cell inside
    one is refused, both before the filter runs."""
    cell = "```{code-cell} ipython3\n:tags: [solution]\nanswer = 42\n```\n"
    student = audience.for_students(HEADER + "$$\nx = 1\n\n" + cell + "\n$$\ny\n$$\n", "l.md")
    assert "answer = 42" not in student and "$$\ny\n$$" in student
    with pytest.raises(lesson.LessonError, match=r"^l.md:6: the \$\$ formula opened here"):
        audience.for_students(HEADER + "$$\nx = 1\n" + cell + "$$\n", "l.md")


def test_an_image_that_is_not_what_its_name_says_is_refused(folder):
    (folder / "fake.png").write_text("<html>not a PNG</html>")
    with pytest.raises(lesson.LessonError) as error:
        parse("![A fake](fake.png)\n", folder / "lesson.md")
    assert str(error.value) == f"{folder}/lesson.md:6: image 'fake.png' is not a png file"


# The notebooks ---------------------------------------------------------------------------

NOTEBOOK_LESSON = (
    HEADER + "(top)=\n# Reading digits\n\n"
    "It costs $5. Softmax: $p_i = \\frac{e^{z_i}}{\\sum_j e^{z_j}}$.\n\n"
    "$$\n{{ metrics.test.weights }} = 784 \\times 128 + 128\n$$ (count)\n\n"
    ":::{tip} Scale first\nDivide by 255; see {ref}`top` and {eq}`count`.\n:::\n\n"
    "```{warning}\nMind ![the diagram](diagram.png).\n```\n\n"
    "```{figure} images/box.png\n:alt: A box\nA **box**.\n```\n"
)


def test_the_notebook_keeps_the_latex_and_writes_boxes_links_and_attachments(folder):
    made = notebooks.notebook(
        NOTEBOOK_LESSON,
        folder / "lesson.md",
        values=VALUES,
        questions=[],
        quiz_path="quiz.yaml",
        images={},
        template=(ROOT / "templates/notebook.md.j2").read_text(),
        instructor=False,
    )
    nbformat.validate(made)
    (cell,) = made.cells
    assert cell.source == (
        '<a id="top"></a>\n# Reading digits\n\n'
        "It costs \\$5. Softmax: $p_i = \\frac{e^{z_i}}{\\sum_j e^{z_j}}$.\n\n"
        '<a id="count"></a>\n\n$$\n101770 = 784 \\times 128 + 128\n\\tag{1}\n$$\n\n'
        "> **Scale first**\n>\n> Divide by 255; see [Reading digits](#top) and [(1)](#count).\n\n"
        "> **Warning**\n>\n> Mind ![the diagram](attachment:diagram.png).\n\n"
        "![A box](attachment:images/box.png)\n\n*A **box**.*"
    )
    assert cell.attachments == {
        "diagram.png": {"image/png": base64.b64encode(png(40, 20)).decode()},
        "images/box.png": {"image/png": base64.b64encode(png(8, 8)).decode()},
    }


# The page --------------------------------------------------------------------------------

PAGE_LESSON = (
    HEADER + "# Formulas on a phone\n\n"
    "Softmax turns the ten outputs $z_0, \\dots, z_9$ into probabilities:\n\n"
    "$$\np_i = \\frac{e^{z_i}}{\\sum_{j=0}^{9} e^{z_j}}\n$$\n\n"
    "The loss is $L = -\\log p_{\\text{right}}$, and the network has\n\n"
    "$$\n784 \\times 128 + 128 + 128 \\times 10 + 10 = {{ metrics.test.weights }}\n$$ (weights)\n\n"
    "weights, {eq}`weights`. A long one scrolls in its box:\n\n"
    "$$\n" + " + ".join(f"w_{{{n}}} x_{{{n}}}" for n in range(40)) + "\n$$\n\n"
    ":::{tip}\nIt costs $5, no formula.\n:::\n\n"
    "```{figure} diagram.png\n:alt: A red rectangle the author drew\nThe author's own.\n```\n\n"
    "```{figure} prediction_grid\n:alt: The build's grid of test digits\nThe build's own.\n```\n"
)


def test_the_page_shows_formulas_boxes_and_the_authors_images(built_reports, folder):  # noqa: F811
    (folder / "lesson.md").write_text(PAGE_LESSON)
    text = make_page(built_reports, lesson=folder / "lesson.md")
    assert maths(text) == ["inline", "block", "inline", "block", "block"]
    assert '<aside class="admonition tip" aria-label="Tip">' in text
    assert "It costs $5, no formula." in text
    data = base64.b64encode((folder / "diagram.png").read_bytes()).decode()
    assert f'<img src="data:image/png;base64,{data}" width="40" height="20" alt="A red' in text
    assert '<mn>7</mn></mrow></math><span class="equation-number">(1)</span>' in text
    grid = base64.b64encode((built_reports / "reports/figures/prediction_grid.png").read_bytes())
    assert f'<img src="data:image/png;base64,{grid.decode()}" width=' in text


@pytest.mark.slow
def test_formulas_stay_within_a_phones_width_in_chromium(built_reports, folder, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    (folder / "lesson.md").write_text(PAGE_LESSON)
    make_page(built_reports, lesson=folder / "lesson.md")
    url = (built_reports / "reports/index.html").as_uri()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        view = browser.new_page(viewport={"width": 375, "height": 800})
        view.goto(url, wait_until="load")
        overflow = view.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "the page is wider than a 375px screen"
        # Each formula drawn (MathML laid out, not text), and within the page's width: the
        # long one inside its box, which scrolls.
        boxes = view.eval_on_selector_all(
            "math",
            """all => all.map(m => {
                const r = m.getBoundingClientRect();
                const box = m.closest('.math-display');
                const clip = box ? box.getBoundingClientRect() : r;
                return {display: m.getAttribute('display'), left: r.left, width: r.width,
                        height: r.height, clipLeft: clip.left, clipRight: clip.right,
                        scrolls: box ? box.scrollWidth > box.clientWidth : false};
            })""",
        )
        assert len(boxes) == 5
        for box in boxes:
            assert box["width"] > 0 and box["height"] > 0, box
            assert box["clipLeft"] >= 0 and box["clipRight"] <= 375, box
        assert [box["scrolls"] for box in boxes] == [False, False, False, False, True]
        short = boxes[:4]
        assert all(box["left"] + box["width"] <= 375 for box in short), short
        # A fraction is drawn as one: taller than a line of text.
        line = view.evaluate("parseFloat(getComputedStyle(document.body).lineHeight)")
        assert boxes[1]["height"] > line, (boxes[1], line)
        width = view.eval_on_selector("figure img[alt^='A red rectangle']", "i => i.naturalWidth")
        assert width == 40
        view.screenshot(path=tmp_path / "phone.png", full_page=True)
        browser.close()
    assert (tmp_path / "phone.png").stat().st_size > 10_000


def test_a_ref_links_another_lesson_of_the_course_from_its_contents():
    contents = {"title": "C", "lessons": [{"name": "a", "title": "A"}, {"name": "b", "title": "B"}]}
    links = lesson.course_links(contents, "a")
    assert links == {"b": ("B", "../b/index.html")}
    assert '<p>See <a href="../b/index.html">B</a>.</p>' in html("See {ref}`b`.", **links)
    with pytest.raises(lesson.LessonError, match=r"unknown reference 'a' in \{ref\}; known: b$"):
        html("See {ref}`a`.", **links)


def test_the_instructors_notebook_links_other_lessons_from_its_own_folder():
    """The instructor's notebook lies in reports/instructor/<name>/, the lessons' pages in
    reports/lessons/<name>/: its links climb two folders, a student's one."""
    contents = {"title": "C", "lessons": [{"name": "a", "title": "A"}, {"name": "b", "title": "B"}]}
    assert lesson.course_links(contents, "a", "../../lessons") == {
        "b": ("B", "../../lessons/b/index.html")
    }
    assert lesson.course_links(contents, "a") == {"b": ("B", "../b/index.html")}
