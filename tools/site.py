"""Assemble the student site, `_site/`, from a build: what CI publishes, to look at first.

`make site` (`python -m tools.site [--out _site]`) copies the files of one allow-list, the
course's home page and each lesson's student page and student notebook (the lessons
course/course.yaml lists), and nothing else, after searching each for instructor-only material
of every lesson (courseware/leaks.py). The instructor-only outputs are not
listed here but found where they are declared: the outs of the stages whose `meta` in
dvc.yaml says `audience: instructor`, as DVC reads them. If the allow-list ever names one of
them, or a folder that holds one, nothing is written.

When GITHUB_REPOSITORY (owner/name) is set, as GitHub Actions sets it, the copy of each
lesson's page gets an "Open in Colab" link beside its "Download this lesson as a notebook" link,
pointing at that lesson's notebook, which the publishing workflow puts on its own branch. The
link is added here, outside the DVC build, so that the build's own bytes stay the same on
every machine.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import sys
from pathlib import Path, PurePosixPath

import yaml

from courseware import course, leaks
from pipeline.cli import StageError

# The course list, whose lessons the site publishes.
COURSE = Path("course/course.yaml")
# The branch the publishing workflow puts the student notebook on, for Colab to open.
COLAB_BRANCH = "colab"
# The page's own link to its embedded notebook, which the Colab link goes beside.
NOTEBOOK_LINK = re.compile(r"<a\b[^>]*>Download this lesson as a notebook</a>")
# What an earlier `make site` wrote for a lesson since renamed or removed from the course:
# its folder, its page and its notebook, which this run may clear too.
EARLIER_LESSON = re.compile(r"lessons|lessons/([a-z0-9][a-z0-9-]*)(/index\.html|/\1\.ipynb)?")
# GitHub's owner/name: letters, digits, '-', '_' and '.'.
REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


class SiteError(Exception):
    """A reason not to write the site, said in one line."""


def instructor_only(root: Path) -> dict[str, str]:
    """Each output of a stage declared `meta: {audience: instructor}` in dvc.yaml, as a path
    relative to `root`, with the stage that makes it."""
    # DVC is imported here, by the tool, and never by a stage: the stages run without it.
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            found = {}
            for stage in repo.index.stages:
                if (stage.meta or {}).get("audience") != "instructor":
                    continue
                for out in stage.outs:
                    path = Path(out.fs_path).resolve().relative_to(root.resolve())
                    found[path.as_posix()] = stage.name
            return found
    except DvcException as error:
        raise SiteError(f"cannot read the pipeline in {root}: {error}") from error


def overlaps(first: str, second: str) -> bool:
    """Whether two relative paths are the same, or one holds the other."""
    a, b = PurePosixPath(first), PurePosixPath(second)
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def check_allow_list(allow_list: dict[str, str], hidden: dict[str, str]) -> None:
    """Refuse an allow-list that names an instructor-only output, or a folder holding one."""
    for source in allow_list:
        for path, stage in hidden.items():
            if overlaps(source, path):
                raise SiteError(
                    f"the site's allow-list names {source}, which is or holds {path}, an output "
                    f"of the instructor-only stage {stage} (dvc.yaml); nothing was published"
                )


def course_allow_list(root: Path, paths: dict[str, str]) -> dict[str, str]:
    """What students get, the build's path -> the path in the site: the home page, the MNIST
    file it offers for offline notebooks, and each listed lesson's page and notebook. Nothing
    else is published."""
    try:
        listed = course.read_course(root / COURSE)
    except StageError as error:
        raise SiteError(str(error)) from None
    found = {paths["home"]: "index.html", paths["offline_data"]: "mnist.npz"}
    pages = PurePosixPath(paths["lesson_pages"])
    for name in listed.lessons:
        found[str(pages / name / "index.html")] = f"lessons/{name}/index.html"
        found[str(pages / name / f"{name}.ipynb")] = f"lessons/{name}/{name}.ipynb"
    return found


def colab_url(repository: str, notebook: str, branch: str = COLAB_BRANCH) -> str:
    """Where Colab opens a student notebook (its path in the site) of a GitHub repository's
    Colab branch."""
    if not REPOSITORY.fullmatch(repository):
        raise SiteError(f"GITHUB_REPOSITORY is {repository!r}, not owner/name")
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/{notebook}"


def with_colab_link(page: str, url: str) -> str:
    """The page with an "Open in Colab" link after each of its notebook download links."""
    link = f' (<a class="colab-link" href="{html.escape(url)}">Open in Colab</a>)'
    linked, count = NOTEBOOK_LINK.subn(lambda found: found.group(0) + link, page)
    if count == 0:
        raise SiteError(
            "the course page has no 'Download this lesson as a notebook' link to put the "
            "'Open in Colab' link beside"
        )
    return linked


def clear(out: Path, ours: set[str]) -> None:
    """Remove the site's folder of an earlier `make site`, if it holds only the files `ours`
    names (and their folders): never a folder of something else."""
    if not out.exists():
        return
    if not out.is_dir():
        raise SiteError(f"{out} is not a folder")
    folders = {str(parent) for name in ours for parent in PurePosixPath(name).parents}
    strangers = sorted(
        path.relative_to(out).as_posix()
        for path in out.rglob("*")
        if path.relative_to(out).as_posix() not in ours | folders
        and not EARLIER_LESSON.fullmatch(path.relative_to(out).as_posix())
    )
    if strangers:
        raise SiteError(
            f"{out} holds files make site did not write ({', '.join(strangers)}); remove it first"
        )
    shutil.rmtree(out)


def build_paths(root: Path) -> dict[str, str]:
    """Where dvc.yaml puts the build's files (its `paths` vars)."""
    try:
        tree = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
        return next(
            item["paths"] for item in tree["vars"] if isinstance(item, dict) and "paths" in item
        )
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as error:
        raise SiteError(f"cannot read where dvc.yaml puts the build: {error!r}") from None


