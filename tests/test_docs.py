"""The README and docs/: every link resolves, every image the README shows is in git, the README
stays short, and it links every docs page. Fast: no DVC, no TensorFlow, only git and the files.

The checkers are functions of a Markdown text and the folder it lives in, returning the problems
they find, so the same code checks the real pages and small broken samples.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 150

MARKDOWN = MarkdownIt("commonmark").enable("table")
# Schemes a link may point elsewhere with; anything else with a scheme (file:, ...) is reported.
EXTERNAL = ("http://", "https://", "mailto:")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# src= and href= in raw HTML (<img src="...">, <a href="...">).
HTML_TARGET = re.compile(r"""\b(src|href)\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


def tokens(text: str) -> list[Token]:
    """Every token of the text, inline children included, in document order."""
    found: list[Token] = []
    for token in MARKDOWN.parse(text):
        found.append(token)
        found.extend(token.children or [])
    return found


def targets(text: str) -> list[tuple[str, str]]:
    """("link" or "image", target) for each link and image: Markdown's (inline, reference or
    autolink) and raw HTML's; nothing inside code spans or code blocks."""
    found: list[tuple[str, str]] = []
    for token in tokens(text):
        if token.type == "link_open":
            found.append(("link", str(token.attrs["href"])))
        elif token.type == "image":
            found.append(("image", str(token.attrs["src"])))
        elif token.type in ("html_block", "html_inline"):
            for attribute, double, single in HTML_TARGET.findall(token.content):
                kind = "image" if attribute.lower() == "src" else "link"
                found.append((kind, double or single))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen."""
    text = unicodedata.normalize("NFC", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown text (repeats get -1, -2, ...)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    markdown = MARKDOWN.parse(text)
    for opening, inline in zip(markdown, markdown[1:], strict=False):
        if opening.type != "heading_open":
            continue
        words = "".join(
            child.content
            for child in inline.children or []
            if child.type in ("text", "code_inline")
        )
        base = slug(words)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def git(root: Path, *args: str) -> int:
    """The exit code of a git command run in `root`."""
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True).returncode


def link_problems(text: str, base: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the relative links and images of a Markdown text kept in `base`.

    A target must be a file or folder inside `root` that git does not ignore (a generated
    output is not there in a fresh clone or on a code host), and `page.md#anchor` must name a
    heading of that page. http(s) and mailto links are not checked.
    """
    problems: list[str] = []
    root = root.resolve()
    for kind, target in targets(text):
        if target.startswith(EXTERNAL):
            continue
        if not target:
            problems.append(f"{kind} with an empty target")
            continue
        if SCHEME.match(target):
            problems.append(
                f"{kind} {target}: only http(s) and mailto links may leave the repository"
            )
            continue
        path_part, _, anchor = unquote(target).partition("#")
        if path_part.startswith("/"):
            problems.append(f"{kind} {target}: an absolute path; use a relative one")
            continue
        path = (base / path_part).resolve() if path_part else None
        if path is not None:
            if not path.is_relative_to(root):
                problems.append(f"{kind} {target}: outside the repository")
                continue
            if not path.exists():
                problems.append(f"{kind} {target}: no such file or folder")
                continue
            if git(root, "check-ignore", "-q", "--", str(path.relative_to(root))) == 0:
                problems.append(f"{kind} {target}: ignored by git (a generated output?)")
                continue
        if anchor and (path is None or path.suffix == ".md"):
            page = text if path is None else path.read_text(encoding="utf-8")
            if anchor not in anchors(page):
                problems.append(f"{kind} {target}: no heading with the anchor #{anchor}")
    return problems


def image_problems(text: str, base: Path, root: Path = ROOT) -> list[str]:
    """The images a Markdown text shows that are not files git tracks (they would be broken on
    a code host and in a fresh clone)."""
    problems: list[str] = []
    root = root.resolve()
    for kind, target in targets(text):
        if kind != "image":
            continue
        path_part = unquote(target).partition("#")[0]
        if SCHEME.match(target) or not path_part or path_part.startswith("/"):
            problems.append(f"image {target}: not a file in the repository")
            continue
        path = (base / path_part).resolve()
        if not path.is_relative_to(root) or git(
            root, "ls-files", "--error-unmatch", "--", str(path.relative_to(root))
        ):
            problems.append(f"image {target}: not tracked by git")
    return problems


def code_lines(text: str) -> list[str]:
    """The lines of the text's code blocks."""
    return [
        line
        for token in MARKDOWN.parse(text)
        if token.type in ("fence", "code_block")
        for line in token.content.splitlines()
    ]


# The repository's own pages.


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda page: page.name)
def test_every_link_resolves(page: Path) -> None:
    assert link_problems(page.read_text(encoding="utf-8"), page.parent) == []


