"""Build on several machines: workers build units and push them, an assembler pulls them.

Git clones of one commit stand for the machines, and moto's S3-compatible server on 127.0.0.1
for the DVC remote they share (as in tests/test_remote.py). The commit is the shared small
build of the lesson (2,000 training and 500 test images, one epoch) with two small variations
added and the remote configured. Clone A builds the lesson's unit, `sklearn` (the
logistic-regression lesson's model) and `small`, clone B `tiny`
(its first push fails, then it pushes again), both at once; the assembling clone C runs `dvc
repro --pull`, trains nothing, runs only the stages in no unit (compare and the course after
it), and ends with the dvc.lock that one machine builds from the same commit. That machine is the
origin repository itself, building the commit with plain `dvc repro` once, in the fixture that
makes the commit, before any worker starts (issue 32: built beside the workers, it took a core
from them on a 2-core machine): it holds the shared build's cache, so it trains the
variations, and its lesson's stages are the shared build's, which clone A built again and
`tools.units` checked against the committed dvc.lock. The clones take the commit, not the
origin's working tree, so they see none of this build.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.helpers import (
    BUILT_AFTER_MODELS,
    ROOT,
    copy_build,
    free_port,
    run,
    set_variants,
    stages_run,
)

pytestmark = pytest.mark.slow

VARIANTS = {"small": {"model": {"hidden_units": [16]}}, "tiny": {"model": {"hidden_units": []}}}
# The lesson's unit: the stages up to render (the shared helpers' LESSON_UNIT go on to the
# course stages, which no unit holds).
LESSON_UNIT = ["download", "prepare", "train", "evaluate", "render"]
UNITS = ["python", "-m", "tools.units"]
# No credentials from the machine, and no look-up of EC2's metadata address for them: the
# tests reach only the loopback server (as in tests/test_remote.py).
NO_AWS = {
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def built_origin(tmp_path_factory, lesson_build, s3_endpoint) -> SimpleNamespace:
    """The commit every machine builds: the shared small build with two variations, the tool
    and the S3 remote as its default (credentials stay in each clone's config.local); and one
    machine's `dvc repro` of it, in the same folder (`path`), with what that build ran
    (`built`)."""
    project = copy_build(lesson_build[0], tmp_path_factory.mktemp("split") / "origin")
    set_variants(project, VARIANTS)
    (project / "tools").mkdir()
    for name in ("__init__.py", "units.py"):
        shutil.copy2(ROOT / "tools" / name, project / "tools" / name)
    run(["dvc", "remote", "add", "-d", "shared", "s3://course/split"], project)
    run(["dvc", "remote", "modify", "shared", "endpointurl", s3_endpoint], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", "Two variations, built on several machines"], project)
    # One machine's build of the commit, left uncommitted: the reference for the assembler.
    built = timed(["dvc", "repro"], project)
    return SimpleNamespace(path=project, built=built)


@pytest.fixture(scope="module")
def origin(built_origin) -> Path:
    return built_origin.path


def clone(origin: Path, dest: Path) -> Path:
    """A fresh machine: a git clone of the commit (no DVC cache), with the remote's keys."""
    run(["git", "clone", "-q", str(origin), str(dest)], origin.parent)
    for key in ("access_key_id", "secret_access_key"):
        run(["dvc", "remote", "modify", "--local", "shared", key, "testing"], dest)
    return dest


def timed(command: list[str], cwd: Path, env: dict | None = None, check: bool = True):
    """Run a command as tests.helpers.run does; the result, and its wall time in seconds."""
    start = time.monotonic()
    result = run(command, cwd, check=check, env=NO_AWS | (env or {}))
    return SimpleNamespace(
        result=result, seconds=time.monotonic() - start, ran=stages_run(result.stdout)
    )


def lock(project: Path) -> dict:
    return yaml.safe_load((project / "dvc.lock").read_text())


def assembled_stages(project: Path) -> list[str]:
    """The stages in no unit, as `tools.units list` ends: compare, page and what else reads
    every unit."""
    last = run([*UNITS, "list"], project).stdout.splitlines()[-1]
    assert last.startswith("assembled from them: "), last
    return last.removeprefix("assembled from them: ").split()


@pytest.fixture(scope="module")
def machines(built_origin, origin, tmp_path_factory):
    """Every machine's part, in order; each step's result and time (printed with -s)."""
    base = tmp_path_factory.mktemp("machines")
    a, b, c, c2, e = (clone(origin, base / name) for name in ("a", "b", "c", "c2", "e"))
    # Worker B's push goes to an endpoint where nothing listens (a setting of B's alone), and
    # boto tries once instead of retrying for about 10 s.
    dead = f"http://127.0.0.1:{free_port()}"
    run(["dvc", "remote", "modify", "--local", "shared", "endpointurl", dead], b)

    steps = {"origin: dvc repro (one machine)": built_origin.built}
    # The two workers at once.
    with ThreadPoolExecutor(2) as pool:
        lesson_then_small = pool.submit(
            lambda: [
                timed([*UNITS, "run", name, "--push"], a) for name in ("lesson", "sklearn", "small")
            ]
        )
        failed = pool.submit(
            timed, [*UNITS, "run", "tiny", "--push"], b, {"AWS_MAX_ATTEMPTS": "1"}, False
        )
        (
            steps["A: run lesson --push"],
            steps["A: run sklearn --push"],
            steps["A: run small --push"],
        ) = lesson_then_small.result()
        steps["B: run tiny --push (push fails)"] = failed.result()
    steps["C2: assemble (refused)"] = timed([*UNITS, "assemble"], c2, check=False)
    run(["dvc", "remote", "modify", "--local", "--unset", "shared", "endpointurl"], b)
    steps["B: run tiny --push (again)"] = timed([*UNITS, "run", "tiny", "--push"], b)
    steps["C: dvc repro --pull"] = timed(["dvc", "repro", "--pull"], c)
    steps["C2: assemble (again)"] = timed([*UNITS, "assemble"], c2)
    steps["E: run small --pull"] = timed([*UNITS, "run", "small", "--pull"], e)
    for name, step in steps.items():
        print(f"{name}: {step.seconds:.1f} s, ran {', '.join(step.ran) or 'nothing'}")
    return SimpleNamespace(
        origin=origin, c=c, c2=c2, e=e, steps=steps, assembled=assembled_stages(c)
    )


def test_the_units_are_the_lesson_and_each_variation_dvc_resolves(origin, tmp_path):
    project = clone(origin, tmp_path / "clone")
    listed = run([*UNITS, "list", "--json"], project).stdout
    assert listed == '["lesson", "sklearn", "small", "tiny"]\n'
    assert run([*UNITS, "list"], project).stdout.splitlines()[:-1] == [
        "lesson   download prepare train evaluate render",
        "sklearn  download sklearn",
        "small    download prepare variant_settings@small variant_train@small "
        "variant_evaluate@small",
        "tiny     download prepare variant_settings@tiny variant_train@tiny variant_evaluate@tiny",
    ]
    # Every other stage of the pipeline: the comparison and the course built after it.
    assembled = assembled_stages(project)
    assert assembled == BUILT_AFTER_MODELS, assembled
    assert not [
        stage for stage in assembled if stage in LESSON_UNIT or stage.startswith("variant_")
    ]
    assert "sklearn" not in assembled

    set_variants(project, VARIANTS | {"wide": {"model": {"hidden_units": [256]}}})
    listed = run([*UNITS, "list", "--json"], project).stdout
    assert listed == '["lesson", "sklearn", "small", "tiny", "wide"]\n'
    set_variants(project, {})
    assert run([*UNITS, "list", "--json"], project).stdout == '["lesson", "sklearn"]\n'


def test_each_worker_builds_its_units_and_pushes_them(machines):
    steps = machines.steps
    assert steps["A: run lesson --push"].ran == LESSON_UNIT
    # Download (and prepare) are A's already, from the lesson's unit.
    assert steps["A: run sklearn --push"].ran == ["sklearn"]
    assert steps["A: run small --push"].ran == [
        "variant_settings@small",
        "variant_train@small",
        "variant_evaluate@small",
    ]
    # DVC's order between stages that do not depend on each other changes from run to run.
    assert sorted(steps["B: run tiny --push (push fails)"].ran) == [
        "download",
        "prepare",
        "variant_evaluate@tiny",
        "variant_settings@tiny",
        "variant_train@tiny",
    ]
    for name in (
        "A: run lesson --push",
        "A: run sklearn --push",
        "A: run small --push",
        "B: run tiny --push (again)",
    ):
        assert "files pushed" in steps[name].result.stdout
    # B's second run builds nothing: the unit is built there, only its push was missing.
    assert steps["B: run tiny --push (again)"].ran == []


def test_a_failed_push_ends_in_one_line_and_the_assembler_names_the_missing_stage(machines):
    failed = machines.steps["B: run tiny --push (push fails)"].result
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1, failed.stderr
    assert failed.stderr.startswith(
        "error: unit tiny is built here but its push to remote 'shared' failed (unexpected "
        "error - Could not connect to the endpoint URL: "
    )
    assert failed.stderr.endswith("; run the same command again to push it\n")

    refused = machines.steps["C2: assemble (refused)"]
    assert refused.result.returncode == 1
    assert refused.result.stderr == (
        "error: variant_settings@tiny is not on the remote (no worker pushed its outputs and "
        "run-cache), and this machine builds no unit; build and push with: "
        "python -m tools.units run tiny --push\n"
    )
    assert set(refused.ran) <= {"home", "instructor_home"}  # They need no unit.


def test_the_assembler_trains_nothing_and_its_dvc_lock_is_one_machines(machines):
    # Compare, page and what else reads every unit; DVC's order between stages that do not
    # depend on each other changes from run to run.
    assembled = machines.steps["C: dvc repro --pull"].ran
    assert sorted(assembled) == sorted(machines.assembled)
    assert "train" not in assembled and "sklearn" not in assembled
    assert not [stage for stage in assembled if stage.startswith("variant_train@")]
    one_machine = machines.steps["origin: dvc repro (one machine)"].ran
    assert "variant_train@small" in one_machine
    assert lock(machines.c) == lock(machines.origin)
    assert "up to date" in run(["dvc", "status"], machines.c).stdout

    # The tool's assembler, once B has pushed, gets there too. The home pages, which read the
    # course's folders and the data alone, were built by its first, refused run already.
    refused = machines.steps["C2: assemble (refused)"].ran
    assert set(refused) <= {"home", "instructor_home"}
    again = machines.steps["C2: assemble (again)"].ran
    assert sorted(refused + again) == sorted(machines.assembled)
    assert lock(machines.c2) == lock(machines.origin)


def test_a_worker_that_pulls_takes_its_unit_from_the_remote(machines):
    assert machines.steps["E: run small --pull"].ran == []
    assert (
        lock(machines.e)["stages"]["variant_train@small"]
        == (lock(machines.origin)["stages"]["variant_train@small"])
    )


def test_an_unknown_unit_ends_in_one_line_listing_the_known_ones(origin, tmp_path):
    project = clone(origin, tmp_path / "clone")
    result = run([*UNITS, "run", "cnn", "--push"], project, check=False)
    assert result.returncode == 1
    assert result.stderr == "error: unknown unit 'cnn'; known units: lesson, sklearn, small, tiny\n"
    assert result.stdout == ""
    # As `make unit` runs it without NAME=.
    result = run([*UNITS, "run", "--pull", "--push"], project, check=False)
    assert result.returncode == 1
    assert result.stderr == (
        "error: name the unit to run; known units: lesson, sklearn, small, tiny\n"
    )


def test_a_change_not_committed_is_refused_before_building(origin, tmp_path):
    project = clone(origin, tmp_path / "clone")
    head = run(["git", "rev-parse", "--short", "HEAD"], project).stdout.strip()
    set_variants(project, VARIANTS | {"tiny": {"model": {"hidden_units": [8]}}})
    for command in (["run", "tiny", "--push"], ["assemble"]):
        result = run([*UNITS, *command], project, check=False)
        assert result.returncode == 1
        assert result.stderr == (
            f"error: params.yaml differs from the commit (HEAD {head}): a unit builds what a "
            "commit describes, so that the machines building one commit push one build; "
            "commit the change, or undo it (git checkout -- params.yaml)\n"
        )
        assert result.stdout == ""
    assert not (project / "data/raw/mnist.npz").exists()


def test_a_build_other_than_the_committed_dvc_lock_is_not_pushed(machines, tmp_path):
    """A commit whose dvc.lock records other outputs for a stage than this machine builds from
    the same inputs, as a training on another kind of CPU can: the unit is built, then
    refused before its push."""
    project = copy_build(machines.origin, tmp_path / "other")
    recorded = lock(project)
    model = recorded["stages"]["variant_train@tiny"]["outs"][0]
    assert model["path"] == "models/variants/tiny/model.keras"
    model["md5"] = "0" * 32
    (project / "dvc.lock").write_text(yaml.safe_dump(recorded, sort_keys=False))
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", "A build from another machine"], project)

    result = run([*UNITS, "run", "tiny", "--push"], project, check=False)
    assert stages_run(result.stdout) == ["variant_train@tiny"]
    assert result.returncode == 1
    assert result.stderr == (
        "error: variant_train@tiny: this machine built other outputs than the committed "
        "dvc.lock records for the same inputs (models/variants/tiny/model.keras); pushing them "
        "would mix two builds of one commit, so nothing was pushed "
        "(see docs/several-machines.md)\n"
    )
    assert "dvc push --run-cache" not in result.stdout
