"""The author's lesson: a MyST-Markdown notebook (jupytext's format) whose numbers come from the
build.

`fill` puts the build's values into the text with Jinja2, strictly: a name that is not in the
values file stops the build with the file, the line and the nearest known names. The text is
filled in Jinja2's sandbox, with no loader and no globals: a lesson may quote values, test them
and loop over them, and reach nothing else (no include or import, no Python attributes). `parse`
reads the filled text with markdown-it-py into the parts a renderer lays out: HTML, code cells,
figures by name, and the places of the page's built-in sections; a fence left open stops it at
the line where it opened. `read_course_text` is how every stage reads an author's file (lesson,
quiz, plan): what is not a UTF-8 text file stops the build in one line naming it. Nothing here
writes a file.

The lesson's syntax, for authors, is in docs/lesson.md.
"""

from __future__ import annotations

import ast
import base64
import difflib
import functools
import math
import re
import struct
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import tostring

import jinja2
import yaml
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from latex2mathml.converter import convert_to_element
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from markupsafe import Markup
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.dollarmath.index import math_inline_dollar
from mdit_py_plugins.front_matter import front_matter_plugin
from mdit_py_plugins.myst_blocks import myst_block_plugin
from mdit_py_plugins.myst_role import myst_role_plugin

from pipeline.cli import StageError


