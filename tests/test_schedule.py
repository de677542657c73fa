"""The parallel build (tools/schedule.py, `make repro`): the order it keeps, on hand-made
graphs; on the small real-data build, the same dvc.lock as a serial build, byte for byte, a
failing stage or Ctrl-C that stops the stages running and leaves nothing half-written, and
`--jobs 1` as DVC's own `dvc repro`."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import networkx as nx
import pytest

from tests.conftest import DEFAULT_VARIANTS
from tests.helpers import ROOT, run, small_project, venv_env
from tools import schedule

# `python -m tools.schedule` in a copy of the project, which holds the pipeline but not the
# tools: they come from this checkout.
SCHEDULE = ["python", "-m", "tools.schedule"]
TOOLS = {"PYTHONPATH": str(ROOT)}
# Two variations as small as they come, so that the builds stay short: each trains beside the
# lesson's model in the parallel build.
TINY_VARIANTS = {"flat": {"model": {"hidden_units": []}}, "tiny": {"model": {"hidden_units": [8]}}}


def pipeline_of(edges: dict[str, list[str]]) -> tuple[nx.DiGraph, schedule.Pipeline]:
    """A graph as DVC builds it (nodes in dvc.yaml's order, an edge from each stage to every
    stage it depends on), and the scheduler's view of it."""
    graph = nx.DiGraph()
    graph.add_nodes_from(edges)
    for stage, upstream in edges.items():
        graph.add_edges_from((stage, dep) for dep in upstream)
    upstream = {stage: frozenset(deps) for stage, deps in edges.items()}
    pipeline = schedule.Pipeline(tuple(schedule.serial_order(graph)), upstream, {})
    return graph, pipeline


# The pipeline's shape in small: the lesson's chain, two variations' settings and trainings,
# and what joins them.
SMALL = {
    "download": [],
    "prepare": ["download"],
    "train": ["prepare"],
    "settings@a": [],
    "settings@b": [],
    "train@a": ["prepare", "settings@a"],
    "train@b": ["prepare", "settings@b"],
    "compare": ["train", "train@a", "train@b"],
    "page": ["compare"],
    "key": ["compare"],
}


def test_the_serial_order_is_dvcs_own():
    """Each stage after every stage it depends on, walked from each stage in dvc.yaml's order,
    as `dvc repro` plans a build (its plan_repro, DVC 3.67)."""
    from dvc.repo.reproduce import plan_repro

    graph, pipeline = pipeline_of(SMALL)
    assert pipeline.order == (
        "download",
        "prepare",
        "train",
        "settings@a",
        "settings@b",
        "train@a",
        "train@b",
        "compare",
        "page",
        "key",
    )
    assert list(pipeline.order) == plan_repro(graph, list(graph))


def test_a_stage_reruns_after_any_stage_upstream_of_it():
    _, pipeline = pipeline_of(SMALL)
    assert schedule.to_run(pipeline, {"settings@b"}) == [
        "settings@b",
        "train@b",
        "compare",
        "page",
        "key",
    ]
    assert schedule.to_run(pipeline, {"key", "prepare"}) == [
        "prepare",
        "train",
        "train@a",
        "train@b",
        "compare",
        "page",
        "key",
    ]
    assert schedule.to_run(pipeline, set()) == []


def test_entries_a_file_held_keep_their_places_and_new_ones_follow_in_serial_order():
    order = ["download", "prepare", "train", "compare", "page"]
    # Built from nothing: the serial order, whatever order the stages ended in.
    assert schedule.serial_layout([], ["train", "download", "page", "prepare"], order) == [
        "download",
        "prepare",
        "train",
        "page",
    ]
    # Rebuilt: the entries held before stay where they were (as DVC rewrites them in place),
    # new ones after them; an entry the order does not know keeps its place among the new.
    assert schedule.serial_layout(
        ["page", "train", "gone"], ["compare", "x", "train", "gone", "page", "download"], order
    ) == ["page", "train", "gone", "download", "compare", "x"]


