"""The probe (tools/probe.py, `make probe`): this CPU's fingerprints of the first training steps,
stored under a name for the CPU and compared with every stored file of the same inputs.

The runs use the session's small build (tests/conftest.py: 2,000 real MNIST training and 500
test images), where the probe takes 1,984 training images (whole batches) and 500 test images.
The comparison, the naming and the storing are also checked on their own, without TensorFlow.
"""

from __future__ import annotations

import copy
import inspect
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from digits import model, repeatable
from pipeline import artifacts
from tests.helpers import ROOT, run
from tools import probe

pytestmark = pytest.mark.slow

SMALL = "1984-500-images"


def run_probe(project: Path, folder: Path, check: bool = True):
    """`python -m tools.probe` on a project's prepared data, as `make probe` runs it."""
    prepared = project / "data" / "prepared"
    command = [sys.executable, "-m", "tools.probe", "--train-set", str(prepared / "train")]
    command += ["--test-set", str(prepared / "test"), "--fingerprints", str(folder)]
    return run(command, ROOT, check=check)


def table(output: str) -> list[str]:
    """The fingerprint lines of a probe's output."""
    return [line for line in output.splitlines() if line.startswith("  ")]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, lesson_build):
    """The probe run once on the small build, into an empty folder: (project, folder, result)."""
    folder = tmp_path_factory.mktemp("fingerprints")
    return lesson_build[0], folder, run_probe(lesson_build[0], folder)


def stored_file(folder: Path) -> Path:
    (path,) = folder.rglob("*.json")
    return path


