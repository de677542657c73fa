"""Fingerprints of the first training steps, to see whether two CPUs train the same bytes.

The committed dvc.lock was built on one CPU; another CPU repeats it only if every computation
of a training gives the same bytes on both. This probe records, with the project's own code
(digits.model, digits.repeatable, digits.training's compile settings), SHA-256 prefixes of what
four networks compute, step by step:

- initial_weights: the weights as built from the seed;
- augmented_batch: the augmentation layers' output on one batch (networks that have them);
- forward_512: the predictions for the first 512 test images;
- weights_after_1, _10, _100: the weights after 1, 10 and 100 training steps of 32 images,
  taken in order from the first 3,200 training images.

A small build (the test suite's has 2,000 training and 500 test images) has fewer: the probe
then takes what there is (whole batches), says so, records the counts (forward_500 for 500
test images) and compares the file only with files of the same images.

The four networks separate the assignment's differences from the lesson: the lesson's; the
assignment's deeper LeakyReLU/RMSprop network without augmentation; the lesson's with the
assignment's augmentation; and the assignment whole. The first fingerprint at which two CPUs
differ says which computation parts them: the augmented batch, the forward pass, or a step.

Reads:  --train-set and --test-set (the prepared splits).
Writes: --fingerprints/tensorflow-<version>/<cpu>.json, a small JSON file named for this CPU,
        unless a file of that name is already there (it is never overwritten: it says so).
Then compares this run with every stored file of the same TensorFlow, Keras, settings and
images, and fails, one line per network that differs, when any differs.
docs/reproducibility.md says what was measured and how to add a CPU.

    python -m tools.probe --train-set data/prepared/train --test-set data/prepared/test \
        --fingerprints docs/fingerprints
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from digits import model, repeatable, training
from pipeline import artifacts, cli

# What the four networks are: build_model's keywords, the augmentation, and the optimizer.
# The assignment's settings are those of its variation in params.yaml, written out here so
# that a fingerprint always means the same network.
ASSIGNMENT_AUGMENTATION = {"rotation": 10, "zoom": 0.1, "shift": 0.1}
LESSON_ARCHITECTURE = {"kind": "dense", "hidden_units": [128], "activation": "relu"}
DEEP_ARCHITECTURE = {"kind": "dense", "hidden_units": [128, 64], "activation": "leaky_relu"}
NETWORKS = {
    "lesson": (LESSON_ARCHITECTURE, {}, "adam"),
    "deep_no_aug": (DEEP_ARCHITECTURE, {}, "rmsprop"),
    "lesson_with_aug": (LESSON_ARCHITECTURE, ASSIGNMENT_AUGMENTATION, "adam"),
    "assignment": (DEEP_ARCHITECTURE, ASSIGNMENT_AUGMENTATION, "rmsprop"),
}
SEED = 42
LEARNING_RATE = 0.001
BATCH = 32
TRAIN_IMAGES = 3200
TEST_IMAGES = 512
RECORDED_STEPS = (1, 10, 100)
# The kinds of fingerprint in the order they are computed (forward_ and weights_after_ end in
# a number): the first that differs is where two CPUs part ways.
STEP_KINDS = ("initial_weights", "augmented_batch", "forward", "weights_after")
# A stored file is compared with this run only if these are the same: other software, other
# settings of TensorFlow or other images give other bytes on any CPU.
SAME_INPUTS = ("tensorflow", "keras", "settings", "images", "test_images", "data")


class ProbeError(cli.StageError):
    """A problem the user can fix, or fingerprints that differ; one line saying which."""


def digest(array: Any) -> str:
    """The first 16 hex digits of the SHA-256 of an array's bytes."""
    return hashlib.sha256(np.ascontiguousarray(np.asarray(array)).tobytes()).hexdigest()[:16]


def weights_digest(network: Any) -> str:
    return digest(np.concatenate([np.ravel(w) for w in network.get_weights()]))


