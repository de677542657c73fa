"""The freshness gate without the build: a committed dvc.lock must agree with itself and with the
code and params, checked on a fresh clone with nothing restored (tools/freshness.py), as the
pull-request job that runs for every pull request checks it; and `make restore`, the one place
CI's keys reach DVC.

The folder hashes the gate recomputes are held to DVC's own: to the `.dir` objects in a build's
cache, to dvc-data's Tree, and to the hashes `dvc repro` recorded for folders holding several
stages' outputs. The gate runs as CI runs it: the base commit's copy (this project's tools/),
on another project's files.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import FRESH_MAKE, LESSONS, ROOT, copy_build, run, stages_run
from tools import freshness

# The tools run in a copy of the project, which holds the pipeline but not tools/: as in CI,
# where the base commit's tools/ judge the pull request's files.
TOOLS = {"PYTHONPATH": str(ROOT), "GITHUB_REPOSITORY": ""}
RERUN = "run `dvc repro` and commit dvc.lock"


def gate(project: Path, *args: str, **env: str):
    """The gate as CI runs it: `python -P -m tools.freshness`, tools/ from PYTHONPATH."""
    return run(
        [sys.executable, "-P", "-m", "tools.freshness", *args],
        project,
        check=False,
        env=TOOLS | env,
    )


def fresh_clone(project: Path, dest: Path) -> Path:
    """A clone of a committed build: its files, no output, no DVC cache, no remote."""
    run(["git", "clone", "-q", str(project), str(dest)], dest.parent)
    assert (
        not (dest / ".dvc/cache").exists()
        and not (dest / "reports/lessons/digit-predictor/index.html").exists()
    )
    return dest


def lock_of(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / "dvc.lock").read_text(encoding="utf-8"))


def consumers(lock: dict[str, Any], path: str) -> list[str]:
    """The stages whose dvc.lock entry records `path` as a dependency, in the lock's order."""
    return [
        stage
        for stage, entry in lock["stages"].items()
        if any(dep["path"] == path for dep in entry.get("deps", []))
    ]


def commit(project: Path, message: str) -> None:
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", message], project)


# Without a build: DVC's folder hash, and what a dependency's producers give it.


def test_the_folder_hash_is_dvc_datas_tree_digest():
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.meta import Meta
    from dvc_data.hashfile.tree import Tree

    entries = {
        "b/x.csv": "0cc175b9c0f1b6a831c399e269772661",
        "a.json": "92eb5ffee6ae2fec3ad71c777531578f",
        "b/a/ü.png": "4a8a08f09d37b73795649038408b5f33",
        ".gitignore": "8277e0910d750195b448797616e091ad",
    }
    tree = Tree()
    for relpath, md5 in entries.items():
        tree.add(tuple(relpath.split("/")), Meta(), HashInfo("md5", md5))
    tree.digest()
    assert freshness.dir_hash(entries) == tree.hash_info.value
    assert tree.hash_info.value.endswith(".dir")
    # Any change to a name or a hash is another folder hash.
    assert freshness.dir_hash({**entries, "a.json": "0" * 32}) != tree.hash_info.value
    renamed = {("A.json" if name == "a.json" else name): md5 for name, md5 in entries.items()}
    assert freshness.dir_hash(renamed) != tree.hash_info.value


def pipe_of(
    deps: dict[str, list[str]],
    outs: dict[str, list[str]],
    listings: dict[str, dict[str, str]] | None = None,
    files: dict[str, list[Path]] | None = None,
) -> freshness.Pipeline:
    """A pipeline as dvc.yaml would declare it, with a DVC cache holding `listings`."""
    producers = {out: stage for stage, paths in outs.items() for out in paths}
    listings = listings or {}
    return freshness.Pipeline(
        deps,
        outs,
        producers,
        listings.get,
        lambda folder: (files or {}).get(folder.name, []),
    )


def lock_with(entries: dict[str, tuple[dict[str, str], dict[str, str]]]) -> dict[str, Any]:
    """A parsed dvc.lock: {stage: ({dep: md5}, {out: md5})}."""
    return {
        "stages": {
            stage: {
                "deps": [{"path": path, "md5": md5} for path, md5 in deps.items()],
                "outs": [{"path": path, "md5": md5} for path, md5 in outs.items()],
            }
            for stage, (deps, outs) in entries.items()
        }
    }


FIGURES = {"a.png": "1" * 32, "sub/b.png": "2" * 32, "sub/c.png": "3" * 32}