def test_every_image_the_readme_shows_is_in_git() -> None:
    assert image_problems(README.read_text(encoding="utf-8"), ROOT) == []


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_the_readme_links_every_docs_page() -> None:
    linked = {
        (ROOT / unquote(target).partition("#")[0]).resolve()
        for kind, target in targets(README.read_text(encoding="utf-8"))
        if kind == "link" and not SCHEME.match(target)
    }
    assert DOCS, "docs/ holds no pages"
    assert [page.name for page in DOCS if page.resolve() not in linked] == []


@pytest.mark.parametrize("page", DOCS, ids=lambda page: page.name)
def test_each_docs_page_starts_with_a_title(page: Path) -> None:
    first = page.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and len(first) > 2


def test_the_restore_after_an_experiment_restores_the_lock_too() -> None:
    # `git checkout params.yaml && dvc checkout` leaves the experiment's outputs: dvc checkout
    # follows dvc.lock, so the command to run must restore dvc.lock as well.
    restores = [
        line
        for page in [README, *DOCS]
        for line in code_lines(page.read_text(encoding="utf-8"))
        if re.search(r"git checkout\b.*params\.yaml", line)
    ]
    assert restores, "the README shows no restore after an experiment"
    assert [line for line in restores if "dvc.lock" not in line] == []


# The checkers themselves, on small samples.


def test_the_link_checker_reports_broken_links(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Change a setting: `dvc exp`\n")
    (tmp_path / "data.csv").write_text("a\n1\n")
    sample = "\n".join(
        [
            "# Sample",
            "",
            "[fine](docs/guide.md) [fine](docs/guide.md#change-a-setting-dvc-exp) [fine](docs/)",
            "[fine](data.csv) [fine](#sample) [fine](https://dvc.org) [fine](mailto:a@b.c)",
            "`[in code](missing-in-code.md)` and <https://example.org>",
            "[gone](docs/missing.md) [bad anchor](docs/guide.md#nowhere) [own](#nowhere)",
            "![figure](figures/grid.png) [abs](/etc/passwd) [out](../outside.md)",
            '[ftp](ftp://example.org/x) <img src="figures/html.png"> [ref][r]',
            "",
            "[r]: docs/also-missing.md",
        ]
    )
    assert link_problems(sample, tmp_path, root=tmp_path) == [
        "link docs/missing.md: no such file or folder",
        "link docs/guide.md#nowhere: no heading with the anchor #nowhere",
        "link #nowhere: no heading with the anchor #nowhere",
        "image figures/grid.png: no such file or folder",
        "link /etc/passwd: an absolute path; use a relative one",
        "link ../outside.md: outside the repository",
        "link ftp://example.org/x: only http(s) and mailto links may leave the repository",
        "image figures/html.png: no such file or folder",
        "link docs/also-missing.md: no such file or folder",
    ]


def test_the_link_checker_reports_links_to_what_git_ignores(tmp_path: Path) -> None:
    assert git(tmp_path, "init", "-q") == 0
    (tmp_path / ".gitignore").write_text("/reports/\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "index.html").write_text("<p>built</p>\n")
    (tmp_path / "notes.md").write_text("# Notes\n")
    sample = "[page](reports/index.html) and [notes](notes.md)\n"
    assert link_problems(sample, tmp_path, root=tmp_path) == [
        "link reports/index.html: ignored by git (a generated output?)"
    ]


def test_the_image_checker_reports_images_git_does_not_track(tmp_path: Path) -> None:
    assert git(tmp_path, "init", "-q") == 0
    for name in ("tracked.png", "untracked.png", "shown.png"):
        (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    assert git(tmp_path, "add", "tracked.png") == 0
    sample = "\n".join(
        [
            "![tracked](tracked.png) ![untracked](untracked.png) ![badge](https://x.org/b.svg)",
            "",
            '<p><img src="shown.png" alt="html"></p>',
            "",
            "[a link, not an image](untracked.png)",
        ]
    )
    assert image_problems(sample, tmp_path, root=tmp_path) == [
        "image untracked.png: not tracked by git",
        "image https://x.org/b.svg: not a file in the repository",
        "image shown.png: not tracked by git",
    ]


def test_anchors_follow_github() -> None:
    text = "\n".join(
        [
            "# Change a setting and compare",
            "## The course page and `digit-predict`",
            "## Reproducibility: the same bytes, and what holds",
            "## Notes",
            "## Notes",
        ]
    )
    assert anchors(text) == {
        "change-a-setting-and-compare",
        "the-course-page-and-digit-predict",
        "reproducibility-the-same-bytes-and-what-holds",
        "notes",
        "notes-1",
    }