def network_fingerprints(
    name: str, images: np.ndarray, labels: np.ndarray, test_images: np.ndarray
) -> dict[str, str]:
    """The fingerprints of one of NETWORKS, trained on `images` in order, batch after batch
    (starting again at the first image when they run out)."""
    import tensorflow as tf

    architecture, augmentation, optimizer = NETWORKS[name]
    repeatable.seed_everything(SEED)
    network = model.build_model(**architecture, **augmentation, seed=SEED)
    record = {"initial_weights": weights_digest(network)}
    if augmentation:
        # The layers before Flatten are the augmentation, applied as in training.
        batch = tf.constant(images[:BATCH])
        for layer in network.layers:
            if layer.name == "flatten":
                break
            batch = layer(batch, training=True)
        record["augmented_batch"] = digest(batch)
    record[f"forward_{len(test_images)}"] = digest(
        network.predict(test_images, batch_size=256, verbose=0)
    )
    network.compile(
        optimizer=model.make_optimizer(optimizer, LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=training.STEPS_PER_EXECUTION,
    )
    done = 0
    for steps in RECORDED_STEPS:
        for step in range(done, steps):
            start = step * BATCH % len(images)
            network.train_on_batch(images[start : start + BATCH], labels[start : start + BATCH])
        done = steps
        record[f"weights_after_{steps}"] = weights_digest(network)
    return record


def read_inputs(train_set: Path, test_set: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first 3,200 training images and labels and the first 512 test images, or as many
    as a small build has (whole batches of training images); a note says when fewer."""
    train_images, train_labels = artifacts.read_split(train_set, "train")
    test_images, _ = artifacts.read_split(test_set, "test")
    images = min(TRAIN_IMAGES, len(train_images) - len(train_images) % BATCH)
    tests = min(TEST_IMAGES, len(test_images))
    if images == 0 or tests == 0:
        raise ProbeError(
            f"{train_set} holds {len(train_images):,} training images and {test_set} "
            f"{len(test_images):,} test images; the probe needs at least {BATCH} and 1"
        )
    if (images, tests) != (TRAIN_IMAGES, TEST_IMAGES):
        print(
            f"note: a small build ({len(train_images):,} training and {len(test_images):,} "
            f"test images): the probe takes {images:,} and {tests:,} instead of "
            f"{TRAIN_IMAGES:,} and {TEST_IMAGES}, and compares only with files of the same"
        )
    return (
        np.asarray(train_images[:images], dtype=np.float32),
        np.asarray(train_labels[:images]),
        np.asarray(test_images[:tests], dtype=np.float32),
    )


def cpu_description(
    cpuinfo: Path = Path("/proc/cpuinfo"), caches: Path = Path("/sys/devices/system/cpu/cpu0/cache")
) -> dict[str, Any]:
    """This CPU as Linux describes it: model name, vector instruction sets and caches.

    Elsewhere (macOS, Windows) only the machine type is known, and the files say so.
    """
    description: dict[str, Any] = {"machine": platform.machine()}
    try:
        lines = cpuinfo.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    fields: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if "model name" in fields:
        description["model"] = fields["model name"]
    if "flags" in fields:
        description["isa"] = sorted(
            flag for flag in fields["flags"].split() if flag.startswith(("avx", "fma", "amx"))
        )
    if "cache size" in fields:
        description["cache size"] = fields["cache size"]
    for index in sorted(caches.glob("index[0-9]*")):
        try:
            level, kind, size = (
                (index / part).read_text(encoding="utf-8").strip()
                for part in ("level", "type", "size")
            )
        except OSError:
            continue  # A cache the system does not describe whole is left out.
        description[f"cache_{index.name}"] = f"L{level} {kind} {size}"
    return description


def cpu_name(cpu: Mapping[str, Any]) -> str:
    """A file name for a CPU: its model and widest vector instructions, then six hex digits
    of everything recorded about it, so that two CPUs differing in any recorded field (an
    instruction set, a cache size) get two files: amd-epyc-avx512-0a1b2c."""
    isa = set(cpu.get("isa", []))
    widest = next((name for name in ("avx512f", "avx2", "avx") if name in isa), "")
    words = [cpu.get("model", cpu.get("machine", "unknown")), widest.removesuffix("f")]
    slug = re.sub(r"[^a-z0-9]+", "-", " ".join(words).lower()).strip("-")
    described = hashlib.sha256(json.dumps(cpu, sort_keys=True).encode()).hexdigest()[:6]
    return f"{slug}-{described}"


def tensorflow_settings() -> dict[str, Any]:
    """The settings that decide how TensorFlow computes, as this process runs it."""
    import tensorflow as tf

    return {
        "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "grappler": tf.config.optimizer.get_experimental_options(),
    }


def fingerprint(train_set: Path, test_set: Path) -> dict[str, Any]:
    """This CPU's fingerprints, with what they depend on besides the CPU."""
    keras = repeatable.import_keras()
    import tensorflow as tf

    train_images, train_labels, test_images = read_inputs(train_set, test_set)
    networks = {
        name: network_fingerprints(name, train_images, train_labels, test_images)
        for name in NETWORKS
    }
    return {
        "cpu": cpu_description(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        # As the trainings ran, after digits.repeatable set them up.
        "settings": tensorflow_settings(),
        "images": len(train_images),
        "test_images": len(test_images),
        "data": digest(np.concatenate([np.ravel(train_images), np.ravel(test_images)]))
        + digest(train_labels),
        "networks": networks,
    }


def step_order(step: str) -> tuple[int, int]:
    """Where a fingerprint comes in a run: forward_512 before weights_after_1 before _10."""
    kind, _, number = step.rpartition("_")
    if not number.isdigit():
        kind, number = step, "0"
    return (STEP_KINDS.index(kind) if kind in STEP_KINDS else len(STEP_KINDS), int(number))


def first_differences(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, str]:
    """For each network whose fingerprints differ, the first step at which they do (a
    network or step that only one of them has differs too)."""
    differences = {}
    names = [
        *mine["networks"],
        *(name for name in theirs["networks"] if name not in mine["networks"]),
    ]
    for name in names:
        record, other = mine["networks"].get(name, {}), theirs["networks"].get(name, {})
        steps = sorted(record.keys() | other.keys(), key=step_order)
        first = next((step for step in steps if record.get(step) != other.get(step)), None)
        if first is not None:
            differences[name] = first
    return differences


def comparable(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> bool:
    return all(mine.get(key) == theirs.get(key) for key in SAME_INPUTS)


def read_stored(folder: Path) -> dict[Path, dict[str, Any]]:
    """Every fingerprint file under `folder`, by path."""
    stored = {}
    for path in sorted(folder.rglob("*.json")):
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(run.get("networks"), dict):
                raise ValueError("it has no networks")
        except (OSError, ValueError, AttributeError) as error:
            raise ProbeError(f"{path} is not a fingerprint file ({error}); remove it") from None
        stored[path] = run
    return stored


def store(run: Mapping[str, Any], folder: Path, stored: Mapping[Path, Any]) -> str:
    """Write `run` as this CPU's file, unless that file exists; say what was done."""
    name = cpu_name(run["cpu"])
    if (run["images"], run["test_images"]) != (TRAIN_IMAGES, TEST_IMAGES):
        name += f"-{run['images']}-{run['test_images']}-images"
    path = folder / f"tensorflow-{run['tensorflow']}" / f"{name}.json"
    if path not in stored:
        path.parent.mkdir(parents=True, exist_ok=True)
        with artifacts.atomic_file(path) as tmp:
            tmp.write_text(json.dumps(run, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return f"stored as {path}"
    if comparable(run, stored[path]) and not first_differences(run, stored[path]):
        return f"{path} holds these fingerprints already"
    return (
        f"not stored: {path} holds another run on this CPU (other fingerprints or inputs) "
        "and is kept as it is; remove it and run again to store this one"
    )


def describe(run: Mapping[str, Any]) -> str:
    cpu = run.get("cpu", {})
    return f"{cpu.get('model', cpu.get('machine', '?'))}, TensorFlow {run.get('tensorflow')}"


def compare(run: Mapping[str, Any], stored: Mapping[Path, Any]) -> tuple[list[str], int]:
    """Lines saying how this run compares with each stored file, and how many differ."""
    lines, differing = [], 0
    for path, other in stored.items():
        if not comparable(run, other):
            unlike = ", ".join(key for key in SAME_INPUTS if run.get(key) != other.get(key))
            lines.append(f"not compared with {path} ({describe(other)}): other {unlike}")
            continue
        differences = first_differences(run, other)
        if not differences:
            lines.append(f"same as {path} ({describe(other)})")
        differing += bool(differences)
        lines.extend(
            f"{network} differs from {path} ({describe(other)}) first at {step}"
            for network, step in differences.items()
        )
    return lines, differing


def report(run: Mapping[str, Any]) -> Iterable[str]:
    """This run's fingerprints, one line per network and step."""
    yield (
        f"Fingerprints on {describe(run)}, Keras {run['keras']}, {run['images']:,} training "
        f"and {run['test_images']:,} test images:"
    )
    for network, record in run["networks"].items():
        for step in sorted(record, key=step_order):
            yield f"  {network:<16} {step:<18} {record[step]}"


def probe(train_set: Path, test_set: Path, folder: Path) -> None:
    """Fingerprint this CPU, store the file, compare with the stored ones; print each step.

    Raises ProbeError when a stored file of the same inputs holds other fingerprints.
    """
    stored = read_stored(folder)
    run = fingerprint(train_set, test_set)
    print("\n".join(report(run)))
    print(store(run, folder, stored))
    lines, differing = compare(run, stored)
    print("\n".join(lines) if lines else f"no other fingerprints in {folder} to compare with")
    if differing:
        raise ProbeError(
            f"this CPU's fingerprints differ from {differing} stored file(s), network by "
            "network above; docs/reproducibility.md says what that means"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.probe", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--train-set", type=Path, required=True)
    parser.add_argument("--test-set", type=Path, required=True)
    parser.add_argument("--fingerprints", type=Path, required=True, help="the stored files' folder")
    args = parser.parse_args(argv)
    probe(args.train_set, args.test_set, args.fingerprints)


if __name__ == "__main__":
    # The four networks are dense ones, trained on the train stage's threads.
    repeatable.threads_per_op(training.THREADS_PER_OP["dense"])
    cli.run(main)