def test_the_probe_stores_this_cpus_fingerprints_of_the_small_build(first_run):
    _, folder, result = first_run
    path = stored_file(folder)
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert result.stdout.startswith(
        "note: a small build (2,000 training and 500 test images): the probe takes 1,984 and "
        "500 instead of 3,200 and 512, and compares only with files of the same\n"
    )
    assert path.parent.name == f"tensorflow-{stored['tensorflow']}"
    assert path.name == f"{probe.cpu_name(probe.cpu_description())}-{SMALL}.json"
    assert f"stored as {path}\n" in result.stdout
    assert f"no other fingerprints in {folder} to compare with" in result.stdout
    assert (stored["images"], stored["test_images"]) == (1984, 500)
    assert stored["settings"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert stored["settings"]["grappler"]["arithmetic_optimization"] is False
    assert sorted(stored["networks"]) == sorted(probe.NETWORKS)
    assignment = stored["networks"]["assignment"]
    assert sorted(assignment, key=probe.step_order) == [
        "initial_weights",
        "augmented_batch",
        "forward_500",
        "weights_after_1",
        "weights_after_10",
        "weights_after_100",
    ]
    assert "augmented_batch" not in stored["networks"]["lesson"]
    # Each step changes the weights: the fingerprints are of real training steps.
    assert len({assignment[f"weights_after_{steps}"] for steps in (1, 10, 100)}) == 3
    assert len(table(result.stdout)) == sum(len(record) for record in stored["networks"].values())


def test_a_second_run_repeats_the_assignments_bytes_and_matches_equal_files(first_run, tmp_path):
    """Run again, beside an unaltered copy from "another CPU" and an altered file of another
    TensorFlow: the same fingerprints, the same as the copy, and the other version left out."""
    project, folder, first = first_run
    mine = stored_file(folder)
    again = tmp_path / "fingerprints"
    (again / mine.parent.name).mkdir(parents=True)
    (again / mine.parent.name / mine.name).write_text(mine.read_text(encoding="utf-8"))
    other = json.loads(mine.read_text(encoding="utf-8"))
    other["cpu"] = {"machine": "x86_64", "model": "Intel Xeon", "isa": ["avx", "avx2"]}
    copy_path = again / mine.parent.name / "intel-xeon.json"
    copy_path.write_text(json.dumps(other), encoding="utf-8")
    older = copy.deepcopy(other)
    older["tensorflow"] = "2.20.0"
    older["networks"]["assignment"]["weights_after_1"] = "0" * 16
    older_path = again / "tensorflow-2.20.0" / "intel-xeon.json"
    older_path.parent.mkdir()
    older_path.write_text(json.dumps(older), encoding="utf-8")

    second = run_probe(project, again)

    assert table(second.stdout) == table(first.stdout)
    assert sorted(path.name for path in again.rglob("*.json")) == sorted(
        [mine.name, "intel-xeon.json", "intel-xeon.json"]
    )
    mine_again = again / mine.parent.name / mine.name
    assert f"{mine_again} holds these fingerprints already\n" in second.stdout
    assert f"same as {mine_again} (" in second.stdout
    assert f"same as {copy_path} (Intel Xeon, TensorFlow {other['tensorflow']})\n" in second.stdout
    assert (
        f"not compared with {older_path} (Intel Xeon, TensorFlow 2.20.0): other tensorflow\n"
        in second.stdout
    )
    # TensorFlow's own log lines may come on stderr, but no error of the probe's.
    assert "differs" not in second.stdout and "error:" not in second.stderr


def test_an_altered_fingerprint_fails_naming_the_network_and_the_first_step(first_run, tmp_path):
    project, folder, _ = first_run
    mine = json.loads(stored_file(folder).read_text(encoding="utf-8"))
    altered = copy.deepcopy(mine)
    altered["cpu"] = {"machine": "x86_64", "model": "Intel Xeon"}
    altered["networks"]["assignment"]["weights_after_10"] = "0" * 16
    altered["networks"]["assignment"]["weights_after_100"] = "0" * 16
    altered["networks"]["lesson_with_aug"]["augmented_batch"] = "0" * 16
    path = tmp_path / "fingerprints" / f"tensorflow-{mine['tensorflow']}" / "intel-xeon.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(altered), encoding="utf-8")

    failed = run_probe(project, tmp_path / "fingerprints", check=False)

    assert failed.returncode == 1
    where = f"{path} (Intel Xeon, TensorFlow {mine['tensorflow']})"
    differing = [line for line in failed.stdout.splitlines() if "differs" in line]
    assert differing == [
        f"lesson_with_aug differs from {where} first at augmented_batch",
        f"assignment differs from {where} first at weights_after_10",
    ]
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: this CPU's fingerprints differ from 1 stored file(s), network by network "
        "above; docs/reproducibility.md says what that means"
    ]
    assert failed.stderr.endswith(errors[0] + "\n")
    # This CPU's own file is stored beside it all the same.
    assert f"{probe.cpu_name(probe.cpu_description())}-{SMALL}.json" in {
        p.name for p in path.parent.iterdir()
    }


def test_a_build_without_a_batch_of_training_images_is_one_line(tmp_path):
    rng = np.random.default_rng(0)
    artifacts.write_split(tmp_path / "train", "train", rng.random((31, 28, 28)), np.zeros(31))
    artifacts.write_split(tmp_path / "test", "test", rng.random((5, 28, 28)), np.zeros(5))
    with pytest.raises(probe.ProbeError) as error:
        probe.read_inputs(tmp_path / "train", tmp_path / "test")
    assert str(error.value) == (
        f"{tmp_path / 'train'} holds 31 training images and {tmp_path / 'test'} 5 test "
        "images; the probe needs at least 32 and 1"
    )


# The comparison, naming and storing, on runs written out by hand.
RUN = {
    "cpu": {"machine": "x86_64", "model": "AMD EPYC", "isa": ["avx", "avx2", "avx512f"]},
    "tensorflow": "2.21.0",
    "keras": "3.15.1",
    "settings": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "images": 3200,
    "test_images": 512,
    "data": "d" * 32,
    "networks": {
        "lesson": {"initial_weights": "a", "forward_512": "b", "weights_after_1": "c"},
        "assignment": {
            "initial_weights": "a",
            "augmented_batch": "x",
            "forward_512": "b",
            "weights_after_1": "e",
            "weights_after_10": "f",
            "weights_after_100": "g",
        },
    },
}


