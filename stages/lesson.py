"""The author's lesson: a MyST-Markdown notebook (jupytext's format) whose numbers come from the
build.

`fill` puts the build's values into the text with Jinja2, strictly: a name that is not in the
values file stops the build with the file, the line and the nearest known names. `parse` reads
the filled text with markdown-it-py into the parts a renderer lays out: HTML, code cells,
figures by name, and the places of the page's built-in sections. Nothing here writes a file.

The lesson's syntax, for authors, is in docs/lesson.md.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml
from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin

from stages.cli import StageError


class LessonError(StageError):
    """A mistake in the author's file, named with its file and line."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"{where}: {message}")


# Values as the lesson sees them -----------------------------------------------------------


class Values(dict):
    """A mapping of the values file that knows its dotted name, so a missing name is reported
    whole (`metrics.test.acuracy`), not as its last part."""

    def __init__(self, data: Mapping[str, Any], name: str = ""):
        super().__init__(
            (key, _wrap(value, f"{name}.{key}" if name else key)) for key, value in data.items()
        )
        self.name = name


def _wrap(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return Values(value, name)
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
        parent, name = self._undefined_obj, self._undefined_name or "?"
        if isinstance(parent, Values) and parent.name:
            return f"{parent.name}.{name}"
        return name


def _known(value: Any) -> Any:
    """The value, unless it is an unknown name, which stops the lesson here."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return value


class _Environment(jinja2.Environment):
    """Dotted names look up the values file's keys only, never a dict's methods."""

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


def percent(value: float, digits: int = 2) -> str:
    """0.9761 -> '97.61%'."""
    return f"{float(_known(value)) * 100:.{digits}f}%"


def thousands(value: float) -> str:
    """101770 -> '101,770'."""
    return f"{_known(value):,}"


def python_literal(value: Any) -> str:
    """The value as Python source, for code cells: [128], 'relu', 0.001, True."""
    return repr(plain(_known(value)))


def plain(value: Any) -> Any:
    """The value as plain dicts and lists, as the values file holds it."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


FILTERS = {"percent": percent, "thousands": thousands, "py": python_literal}


def environment(loader: jinja2.BaseLoader | None = None) -> jinja2.Environment:
    """Jinja2 as lessons use it: strict names, the documented filters."""
    found = _Environment(undefined=_Unknown, keep_trailing_newline=True, loader=loader)
    found.filters.update(FILTERS)
    return found


def unknown_value_message(name: str, values: Mapping[str, Any]) -> str:
    # A student's values (stages/audience.py) know which names they leave out, and why.
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


def _render(source: str, values: Mapping[str, Any], path: Path | str) -> str:
    # The file's name goes with its text, so that Jinja's traceback names its lines.
    jinja = environment(jinja2.FunctionLoader(lambda name: (source, str(path), lambda: True)))
    try:
        template = jinja.get_template(str(path))
        return template.render(Values(values))
    except jinja2.TemplateSyntaxError as error:
        message = f"not a valid {{{{ }}}} or {{% %}}: {error.message}"
        raise LessonError(path, error.lineno, message) from None
    except jinja2.UndefinedError as error:
        line = _template_line(error, str(path))
        raise LessonError(path, line, unknown_value_message(str(error), values)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as error:
        line = _template_line(error, str(path))
        raise LessonError(path, line, f"a value cannot be shown so ({error})") from None


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


@dataclass
class Part:
    """One piece of the lesson, in order: `html` (rendered Markdown), `code` (a code cell),
    `figure` (a figure by name) or `build` (a built-in section)."""

    kind: str
    text: str = ""
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    line: int = 0


def markdown() -> MarkdownIt:
    """CommonMark with tables and a YAML front matter (jupytext's header), which is skipped."""
    return MarkdownIt("commonmark", {"html": False}).enable("table").use(front_matter_plugin)


class Mistake(Exception):
    """A mistake found in the filled text, at `line` of it (counted from 1)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


def parse(text: str, path: Path | str, figures: Mapping[str, Any] = ()) -> list[Part]:
    """The filled lesson as parts; `figures` are the names a figure may have. A mistake is
    named with the line of the author's file it is on."""
    parser = markdown()
    tokens = parser.parse(text)
    lines = text.splitlines()
    parts: list[Part] = []
    pending: list[Any] = []

    def flush() -> None:
        if pending:
            parts.append(Part("html", parser.renderer.render(pending, parser.options, {})))
            pending.clear()

    for token in tokens:
        if token.type == "front_matter":
            continue
        if token.type != "fence" or not token.info.startswith("{"):
            pending.append(token)
            continue
        flush()
        try:
            parts.append(_directive(token, lines, figures))
        except Mistake as mistake:
            line = text.source_line(mistake.line) if isinstance(text, Filled) else mistake.line
            raise LessonError(path, line, str(mistake)) from None
    flush()
    return parts


def _directive(token: Any, lines: list[str], figures: Any) -> Part:
    line = token.map[0] + 1
    closing = lines[token.map[1] - 1].strip() if token.map[1] - 1 > token.map[0] else ""
    if not (closing.startswith(token.markup[0] * len(token.markup)) and set(closing) <= set("`~")):
        raise Mistake(line, f"the {token.info.split()[0]} fence opened here is never closed")
    info = token.info.strip()
    if "}" not in info:
        raise Mistake(line, f"malformed directive {info!r}: expected {{name}} argument")
    name, argument = info[1 : info.index("}")], info[info.index("}") + 1 :].strip()
    options, body, body_line = options_of(token.content, line)
    if name == "code-cell":
        _check_python(body, body_line)
        return Part("code", body, options=options, line=line)
    if name == "figure":
        if argument not in figures:
            known = ", ".join(sorted(figures))
            raise Mistake(line, f"unknown figure {argument!r}; known: {known}")
        if not options.get("alt"):
            raise Mistake(line, f"figure {argument} needs an :alt: text for screen readers")
        caption = markdown().renderInline(body.strip())
        return Part("figure", caption, name=argument, options=options, line=line)
    if name == "build":
        if argument not in BUILT_IN:
            raise Mistake(line, f"unknown section {argument!r}; known: {', '.join(BUILT_IN)}")
        return Part("build", name=argument, line=line)
    raise Mistake(
        line, f"unknown directive {{{name}}}; known: {{code-cell}}, {{figure}}, {{build}}"
    )


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


def code_cells(parts: list[Part]) -> Iterator[Part]:
    return (part for part in parts if part.kind == "code")


def read_values(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
