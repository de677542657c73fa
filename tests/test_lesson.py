"""The author's lesson: values filled in strictly, cells checked, mistakes named by file and line.

Small texts here; the shipped lesson on a real build is in tests/test_course.py.
"""

from __future__ import annotations

import pytest

from courseware import lesson

VALUES = {
    "metrics": {"test": {"accuracy": 0.97612, "weights": 101770, "images": 10000}},
    "settings": {"model": {"hidden_units": [128], "activation": "relu"}},
    "variants": {"cnn": {"accuracy": 0.9903}},
    "figures": ["prediction_grid", "curves"],
}
HEADER = "---\njupytext:\n  text_representation:\n    format_name: myst\n---\n"


def fill(text: str) -> str:
    return lesson.fill(text, VALUES, "course/lesson.md")


def test_values_are_filled_in_with_the_documented_formatters():
    text = (
        "Accuracy {{ metrics.test.accuracy | percent }} with {{ metrics.test.weights | thousands }}"
        " weights; units {{ settings.model.hidden_units | py }},"
        " {{ settings.model.activation | py }}"
        "{% if 'cnn' in variants %}; the CNN {{ variants.cnn.accuracy | percent(1) }}{% endif %}."
    )
    assert fill(text) == (
        "Accuracy 97.61% with 101,770 weights; units [128], 'relu'; the CNN 99.0%."
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("one\ntwo {{ metrics.test.acuracy | percent }}\n",
         "course/lesson.md:2: unknown value metrics.test.acuracy; did you mean "
         "metrics.test.accuracy?"),
        ("{{ metric.test.accuracy }}", "course/lesson.md:1: unknown value metric; did you mean "
         "metrics?"),
        ("\n\n{{ variants.logistic.accuracy }}", "course/lesson.md:3: unknown value "
         "variants.logistic; did you mean variants.cnn?"),
        ("a\n{{ settings.model.items }}", "course/lesson.md:2: unknown value "
         "settings.model.items; did you mean settings.model?"),
        ("{{ metrics.test.accuracy | percent", "course/lesson.md:1: not a valid {{ }} or {% %}: "),
        ("{{ nothing.like.it }}", "course/lesson.md:1: unknown value nothing; docs/values.md "
         "lists the names"),
    ],
)  # fmt: skip
def test_a_name_the_build_does_not_have_is_named_with_its_line_and_the_nearest(text, message):
    with pytest.raises(lesson.LessonError) as error:
        fill(text)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def parse(body: str) -> list[lesson.Part]:
    return lesson.parse(HEADER + body, "course/lesson.md", figures=VALUES["figures"])


def test_the_lesson_becomes_html_code_figures_and_built_in_sections_in_order():
    parts = parse(
        "# Title\n\nSome *text*.\n\n"
        "```{code-cell} ipython3\n:tags: [setup]\nimport keras\n```\n\n"
        "```{figure} prediction_grid\n:alt: A grid of digits\nThe **grid**.\n```\n\n"
        "```{build} score\n```\n\nMore text.\n"
    )
    assert [part.kind for part in parts] == ["html", "code", "figure", "build", "html"]
    assert parts[0].text == "<h1>Title</h1>\n<p>Some <em>text</em>.</p>\n"
    assert (parts[1].text, parts[1].options) == ("import keras\n", {"tags": ["setup"]})
    assert (parts[2].name, parts[2].options["alt"]) == ("prediction_grid", "A grid of digits")
    assert parts[2].text == "The <strong>grid</strong>."
    assert parts[3].name == "score"


