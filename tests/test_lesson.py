"""The author's lesson: values filled in strictly, cells checked, mistakes named by file and line.

Small texts here; the shipped lesson on a real build is in tests/test_course.py.
"""

from __future__ import annotations

import pytest

from stages import lesson

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
        ("```{note}\nhi\n```\n",
         "course/lesson.md:6: unknown directive {note}; known: {code-cell}, {figure}, {build}"),
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
