"""Benchmark: the lesson's script against the pipeline, on this machine, in one run.

    make bench            # or: python -m bench.run [--rounds N]

Works in a clone of the committed project in a temporary folder, so the workspace's own
build is left alone. It first times what a course author's first build costs: `make venv` in
the fresh clone (with an empty uv cache, so every package is downloaded) and then `make repro`
(which also fills pip's and DVC's caches for what follows). Then it alternates, round after
round: the lesson's script (bench/lesson.py, reading the same mnist.npz) and
`dvc repro --force` (every stage, MNIST fetched again). Then it times a no-op `dvc repro`, a
render-only change, a revert restored from the run-cache, and each stage alone for its peak
memory, and prints one Markdown table with the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import set_params, stages_run

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("download", "prepare", "train", "evaluate", "render", "page")
GIB = 2**30


@dataclass
class Run:
    seconds: float
    peak_bytes: int
    output: str


def measure(command: list[str], cwd: Path, **env_vars: str) -> Run:
    """Wall time and peak resident memory of a command and every process it waited for."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.update(env_vars)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed:\n{output[-3000:]}")
    # ru_maxrss covers the child and the largest of the descendants it waited for (KiB).
    return Run(seconds, usage.ru_maxrss * 1024, output)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    rounds = parser.parse_args().rounds

    with tempfile.TemporaryDirectory(prefix="digit-bench-") as folder:
        project = Path(folder) / "project"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(project)], check=True)
        print(f"bench: make venv and make repro in {project}", flush=True)
        # The interpreter this venv was made from, as a course author's python3.
        python = getattr(sys, "_base_executable", sys.executable)
        uv_cache = Path(folder) / "uv-cache"
        venv = measure(["make", "venv", f"PYTHON={python}"], project, UV_CACHE_DIR=str(uv_cache))
        first_build = measure(["make", "repro"], project)
        figures = Path(folder) / "lesson-figures"
        figures.mkdir()
        lesson = [sys.executable, str(ROOT / "bench/lesson.py"), "data/raw/mnist.npz", str(figures)]

        lesson_runs, forced_runs = [], []
        for number in range(1, rounds + 1):
            lesson_runs.append(measure(lesson, project))
            forced_runs.append(measure(["dvc", "repro", "--force"], project))
            print(
                f"bench: round {number}: lesson {lesson_runs[-1].seconds:.1f} s, "
                f"dvc repro --force {forced_runs[-1].seconds:.1f} s",
                flush=True,
            )
        assert stages_run(forced_runs[-1].output) == list(STAGES)

        noop = [measure(["dvc", "repro"], project) for _ in range(3)]
        assert all(stages_run(run.output) == [] for run in noop)

        set_params(project, render__grid_size=4)
        render_change = measure(["dvc", "repro"], project)
        assert stages_run(render_change.output) == ["render", "page"]
        set_params(project, render__grid_size=5)
        set_params(project, train__epochs=2)
        changed = measure(["dvc", "repro"], project)
        subprocess.run(["git", "checkout", "-q", "params.yaml"], cwd=project, check=True)
        revert = measure(["dvc", "repro"], project)
        restored = "train" not in stages_run(revert.output) and "is cached" in revert.output

        # Each stage alone, as DVC runs it (its cmd passes the stage its files).
        stage_runs = {
            stage: measure(["dvc", "repro", "--force", "--single-item", stage], project)
            for stage in STAGES
        }
        throughput = re.search(r"\(([\d,]+) images/s\)", stage_runs["train"].output)
        images_per_second = int(throughput.group(1).replace(",", "")) if throughput else 0
        accuracy = json.loads((project / "reports/metrics.json").read_text())["test"]["accuracy"]
        lesson_accuracy = re.findall(r"Test accuracy: ([\d.]+)", lesson_runs[-1].output)

    lesson_s = statistics.median(run.seconds for run in lesson_runs)
    forced_s = statistics.median(run.seconds for run in forced_runs)
    noop_s = statistics.median(run.seconds for run in noop)
    setup_s = venv.seconds + first_build.seconds
    peak_stage = max(stage_runs, key=lambda stage: stage_runs[stage].peak_bytes)
    peak = stage_runs[peak_stage].peak_bytes

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    rows = [
        ("lesson script (load, /255, fit 5 epochs, evaluate, predict, plot)",
         f"{lesson_s:.1f} s, peak {max(r.peak_bytes for r in lesson_runs) / GIB:.2f} GiB",
         "baseline", ""),
        ("fresh clone: `make venv` (empty uv cache) + `make repro`",
         f"{venv.seconds:.1f} s + {first_build.seconds:.1f} s = {setup_s:.1f} s"
         f" = {setup_s / lesson_s:.2f}x the lesson", "<= 2x", verdict(setup_s <= 2 * lesson_s)),
        ("`dvc repro --force` (every stage, MNIST fetched again)",
         f"{forced_s:.1f} s = {forced_s / lesson_s:.2f}x the lesson", "<= 0.5x",
         verdict(forced_s <= 0.5 * lesson_s)),
        ("no-op `dvc repro`", f"{noop_s:.2f} s", "<= 2 s", verdict(noop_s <= 2)),
        ("`render.grid_size` 5 -> 4, `dvc repro`", f"{render_change.seconds:.1f} s", "<= 5 s",
         verdict(render_change.seconds <= 5)),
        ("`train.epochs` 5 -> 2 -> 5: the revert",
         f"{revert.seconds:.1f} s, {'restored from the run-cache' if restored else 'retrained'}"
         f" (the change itself: {changed.seconds:.1f} s)", "no training", verdict(restored)),
        ("peak memory of any stage", f"{peak / GIB:.2f} GiB ({peak_stage})", "<= 1 GiB",
         verdict(peak <= GIB)),
        ("training throughput, batch size 32", f"{images_per_second:,} images/s",
         ">= 30,000 images/s", verdict(images_per_second >= 30_000)),
        ("test accuracy (default params)",
         f"{accuracy:.4f} (lesson script: {float(lesson_accuracy[-1]):.4f})", ">= 0.975",
         verdict(accuracy >= 0.975)),
    ]  # fmt: skip
    print(f"\nMachine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"Medians of {rounds} alternating rounds.\n")
    print("| measure | result | target | |\n| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\n| stage | wall time | peak memory |\n| --- | --- | --- |")
    for stage, run in stage_runs.items():
        print(f"| {stage} | {run.seconds:.1f} s | {run.peak_bytes / GIB:.2f} GiB |")


if __name__ == "__main__":
    main()
