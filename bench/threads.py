"""Benchmark: each network's training on one thread per op against more, on this machine.

    python -m bench.threads --train-set data/prepared/train [--images N] [--rounds 3]

Trains each of the three networks the build trains for long (the lesson's Dense 128, the
assignment's 128x64 LeakyReLU/RMSprop network with augmentation, the CNN) with
TF_NUM_INTRAOP_THREADS at each count given (1 and 2 by default), each training a process of
its own, as the train stage runs, and alternating the counts' order from round to round. It
prints the median seconds of `fit` (the train stage's own timing, TensorFlow's start left out),
the median CPU seconds of the whole process (what a training takes from the stages beside it
in a parallel build), and whether the trained model's bytes were the same at every count. The
counts fixed in digits/training.py (THREADS_PER_OP) were chosen from its figures
(docs/benchmarks.md, "Threads per op").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.run import cpu_model, instruction_set
from pipeline import artifacts

ROOT = Path(__file__).resolve().parents[1]
# The networks, as params.yaml trains them (the lesson's and its variations' settings), with
# the epochs of this benchmark instead: what is compared is the time of a step.
NETWORKS = {
    "lesson": dict(
        architecture=dict(kind="dense", hidden_units=[128], activation="relu"),
        optimizer="adam",
    ),
    "assignment": dict(
        architecture=dict(kind="dense", hidden_units=[128, 64], activation="leaky_relu"),
        optimizer="rmsprop",
        augmentation=dict(rotation=10, zoom=0.1, shift=0.1),
    ),
    "cnn": dict(architecture=dict(kind="cnn", hidden_units=[128]), optimizer="adam"),
}
TRAIN_ONE = """
import json, sys
from pathlib import Path
from stages import train
settings = json.loads(sys.argv[4])
train.train(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), **settings)
"""


def train_once(split: Path, out: Path, settings: dict, threads: int) -> tuple[float, float, str]:
    """Seconds of `fit`, the CPU seconds of the whole process (TensorFlow's start included),
    and the SHA-256 of the model, trained in a process of its own on `threads` per op."""
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(threads))
    model = out / "model.keras"
    process = subprocess.Popen(
        [sys.executable, "-c", TRAIN_ONE, split, model, out / "history.csv", json.dumps(settings)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: a training failed:\n{output[-3000:]}")
    seconds = float(re.search(r"^train: .* in ([\d.]+) s ", output, re.M).group(1))
    return seconds, usage.ru_utime + usage.ru_stime, hashlib.sha256(model.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-set", type=Path, required=True, help="a prepared train split")
    parser.add_argument("--images", type=int, default=12_000, help="training images (12,000)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of each training (1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, for medians (3)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="counts (1 2)")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    args = parser.parse_args(argv)

    images, labels = artifacts.read_split(args.train_set, "train")
    print(f"Machine: {cpu_model()} ({instruction_set()}), {os.cpu_count()} cores")
    print(f"{args.images:,} images, {args.epochs} epoch(s), medians of {args.rounds} rounds")
    print(f"Load average at the start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="digit-threads-") as folder:
        split = Path(folder) / "train"
        artifacts.write_split(
            split, "train", np.asarray(images[: args.images]), np.asarray(labels[: args.images])
        )
        seconds: dict[tuple[str, int], list[float]] = {}
        cpu: dict[tuple[str, int], list[float]] = {}
        digests: dict[tuple[str, int], set[str]] = {}
        for number in range(args.rounds):
            # Alternate which count goes first, so that neither always meets the same load.
            counts = args.threads if number % 2 == 0 else args.threads[::-1]
            for name in args.networks:
                settings = dict(NETWORKS[name], epochs=args.epochs, batch_size=32)
                settings.update(learning_rate=0.001, seed=42)
                for threads in counts:
                    out = Path(folder) / f"{name}-{threads}"
                    out.mkdir(exist_ok=True)
                    took, used, digest = train_once(split, out, settings, threads)
                    seconds.setdefault((name, threads), []).append(took)
                    cpu.setdefault((name, threads), []).append(used)
                    digests.setdefault((name, threads), set()).add(digest)
                    print(
                        f"round {number + 1}: {name}, {threads} thread(s): fit {took:.2f} s, "
                        f"the process's CPU {used:.1f} s",
                        flush=True,
                    )
    print(f"Load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    header = " | ".join(f"fit, {count} thread(s) | CPU, {count}" for count in args.threads)
    print(f"\n| network | {header} | same bytes |\n|---|" + "---|---|" * len(args.threads) + "---|")
    for name in args.networks:
        cells = []
        for count in args.threads:
            runs = ", ".join(f"{value:.2f}" for value in seconds[name, count])
            cells.append(f"{statistics.median(seconds[name, count]):.2f} s ({runs})")
            cells.append(f"{statistics.median(cpu[name, count]):.1f} s")
        same = len(set().union(*(digests[name, count] for count in args.threads))) == 1
        print(f"| {name} | {' | '.join(cells)} | {'yes' if same else '**no**'} |")


if __name__ == "__main__":
    main()
