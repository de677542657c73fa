"""Threads per op: the count fixed for each network (digits/training.py) is the one its training
runs on, the environment's TF_NUM_INTRAOP_THREADS overrides it, and the count changes no byte
of the three networks the build trains (the lesson's, the assignment's, the CNN); the parallel
build (tools/schedule.py) counts each stage's threads against the cores.

(The test that one thread per op trains the bytes of TensorFlow's default, once in
tests/test_stages.py, is the first test here, for all three networks and with 1 and 2 threads
named.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from digits import repeatable, training
from pipeline import artifacts, config
from stages import variants
from tests.helpers import ROOT, random_digits
from tools import schedule

# The networks the build trains for long, as params.yaml sets them (the lesson's own model and
# two of its variations), trained here for one epoch of a few random digits.
NETWORKS = ("lesson", "assignment", "cnn")
IMAGES = 320


def settings_of(name: str) -> dict:
    """The settings `name` trains with in params.yaml, as its variant_settings stage writes
    them (the lesson's own: no changes), for one epoch."""
    rules = training.SETTINGS if name == "lesson" else variants.rules_for(name)
    optional = () if name == "lesson" else (f"variants.{name}",)
    values = config.read_params(rules, optional=optional, file=ROOT / config.PARAMS_FILE)
    settings = (
        {"changes": {}, **training.nest(values)}
        if name == "lesson"
        else variants.resolve(values, name)
    )
    settings["train"]["epochs"] = 1
    return settings


# The train stage's own main() for each network in turn, in one process, so that TensorFlow
# starts once with the environment's threads per op.
TRAIN_EACH = """
import sys
from stages import train
folder, names = sys.argv[1], sys.argv[2:]
for name in names:
    train.main(["--settings", f"{folder}/{name}.json", "--train-set", f"{folder}/train",
                "--model", f"{folder}/{name}.keras", "--history", f"{folder}/{name}.csv"])
"""


def trained(folder: Path, threads: int) -> dict[str, bytes]:
    """Each network's .keras bytes, trained by the train stage on `threads` threads per op."""
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_EACH, folder, *NETWORKS],
        cwd=ROOT,
        env=dict(os.environ, TF_NUM_INTRAOP_THREADS=str(threads)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {name: (folder / f"{name}.keras").read_bytes() for name in NETWORKS}


@pytest.mark.slow
def test_the_three_networks_train_the_same_bytes_on_one_thread_per_op_and_on_two(tmp_path, rng):
    """The lesson's Dense 128, the assignment's 128x64 LeakyReLU/RMSprop network with
    augmentation and the CNN, each trained by the train stage for one epoch on 320 random
    digits with 1 and with 2 threads per op: the same .keras bytes."""
    images, labels = random_digits(rng, IMAGES)
    artifacts.write_split(tmp_path / "train", "train", (images / 255.0).astype(np.float32), labels)
    for name in NETWORKS:
        artifacts.write_json(tmp_path / f"{name}.json", settings_of(name))
    assert settings_of("assignment")["train"]["augmentation"]["rotation"] > 0
    assert settings_of("cnn")["model"]["kind"] == "cnn"

    one = trained(tmp_path, 1)
    two = trained(tmp_path, 2)
    assert {name: one[name] == two[name] for name in NETWORKS} == dict.fromkeys(NETWORKS, True)
    assert len(set(one.values())) == len(NETWORKS)  # three networks, not one thrice


# A softmax layer straight on the 784 pixels, as the logistic variation has, with the seeded
# weights Keras gives it, saved for the evaluate stage.
SOFTMAX_ON_PIXELS = """
import sys
from digits import repeatable
keras = repeatable.import_keras()
keras.utils.set_random_seed(0)
model = keras.Sequential(
    [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
)
model.save(sys.argv[1])
"""

EVALUATION_OUTPUTS = ("metrics", "predictions", "confusion", "per-class", "network")


def evaluated(folder: Path, cores: set[int]) -> dict[str, bytes]:
    """Every output of the evaluate stage's process, held to `cores` (as a machine with that
    many would run it), with TensorFlow's threads left to the stage."""
    out = folder / f"on-{len(cores)}"
    result = subprocess.run(
        [sys.executable, "-m", "stages.evaluate", "--model", folder / "model.keras",
         "--test-set", folder / "test",
         *(word for name in EVALUATION_OUTPUTS for word in (f"--{name}", out / name))],
        cwd=ROOT,
        env={key: value for key, value in os.environ.items() if key != "TF_NUM_INTRAOP_THREADS"},
        preexec_fn=lambda: os.sched_setaffinity(0, cores),
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return {name: (out / name).read_bytes() for name in EVALUATION_OUTPUTS}


@pytest.mark.slow
def test_an_evaluation_gives_the_same_bytes_on_one_core_and_on_two(tmp_path, rng):
    """TensorFlow's default splits an op over every core, and for a softmax layer on the
    pixels one core and two gave other probabilities in predictions.csv; the evaluate stage
    runs on the count fixed for evaluations (digits/repeatable.py), so the machine's cores
    change no byte of its five outputs (10,000 random digits: on the AMD EPYC here, 1 thread
    and 2 gave 4 of their confidences other sixth decimals, 350 of their probabilities other
    bits)."""
    cores = sorted(os.sched_getaffinity(0))
    assert len(cores) >= 2, "this check needs two cores to compare one with"
    images, labels = random_digits(rng, 10_000)
    artifacts.write_split(tmp_path / "test", "test", (images / 255.0).astype(np.float32), labels)
    made = subprocess.run(
        [sys.executable, "-c", SOFTMAX_ON_PIXELS, tmp_path / "model.keras"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    one = evaluated(tmp_path, set(cores[:1]))
    two = evaluated(tmp_path, set(cores[:2]))
    assert {name: one[name] == two[name] for name in EVALUATION_OUTPUTS} == dict.fromkeys(
        EVALUATION_OUTPUTS, True
    )
    assert one["predictions"].count(b"\n") == 10_001  # a header and a row per digit


# The train stage's process, up to where it would train: the threads per op it set.
TRAIN_STAGE_THREADS = """
import os, sys
from stages import train
train.train = lambda *args, **keywords: print(os.environ["TF_NUM_INTRAOP_THREADS"])
train.main(["--settings", sys.argv[1], "--train-set", "x", "--model", "m", "--history", "h"])
"""


@pytest.mark.parametrize("kind", ["dense", "cnn"])
@pytest.mark.parametrize("given", [None, "3"])
def test_the_train_stage_trains_on_its_networks_threads_unless_the_environment_says(
    tmp_path, kind, given
):
    settings = settings_of("lesson")
    settings["model"]["kind"] = kind
    artifacts.write_json(tmp_path / "settings.json", settings)
    env = {key: value for key, value in os.environ.items() if key != "TF_NUM_INTRAOP_THREADS"}
    if given is not None:
        env["TF_NUM_INTRAOP_THREADS"] = given
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_STAGE_THREADS, tmp_path / "settings.json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{given or training.THREADS_PER_OP[kind]}\n"


def test_every_network_kind_has_a_fixed_count_of_one_or_more():
    from digits import model

    assert set(training.THREADS_PER_OP) == set(model.KINDS)
    assert all(isinstance(count, int) and count >= 1 for count in training.THREADS_PER_OP.values())


@pytest.mark.parametrize(
    ("given", "counted"), [(None, 5), ("", 5), ("2", 2), ("0", "every core"), ("two", 5)]
)
def test_the_count_in_effect_is_the_declared_one_unless_the_environment_sets_one(
    monkeypatch, given, counted
):
    """TensorFlow takes 0 for its default, every core; a value that is not a number is left
    for TensorFlow to refuse, and the declared count stands."""
    if given is None:
        monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    else:
        monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", given)
    expected = repeatable.every_core() if counted == "every core" else counted
    assert repeatable.threads_in_effect(5) == expected


def write_settings(path: Path, kind: str) -> None:
    settings = settings_of("lesson")
    settings["model"]["kind"] = kind
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings), encoding="utf-8")


def test_the_scheduler_counts_a_stages_threads(tmp_path, monkeypatch):
    """A training counts its network's threads, read from the settings it trains with (a
    variation's file, else params.yaml); an evaluation the count fixed for evaluations; any
    other stage one. A
    training whose settings cannot be read counts one: the stage itself refuses them."""
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    (tmp_path / "params.yaml").write_text(
        (ROOT / "params.yaml").read_text(encoding="utf-8").replace("kind: dense", "kind: cnn"),
        encoding="utf-8",
    )
    write_settings(tmp_path / "reports/variants/flat/settings.json", "dense")
    lesson = "python -m stages.train --train-set t --model m --history h --trained-with s"
    variant = (
        "python -m stages.train --settings reports/variants/flat/settings.json "
        "--train-set t --model m --history h"
    )
    assert schedule.threads(lesson, tmp_path) == training.THREADS_PER_OP["cnn"]
    assert schedule.threads(variant, tmp_path) == training.THREADS_PER_OP["dense"]
    assert schedule.threads("python -m stages.evaluate --model m", tmp_path) == (
        repeatable.EVALUATION_THREADS
    )
    assert schedule.threads("python -m stages.render --figures f", tmp_path) == 1
    missing = "python -m stages.train --settings reports/variants/gone/settings.json"
    assert schedule.threads(missing, tmp_path) == 1
    # The environment's count, which the stages inherit, is theirs.
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "4")
    assert schedule.threads(variant, tmp_path) == 4
    assert schedule.threads("python -m stages.evaluate --model m", tmp_path) == 4


def test_stages_start_while_their_threads_fit_in_the_cores_and_no_core_is_left_idle():
    need = {"evaluate": 2, "train@a": 1, "train@b": 1, "render": 1, "huge": 8}
    # Two free cores: the first stage that fits, and the next that fits beside it.
    assert schedule.startable(["train@a", "train@b", "render"], need, 0, 2) == [
        "train@a",
        "train@b",
    ]
    # One core busy: an evaluation on two waits, and a training on one starts meanwhile.
    assert schedule.startable(["evaluate", "train@b"], need, 1, 2) == ["train@b"]
    # One core busy and nothing that fits: rather than leave the core idle, the first ready
    # stage starts on more threads than are free.
    assert schedule.startable(["evaluate", "huge"], need, 1, 2) == ["evaluate"]
    # Every core busy: nothing starts.
    assert schedule.startable(["render", "evaluate"], need, 2, 2) == []
    # Nothing running: a stage that wants more cores than there are starts, alone.
    assert schedule.startable(["huge", "render"], need, 0, 2) == ["huge"]
    assert schedule.startable(["evaluate", "render"], need, 0, 2) == ["evaluate"]
    assert schedule.startable(["render", "evaluate"], need, 0, 2) == ["render", "evaluate"]
    # Eight cores: the two-thread stages count two each.
    assert schedule.startable(["evaluate", "huge", "train@a"], need, 3, 8) == [
        "evaluate",
        "train@a",
        "huge",
    ]
