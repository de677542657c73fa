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


def environment_without_a_count() -> dict[str, str]:
    """This process's environment without TF_NUM_INTRAOP_THREADS: a child sets its own."""
    return {key: value for key, value in os.environ.items() if key != "TF_NUM_INTRAOP_THREADS"}


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

# A module run as `python -m` would run it, in a process held to the cores named first (as a
# machine with that many would run it). The process sets its own affinity: a child's
# preexec_fn is not safe in a process with threads, as a pytest-xdist worker has.
HOLD = """
import os, sys
os.sched_setaffinity(0, {int(core) for core in sys.argv[1].split(",")})
"""
ON_CORES = (
    HOLD
    + """
import runpy
module = sys.argv[2]
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""
)


def held(cores: set[int], code: str, *words, env: dict[str, str] | None = None):
    """`python -c code cores words...`, `code` beginning with HOLD, in the project's folder;
    TensorFlow's threads left to it unless `env` sets them."""
    return subprocess.run(
        [sys.executable, "-c", code, ",".join(map(str, sorted(cores))), *words],
        cwd=ROOT,
        env=environment_without_a_count() if env is None else env,
        capture_output=True,
        text=True,
    )


def on_cores(cores: set[int], module: str, *words) -> subprocess.CompletedProcess:
    """`python -m module words...` held to `cores`, with TensorFlow's threads left to it."""
    return held(cores, ON_CORES, module, *words)


def evaluated(folder: Path, cores: set[int]) -> dict[str, bytes]:
    """Every output of the evaluate stage's process, held to `cores`."""
    out = folder / f"on-{len(cores)}"
    result = on_cores(
        cores, "stages.evaluate", "--model", folder / "model.keras", "--test-set", folder / "test",
        *(word for name in EVALUATION_OUTPUTS for word in (f"--{name}", out / name)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return {name: (out / name).read_bytes() for name in EVALUATION_OUTPUTS}


def two_cores() -> list[int]:
    """Two of the cores this process may use: the checks below compare one with two. The
    suite runs on Linux with two cores or more (docs/platforms.md)."""
    cores = sorted(os.sched_getaffinity(0))
    assert len(cores) >= 2, "these checks need two cores, to hold a process to one and to two"
    return cores[:2]


@pytest.mark.slow
def test_an_evaluation_gives_the_same_bytes_on_one_core_and_on_two(tmp_path, rng):
    """TensorFlow's default splits an op over every core, and for a softmax layer on the
    pixels one core and two gave other probabilities in predictions.csv; the evaluate stage
    runs on the count fixed for evaluations (digits/repeatable.py), so the machine's cores
    change no byte of its five outputs (10,000 random digits: on the AMD EPYC here, with 1
    thread and 2, 4 confidences differed in the sixth decimal and 350 probabilities in their
    bits; the check below this one holds on any CPU)."""
    cores = two_cores()
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


# The evaluate stage's and digit-predict's processes, up to where they would import
# TensorFlow: the threads per op each set.
EVALUATE_THREADS = """
import os
from stages import evaluate
evaluate.evaluate = lambda *args: print(os.environ["TF_NUM_INTRAOP_THREADS"])
evaluate.main(["--model", "m", "--test-set", "t", "--metrics", "a", "--predictions", "b",
               "--confusion", "c", "--per-class", "d", "--network", "e"])
"""

PREDICT_THREADS = """
import os, sys
from digits import predict
predict.predict = lambda *args: print(os.environ["TF_NUM_INTRAOP_THREADS"]) or []
sys.exit(predict.main(["--model", "m", "image.png"]))
"""


@pytest.mark.parametrize(
    "process", [EVALUATE_THREADS, PREDICT_THREADS], ids=["evaluate", "predict"]
)
@pytest.mark.parametrize("given", [None, "3"])
def test_predictions_run_on_the_fixed_count_on_one_core_and_on_two(process, given):
    """The evaluate stage and digit-predict run TensorFlow on EVALUATION_THREADS whatever
    cores the process may use, unless the environment sets a count (as bench/threads.py
    does)."""
    cores = two_cores()
    env = environment_without_a_count()
    if given is not None:
        env["TF_NUM_INTRAOP_THREADS"] = given
    printed = []
    for some in ({cores[0]}, set(cores)):
        result = held(some, HOLD + process, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        printed.append(result.stdout.strip())
    expected = given or str(repeatable.EVALUATION_THREADS)
    assert printed == [expected, expected]


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
    env = environment_without_a_count()
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
    other stage one. A training whose settings cannot be read counts one: the stage itself
    refuses them."""
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
    need = {"cnn": 2, "train@a": 1, "train@b": 1, "render": 1, "huge": 8}
    # Two free cores: the first stage that fits, and the next that fits beside it.
    assert schedule.startable(["train@a", "train@b", "render"], need, 0, 2) == [
        "train@a",
        "train@b",
    ]
    # One core busy: a CNN's training on two waits, and a training on one starts meanwhile.
    assert schedule.startable(["cnn", "train@b"], need, 1, 2) == ["train@b"]
    # One core busy and nothing that fits: rather than leave the core idle, the first ready
    # stage starts on more threads than are free.
    assert schedule.startable(["cnn", "huge"], need, 1, 2) == ["cnn"]
    # Every core busy: nothing starts.
    assert schedule.startable(["render", "cnn"], need, 2, 2) == []
    # Nothing running: a stage that wants more cores than there are starts, alone.
    assert schedule.startable(["huge", "render"], need, 0, 2) == ["huge"]
    assert schedule.startable(["cnn", "render"], need, 0, 2) == ["cnn"]
    assert schedule.startable(["render", "cnn"], need, 0, 2) == ["render", "cnn"]
    # Eight cores: the two-thread stages count two each.
    assert schedule.startable(["cnn", "huge", "train@a"], need, 3, 8) == [
        "cnn",
        "train@a",
        "huge",
    ]