def test_a_dependency_inside_a_folder_output_gets_its_hash_from_the_folders_listing(tmp_path):
    figures_dir = freshness.dir_hash(FIGURES)
    pipe = pipe_of(
        deps={"draw": [], "page": ["figs/a.png"], "grid": ["figs/sub"], "odd": ["figs/none"]},
        outs={"draw": ["figs"], "page": [], "grid": [], "odd": []},
        listings={figures_dir: FIGURES},
    )
    lock = lock_with(
        {
            "draw": ({}, {"figs": figures_dir}),
            "page": ({"figs/a.png": "1" * 32}, {}),
            "grid": ({"figs/sub": freshness.dir_hash({"b.png": "2" * 32, "c.png": "9" * 32})}, {}),
            "odd": ({"figs/none": "4" * 32}, {}),
        }
    )
    assert freshness.inconsistent_stages(lock, pipe, tmp_path) == {
        "grid": ["figs/sub (as draw records it)"],
        "odd": ["figs/none (figs, draw's output, holds no none)"],
    }
    # Without the listing in the cache (a fresh clone), the hash cannot be known: refused.
    bare = pipe_of(pipe.deps, pipe.outs)
    assert freshness.inconsistent_stages(lock, bare, tmp_path)["page"] == [
        "figs/a.png (the listing of figs, draw's output, is not in the DVC cache: "
        "pull or build it to check)"
    ]


def test_a_folder_holding_outputs_gets_the_hash_of_their_entries_and_its_own_files(tmp_path):
    figures_dir = freshness.dir_hash(FIGURES)
    folder = tmp_path / "reports"
    (folder / "figs").mkdir(parents=True)
    (folder / "README.md").write_text("kept in git\n", encoding="utf-8")
    # A file left where an output goes counts as its producer records it, not as it is.
    (folder / "metrics.json").write_text("stale", encoding="utf-8")
    readme_md5 = freshness.file_md5(folder / "README.md")
    pipe = pipe_of(
        deps={"draw": [], "score": [], "page": ["reports"]},
        outs={"draw": ["reports/figs"], "score": ["reports/metrics.json"], "page": []},
        listings={figures_dir: FIGURES},
        files={"reports": [folder / "README.md", folder / "metrics.json"]},
    )
    whole = {
        "README.md": readme_md5,
        "metrics.json": "5" * 32,
        **{f"figs/{name}": md5 for name, md5 in FIGURES.items()},
    }
    outs = {
        "draw": ({}, {"reports/figs": figures_dir}),
        "score": ({}, {"reports/metrics.json": "5" * 32}),
    }
    consistent = lock_with({**outs, "page": ({"reports": freshness.dir_hash(whole)}, {})})
    assert freshness.inconsistent_stages(consistent, pipe, tmp_path) == {}
    # The README edited without a rebuild, or an output's hash edited by hand: stale.
    (folder / "README.md").write_text("edited\n", encoding="utf-8")
    assert freshness.inconsistent_stages(consistent, pipe, tmp_path) == {
        "page": ["reports (as draw and 1 other stages record it)"]
    }
    (folder / "README.md").write_text("kept in git\n", encoding="utf-8")
    edited = lock_with({**outs, "page": ({"reports": freshness.dir_hash(whole)}, {})})
    edited["stages"]["score"]["outs"][0]["md5"] = "6" * 32
    assert freshness.inconsistent_stages(edited, pipe, tmp_path) == {
        "page": ["reports (as draw and 1 other stages record it)"]
    }


def test_a_stage_or_a_path_dvc_lock_does_not_record_is_stale(tmp_path):
    pipe = pipe_of(
        deps={"a": ["in.txt"], "b": ["x", "y"], "c": ["x"]},
        outs={"a": ["x"], "b": ["z", "w"], "c": []},
    )
    lock = lock_with(
        {"a": ({"in.txt": "1" * 32}, {"x": "2" * 32}), "b": ({"x": "2" * 32}, {"z": "3" * 32})}
    )
    assert freshness.inconsistent_stages(lock, pipe, tmp_path) == {
        "b": ["y (in dvc.yaml, not in dvc.lock)", "w (in dvc.yaml, not in dvc.lock)"],
        "c": ["dvc.yaml (no entry for this stage)"],
    }


# On the small real builds: DVC's own folder hashes, and the two commits of issue 27 item 6.


