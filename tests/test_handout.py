"""The lesson page on paper and on a phone (issue 29, item 8): printed, it is a handout of its
text, figures and quiz, with page margins, tick boxes for choices, a box to write in only under
a number question, and none of the screen's sentences; on a phone, a figure wider than the
screen says that it scrolls, and one that fits says nothing.

Uses the page of the shipped first lesson built in-process from a small stand-in build
(tests/test_page.py's `built_reports` and `make_page`), in Chromium.
"""

from __future__ import annotations

import io
import re
import unicodedata

import pytest

from tests.test_page import built_reports, make_page  # noqa: F401 (a fixture, used by name)

MM = 72 / 25.4  # PDF points in a millimetre.


def plain(text: str) -> str:
    """Text as compared here: ligatures (ﬁ) undone, whitespace made single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


@pytest.fixture
def page_url(built_reports):  # noqa: F811 (the fixture imported above)
    make_page(built_reports)
    return (built_reports / "reports/index.html").as_uri()


def screen_only_sentences(view) -> list[str]:
    """The sentences of every element marked screen-only, as the screen shows them."""
    texts = view.eval_on_selector_all(".screen-only", "nodes => nodes.map(n => n.textContent)")
    sentences = []
    for text in texts:
        sentences += [s for s in re.split(r"(?<=[.:?!→])\s+", plain(text)) if len(s) >= 12]
    return sentences


def test_the_printed_page_is_a_handout_without_the_screens_sentences(
    page_url, browser, record_property
):
    from pypdf import PdfReader

    view = browser.new_page(viewport={"width": 1000, "height": 900})
    view.goto(page_url, wait_until="load")
    on_screen = screen_only_sentences(view)
    # The screen-only sentences the handout must leave out are marked in the templates.
    for expected in ("press Check", "Draw one digit", "Download this lesson as a notebook",
                     "Scroll sideways to see the whole figure"):  # fmt: skip
        assert any(expected in sentence for sentence in on_screen), (expected, on_screen)
    radio = "document.querySelector('form.question input[type=radio]')"
    assert view.evaluate(f"getComputedStyle({radio}).appearance") != "none"
    assert (
        view.locator(".print-only").evaluate_all(
            "nodes => nodes.filter(n => n.getClientRects().length > 0).length"
        )
        == 0
    )

    # Laid out for paper, as wide as A4 less its margins (180 mm, at 96 pixels an inch).
    paper = round(180 / 25.4 * 96)
    view.set_viewport_size({"width": paper, "height": 900})
    view.emulate_media(media="print")
    # Nothing marked screen-only is laid out on paper; the words for paper are.
    assert (
        view.locator(".screen-only").evaluate_all(
            "nodes => nodes.filter(n => n.getClientRects().length > 0).length"
        )
        == 0
    )
    assert view.locator(".quiz p.print-only").is_visible()
    # A box to write in under each number question, and none under a choice question.
    forms = view.eval_on_selector_all(
        "form.question",
        """forms => forms.map(f => ({kind: f.dataset.kind,
            boxes: [...f.querySelectorAll('.answer-box')]
                .filter(b => b.getClientRects().length > 0)
                .map(b => b.getBoundingClientRect().height)}))""",
    )
    kinds = {form["kind"] for form in forms}
    assert kinds == {"number", "choice"}, "the quiz needs both kinds for this check to bite"
    for form in forms:
        if form["kind"] == "number":
            assert len(form["boxes"]) == 1 and form["boxes"][0] >= 2 / 2.54 * 96, form
        else:
            assert form["boxes"] == [], form
    # Each choice is a square box to tick, not a radio circle.
    ticks = view.eval_on_selector_all(
        "form.question input[type=radio]",
        """inputs => inputs.map(i => {const s = getComputedStyle(i), r = i.getBoundingClientRect();
            return {appearance: s.appearance, radius: s.borderTopLeftRadius,
                    border: parseFloat(s.borderTopWidth), width: r.width, height: r.height};})""",
    )
    assert ticks and all(
        t["appearance"] == "none" and t["radius"] == "0px" and t["border"] >= 1
        and t["width"] > 8 and abs(t["width"] - t["height"]) < 0.5
        for t in ticks
    ), ticks  # fmt: skip
    # Figures fit the printed width, though three are drawn wider (1,000 pixels).
    figures = view.eval_on_selector_all(
        "figure img", "images => images.map(i => [i.naturalWidth, i.clientWidth])"
    )
    assert max(natural for natural, _ in figures) > paper
    assert all(0 < shown <= paper for _, shown in figures), figures

    pdf = PdfReader(io.BytesIO(view.pdf(format="A4")))
    text = plain(" ".join(page.extract_text() for page in pdf.pages))
    assert "1. What is this lesson's goal?" in text
    assert "Tick the box of the answer you choose" in text
    printed = [sentence for sentence in on_screen if sentence in text]
    assert printed == []
    for sentence in ("press Check", "Draw a digit", "Draw one digit", "Scroll sideways"):
        assert sentence not in text
    # The page's margins, from the @page rule (Chromium's own default here is none): the
    # text starts 15 mm from the left edge of every page and ends above the bottom margin.
    lefts, bottoms = [], []

    def where(text_shown, matrix, text_matrix, font, size):
        if text_shown.strip():
            lefts.append(text_matrix[4] * matrix[0] + matrix[4])
            bottoms.append(text_matrix[5] * matrix[3] + matrix[5])

    for page in pdf.pages:
        page.extract_text(visitor_text=where)
    assert min(lefts) >= 14 * MM, min(lefts)
    assert min(bottoms) >= 14 * MM, min(bottoms)
    record_property("a4_pages", len(pdf.pages))
    print(f"the handout of the stand-in build: {len(pdf.pages)} A4 pages")


def cues(view) -> list[dict]:
    """Each figure: whether its box scrolls sideways and whether its cue line shows."""
    return view.eval_on_selector_all(
        "figure",
        """figures => figures.map(f => {const box = f.querySelector('.figure-scroll');
            const cue = f.querySelector('.scroll-cue');
            return {alt: f.querySelector('img').alt,
                    overflows: box.scrollWidth > box.clientWidth + 1,
                    cue: cue.getClientRects().length > 0 && cue.innerText.trim()};})""",
    )


@pytest.mark.parametrize("width", [375, 1280])
def test_a_figure_wider_than_the_screen_says_it_scrolls(page_url, browser, width):
    view = browser.new_page(viewport={"width": width, "height": 800})
    view.goto(page_url, wait_until="load")
    figures = cues(view)
    grid = next(f for f in figures if re.match(r"A \d+ by \d+ grid of test digits", f["alt"]))
    if width == 375:
        assert grid["overflows"] and grid["cue"] == "Scroll sideways to see the whole figure →"
    else:
        assert not any(f["overflows"] or f["cue"] for f in figures), figures
    # The line shows exactly under the figures that scroll.
    assert all(bool(f["cue"]) == f["overflows"] for f in figures), figures


def test_the_cue_follows_the_window_and_shows_without_javascript_on_a_phone(page_url, browser):
    view = browser.new_page(viewport={"width": 1280, "height": 800})
    view.goto(page_url, wait_until="load")
    assert not any(f["cue"] for f in cues(view))
    view.set_viewport_size({"width": 375, "height": 800})
    view.wait_for_function(
        "document.querySelector('figure .figure-scroll.overflows + .scroll-cue') !== null"
    )
    turned = cues(view)
    assert any(f["cue"] for f in turned) and all(bool(f["cue"]) == f["overflows"] for f in turned)

    for width, shown in ((375, True), (1280, False)):
        context = browser.new_context(
            java_script_enabled=False, viewport={"width": width, "height": 800}
        )
        still = context.new_page()
        still.goto(page_url, wait_until="load")
        assert {bool(f["cue"]) for f in cues(still)} == {shown}, width
        context.close()


def test_a_lesson_without_the_try_it_section_still_checks_its_quiz(
    built_reports,  # noqa: F811 (the fixture imported above)
    browser,
    tmp_path,
):
    """A lesson whose code describes no network (`model: none`) has no "Try it": the page's
    script starts without it, so the quiz still checks answers and the cue still shows."""
    lesson = tmp_path / "no-network" / "lesson.md"
    lesson.parent.mkdir()
    lesson.write_text(
        "---\nsummary: Words only.\nmodel: none\n---\n# A lesson without a network\n\n"
        "Some text.\n\n```{figure} prediction_grid\n:alt: A grid of test digits\nThe grid.\n"
        "```\n\n```{build} quiz\n```\n",
        encoding="utf-8",
    )
    text = make_page(built_reports, lesson=lesson)
    assert 'id="try-it"' not in text and 'id="quiz"' in text
    errors = []
    view = browser.new_page(viewport={"width": 375, "height": 800})
    view.on("pageerror", lambda error: errors.append(str(error)))
    view.goto((built_reports / "reports/index.html").as_uri(), wait_until="load")
    form = view.locator("form.question").first
    form.locator("input[type=radio]").first.check()
    form.locator("button").click()
    assert form.locator(".verdict").inner_text().split(".")[0] in ("Right", "Not right")
    assert view.locator(".scroll-cue").is_visible()
    assert errors == []