def changed(run_: dict, **networks: dict[str, str]) -> dict:
    other = copy.deepcopy(run_)
    for network, steps in networks.items():
        other["networks"][network].update(steps)
    return other


@pytest.mark.parametrize(
    ("changes", "first"),
    [
        ({"weights_after_100": "z"}, "weights_after_100"),
        ({"weights_after_10": "z", "weights_after_100": "z"}, "weights_after_10"),
        ({"forward_512": "z", "weights_after_1": "z"}, "forward_512"),
        ({"augmented_batch": "z", "weights_after_1": "z"}, "augmented_batch"),
    ],
)
def test_the_first_difference_is_the_earliest_step(changes, first):
    assert probe.first_differences(RUN, changed(RUN, assignment=changes)) == {"assignment": first}


def test_a_step_only_one_file_has_is_a_difference():
    fewer = copy.deepcopy(RUN)
    del fewer["networks"]["assignment"]["augmented_batch"]
    assert probe.first_differences(RUN, fewer) == {"assignment": "augmented_batch"}
    assert probe.first_differences(RUN, copy.deepcopy(RUN)) == {}


@pytest.mark.parametrize("key", probe.SAME_INPUTS)
def test_files_of_other_inputs_are_not_compared(key):
    other = changed(RUN, lesson={"weights_after_1": "z"})
    other[key] = "something else"
    lines, differing = probe.compare(RUN, {Path("other.json"): other})
    assert differing == 0
    assert lines == [f"not compared with other.json (AMD EPYC, TensorFlow {other['tensorflow']}): "
                     f"other {key}"]  # fmt: skip


def test_a_cpu_differing_in_any_recorded_field_gets_its_own_name():
    name = probe.cpu_name(RUN["cpu"])
    assert name.startswith("amd-epyc-avx512-") and len(name) == len("amd-epyc-avx512-") + 6
    assert probe.cpu_name(copy.deepcopy(RUN["cpu"])) == name
    other_cache = dict(RUN["cpu"], cache_index0="L1 Data 48K")
    assert probe.cpu_name(other_cache) != name
    assert probe.cpu_name({"machine": "arm64"}).startswith("arm64-")


def test_the_cpu_is_read_from_linuxs_description(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum\ncache size\t: 2048 KB\n"
        "flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni amx_tile\n\nprocessor\t: 1\n"
        "model name\t: Intel(R) Xeon(R) Platinum\n",
        encoding="utf-8",
    )
    caches = tmp_path / "cache"
    for index, (level, kind, size) in enumerate([("1", "Data", "48K"), ("2", "Unified", "2048K")]):
        for part, value in (("level", level), ("type", kind), ("size", size)):
            (caches / f"index{index}").mkdir(parents=True, exist_ok=True)
            (caches / f"index{index}" / part).write_text(value + "\n", encoding="utf-8")
    cpu = probe.cpu_description(cpuinfo, caches)
    assert {key: value for key, value in cpu.items() if key != "machine"} == {
        "model": "Intel(R) Xeon(R) Platinum",
        "cache size": "2048 KB",
        "isa": ["amx_tile", "avx2", "avx512_vnni", "avx512f", "fma"],
        "cache_index0": "L1 Data 48K",
        "cache_index1": "L2 Unified 2048K",
    }
    assert probe.cpu_name(cpu).startswith("intel-r-xeon-r-platinum-avx512-")
    assert probe.cpu_description(tmp_path / "none", tmp_path / "none") == {
        "machine": cpu["machine"]
    }