@pytest.mark.parametrize("jobs", ["0", "two", "-1"])
def test_a_number_of_jobs_that_is_not_one_or_more_is_refused_in_one_line(jobs, capsys):
    assert schedule.main(["--jobs", jobs]) == 1
    assert capsys.readouterr().err == (
        f"error: python -m tools.schedule: argument --jobs: {jobs!r} is not a number of cores: "
        "JOBS (--jobs) is 1 or more, and 1 is `dvc repro` itself\n"
    )


def most_at_once(output: str) -> int:
    """The most stages the scheduler's output shows running at one time."""
    running: set[str] = set()
    most = 0
    for line in output.splitlines():
        stage, _, said = line.partition(" | ")
        if said == "started":
            running.add(stage)
            most = max(most, len(running))
        elif said.startswith(("done after ", "failed ", "stopped after ")):
            running.discard(stage)
    return most


def outputs_of(pipeline: schedule.Pipeline, project: Path) -> list[Path]:
    return [project / path for path in pipeline.outputs()]


@pytest.mark.slow
def test_a_parallel_build_leaves_the_lock_a_serial_build_leaves(
    tmp_path, real_mnist, variants_build
):
    """From nothing: dvc.lock equal to a serial build's byte for byte, and the .gitignore files
    DVC writes beside the outputs. From a fresh clone of the built commit: nothing changes.
    `--jobs 1` is `dvc repro` itself.

    The serial build is the session's shared one with the default variations
    (tests/conftest.py's `variants_build`: plain `dvc repro` from nothing, on the same small
    project), built once for the suite rather than beside this test (issue 32). So the
    parallel build trains the lesson's model, the three variations (the CNN on its two
    threads) and the scikit-learn model beside each other, as `make repro` does."""
    serial = variants_build[0]
    parallel = small_project(tmp_path / "parallel", real_mnist, variants=DEFAULT_VARIANTS)
    built = run([*SCHEDULE, "--jobs", "2"], parallel, env=TOOLS).stdout

    pipeline = schedule.read_pipeline(parallel)
    # Every stage started, and two at a time at most, as asked, and at least once.
    started = [line.split(" | ")[0] for line in built.splitlines() if line.endswith(" | started")]
    assert sorted(started) == sorted(pipeline.order)
    assert most_at_once(built) == 2
    assert (parallel / "dvc.lock").read_bytes() == (serial / "dvc.lock").read_bytes()
    ignores = sorted(path.relative_to(serial) for path in serial.rglob(".gitignore"))
    assert ignores == sorted(path.relative_to(parallel) for path in parallel.rglob(".gitignore"))
    for path in ignores:
        assert (parallel / path).read_bytes() == (serial / path).read_bytes(), path
    assert run(["dvc", "status", "--json"], parallel).stdout.strip() == "{}"

    # A fresh clone of the commit, with the build's cache (as a DVC remote would give it):
    # every stage comes from the run-cache, and dvc.lock and every tracked file stay as they are.
    run(["git", "add", "-A"], parallel)
    run(["git", "commit", "-q", "-m", "build"], parallel)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(parallel), str(clone)], tmp_path)
    shutil.copytree(parallel / ".dvc" / "cache", clone / ".dvc" / "cache")
    run([*SCHEDULE, "--jobs", "2"], clone, env=TOOLS)
    assert run(["git", "status", "--porcelain"], clone).stdout == ""
    assert all(path.exists() for path in outputs_of(pipeline, clone))

    # Nothing left to do: the scheduler starts no stage, and --jobs 1 says what `dvc repro`
    # says, since it is `dvc repro`.
    assert run([*SCHEDULE, "--jobs", "2"], clone, env=TOOLS).stdout == (
        "Every stage is up to date (dvc status); nothing to run.\n"
    )
    dvc_says = run(["dvc", "repro"], clone).stdout
    assert "Data and pipelines are up to date." in dvc_says
    assert run([*SCHEDULE, "--jobs", "1"], clone, env=TOOLS).stdout == dvc_says