def withheld(root: Path, paths: dict[str, str]) -> leaks.Withheld:
    """What no student file may hold, from every lesson's files and the build's, where
    dvc.yaml puts them: a page must not hold another lesson's solutions either."""
    try:
        lessons = root / paths["lessons"]
        found = leaks.Withheld()
        for name in course.read_course(root / paths["course"]).lessons:
            one = leaks.read_withheld(
                values_path=root / paths["values"],
                lesson_path=lessons / name / course.LESSON_FILE,
                quiz_path=lessons / name / course.QUIZ_FILE,
                plan_path=lessons / name / course.PLAN_FILE,
                variant_reports=root / paths["variant_reports"],
            )
            found = leaks.merged(found, one)
        return found
    except (OSError, StageError, ValueError, KeyError, TypeError) as error:
        # A values file that is not JSON, or a dvc.yaml without its paths, is no build to
        # publish from.
        raise SiteError(f"cannot gather what students may not see: {error!r}") from None


def check_mnist(name: Path, data: bytes, values_path: Path) -> None:
    """A data file is published only if it is MNIST as this build verified it: its four arrays'
    digests are those the values file records, and it holds nothing else."""
    import hashlib
    import io
    import json

    import numpy as np

    try:
        expected = json.loads(values_path.read_text(encoding="utf-8"))["build"]["data"]["sha256"]
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            found = {
                key: hashlib.sha256(np.ascontiguousarray(arrays[key]).tobytes()).hexdigest()
                for key in arrays.files
            }
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SiteError(f"{name}: cannot check it is MNIST: {error!r}") from None
    if found != expected:
        raise SiteError(f"{name}: not the MNIST this build verified; nothing was published")


def build_site(
    root: Path, out: Path, repository: str | None, allow_list: dict[str, str] | None = None
) -> list[Path]:
    """Write the site from the build in `root`, the files of `allow_list` (by default, the
    course's) only; return the files written."""
    paths = build_paths(root)
    if allow_list is None:
        allow_list = course_allow_list(root, paths)
    check_allow_list(allow_list, instructor_only(root))
    missing = [source for source in allow_list if not (root / source).is_file()]
    if missing:
        raise SiteError(f"{', '.join(missing)} not built yet; run `make repro` first")
    if repository:
        colab_url(repository, "")  # Refused here, before anything is read, if not owner/name.
    # Everything is read, and the links put in, before anything is written: a refusal leaves
    # no half-made site.
    contents = {}
    for source, target in allow_list.items():
        data = (root / source).read_bytes()
        if repository and target.startswith("lessons/") and target.endswith("/index.html"):
            notebook = str(
                PurePosixPath(target).parent / f"{PurePosixPath(target).parent.name}.ipynb"
            )
            try:
                url = colab_url(repository, notebook)
                data = with_colab_link(data.decode("utf-8"), url).encode("utf-8")
            except UnicodeDecodeError:
                raise SiteError(f"{source}: not UTF-8 text, so it cannot be published") from None
        contents[out / target] = data
    # The last check: every file of the site is searched for instructor-only material, in
    # case a student output was made some other way than its stage makes it.
    secrets = withheld(root, paths)
    for destination, data in contents.items():
        if destination.suffix == ".npz":
            check_mnist(destination, data, root / paths["values"])
            continue
        try:
            leaks.check(destination, data.decode("utf-8"), secrets)
        except UnicodeDecodeError:
            raise SiteError(f"{destination}: not UTF-8 text, so it cannot be searched") from None
        except leaks.LeakError as error:
            raise SiteError(str(error)) from None
    clear(out, set(allow_list.values()))
    out.mkdir(parents=True)
    for destination, data in contents.items():
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)
    return list(contents)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("_site"), help="the site's folder")
    args = parser.parse_args(argv)
    repository = os.environ.get("GITHUB_REPOSITORY") or None
    try:
        written = build_site(Path.cwd(), args.out, repository)
    except SiteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    colab = f", with an Open in Colab link to {repository}" if repository else ""
    names = ", ".join(str(path) for path in written)
    print(f"The student site: {names}{colab}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