@pytest.mark.slow
def test_the_recomputed_folder_hashes_are_those_dvc_recorded(variants_build, tmp_path):
    built = variants_build[0]
    lock = lock_of(built)
    pipe = freshness.pipeline(built)
    # Each folder output's listing in the build's cache hashes to the hash dvc.lock records.
    folders = [
        (out["path"], out["md5"])
        for entry in lock["stages"].values()
        for out in entry.get("outs", [])
        if out["md5"].endswith(".dir")
    ]
    assert len(folders) >= 4
    for path, md5 in folders:
        listing = pipe.listing(md5)
        assert listing, path
        assert freshness.dir_hash(listing) == md5, path
    # On a fresh clone, with no output and no cache, the folders that hold several stages'
    # outputs (and a README and .gitignore files kept in git) get the hashes DVC recorded.
    fresh = fresh_clone(built, tmp_path / "fresh")
    fresh_pipe = freshness.pipeline(fresh)
    recorded = {dep["path"]: dep["md5"] for dep in lock["stages"]["compare"]["deps"]}
    for folder in ("reports/variants", "models/variants"):
        md5, producers = freshness.expected(folder, freshness.out_hashes(lock), fresh_pipe, fresh)
        assert md5 == recorded[folder], folder
        assert len(producers) >= 3 and all("@" in stage for stage in producers), producers
    assert freshness.inconsistent_stages(lock, fresh_pipe, fresh) == {}


@pytest.fixture
def lesson(lesson_build, tmp_path) -> Path:
    return copy_build(lesson_build[0], tmp_path / "project")


@pytest.mark.slow
def test_a_consistent_commit_passes_on_a_fresh_clone_without_building(lesson, tmp_path):
    result = gate(fresh_clone(lesson, tmp_path / "fresh"), "--no-build")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [
        "dvc.lock is consistent and matches the code and params; the outputs not in the "
        "workspace were not built (--no-build)."
    ]
    assert "Running stage" not in result.stdout + result.stderr


def assert_fails_without_building(fresh: Path, expected: list[str]) -> None:
    """The gate fails, with and without --no-build, in the `expected` lines, building nothing."""
    for args in ([], ["--no-build"]):
        result = gate(fresh, *args)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr.strip().splitlines() == expected
        assert "Running stage" not in result.stdout + result.stderr
        assert not (fresh / "reports/lessons/digit-predictor/index.html").exists()


@pytest.mark.slow
def test_a_stage_rebuilt_alone_and_committed_fails_on_a_fresh_clone(lesson, tmp_path):
    # Issue 27 item 6: change what render draws (a figure's title), rebuild render alone,
    # commit. The stages that read its figures still record the old ones.
    render_py = lesson / "stages/render.py"
    code, titles = re.subn(
        r'set_title\((f?)"', r'set_title("Retitled: " + \1"', render_py.read_text(encoding="utf-8")
    )
    assert titles >= 1
    render_py.write_text(code, encoding="utf-8")
    before = lock_of(lesson)
    assert stages_run(run(["dvc", "repro", "--single-item", "render"], lesson).stdout) == ["render"]
    commit(lesson, "Retitle a figure, render rebuilt alone")
    after = lock_of(lesson)
    figures = "reports/figures"
    old, new = (
        next(out["md5"] for out in lock["stages"]["render"]["outs"] if out["path"] == figures)
        for lock in (before, after)
    )
    assert old != new
    readers = consumers(after, figures)
    assert "page@digit-predictor" in readers and "values" in readers
    assert_fails_without_building(
        fresh_clone(lesson, tmp_path / "fresh"),
        [
            f"error: {stage}: dvc.lock does not match {figures} (as render records it); {RERUN}"
            for stage in readers
        ],
    )


@pytest.mark.slow
def test_a_hand_edited_hash_of_an_output_another_stage_reads_fails_on_a_fresh_clone(
    lesson, tmp_path
):
    lock = lock_of(lesson)
    predictions = "reports/predictions.csv"
    out = next(out for out in lock["stages"]["evaluate"]["outs"] if out["path"] == predictions)
    out["md5"] = "0123456789abcdef" * 2
    (lesson / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False), encoding="utf-8")
    commit(lesson, "A hash edited by hand")
    readers = consumers(lock, predictions)
    assert "render" in readers
    assert_fails_without_building(
        fresh_clone(lesson, tmp_path / "fresh"),
        [
            f"error: {stage}: dvc.lock does not match {predictions} (as evaluate records it); "
            f"{RERUN}"
            for stage in readers
        ],
    )