def test_a_stored_file_is_never_overwritten(tmp_path):
    path = tmp_path / "tensorflow-2.21.0" / f"{probe.cpu_name(RUN['cpu'])}.json"
    assert probe.store(RUN, tmp_path, {}) == f"stored as {path}"
    written = path.read_text(encoding="utf-8")
    assert json.loads(written) == RUN
    stored = probe.read_stored(tmp_path)
    assert probe.store(RUN, tmp_path, stored) == f"{path} holds these fingerprints already"
    other = changed(RUN, lesson={"weights_after_1": "z"})
    assert probe.store(other, tmp_path, stored) == (
        f"not stored: {path} holds another run on this CPU (other fingerprints or inputs) and "
        "is kept as it is; remove it and run again to store this one"
    )
    assert path.read_text(encoding="utf-8") == written
    small = dict(RUN, images=1984, test_images=500)
    assert probe.store(small, tmp_path, stored) == f"stored as {path.with_suffix('')}-{SMALL}.json"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"cpu": {}}'])
def test_a_file_that_is_not_a_fingerprint_file_is_one_line(tmp_path, text):
    (tmp_path / "broken.json").write_text(text, encoding="utf-8")
    with pytest.raises(probe.ProbeError, match=r"^\S+broken\.json is not a fingerprint file \("):
        probe.read_stored(tmp_path)


def test_the_committed_fingerprints_are_fingerprint_files_named_for_their_cpu():
    stored = probe.read_stored(ROOT / "docs" / "fingerprints")
    assert stored, "no fingerprints in docs/fingerprints"
    for path, run_ in stored.items():
        assert set(probe.SAME_INPUTS) <= run_.keys(), path
        assert path.parent.name == f"tensorflow-{run_['tensorflow']}"
        assert path.name == f"{probe.cpu_name(run_['cpu'])}.json"
        assert sorted(run_["networks"]) == sorted(probe.NETWORKS)


def test_a_training_keeps_its_square_roots_and_divisions_exact():
    """RMSprop's update divides by a square root. Traced by a training, as seed_everything
    sets it up, x / sqrt(y) gives the bytes of IEEE's exact square root and division, not
    those of x * rsqrt(y), which TensorFlow computes from the CPU maker's approximation."""
    repeatable.seed_everything(0)
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.random(100_000, dtype=np.float32) + np.float32(0.5)
    y = rng.random(100_000, dtype=np.float32) * np.float32(1e-3) + np.float32(1e-7)
    traced = tf.function(lambda a, b: a / tf.sqrt(b))(tf.constant(x), tf.constant(y))
    assert np.array_equal(traced.numpy(), x / np.sqrt(y))


def test_the_probes_networks_are_the_lessons_and_the_assignments_of_params_yaml():
    """The fingerprints stand for the lesson and the assignment only while these agree; a new
    setting in params.yaml needs the probe changed and every CPU measured again."""
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    assignment = params["variants"]["assignment"]
    lesson_model, lesson_train = params["model"], params["train"]
    architecture, augmentation, optimizer = probe.NETWORKS["lesson"]
    assert architecture == {key: lesson_model[key] for key in architecture}
    assert (augmentation, optimizer) == ({}, lesson_train["optimizer"])
    architecture, augmentation, optimizer = probe.NETWORKS["assignment"]
    assert architecture == {
        key: {**lesson_model, **assignment["model"]}[key] for key in architecture
    }
    assert augmentation == assignment["train"]["augmentation"]
    assert optimizer == assignment["train"]["optimizer"]
    assert probe.NETWORKS["deep_no_aug"] == (architecture, {}, optimizer)
    assert probe.NETWORKS["lesson_with_aug"] == (probe.NETWORKS["lesson"][0], augmentation, "adam")
    assert lesson_train["seed"] == probe.SEED
    assert lesson_train["learning_rate"] == probe.LEARNING_RATE
    assert lesson_train["batch_size"] == probe.BATCH
    # The probe leaves the LeakyReLU slope to build_model's default.
    slope = inspect.signature(model.build_model).parameters["leaky_relu_slope"].default
    assert slope == {**lesson_model, **assignment["model"]}["leaky_relu_slope"]