class LessonError(StageError):
    """A mistake in the author's file, named with its file and line."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"{where}: {message}")


# The author's files ------------------------------------------------------------------------


def read_course_text(path: Path | str) -> str:
    """The text of an author's file (the lesson, the quiz, the plan), read as UTF-8.

    Whatever else is found there stops the build with one line naming the file: no file, a
    folder, bytes that are not UTF-8 text (named by line), a NUL character (binary data; the
    lesson's line marks use control characters too), or nothing but blanks. A byte-order
    mark, which some Windows editors write, is dropped.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LessonError(path, None, "file not found") from None
    except IsADirectoryError:
        raise LessonError(path, None, "is a folder, not a text file") from None
    except OSError as error:
        raise LessonError(path, None, f"cannot be read ({error.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start]
        raise LessonError(
            path, line, f"is not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise LessonError(path, line, "is not text: it holds a NUL character (binary data?)")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise LessonError(path, None, "is empty: a file saved blank, or the wrong file?")
    return text


# Values as the lesson sees them -----------------------------------------------------------


class ValueTree(dict):
    """A mapping of the values file that knows its dotted name, so a missing name is reported
    whole (`metrics.test.acuracy`), not as its last part."""

    def __init__(self, data: Mapping[str, Any], name: str = ""):
        super().__init__(
            (key, _wrap(value, f"{name}.{key}" if name else key)) for key, value in data.items()
        )
        self.name = name


def _wrap(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return ValueTree(value, name)
    if isinstance(value, list):
        return [_wrap(item, f"{name}[{number}]") for number, item in enumerate(value)]
    return value


def known_names(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every dotted name a lesson may write: `metrics`, `metrics.test`, `metrics.test.accuracy`."""
    names = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        names.append(name)
        if isinstance(value, Mapping):
            names.extend(known_names(value, f"{name}."))
    return names


class _Unknown(jinja2.StrictUndefined):
    """What a name not in the values file gives: any use of it stops the lesson, with an
    error whose message is the name, whole."""

    @property
    def _undefined_message(self) -> str:
        if self._undefined_exception is SecurityError and self._undefined_hint:
            return self._undefined_hint  # The sandbox's own words: which attribute, of what.
        parent, name = self._undefined_obj, self._undefined_name or "?"
        if isinstance(parent, ValueTree) and parent.name:
            return f"{parent.name}.{name}"
        return name


def _known(value: Any) -> Any:
    """The value, unless it is an unknown name, which stops the lesson here."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return value


# The longest text or list `*` may make, and the most bits `**` may give: a lesson quotes
# numbers, and an expression that would fill the memory or run for hours is a mistake.
LONGEST = 100_000
MOST_BITS = 4_096


class _Environment(ImmutableSandboxedEnvironment):
    """Jinja2's sandbox (no Python attributes, nothing changed in place) in which dotted names
    look up the values file's keys only, never a dict's methods, and `*` and `**` stay small."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        sequences = (str, list, tuple)
        if operator == "*" and isinstance(left, sequences) != isinstance(right, sequences):
            sequence, times = (left, right) if isinstance(left, sequences) else (right, left)
            if isinstance(times, int) and len(sequence) * times > LONGEST:
                raise SecurityError(f"`*` would make {len(sequence) * times:,} items")
        integers = isinstance(left, int) and isinstance(right, int)
        if (
            operator == "**"
            and integers
            and abs(left) > 1
            and right * left.bit_length() > MOST_BITS
        ):
            raise SecurityError(f"{left} ** {right} is too large a number")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("`%` formatting of a text; use a filter (docs/values.md)")
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            if attribute in obj:
                return obj[attribute]
            return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Mapping):
            return self.getattr(obj, str(argument))
        return super().getitem(obj, argument)


INFINITE = "a constant is not a finite number"


class NotFinite(ValueError):
    """A number that is NaN or infinite: no text or answer may quote one."""


def finite(value: Any) -> Any:
    """The value, unless it is a number that is not finite (or holds one), which stops here."""
    if isinstance(value, float) and not math.isfinite(value):
        raise NotFinite(f"{value} is not a finite number")
    if isinstance(value, Mapping):
        for item in value.values():
            finite(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            finite(item)
    return value


def percent(value: float, digits: int = 2) -> str:
    """0.9761 -> '97.61%'."""
    return f"{finite(float(_known(value))) * 100:.{digits}f}%"


def thousands(value: float) -> str:
    """101770 -> '101,770'."""
    return f"{finite(_known(value)):,}"


def python_literal(value: Any) -> str:
    """The value as Python source, for code cells: [128], 'relu', 0.001, True."""
    return repr(finite(plain(_known(value))))


def plain(value: Any) -> Any:
    """The value as plain dicts and lists, as the values file holds it."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


FILTERS = {"percent": percent, "thousands": thousands, "py": python_literal}


def _shown(value: Any) -> Any:
    """What a `{{ }}` prints: any value but a number that is not finite, or holds one."""
    return finite(value)


def environment() -> jinja2.Environment:
    """Jinja2 as lessons use it: the sandbox with no loader and no globals (no range, no
    lipsum, no cycler), strict names, the documented filters."""
    found = _Environment(undefined=_Unknown, keep_trailing_newline=True, finalize=_shown)
    found.globals.clear()
    found.filters.update(FILTERS)
    return found


def misspelt_filter(error: Exception) -> str | None:
    """The message for Jinja's "No filter named ..." error, naming the nearest filter."""
    unknown = _NO_FILTER.search(str(error))
    return unknown_filter_message(unknown.group(1)) if unknown else None


_NO_FILTER = re.compile(r"No filter named '([^']*)'")


def unknown_filter_message(name: str) -> str:
    known = sorted(FILTERS) + sorted(set(environment().filters) - set(FILTERS))
    guess = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {guess[0]}?" if guess else f"; the build's: {', '.join(FILTERS)}"
    return f"unknown filter {name}{hint}"


def unknown_value_message(name: str, values: Mapping[str, Any]) -> str:
    # A student's values (courseware/audience.py) know which names they leave out, and why.
    why = getattr(values, "why_withheld", None)
    if why is not None and why(name):
        return why(name)
    guess = difflib.get_close_matches(name, known_names(values), n=1, cutoff=0.6)
    hint = f"; did you mean {guess[0]}?" if guess else "; docs/values.md lists the names"
    return f"unknown value {name}{hint}"


class Filled(str):
    """A filled-in text that knows, for each of its lines, the line of the author's file it
    came from (`{% if %}` and `{%- %}` blocks can leave fewer lines, or more)."""

    source_lines: list[int]

    def source_line(self, line: int) -> int:
        """The author's line of this text's `line` (both counted from 1)."""
        lines = getattr(self, "source_lines", None)
        return lines[min(line, len(lines)) - 1] if lines else line


# Each line of the author's file is marked with its number before it is filled in, so that
# the filled text's lines can be traced back; the marks are taken out again after.
_MARK = re.compile("\x00(\\d+)\x01")


def fill(source: str, values: Mapping[str, Any], path: Path | str) -> Filled:
    """The lesson's text with every `{{ ... }}` filled in from `values`."""
    marked = "".join(
        f"\x00{number}\x01{line}" for number, line in enumerate(source.splitlines(True), 1)
    )
    try:
        text = _render(marked, values, path)
    except LessonError:
        # A mark inside a {{ }} or {% %} that spans lines breaks it: fill in the text
        # unmarked, and count lines as they come.
        return Filled(_render(source, values, path))
    filled, lines, last = [], [], 1
    for line in text.splitlines(True):
        found = _MARK.search(line)
        last = int(found.group(1)) if found else last
        lines.append(last)
        filled.append(_MARK.sub("", line))
    result = Filled("".join(filled))
    result.source_lines = lines
    return result


# Statements that would bring in another file: a lesson is filled from the values alone.
_OUTSIDE = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
    nodes.Extends: "extends",
}


def _render(source: str, values: Mapping[str, Any], path: Path | str) -> str:
    # Text without a brace holds no `{{ }}`, `{% %}` or `{# #}`, and Jinja would give it back
    # unchanged (it rewrites only carriage returns, kept here for it): most of a quiz's texts
    # are such, and compiling each as a template took most of a page's build (issue 32).
    if "{" not in source and "\r" not in source:
        return source
    name = str(path)
    try:
        return _template(source, path).render(ValueTree(values))
    except (jinja2.TemplateSyntaxError, jinja2.TemplateRuntimeError) as error:
        line = getattr(error, "lineno", None) or _template_line(error, name)
        if misspelt_filter(error):
            raise LessonError(path, line, misspelt_filter(error)) from None
        if isinstance(error, SecurityError):
            why = str(error).rstrip(".")
            message = f"reaches outside the values file ({why}); a lesson quotes values only"
            raise LessonError(path, line, message) from None
        if isinstance(error, jinja2.UndefinedError):
            raise LessonError(path, line, unknown_value_message(str(error), values)) from None
        message = f"not a valid {{{{ }}}} or {{% %}}: {getattr(error, 'message', error)}"
        raise LessonError(path, line, message) from None
    except NotFinite as error:
        line = _template_line(error, name)
        raise LessonError(path, line, f"a value is not a number to show ({error})") from None
    except NameError as error:
        # Jinja writes a constant it computed (1e309, 1e308 + 1e308) into Python as `inf`,
        # which Python does not know: the only name its code can miss.
        line = _template_line(error, name)
        raise LessonError(path, line, f"a value is not a number to show ({INFINITE})") from None
    except RecursionError:
        message = "a {% macro %} calls itself without end, or values nest too deeply"
        raise LessonError(path, None, message) from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as error:
        line = _template_line(error, name)
        raise LessonError(path, line, f"a value cannot be shown so ({error})") from None


# A stage fills the same texts more than once (the student's and the instructor's versions,
# the leak search), and compiling one costs milliseconds; a template holds no values, so one
# compiled text serves every fill of it.
@functools.lru_cache(maxsize=512)
def _template(source: str, path: Path | str) -> jinja2.Template:
    """The text compiled as a lesson's template, once it is checked to bring in no other file
    and to name only filters the build has."""
    jinja, name = environment(), str(path)
    tree = jinja.parse(source, name=name, filename=name)
    for node in tree.find_all(tuple(_OUTSIDE)):
        raise LessonError(
            path,
            node.lineno,
            f"{{% {_OUTSIDE[type(node)]} %}} is not allowed: a lesson is filled from the "
            "values file alone (values, {% if %} and {% for %})",
        )
    # A misspelt filter in a branch this build does not take is still a misspelling.
    for node in tree.find_all(nodes.Filter):
        if node.name not in jinja.filters:
            raise LessonError(path, node.lineno, unknown_filter_message(node.name))
    # Compiled with the file's name, so that the frames of Jinja's traceback name its
    # lines (_template_line).
    code = jinja.compile(tree, name=name, filename=name)
    return jinja.template_class.from_code(jinja, code, jinja.make_globals(None))


def _template_line(error: BaseException, name: str) -> int | None:
    """The template line Jinja's traceback points at (it maps its frames to the template)."""
    line, trace = None, error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == name:
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


# The lesson's parts ------------------------------------------------------------------------

# The page's own sections, which the author may place with ```{build} <name>```.
BUILT_IN = (
    "notebook",
    "score",
    "try-it",
    "variations",
    "per-digit",
    "quiz",
    "settings",
    "reproducibility",
)


# MyST's admonitions, which the page draws as boxes and the notebooks as quotes; each is
# titled with its name unless the author gives a title after it (```{tip} A shortcut).
ADMONITIONS = {
    "note": "Note",
    "tip": "Tip",
    "warning": "Warning",
    "important": "Important",
    "seealso": "See also",
}
DIRECTIVES = ("code-cell", "figure", "build", *ADMONITIONS)
ROLES = ("ref", "eq", "math")

# The images an author may place, by their file's ending, and how each file's data starts.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
_SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


@dataclass
class Part:
    """One piece of the lesson, in order: `html` (rendered Markdown), `code` (a code cell),
    `figure` (a figure: a build's by name, or the author's own `image`) or `build` (a
    built-in section)."""

    kind: str
    text: str = ""
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    line: int = 0
    image: dict[str, Any] | None = None


def markdown() -> MarkdownIt:
    """CommonMark with tables and a YAML front matter (jupytext's header), which is skipped."""
    return MarkdownIt("commonmark", {"html": False}).enable("table").use(front_matter_plugin)


def myst() -> MarkdownIt:
    r"""The lesson's Markdown: CommonMark as `markdown()`, with MyST's additions as
    myst-parser reads them: `$...$` and `$$...$$` math, `:::` colon fences, `{role}` roles,
    `(label)=` targets and `%` comments.

    Inline math follows myst-parser's stricter rules (its `dmath_allow_space` and
    `dmath_allow_digits` off, as pandoc's): the opening `$` is not followed by a blank, the
    closing one neither follows a blank nor comes before a digit. So prose keeps its dollars
    ("from $5 to $10", "$5. Then $x$"), and `\$` writes one where it would not.
    """
    parser = (
        markdown()
        .use(colon_fence_plugin)
        .use(dollarmath_plugin, allow_space=False, allow_digits=False, allow_blank_lines=False)
        .use(myst_block_plugin)
        .use(myst_role_plugin)
    )
    parser.inline.ruler.at("math_inline", _inline_math)
    return parser


_STRICT = math_inline_dollar(allow_space=False, allow_digits=False)
_AT_START = math_inline_dollar(allow_space=False, allow_digits=True)


def _inline_math(state: Any, silent: bool) -> bool:
    """The plugin's inline math rule, mended at a text's first character: there it takes
    the text's last character for the one before the `$` (so `$x$ is 2` was not math)."""
    if state.pos != 0:
        return _STRICT(state, silent)
    start = state.pos
    found = _AT_START(state, True)
    followed_by_digit = state.src[state.pos : state.pos + 1].isdigit()
    state.pos = start
    if not found or followed_by_digit:
        return False
    return _AT_START(state, silent)


class Mistake(Exception):
    """A mistake found in the filled text, at `line` of it (counted from 1)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


def _located(text: str, path: Path | str, mistake: Mistake) -> LessonError:
    line = text.source_line(mistake.line) if isinstance(text, Filled) else mistake.line
    return LessonError(path, line, str(mistake))


def check_fences(text: str, path: Path | str) -> list[Any]:
    """The text's Markdown tokens (MyST's), once every fence in it (and its front matter) is
    closed; a fence left open is named at the line where it opened."""
    tokens = myst().parse(text)
    lines = text.splitlines()
    try:
        if (
            lines
            and lines[0].rstrip() == "---"
            and not any(token.type == "front_matter" for token in tokens)
        ):
            raise Mistake(1, "the front matter opened here is never closed: end it with ---")
        for token in tokens:
            if token.type in ("fence", "colon_fence"):
                _check_closed(token, lines)
            elif token.type in ("math_block", "math_block_label"):
                _check_formula(token)
    except Mistake as mistake:
        raise _located(text, path, mistake) from None
    return tokens


# A line that opens a directive's fence, and a Markdown heading (ATX, `# Title`).
_OPENER = re.compile(r" {0,3}(`{3,}|~{3,}|:{3,})[ \t]*\{")
_HEADING = re.compile(r" {0,3}#{1,6}([ \t]|$)")


def _check_closed(token: Any, lines: list[str]) -> None:
    """A fence left open runs on until the next closing fence (another cell's) or the end of
    the file, swallowing what lies between. What it holds then gives it away: a line that
    opens a directive, or, in a figure's or another directive's text, a Markdown heading (in
    code, `# ...` is a Python comment, so a code cell or plain code block is not judged by it)."""
    line = token.map[0] + 1
    info = token.info.strip()
    kind = (
        info.split()[0]
        if info.startswith("{")
        else f"{token.markup}{info.split()[0] if info else ''}"
    )
    closing = lines[token.map[1] - 1].strip() if token.map[1] - 1 > token.map[0] else ""
    if not (closing.startswith(token.markup[0] * len(token.markup)) and set(closing) <= set("`~:")):
        raise Mistake(line, f"the {kind} fence opened here is never closed")
    is_code = not info.startswith("{") or info.startswith("{code-cell}")
    for inside in lines[token.map[0] + 1 : token.map[1] - 1]:
        opener = _OPENER.match(inside)
        # A longer fence (````) may show a directive as an example, and a fence of another
        # kind may hold one (a note's colon fence, a figure): that is nesting, on purpose,
        # since the shorter fence inside cannot close it.
        nested = opener and (
            opener.group(1)[0] != token.markup[0] or len(opener.group(1)) < len(token.markup)
        )
        if (opener and not nested) or (not is_code and _HEADING.match(inside)):
            raise Mistake(
                line,
                f"the {kind} fence opened here is never closed: it runs on into "
                f"{_clipped(inside.strip())!r}",
            )


def _check_formula(token: Any) -> None:
    """A `$$` left open runs on to the next formula's `$$`: what lies between, a cell
    included, would become one formula (and a cell's code reach the page as math), so a
    formula holding a fence's line is refused where it opened."""
    for inside in token.content.splitlines():
        if _FENCE_LINE.match(inside):
            raise Mistake(
                token.map[0] + 1,
                f"the $$ formula opened here is never closed: it runs on into "
                f"{_clipped(inside.strip())!r}; close it with $$",
            )


_FENCE_LINE = re.compile(r" {0,3}(`{3,}|~{3,}|:{3,})")


def _clipped(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def parse(
    text: str,
    path: Path | str,
    figures: Mapping[str, Any] = (),
    lessons: Mapping[str, tuple[str, str]] | None = None,
) -> list[Part]:
    """The filled lesson as parts; `figures` are the names a build's figure may have, and
    `lessons` the course's other lessons a `{ref}` may link (name -> (title, href)). Math
    becomes MathML, admonitions boxes, references links and the author's images (from the
    lesson's own folder) data. A mistake is named with the line of the author's file it is
    on."""
    tokens = check_fences(text, path)
    try:
        return _Lesson(text, path, figures, lessons).parts(tokens)
    except Mistake as mistake:
        raise _located(text, path, mistake) from None


def targets(
    text: str, path: Path | str, lessons: Mapping[str, tuple[str, str]] | None = None
) -> dict[str, tuple[str, str]]:
    """Every label a `{ref}` of the lesson may name -> (its title, its link): the lesson's
    `(label)=` targets and `:name:` options, then the course's other lessons."""
    tokens = check_fences(text, path)
    try:
        found = _Lesson(text, path, (), lessons)
        found.collect(tokens, 0)
    except Mistake as mistake:
        raise _located(text, path, mistake) from None
    return found.references()


def course_links(
    contents: Mapping[str, Any], name: str, pages: str = ".."
) -> dict[str, tuple[str, str]]:
    """The course's other lessons as a `{ref}` in lesson `name` links them: each lesson's
    name -> (its title, its page). `pages` is the folder of the lessons' pages as seen from
    the file that links them: `..` from a page or a student's notebook, in
    reports/lessons/<name>/, and `../../lessons` from the instructor's, in
    reports/instructor/<name>/."""
    return {
        item["name"]: (item["title"], f"{pages}/{item['name']}/index.html")
        for item in contents["lessons"]
        if item["name"] != name
    }


def reference_text(content: str, references: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
    """A `{ref}` role's text and link: `{ref}`label`` takes its target's title, and
    `{ref}`words <label>`` the words. The label must be one of `references` (see `targets`)."""
    explicit = _EXPLICIT.fullmatch(content.strip())
    words, label = explicit.groups() if explicit else ("", content.strip())
    title, href = references.get(label_id(label)) or references[label.strip()]
    return (words.strip() or title), href


def author_image(source: str, lesson_path: Path | str) -> dict[str, Any]:
    """An image of the author's, `source` as written in the lesson: its type, its data
    (base64) and, for a PNG, its size. It must be a file in the lesson's folder (or below);
    anything else is a Mistake, at line 0 (the caller knows the line)."""
    folder = Path(lesson_path).parent
    written = urllib.parse.unquote(source)
    if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", written) or written.startswith(("/", "\\")):
        raise Mistake(
            0,
            f"image {source!r} is not a file in the lesson's folder; the page is one file that "
            "opens offline, so save the image beside the lesson and name it so",
        )
    file = folder / written
    try:
        file.resolve().relative_to(folder.resolve())
    except ValueError:
        raise Mistake(
            0, f"image {source!r} is outside the lesson's folder ({folder}); copy it there"
        ) from None
    mime = IMAGE_TYPES.get(file.suffix.lower())
    if mime is None:
        raise Mistake(
            0, f"image {source!r} is not one of the types a page shows: {', '.join(IMAGE_TYPES)}"
        )
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise Mistake(0, f"image {source!r} not found in the lesson's folder ({folder})") from None
    except OSError as error:
        raise Mistake(0, f"image {source!r} cannot be read ({error.strerror})") from None
    looks = (
        b"<svg" in data[:4096]
        if mime == "image/svg+xml"
        else data.startswith(_SIGNATURES[mime]) and (mime != "image/webp" or data[8:12] == b"WEBP")
    )
    if not looks:
        raise Mistake(0, f"image {source!r} is not a {file.suffix.lower()[1:]} file")
    image = {"mime": mime, "data": base64.b64encode(data).decode(), "width": 0, "height": 0}
    if mime == "image/png" and len(data) >= 24:
        image["width"], image["height"] = struct.unpack(">II", data[16:24])
    return image


# `{ref}`words <label>``: the words shown, and the label they link to.
_EXPLICIT = re.compile(r"(.*?)\s*<([^<>]+)>", re.DOTALL)


def label_id(label: str) -> str:
    """A label as MyST (Sphinx) compares them: without case, blanks as dashes."""
    return re.sub(r"\s+", "-", label.strip()).lower()


# Ids the page's own sections use, which a label may not take.
_PAGE_IDS = {*BUILT_IN, "networks", "quiz-salt"}


def math_html(latex: str, display: bool) -> str:
    """LaTeX as MathML, which browsers draw without a script; a Mistake (at line 0) for
    LaTeX the converter cannot read, rather than a formula drawn wrong."""
    depth = 0
    for character in re.sub(r"\\.", "", latex):
        depth += {"{": 1, "}": -1}.get(character, 0)
        if depth < 0:
            raise Mistake(0, f"the formula ${_clipped(latex.strip())}$ closes a }} it never opened")
    if depth:
        raise Mistake(0, f"the formula ${_clipped(latex.strip())}$ leaves a {{ unclosed")
    try:
        element = convert_to_element(latex, display="block" if display else "inline")
    except Exception as error:  # latex2mathml's errors share no base class but Exception.
        why = re.sub(r"(?<!^)(?=[A-Z])", " ", type(error).__name__.removesuffix("Error")).lower()
        raise Mistake(
            0, f"the formula ${_clipped(latex.strip())}$ is not LaTeX the page can draw ({why})"
        ) from None
    for node in element.iter():
        unknown = re.search(r"\\[A-Za-z]+", node.text or "")
        if unknown:
            raise Mistake(
                0,
                f"the formula ${_clipped(latex.strip())}$ uses {unknown.group()}, which the "
                "page cannot draw (latex2mathml knows LaTeX's math commands, not macros)",
            )
        arguments = _ARGUMENTS.get(node.tag)
        if arguments and len(node) != arguments:
            raise Mistake(
                0, f"the formula ${_clipped(latex.strip())}$ misses an argument ({node.tag})"
            )
    # HTML puts <math> in MathML's namespace itself; the attribute would be a URL on a page
    # that names none.
    element.attrib.pop("xmlns", None)
    # latex2mathml keeps each symbol as a character reference in the text: written out
    # escaped, with those references put back.
    markup = re.sub(r"&amp;(#x[0-9A-Fa-f]+;)", r"&\1", tostring(element, encoding="unicode"))
    # LaTeX's `101{,}770` is one number with a thousands comma: drawn as one, without the
    # space a comma between two numbers gets.
    while _THOUSANDS.search(markup):
        markup = _THOUSANDS.sub(r"<mn>\1,\2</mn>", markup)
    return markup


_THOUSANDS = re.compile(r"<mn>([\d,.]+)</mn><mrow><mo>&#x0002C;</mo></mrow><mn>([\d.]+)</mn>")


# How many children a MathML element of a formula must have: \frac{a} gives one.
_ARGUMENTS = {"mfrac": 2, "msub": 2, "msup": 2, "msubsup": 3, "mroot": 2, "munder": 2,
              "mover": 2, "munderover": 3}  # fmt: skip


class _Lesson:
    """One lesson's text turned into parts: its labels are collected first, as a reference
    may name a label further down."""

    def __init__(
        self,
        text: str,
        path: Path | str,
        figures: Any,
        lessons: Mapping[str, tuple[str, str]] | None,
    ):
        self.text, self.path, self.figures = text, path, figures
        self.lessons = dict(lessons or {})
        # label -> (title or "", href, line)
        self.labels: dict[str, tuple[str, str, int]] = {}
        self.equations = 0  # Labelled display formulas are numbered, as MyST numbers them.

    # Labels ---------------------------------------------------------------------------

    def label(self, label: str, title: str, line: int) -> str:
        key = label_id(label)
        if not re.fullmatch(r"[a-z0-9][\w.:-]*", key):
            raise Mistake(line, f"label {label!r} is not a name of letters, digits, - and _")
        if key in _PAGE_IDS:
            raise Mistake(line, f"label {label!r} is the page's own section's; choose another")
        if key in self.labels:
            raise Mistake(
                line, f"label {label!r} is defined twice (first on line {self.labels[key][2]})"
            )
        self.labels[key] = (title, f"#{key}", line)
        return key

    def collect(self, tokens: list[Any], offset: int) -> None:
        """Registers the labels of `tokens` (a text whose first line is `offset` + 1): each
        target names the heading, figure or box after it; a figure or box may name itself
        with `:name:`."""
        for index, token in enumerate(tokens):
            line = offset + (token.map[0] + 1 if token.map else 0)
            if token.type in ("fence", "colon_fence") and token.info.startswith("{"):
                name, argument, options, body, body_line = self.directive_of(token, offset)
                if name in ADMONITIONS:
                    if options.get("name"):
                        token.meta["id"] = self.label(
                            options["name"], _plain(argument or ADMONITIONS[name]), line
                        )
                    token.meta["tokens"] = myst().parse(body)
                    self.collect(token.meta["tokens"], body_line - 1)
                elif name == "figure" and options.get("name"):
                    token.meta["id"] = self.label(options["name"], _plain(body), line)
            if token.type == "math_block_label":
                self.equations += 1
                token.meta["id"] = self.label(token.info, f"({self.equations})", line)
            if token.type != "myst_target":
                continue
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            title = ""
            if following is not None and following.type == "heading_open":
                title = _plain(tokens[index + 2].content)
            elif following is not None and following.type in ("fence", "colon_fence"):
                name, argument, options, body, _ = self.directive_of(following, offset)
                if name == "figure":
                    title = _plain(body)
                elif name in ADMONITIONS:
                    title = _plain(argument or ADMONITIONS[name])
            key = self.label(token.content, title, line)
            if following is not None and following.nesting == 1:
                following.attrSet("id", key)
            elif following is not None and following.type in ("fence", "colon_fence"):
                following.meta["id"] = key
            else:
                token.meta["anchor"] = key

    def references(self) -> dict[str, tuple[str, str]]:
        found = {name: (title, href) for name, (title, href) in self.lessons.items()}
        found.update((key, (title, href)) for key, (title, href, _) in self.labels.items())
        return found

    def reference(self, content: str, line: int) -> str:
        explicit = _EXPLICIT.fullmatch(content.strip())
        words, label = explicit.groups() if explicit else ("", content.strip())
        key = label_id(label)
        if key in self.labels:
            title, href, _ = self.labels[key]
        elif label.strip() in self.lessons:
            title, href = self.lessons[label.strip()]
        else:
            known = sorted(self.labels) + sorted(self.lessons)
            near = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
            hint = (
                f"; did you mean {', '.join(near)}?"
                if near
                else f"; known: {', '.join(known)}"
                if known
                else "; the lesson has no (label)= targets"
            )
            raise Mistake(line, f"unknown reference {label.strip()!r} in {{ref}}{hint}")
        if not (words.strip() or title):
            raise Mistake(
                line,
                f"{{ref}}`{label.strip()}` needs its words, {{ref}}`words <{label.strip()}>`: "
                "its target is not before a heading, figure or box",
            )
        return f'<a href="{escapeHtml(href)}">{escapeHtml(words.strip() or title)}</a>'

    # Parts ----------------------------------------------------------------------------

    def parts(self, tokens: list[Any]) -> list[Part]:
        self.collect(tokens, 0)
        parser = myst()
        found: list[Part] = []
        pending: list[Any] = []

        def flush() -> None:
            if pending:
                html = parser.renderer.render(self.prepared(pending, 0), parser.options, {})
                if html.strip():
                    found.append(Part("html", html))
                pending.clear()

        for token in tokens:
            if token.type == "front_matter":
                continue
            directive = token.type in ("fence", "colon_fence") and token.info.startswith("{")
            if directive and directive_name(token) in ADMONITIONS:
                pending.append(self.box(token, 0))
                continue
            if not directive:
                pending.append(token)
                continue
            flush()
            found.append(self.directive(token))
        flush()
        return found

    def directive_of(self, token: Any, offset: int) -> tuple[str, str, dict, str, int]:
        line = offset + token.map[0] + 1
        info = token.info.strip()
        if "}" not in info:
            raise Mistake(line, f"malformed directive {info!r}: expected {{name}} argument")
        name, argument = info[1 : info.index("}")], info[info.index("}") + 1 :].strip()
        options, body, body_line = options_of(token.content, line)
        if name not in DIRECTIVES:
            known = ", ".join(f"{{{known}}}" for known in DIRECTIVES)
            raise Mistake(line, f"unknown directive {{{name}}}; known: {known}")
        return name, argument, options, body, body_line

    def directive(self, token: Any) -> Part:
        name, argument, options, body, body_line = self.directive_of(token, 0)
        line = token.map[0] + 1
        if name == "code-cell":
            if token.type == "colon_fence":
                raise Mistake(
                    line, "a {code-cell} is written in a ``` fence, as jupytext reads cells"
                )
            _check_python(body, body_line)
            return Part("code", body, options=options, line=line)
        if name == "figure":
            return self.figure(argument, options, body, (line, body_line), token.meta.get("id"))
        if argument not in BUILT_IN:
            raise Mistake(line, f"unknown section {argument!r}; known: {', '.join(BUILT_IN)}")
        if body.strip():
            raise Mistake(line, f"the {{build}} {argument} fence holds text; it takes none")
        return Part("build", name=argument, line=line)

    def figure(
        self, argument: str, options: dict, body: str, lines: tuple[int, int], key: Any
    ) -> Part:
        (line, body_line), image = lines, None
        if Path(argument).suffix:
            try:
                image = author_image(argument, self.path)
            except Mistake as mistake:
                raise Mistake(line, str(mistake)) from None
        elif argument not in self.figures:
            known = ", ".join(sorted(self.figures))
            raise Mistake(line, f"unknown figure {argument!r}; known: {known}")
        if not options.get("alt"):
            raise Mistake(line, f"figure {argument} needs an :alt: text for screen readers")
        if key:
            options = {**options, "id": key}
        tokens = myst().parseInline(body.strip())
        parser = myst()
        caption = parser.renderer.render(self.prepared(tokens, body_line - 1), parser.options, {})
        return Part("figure", caption, name=argument, options=options, line=line, image=image)

    def box(self, token: Any, offset: int) -> Any:
        """An admonition as one HTML block: its title, then its text rendered as the lesson's."""
        name, argument, options, _, body_line = self.directive_of(token, offset)
        line = offset + token.map[0] + 1
        unknown = sorted(set(options) - {"class", "name", "tags"})
        if unknown:
            raise Mistake(line, f"the {{{name}}} takes the options :class: and :name:, not "
                          f":{unknown[0]}:")  # fmt: skip
        inner: list[Any] = []
        for inside in token.meta["tokens"]:
            directive = inside.type in ("fence", "colon_fence") and inside.info.startswith("{")
            if directive and directive_name(inside) in ADMONITIONS:
                inner.append(self.box(inside, body_line - 1))
            elif directive:
                where = body_line + inside.map[0]
                raise Mistake(
                    where, f"a {{{directive_name(inside)}}} inside a {{{name}}} is not "
                    "supported; place it outside the box",
                )  # fmt: skip
            else:
                inner.append(inside)
        parser = myst()
        title = argument or ADMONITIONS[name]
        title_html = parser.renderer.render(
            self.prepared(parser.parseInline(title), line - 1), parser.options, {}
        )
        body = parser.renderer.render(self.prepared(inner, body_line - 1), parser.options, {})
        classes = " ".join(["admonition", name, *options.get("class", "").split()])
        key = token.meta.get("id")
        attributes = f' id="{escapeHtml(key)}"' if key else ""
        attributes += f' aria-label="{escapeHtml(_plain(title))}"'
        html = (
            f'<aside class="{escapeHtml(classes)}"{attributes}>\n'
            f'<p class="admonition-title">{title_html}</p>\n{body}</aside>\n'
        )
        made = Token("html_block", "", 0)
        made.content = html
        return made

    def prepared(self, tokens: list[Any], offset: int) -> list[Any]:
        """`tokens` with MyST's parts made HTML: math as MathML, targets as anchors, roles as
        links or math, the author's images as data; comments left out."""
        for token in tokens:
            line = offset + (token.map[0] + 1 if token.map else 1)
            if token.type in ("math_block", "math_block_label"):
                token.type = "html_block"
                token.content = self.display_math(token.content, line, token.meta.get("id"))
            elif token.type == "myst_target":
                key = token.meta.get("anchor")
                token.type = "html_block"
                token.content = f'<span id="{escapeHtml(key)}"></span>\n' if key else ""
            elif token.type == "myst_line_comment":
                token.type, token.content = "html_block", ""
            elif token.type == "inline" and token.children:
                self.prepared_inline(token.children, line)
        return tokens

    def prepared_inline(self, children: list[Any], line: int) -> None:
        for child in children:
            if child.type in ("softbreak", "hardbreak"):
                line += 1
            elif child.type == "math_inline":
                child.type = "html_inline"
                child.content = self.inline_math(child.content, line)
            elif child.type == "myst_role":
                name = child.meta.get("name", "")
                if name == "math":
                    child.content = self.inline_math(child.content, line)
                elif name in ("ref", "eq"):
                    child.content = self.reference(child.content, line)
                else:
                    known = ", ".join(f"{{{role}}}" for role in ROLES)
                    raise Mistake(line, f"unknown role {{{name}}}; known: {known}")
                child.type = "html_inline"
            elif child.type == "image":
                if not child.content.strip():
                    source = child.attrGet("src")
                    raise Mistake(
                        line, f"image {source!r} needs a text for screen readers: ![what it "
                        f"shows]({source})",
                    )  # fmt: skip
                try:
                    image = author_image(str(child.attrGet("src")), self.path)
                except Mistake as mistake:
                    raise Mistake(line, str(mistake)) from None
                child.attrSet("src", f"data:{image['mime']};base64,{image['data']}")
            if child.children:
                self.prepared_inline(child.children, line)

    def inline_math(self, latex: str, line: int) -> str:
        try:
            return math_html(latex, display=False)
        except Mistake as mistake:
            raise Mistake(line, str(mistake)) from None

    def display_math(self, latex: str, line: int, key: str | None = None) -> str:
        try:
            mathml = math_html(latex, display=True)
        except Mistake as mistake:
            raise Mistake(line, str(mistake)) from None
        # A formula wider than a phone scrolls inside its own box, as a wide table does; a
        # labelled one shows its number, which {ref} links to.
        number, attributes = "", ""
        if key:
            title = self.labels[key][0]
            number = f'<span class="equation-number">{escapeHtml(title)}</span>'
            attributes = f' id="{escapeHtml(key)}"'
        return (
            f'<div class="math-display"{attributes} tabindex="0" role="region" aria-label='
            f'"Formula{" " + title if key else ""} (scrolls sideways on a narrow screen)">'
            f"{mathml}{number}</div>\n"
        )


def directive_name(token: Any) -> str:
    info = token.info.strip()
    return info[1 : info.index("}")] if "}" in info else ""


def _plain(markdown_text: str) -> str:
    """A piece of Markdown as plain text (a heading's or a caption's, for a reference)."""
    first = markdown_text.strip().split("\n\n", 1)[0]
    # A role shows its words (or its label), math its LaTeX.
    first = re.sub(
        r"\{(\w+)\}(`+)(.+?)\2",
        lambda role: _EXPLICIT.sub(r"\1", role.group(3)).strip(),
        first,
    )
    return " ".join(Markup(myst().renderInline(first)).striptags().split())


def options_of(content: str, line: int = 0) -> tuple[dict[str, Any], str, int]:
    """MyST's `:key: value` lines at the top of a directive, and the body after them. Values
    are text, as MyST reads them, except `:tags:`, a YAML list."""
    lines = content.splitlines(keepends=True)
    count = 0
    while count < len(lines) and lines[count].startswith(":"):
        count += 1
    options: dict[str, Any] = {}
    for number, option in enumerate(lines[:count]):
        key, sep, value = option[1:].partition(":")
        if not sep or not key.strip():
            raise Mistake(line + 1 + number, f"option {option.strip()!r} is not :name: value")
        options[key.strip()] = value.strip()
    try:
        tags = yaml.safe_load(options["tags"]) if "tags" in options else []
    except yaml.YAMLError:
        tags = options["tags"]
    if not (isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)):
        raise Mistake(line + 1, f":tags: {tags!r} is not a list of names, such as [setup]")
    options["tags"] = tags
    return options, "".join(lines[count:]), line + 1 + count


def _check_python(code: str, first_line: int) -> None:
    """Code cells are plain Python once their values are in: no IPython magics."""
    try:
        ast.parse(code)
    except SyntaxError as error:
        where = first_line + (error.lineno or 1) - 1
        raise Mistake(where, f"the code cell is not valid Python ({error.msg})") from None
