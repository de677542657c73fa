"""The Markdown of a pull request's comment: what the change does to the course build.

`python -m tools.pr_comment --base <rev> [--preview <url>]` prints, for the build in the
current folder against the base branch's commit `<rev>`:

- a hidden marker line, by which the workflow finds its one comment and updates it in place;
- `dvc params diff <rev> --md`: every setting changed, old and new;
- `dvc metrics diff <rev> --md`: each metric that moved, old, new and the difference;
- the lesson and its variations, from reports/comparison/variants.csv;
- where to download the built student site, when `--preview` gives the run's address.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

from tools import dvc

MARKER = "<!-- course-build-comment -->"
VARIANTS = Path("reports/comparison/variants.csv")


class CommentError(Exception):
    """A reason the comment cannot be written, in one line."""


def command(args: list[str], root: Path) -> tuple[str, str]:
    """The output and the warnings of a command run in `root`; its error in one line if it
    fails."""
    result = subprocess.run(args, cwd=root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        said = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise CommentError(f"{' '.join(args[:3])} failed: {said}")
    return result.stdout.strip(), result.stderr.strip()


def cell(text: str) -> str:
    """A CSV value as a Markdown table cell: a '|' would end the cell, a newline the row."""
    return " ".join(text.split()).replace("|", "\\|")


def variants_table(path: Path) -> str:
    """reports/comparison/variants.csv as a Markdown table."""
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    if not rows:
        return ""
    head, body = rows[0], rows[1:]
    lines = ["| " + " | ".join(cell(name) for name in head) + " |"]
    lines.append("|" + "|".join("---" for _ in head) + "|")
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in body]
    return "\n".join(lines)


def comment(root: Path, base: str, preview: str | None = None) -> str:
    """The comment's Markdown for the build in `root` against the commit `base`."""
    short = command(["git", "rev-parse", "--short=7", "--verify", f"{base}^{{commit}}"], root)[0]
    params = command([dvc(), "params", "diff", short, "--md"], root)[0]
    metrics, warnings = command([dvc(), "metrics", "diff", short, "--md"], root)
    if "failed to load" in warnings:
        # The base's metrics are DVC outputs: without a remote to read them from, and not in
        # this runner's cache, DVC shows them as '-'.
        metrics += (
            f"\n\nThe metrics of {short} are not in this runner's DVC cache, nor in a remote "
            "it could read: they show as -."
        )
    variants = root / VARIANTS
    if not variants.is_file():
        raise CommentError(f"{VARIANTS} not built yet; run `make repro` first")
    parts = [
        MARKER,
        f"## The course build against the base branch ({short})",
        "",
        "### Settings (`dvc params diff`)",
        "",
        params or "No setting changed.",
        "",
        "### Metrics (`dvc metrics diff`)",
        "",
        metrics or "No metric moved.",
        "",
        "### The lesson and its variations (`reports/comparison/variants.csv`)",
        "",
        variants_table(variants),
    ]
    if preview:
        parts += [
            "",
            f"The student site, as it would be published: the artifact `course-site` of "
            f"[this run]({preview}).",
        ]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the base branch's commit")
    parser.add_argument("--preview", help="the address of the run that holds the site")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(comment(Path.cwd(), args.base, args.preview))
    except CommentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