@pytest.mark.slow
def test_a_dependency_added_in_dvc_yaml_without_a_rebuild_fails_on_a_fresh_clone(lesson, tmp_path):
    pipeline_file = lesson / "dvc.yaml"
    text = pipeline_file.read_text(encoding="utf-8")
    key = text[text.index("\n  answer_key:\n") :]
    assert key.count("        - ${paths.values}\n") == 1
    pipeline_file.write_text(
        text.replace(
            key,
            key.replace(
                "        - ${paths.values}\n",
                "        - ${paths.values}\n        - ${paths.figures}\n",
            ),
        ),
        encoding="utf-8",
    )
    commit(lesson, "The answer key reads the figures, not rebuilt")
    # Source files changed without a rebuild still fail, from `dvc status`, as before: here the
    # answer key's own module, which no other stage reads.
    keys = [f"answer_key@{name}" for name in LESSONS]
    assert consumers(lock_of(lesson), "stages/key.py") == keys
    with (lesson / "stages/key.py").open("a", encoding="utf-8") as module:
        module.write("# Edited, not rebuilt.\n")
    commit(lesson, "The answer key's module edited, not rebuilt")
    assert_fails_without_building(
        fresh_clone(lesson, tmp_path / "fresh"),
        [
            f"error: {stage}: dvc.lock does not match reports/figures (in dvc.yaml, not in "
            f"dvc.lock), stages/key.py (modified); {RERUN}"
            for stage in keys
        ],
    )


def test_the_gate_run_as_ci_runs_it_is_the_base_commits_copy(tmp_path):
    # A pull request's own tools/freshness.py that would pass anything.
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools/__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "tools/freshness.py").write_text("print('the pull request passes itself')\n")
    command = [sys.executable, "-P", "-m", "tools.freshness", "--help"]
    base = run(command, tmp_path, env=TOOLS).stdout
    assert "--no-build" in base and "passes itself" not in base
    # Without -P, Python would put the pull request's folder first: its copy would run.
    own = run([sys.executable, "-m", "tools.freshness"], tmp_path, env=TOOLS).stdout
    assert own.strip() == "the pull request passes itself"


# make restore: the keys from the environment, never written to a file.

# No credentials from the machine, and no look-up of EC2's metadata address for them.
NO_AWS = {
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# moto takes any keys: these are looked for in the files afterwards.
KEYS = {"AWS_ACCESS_KEY_ID": "gate-test-key-id", "AWS_SECRET_ACCESS_KEY": "gate-test-secret"}


def make_restore(project: Path, **env: str):
    """`make restore` in a copy of the project, with this project's Makefile and .venv."""
    (project / ".venv").symlink_to(ROOT / ".venv")
    return run(
        ["make", "-f", str(ROOT / "Makefile"), "-o", ".venv/bin/activate", "restore"],
        project,
        check=False,
        env=os.environ | FRESH_MAKE | NO_AWS | env,
    )


@pytest.mark.slow
def test_make_restore_pulls_with_the_keys_from_the_environment_and_writes_none(
    lesson, tmp_path, s3_endpoint
):
    run(["dvc", "remote", "add", "-d", "store", "s3://course/restore"], lesson)
    run(["dvc", "remote", "modify", "store", "endpointurl", s3_endpoint], lesson)
    assert "pushed" in run(["dvc", "push"], lesson, env=NO_AWS | KEYS).stdout
    commit(lesson, "Share builds through S3")

    without = fresh_clone(lesson, tmp_path / "without-keys")
    result = make_restore(without)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [
        "::notice::No keys for the DVC remote store (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY): "
        "nothing restored, the build is made here."
    ]
    assert not (without / "reports/lessons/digit-predictor/index.html").exists()

    fresh = fresh_clone(lesson, tmp_path / "fresh")
    result = make_restore(fresh, **KEYS)
    assert result.returncode == 0, result.stderr
    assert "Restoring the build from the DVC remote store" in result.stdout
    assert (fresh / "reports/lessons/digit-predictor/index.html").read_bytes() == (
        lesson / "reports/lessons/digit-predictor/index.html"
    ).read_bytes()
    # The keys were read from the environment, and written nowhere.
    assert not (fresh / ".dvc/config.local").exists()
    for path in (fresh / ".dvc").rglob("*"):
        if path.is_file() and "cache" not in path.relative_to(fresh / ".dvc").parts:
            for key in KEYS.values():
                assert key.encode() not in path.read_bytes(), path
    # The restored build passes the gate with every output in place.
    passed = gate(fresh)
    assert passed.returncode == 0, passed.stderr
    assert "every output is in place" in passed.stdout


@pytest.fixture
def lesson_dir(tmp_path) -> Path:
    """A DVC project with no remote and nothing built."""
    project = tmp_path / "project"
    project.mkdir()
    run(["git", "init", "-q"], project)
    run(["dvc", "init", "-q"], project)
    for name in ("requirements.lock", "requirements-dev.lock"):
        shutil.copy2(ROOT / name, project / name)
    return project


@pytest.mark.slow
def test_make_restore_without_a_remote_restores_nothing_in_one_notice(lesson_dir):
    result = make_restore(lesson_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [
        "::notice::No DVC remote in .dvc/config: nothing restored, the build is made here."
    ]