@pytest.mark.slow
def test_a_failing_stage_stops_the_stages_beside_it_and_leaves_nothing_half_written(
    tmp_path, real_mnist
):
    """A variation with a setting its settings stage refuses fails while the lesson's own
    stages run beside it: they are stopped, one line names the failed stage, and every stage
    has either its complete outputs and its dvc.lock entry, or no output at all."""
    project = small_project(
        tmp_path / "project", real_mnist, variants={"bad": {"model": {"activation": "swish"}}}
    )
    failed = run([*SCHEDULE, "--jobs", "2"], project, check=False, env=TOOLS)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    said = (failed.stdout + failed.stderr).splitlines()
    errors = [line for line in said if line.startswith("error:")]
    assert errors == [
        "error: stage variant_settings@bad failed (its output is above); "
        "the stages running beside it were stopped"
    ]
    assert failed.stderr.splitlines()[-1] == errors[0]
    # The stage's own message, in its block.
    assert any(
        line.startswith("variant_settings@bad | error: params.yaml: variants.bad") for line in said
    ), failed.stdout
    assert "variant_settings@bad | failed (exit code " in failed.stdout
    # The lesson's stage running at that moment is stopped, unless its command had just
    # ended well (a race no test can rule out): then DVC records it whole, which is as good.
    stopped = [line.split(" | ")[0] for line in said if " | stopped after " in line]
    assert set(stopped) <= {"download", "prepare", "train", "evaluate", "render", "sklearn"}
    # Nothing the lesson's stages after the stopped one would build was started.
    started = {line.split(" | ")[0] for line in said if line.endswith(" | started")}
    assert "compare" not in started

    assert_nothing_half_written(
        project, stopped=stopped[0] if stopped else None, failed="variant_settings@bad"
    )


@pytest.mark.slow
def test_ctrl_c_stops_every_running_stage_and_leaves_nothing_half_written(tmp_path, real_mnist):
    """Ctrl-C once the lesson's training has started, beside a variation's stages: every
    stage running is stopped, and the build ends in one line."""
    project = small_project(tmp_path / "project", real_mnist, variants=TINY_VARIANTS)
    scheduler = subprocess.Popen(
        [*SCHEDULE, "--jobs", "2"],
        cwd=project,
        env=venv_env() | TOOLS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    said = []
    for line in scheduler.stdout:
        said.append(line.rstrip("\n"))
        if line == "train | started\n":
            scheduler.send_signal(signal.SIGINT)
            break
    said += scheduler.stdout.read().splitlines()
    assert scheduler.wait(timeout=120) == 128 + signal.SIGINT
    assert scheduler.stderr.read() == (
        "interrupted: the running stages were stopped; nothing half-written was left behind\n"
    )
    stopped = [line.split(" | ")[0] for line in said if " | stopped after " in line]
    assert "train" in stopped, said
    started = [line.split(" | ")[0] for line in said if line.endswith(" | started")]
    ended = [line.split(" | ")[0] for line in said if " | done after " in line]
    assert sorted(started) == sorted(stopped + ended)
    assert_nothing_half_written(project, stopped="train")


def assert_nothing_half_written(
    project: Path, stopped: str | None, failed: str | None = None
) -> None:
    """Every stage has either its complete outputs and its dvc.lock entry, or no output at
    all; the stopped and the failed stage have none; no temporary file is left anywhere."""
    pipeline = schedule.read_pipeline(project)
    recorded = set(schedule.lock_entries(project))
    assert stopped not in recorded and failed not in recorded
    status = json.loads(run(["dvc", "status", "--json"], project).stdout)
    for stage in pipeline.order:
        outputs = [project / path for path in pipeline.outs[stage]]
        if stage in recorded:
            assert stage not in status, (stage, status[stage])
        else:
            assert not any(path.exists() for path in outputs), stage
    # Git sees no file but dvc.lock and the .gitignore files DVC wrote for complete outputs:
    # a temporary file or folder beside an output would be listed.
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # Python's compiled modules (written under `make test`, which lets Python keep them) are
    # no output of a stage.
    untracked = [name for name in untracked if "__pycache__" not in Path(name).parts]
    assert all(name == "dvc.lock" or Path(name).name == ".gitignore" for name in untracked), (
        untracked
    )