# The line each mistake is on, counted in the whole file (the header is 5 lines).
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("text\n\n```{code-cell} ipython3\nx = 1\n%matplotlib inline\n```\n",
         "course/lesson.md:10: the code cell is not valid Python (invalid syntax)"),
        ("```{code-cell} ipython3\n:tags: [setup]\nprint('a'\n```\n",
         "course/lesson.md:8: the code cell is not valid Python ('(' was never closed)"),
        ("text\n\n```{code-cell} ipython3\nx = 1\n",
         "course/lesson.md:8: the {code-cell} fence opened here is never closed"),
        ("```{code-cell ipython3\nx = 1\n```\n",
         "course/lesson.md:6: malformed directive '{code-cell ipython3': expected {name} argument"),
        ("```{code-cell} ipython3\n:tags: setup\nx = 1\n```\n",
         "course/lesson.md:7: :tags: 'setup' is not a list of names, such as [setup]"),
        ("```{figure} grid\n:alt: x\n```\n",
         "course/lesson.md:6: unknown figure 'grid'; known: curves, prediction_grid"),
        ("```{figure} curves\nNo alt text.\n```\n",
         "course/lesson.md:6: figure curves needs an :alt: text for screen readers"),
        ("```{build} grades\n```\n",
         "course/lesson.md:6: unknown section 'grades'; known: notebook, score, try-it, "
         "variations, per-digit, quiz, settings, reproducibility"),
        ("```{danger}\nhi\n```\n",
         "course/lesson.md:6: unknown directive {danger}; known: {code-cell}, {figure}, {build}, "
         "{note}, {tip}, {warning}, {important}, {seealso}"),
    ],
)  # fmt: skip
def test_a_broken_cell_or_directive_is_named_with_its_line(body, message):
    with pytest.raises(lesson.LessonError) as error:
        parse(body)
    assert str(error.value) == message


def test_plain_code_blocks_and_the_front_matter_are_left_as_markdown():
    parts = parse("```python\nprint(1)\n```\n")
    assert [part.kind for part in parts] == ["html"]
    assert parts[0].text == '<pre><code class="language-python">print(1)\n</code></pre>\n'


def test_a_mistake_after_jinja_blocks_is_named_on_the_authors_line():
    """{% if %} and {%- %} blocks leave the filled text with other line numbers than the
    author's file; mistakes are still named on the author's line."""
    source = (
        HEADER  # lines 1-5
        + "{% if 'cnn' in variants -%}\nThe CNN\nreached\n{{ variants.cnn.accuracy }}.\n"
        "{%- endif %}\n"  # lines 6-10
        + "{% set x = 1 %}\n{% if missing is defined %}\ngone\n{% endif %}\n"  # lines 11-14
        + "```{code-cell} ipython3\nx = 1\ny = (\n```\n"  # lines 15-18: line 17 is wrong
    )
    filled = lesson.fill(source, VALUES, "course/lesson.md")
    assert filled.count("\n") != source.count("\n")
    with pytest.raises(lesson.LessonError) as error:
        lesson.parse(filled, "course/lesson.md")
    assert str(error.value) == (
        "course/lesson.md:17: the code cell is not valid Python ('(' was never closed)"
    )
    unclosed = lesson.fill(source.replace("y = (\n```\n", "y = 2\n"), VALUES, "lesson.md")
    with pytest.raises(lesson.LessonError, match=r"^lesson.md:15: the \{code-cell\} fence"):
        lesson.parse(unclosed, "lesson.md")


def test_lists_are_indexed_and_option_values_are_text():
    assert fill("{{ figures[1] }} {{ settings.model['activation'] }}") == "curves relu"
    parts = parse("```{figure} curves\n:alt: Curves: loss # and accuracy\nC.\n```\n")
    assert parts[0].options["alt"] == "Curves: loss # and accuracy"
    with pytest.raises(lesson.LessonError, match=r"a value cannot be shown so"):
        fill("{{ metrics.test.weights / 0 }}")


def test_every_name_a_lesson_may_write_is_known():
    assert lesson.known_names(VALUES)[:4] == [
        "metrics", "metrics.test", "metrics.test.accuracy", "metrics.test.weights"
    ]  # fmt: skip


# A fence left open mid-lesson, of each kind: it runs on to the next closing fence (another
# cell's), swallowing a heading or a cell, and is named at the line where it opened. The
# header is lines 1-5, the text below starts at line 6.
REST = "## Training\n\nMore text.\n\n```{code-cell} ipython3\ny = 2\n```\n\nThe end.\n"
UNCLOSED = [
    ("```{figure} curves\n:alt: Curves\nThe caption.\n\n",
     "course/lesson.md:6: the {figure} fence opened here is never closed: it runs on into "
     "'## Training'"),
    ("Some text.\n\n```{code-cell} ipython3\nx = 1\n\nProse, not Python.\n\n",
     "course/lesson.md:8: the {code-cell} fence opened here is never closed: it runs on into "
     "'```{code-cell} ipython3'"),
    ("```{build} score\n\n",
     "course/lesson.md:6: the {build} fence opened here is never closed: it runs on into "
     "'## Training'"),
    ("```{note}\nAn admonition.\n\n",
     "course/lesson.md:6: the {note} fence opened here is never closed: it runs on into "
     "'## Training'"),
    ("```python\nprint(1)\n\n",
     "course/lesson.md:6: the ```python fence opened here is never closed: it runs on into "
     "'```{code-cell} ipython3'"),
    # A ~~~ fence is closed by ~~~ only: this one runs on to the end of the file.
    ("~~~{code-cell} ipython3\nx = 1\n\nProse.\n\n",
     "course/lesson.md:6: the {code-cell} fence opened here is never closed"),
]  # fmt: skip


@pytest.mark.parametrize(("opened", "message"), UNCLOSED)
def test_a_fence_left_open_mid_lesson_is_named_where_it_opened(opened, message):
    with pytest.raises(lesson.LessonError) as error:
        parse(opened + REST)
    assert str(error.value) == message


def test_a_fence_left_open_is_found_after_jinja_blocks_on_the_authors_line():
    source = HEADER + "{% if 'cnn' in variants %}\nCNN.\n{% endif %}\n" + UNCLOSED[0][0] + REST
    filled = lesson.fill(source, VALUES, "course/lesson.md")
    with pytest.raises(lesson.LessonError, match=r"^course/lesson.md:9: the \{figure\} fence"):
        lesson.parse(filled, "course/lesson.md", figures=VALUES["figures"])


def test_a_longer_fence_may_show_a_directive_as_an_example():
    parts = parse("````md\n```{code-cell} ipython3\nx = 1\n```\n````\n\n" + REST)
    assert [part.kind for part in parts] == ["html", "code", "html"]
    assert "```{code-cell} ipython3" in parts[0].text


def test_a_comment_in_a_code_cell_is_python_not_a_heading():
    parts = parse("```{code-cell} ipython3\n# Train the network\nx = 1\n## twice\n```\n" + REST)
    assert parts[0].text == "# Train the network\nx = 1\n## twice\n"


def test_a_build_fence_holding_text_is_refused():
    with pytest.raises(lesson.LessonError) as error:
        parse("```{build} score\nWhat is this?\n```\n")
    assert (
        str(error.value) == "course/lesson.md:6: the {build} score fence holds text; it takes none"
    )


def test_front_matter_that_never_closes_is_named():
    with pytest.raises(lesson.LessonError) as error:
        lesson.parse("---\njupytext:\n  a: 1\n\n# Title\n", "course/lesson.md")
    assert str(error.value) == (
        "course/lesson.md:1: the front matter opened here is never closed: end it with ---"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\n{{ metrics.test.accuracy | precent }}",
         "course/lesson.md:2: unknown filter precent; did you mean percent?"),
        ("{% if false %}{{ metrics.test.weights | thousand }}{% endif %}",
         "course/lesson.md:1: unknown filter thousand; did you mean thousands?"),
        ("{{ metrics.test.accuracy | zzzzzz }}",
         "course/lesson.md:1: unknown filter zzzzzz; the build's: percent, thousands, py"),
    ],
)  # fmt: skip
def test_a_misspelt_filter_gets_the_nearest_name(text, message):
    with pytest.raises(lesson.LessonError) as error:
        fill(text)
    assert str(error.value) == message


# Statements that reach outside the values file: each stops with one line, no traceback.
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ ''.__class__ }}", "course/lesson.md:1: reaches outside the values file (access "
         "to attribute '__class__' of 'str' object is unsafe); a lesson quotes values only"),
        ("x\n{{ metrics.test.accuracy.__class__.__mro__ }}", "course/lesson.md:2: reaches "
         "outside the values file (access to attribute '__class__' of 'float' object is unsafe)"),
        ("{{ figures.append('x') }}", "course/lesson.md:1: reaches outside the values file "
         "(access to attribute 'append' of 'list' object is unsafe)"),
        ("{{ cycler }}", "course/lesson.md:1: unknown value cycler; docs/values.md lists"),
        ("{{ range(10**9) | list }}", "course/lesson.md:1: unknown value range;"),
        ("{{ lipsum() }}", "course/lesson.md:1: unknown value lipsum;"),
        ("{{ namespace }}{{ dict(a=1) }}", "course/lesson.md:1: unknown value namespace;"),
        ("{{ 'x' * 10**9 }}", "course/lesson.md:1: reaches outside the values file (`*` would "
         "make 1,000,000,000 items)"),
        ("{{ metrics.test.weights ** 100000 }}", "course/lesson.md:1: reaches outside the "
         "values file (101770 ** 100000 is too large a number)"),
        ("{{ '%09999999d' % 1 }}", "course/lesson.md:1: reaches outside the values file (`%` "
         "formatting of a text"),
        ("a\n{% include 'course/plan.md' %}", "course/lesson.md:2: {% include %} is not "
         "allowed: a lesson is filled from the values file alone"),
        ("{% import 'macros.j2' as m %}", "course/lesson.md:1: {% import %} is not allowed"),
        ("{% from 'macros.j2' import m %}", "course/lesson.md:1: {% from ... import %} is not "
         "allowed"),
        ("{% extends 'base.md' %}", "course/lesson.md:1: {% extends %} is not allowed"),
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "course/lesson.md: a {% macro %} "
         "calls itself without end"),
    ],
)  # fmt: skip
def test_jinja_that_reaches_outside_the_values_stops_in_one_line(text, message):
    with pytest.raises(lesson.LessonError) as error:
        fill(text)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("shown", ["{{ x }}", "{{ x | percent }}", "{{ x | thousands }}",
                                   "{{ [1, x] | py }}", "{{ {'a': x} | py }}"])  # fmt: skip
def test_a_number_that_is_not_finite_is_not_shown(value, shown):
    with pytest.raises(lesson.LessonError) as error:
        lesson.fill(f"line\n{shown}", {"x": value}, "course/lesson.md")
    assert str(error.value).startswith("course/lesson.md:2: a value is not a number to show (")
    assert "is not a finite number)" in str(error.value)


def test_loops_and_conditions_over_values_still_work():
    text = (
        "{% for name in variants %}{{ name }} {{ variants[name].accuracy | percent(1) }}"
        "{% endfor %}; {% set best = figures | first %}{{ best }} {{ figures | length }}"
        " {{ metrics.test.weights * 2 }} {{ 'ab' * 2 }}"
    )
    assert fill(text) == "cnn 99.0%; prediction_grid 2 203540 abab"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"# Title\n\nCaf\xe9\n", "lesson.md:3: is not UTF-8 text (byte 0xe9); save the file "
         "as UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "lesson.md:1: is not UTF-8 text (byte 0x89)"),
        (b"text\n\x00\x01\x02", "lesson.md:2: is not text: it holds a NUL character"),
    ],
)  # fmt: skip
def test_a_course_file_that_is_not_utf8_text_is_named(tmp_path, content, message):
    (tmp_path / "lesson.md").write_bytes(content)
    with pytest.raises(lesson.LessonError) as error:
        lesson.read_course_text(tmp_path / "lesson.md")
    assert str(error.value).startswith(f"{tmp_path}/{message}")


def test_a_missing_file_or_a_folder_is_named(tmp_path):
    with pytest.raises(lesson.LessonError, match=r"lesson.md: file not found$"):
        lesson.read_course_text(tmp_path / "lesson.md")
    (tmp_path / "lesson.md").mkdir()
    with pytest.raises(lesson.LessonError, match=r"lesson.md: is a folder, not a text file$"):
        lesson.read_course_text(tmp_path / "lesson.md")


def test_utf8_text_reads_whatever_the_locale_and_a_byte_order_mark_is_dropped(tmp_path):
    (tmp_path / "lesson.md").write_bytes("\ufeff# Café – 97 %\n".encode())
    assert lesson.read_course_text(tmp_path / "lesson.md") == "# Café – 97 %\n"
