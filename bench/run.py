"""Benchmark: the lesson's script against the pipeline, on this machine, in one run.

    make bench            # or: python -m bench.run [--rounds N]

Works in a clone of the committed project in a temporary folder, so the workspace's own
build is left alone. It first times what a course author's first build costs: `make venv` in
the fresh clone (with an empty uv cache, so every package is downloaded) and then `make repro`
(which also fills pip's and DVC's caches for what follows). Then it alternates, round after
round: the lesson's script (bench/lesson.py, reading the same mnist.npz), the first build of
another fresh clone with the default variations (`make repro`, after an untimed `make venv`),
and `dvc repro --force` (every stage of the lesson, MNIST fetched again). Then it times a
no-op `dvc repro`, a render-only change, a revert restored from the run-cache, and each stage
alone for its peak memory, then `make test` as many times as there are rounds, and prints
Markdown tables with the targets: first issue 32's, each a median of the rounds and a ratio of
the lesson's script, then the others. The machine is named by its CPU model and instruction
set, with the load average before and after: other processes may share its cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import checks, dvc_share
from tests.helpers import (
    LESSON_STAGES,
    VALUES_ON,
    execute_notebook,
    printed,
    set_params,
    set_variants,
    stages_run,
)
from tools import schedule

ROOT = Path(__file__).resolve().parents[1]
STAGES = tuple(LESSON_STAGES)
# The stages that build the Keras lesson (the course's first) from the data, as issue 32's
# `dvc repro --force` of the lesson's stages: the work of the lesson's script (load, /255,
# fit, evaluate, predict, plot) and that lesson's page, notebooks and key. The scikit-learn
# model and the other lessons' pages have no counterpart in the script; the full forced
# build, which runs them too, is timed beside (`dvc repro --force`).
LESSONS_OWN = ["download", "prepare", "train", "evaluate", "render", "compare", "values", "home",
               "notebook@digit-predictor", "key_notebook@digit-predictor",
               "page@digit-predictor", "answer_key@digit-predictor", "instructor_home"]  # fmt: skip
# The accuracy each default variation must reach on the 10,000 test images.
VARIANT_TARGETS = {"logistic": 0.90, "assignment": 0.97, "cnn": 0.99}
GIB = 2**30
# The targets, as ratios of the lesson's script measured in the same run, so that they hold
# on any machine. Issue 32's three, each a median of the rounds: `make test`, the first build
# of a fresh clone with the default variations (`make repro`), and `dvc repro --force` of the
# lesson's stages. Then a no-op `dvc repro`.
SUITE_TARGET = 10
FIRST_BUILD_TARGET = 5
FORCED_TARGET = 1.1
NOOP_TARGET = 0.05
# LESSONS_OWN's first stages, which do the lesson script's work; the rest build the course.
SCRIPT_STAGES = 5


@dataclass
class Run:
    seconds: float
    peak_bytes: int
    output: str
    returncode: int = 0
    cpu_seconds: float = 0.0


def measure(command: list[str], cwd: Path, check: bool = True, **env_vars: str) -> Run:
    """Wall time, CPU time (user and system) and peak resident memory of a command and every
    process it waited for; a command that fails ends the benchmark, unless `check` is false."""
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
    if check and process.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed:\n{output[-3000:]}")
    # ru_maxrss covers the child and the largest of the descendants it waited for (KiB).
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, usage.ru_maxrss * 1024, output, process.returncode, cpu)


def fit_seconds(output: str) -> dict[str, float]:
    """The seconds each stage's `fit` took, as the train stage prints them, by stage."""
    found, stage = {}, None
    for line in output.splitlines():
        if line.startswith("Running stage '"):
            stage = line.split("'")[1]
        elif line.startswith("train: ") and stage:
            found[stage] = float(re.search(r" in ([\d.]+) s ", line).group(1))
    return found


def browser_prediction_ms(page: Path, repeats: int = 20) -> dict[str, float]:
    """Milliseconds per prediction of each network on the course page, in headless Chromium:
    the median of `repeats` runs on the first test digit's 28x28 image, after one warm-up."""
    from playwright.sync_api import sync_playwright

    from tests.helpers import BROWSER_ARGS, chromium

    timing = """([repeats]) => {
      const networks = DigitPredictor.readNetworks();
      const image = new Float32Array(784).map((_, i) => ((i * 37) % 255) / 255);
      const result = {};
      for (const network of networks) {
        DigitPredictor.predictDigit(network, image);
        const times = [];
        for (let i = 0; i < repeats; i++) {
          const start = performance.now();
          DigitPredictor.predictDigit(network, image);
          times.push(performance.now() - start);
        }
        times.sort((a, b) => a - b);
        result[network.name] = times[times.length >> 1];
      }
      return result;
    }"""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        view = browser.new_page()
        view.goto(page.as_uri(), wait_until="load")
        found = view.evaluate(timing, [repeats])
        browser.close()
    return found


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


# The instruction sets that decide which code oneDNN and XLA run, widest first, as
# /proc/cpuinfo's flags name them.
VECTOR_FLAGS = ("avx512f", "avx2", "avx")


def instruction_set() -> str:
    """The CPU's widest vector instructions and their AVX-512 extensions, from /proc/cpuinfo
    (the stages hold oneDNN to AVX2 on every CPU; the lesson's script uses them all)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return "instruction set unknown (no /proc/cpuinfo)"
    flags: list[str] = []
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            flags = line.split(":", 1)[1].split()
            break
    widest = next((flag for flag in VECTOR_FLAGS if flag in flags), None)
    if widest is None:
        return "no AVX"
    if widest != "avx512f":
        return widest.upper()
    extensions = sorted(
        flag.removeprefix("avx512").lstrip("_").upper()
        for flag in flags
        if flag.startswith("avx512")
    )
    return "AVX-512 (" + ", ".join(extensions) + ")"


def fresh_build(folder: Path, number: int, python: str, uv_cache: Path) -> Run:
    """`make repro` in a fresh clone of the committed project, with the default variations,
    as a course author's first build (the clone's `make venv` before it is not timed, and
    finds the uv cache full). The clone is removed afterwards."""
    clone = folder / f"fresh-{number}"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    measure(["make", "venv", f"PYTHON={python}"], clone, UV_CACHE_DIR=str(uv_cache))
    run = measure(["make", "repro"], clone)
    shutil.rmtree(clone)
    return run


def suite_summary(output: str) -> str:
    """pytest's last line, "671 passed, 1581 warnings in 530.19s", without its frame; make
    prints its own lines after it."""
    found = re.findall(r"^=* ?(\d+ (?:passed|failed).* in [\d.]+s.*?)(?: =+)?$", output, flags=re.M)
    return found[-1] if found else "no summary line: see the output"


def load() -> str:
    """The load average over 1, 5 and 15 minutes: how busy other processes kept the cores."""
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def issue_rows(
    lesson: list[float], first: list[float], suite: list[float], forced: list[float]
) -> list[tuple[str, ...]]:
    """Issue 32's table: each measure's rounds, their median and its ratio to the median of
    the lesson's script, against the target."""
    lesson_s = statistics.median(lesson)
    return [
        ("the lesson's script (bench/lesson.py)",
         ", ".join(f"{value:.1f}" for value in lesson) + " s", f"{lesson_s:.1f} s = 1x",
         "baseline", ""),
        target_row("first build of a fresh clone with the variations (`make repro`)", first,
                   lesson, FIRST_BUILD_TARGET),
        target_row("`make test`", suite, lesson, SUITE_TARGET),
        target_row("`dvc repro --force` of the lesson's stages", forced, lesson, FORCED_TARGET),
    ]  # fmt: skip


def target_row(
    name: str,
    seconds: list[float],
    lesson: list[float],
    target: float,
    verdicts: tuple[str, str] = ("met", "**not met**"),
) -> tuple[str, ...]:
    """A measure's row in issue 32's table: its rounds, their median as a ratio of the lesson's
    script's median, the target, and the first verdict if the ratio is at most the target,
    else the second."""
    median = statistics.median(seconds)
    ratio = median / statistics.median(lesson)
    rounds = ", ".join(f"{value:.1f}" for value in seconds)
    verdict = verdicts[0] if ratio <= target else verdicts[1]
    return (name, f"{rounds} s", f"{median:.1f} s = {ratio:.2f}x", f"<= {target}x", verdict)


def forced_parts(seconds: float, output: str) -> dict[str, float]:
    """One forced run of the lesson's stages, split from dvc_share's figures: the commands of
    the stages that do the script's work (LESSONS_OWN's first SCRIPT_STAGES), the course
    stages' commands, DVC's own work in its process, and the rest of the wall time (the
    process's start, DVC's import, its exit)."""
    try:
        figures = dvc_share.parse(output)
    except ValueError as error:
        raise SystemExit(f"bench: the forced run of the lesson's stages: {error}") from None
    commands = [command["seconds"] for command in figures["commands"]]
    if len(commands) != len(LESSONS_OWN):
        raise SystemExit(
            f"bench: the forced run of the lesson's stages timed {len(commands)} commands, "
            f"expected {len(LESSONS_OWN)}"
        )
    return {
        "script": sum(commands[:SCRIPT_STAGES]),
        "course": sum(commands[SCRIPT_STAGES:]),
        "dvc": figures["seconds"] - sum(commands),
        "start": seconds - figures["seconds"],
    }


def forced_split(lesson: list[float], runs: list[dict[str, float]]) -> list[tuple[str, ...]]:
    """Where the forced run of the lesson's stages goes (`forced_parts` of each round), each
    part a median of the rounds and a ratio of the lesson's script's median; then what the
    target leaves for the script's work once the rest is paid."""
    lesson_s = statistics.median(lesson)
    median = {name: statistics.median(run[name] for run in runs) for name in runs[0]}

    def row(name: str, seconds: float) -> tuple[str, ...]:
        return (name, f"{seconds:.1f} s = {seconds / lesson_s:.2f}x")

    rest = median["course"] + median["dvc"] + median["start"]
    return [
        row(f"the commands of {', '.join(LESSONS_OWN[:SCRIPT_STAGES])} (the script's work)",
            median["script"]),
        row(f"the commands of the {len(LESSONS_OWN) - SCRIPT_STAGES} course stages",
            median["course"]),
        row("DVC's own work (reading its files, checking and caching files, rewriting "
            "dvc.lock after each stage)", median["dvc"]),
        row("the process's start and exit (Python, DVC's import)", median["start"]),
        row(f"what {FORCED_TARGET}x leaves for the script's work once the rest is paid",
            FORCED_TARGET * lesson_s - rest),
    ]  # fmt: skip


def build_floor(lesson: list[float], builds: list[Run], cores: int) -> tuple[str, ...]:
    """The first build's CPU time (every process it waited for) over the cores, each round
    and their median, as a ratio of the lesson's script's median: a lower bound for that
    round's work, which no order of the same work could beat (the CPU time itself may change
    with how many threads share the cores)."""
    return target_row(
        f"the first build's CPU time over the {cores} cores: a lower bound for its wall time",
        [build.cpu_seconds / cores for build in builds],
        lesson,
        FIRST_BUILD_TARGET,
        ("at or below the target", "**above the target**"),
    )


def print_rows(rows: list[tuple[str, ...]]) -> None:
    """A Markdown table's rows, under a header already printed."""
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    rounds = parser.parse_args().rounds

    load_before = load()
    with tempfile.TemporaryDirectory(prefix="digit-bench-") as folder:
        project = Path(folder) / "project"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(project)], check=True)
        print(f"bench: make venv and make repro in {project}", flush=True)
        # The interpreter this venv was made from, as a course author's python3.
        python = getattr(sys, "_base_executable", sys.executable)
        uv_cache = Path(folder) / "uv-cache"
        venv = measure(["make", "venv", f"PYTHON={python}"], project, UV_CACHE_DIR=str(uv_cache))
        # The lesson's own stages first (the variations turned off), then the variations.
        set_variants(project, {})
        first_build = measure(["make", "repro"], project)
        subprocess.run(["git", "checkout", "-q", "params.yaml"], cwd=project, check=True)
        print("bench: the default variations", flush=True)
        variants_build = measure(["dvc", "repro"], project)
        variant_fits = fit_seconds(variants_build.output)
        variant_scores = {
            name: json.loads((project / f"reports/variants/{name}/metrics.json").read_text())
            for name in VARIANT_TARGETS
        }
        page_bytes = (project / "reports/lessons/digit-predictor/index.html").stat().st_size
        browser_ms = browser_prediction_ms(project / "reports/lessons/digit-predictor/index.html")
        set_variants(project, {})
        measure(["dvc", "repro"], project)
        lesson_page_bytes = (project / "reports/lessons/digit-predictor/index.html").stat().st_size
        figures = Path(folder) / "lesson-figures"
        figures.mkdir()
        lesson = [sys.executable, str(ROOT / "bench/lesson.py"), "data/raw/mnist.npz", str(figures)]

        # What every process that runs a network pays before its first step: the lesson's
        # script once, the pipeline twice (train, evaluate).
        import_keras = [
            sys.executable,
            "-c",
            "from digits import repeatable; repeatable.import_keras()",
        ]
        # The lesson's own stages, forced in one DVC run (LESSONS_OWN), DVC run as the `dvc`
        # command runs it, with each stage's command timed (bench/dvc_share.py).
        same_work = [
            sys.executable, "-m", "bench.dvc_share",
            "repro", "--force", "--single-item", *LESSONS_OWN,
        ]  # fmt: skip
        lesson_runs, forced_runs, import_runs, same_runs, fresh_runs = [], [], [], [], []
        same_parts: list[dict[str, float]] = []
        for number in range(1, rounds + 1):
            lesson_runs.append(measure(lesson, project))
            fresh_runs.append(fresh_build(Path(folder), number, python, uv_cache))
            forced_runs.append(measure(["dvc", "repro", "--force"], project))
            same_runs.append(measure(same_work, project))
            same_parts.append(forced_parts(same_runs[-1].seconds, same_runs[-1].output))
            import_runs.append(measure(import_keras, project))
            print(
                f"bench: round {number}: lesson {lesson_runs[-1].seconds:.1f} s, "
                f"a fresh clone's make repro {fresh_runs[-1].seconds:.1f} s, "
                f"dvc repro --force {forced_runs[-1].seconds:.1f} s, "
                f"the lesson's stages {same_runs[-1].seconds:.1f} s",
                flush=True,
            )
        assert stages_run(same_runs[-1].output) == LESSONS_OWN
        assert stages_run(forced_runs[-1].output) == list(STAGES)

        noop = [measure(["dvc", "repro"], project) for _ in range(3)]
        assert all(stages_run(run.output) == [] for run in noop)

        set_params(project, render__grid_size=4)
        render_change = measure(["dvc", "repro"], project)
        assert stages_run(render_change.output) == ["render", *VALUES_ON]
        set_params(project, render__grid_size=5)
        set_params(project, train__epochs=2)
        changed = measure(["dvc", "repro"], project)
        set_params(project, train__epochs=5)
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

        # The student's notebook, run at full size as a student would (offline: see
        # tests/helpers.OFFLINE_MNIST), against the pipeline's accuracy.
        print("bench: the student notebook at full size", flush=True)
        started = time.perf_counter()
        ran = execute_notebook(
            project / "reports/lessons/digit-predictor/digit-predictor.ipynb",
            project / "data/raw/mnist.npz",
            Path(folder),
        )
        notebook_seconds = time.perf_counter() - started
        found = re.findall(r"test accuracy: ([\d.]+)%", printed(ran.cells))
        notebook_accuracy = float(found[-1]) / 100 if found else float("nan")

        # The test suite, as a contributor runs it: in the same clone, as committed (from HEAD,
        # as DVC has staged the dvc.lock of the builds above), once a round.
        subprocess.run(["git", "checkout", "-q", "HEAD", "--", "."], cwd=project, check=True)
        suites = []
        for number in range(1, rounds + 1):
            print(f"bench: make test, round {number}", flush=True)
            # A failed test is reported with the suite's time, not the end of the benchmark.
            suites.append(measure(["make", "test"], project, check=False))
            summary = suite_summary(suites[-1].output)
            print(f"bench: make test, round {number}: {suites[-1].seconds:.1f} s ({summary})")
        suite = suites[-1]
        tests_passed = suite_summary(suite.output)

    lesson_s = statistics.median(run.seconds for run in lesson_runs)
    forced_s = statistics.median(run.seconds for run in forced_runs)
    same_s = statistics.median(run.seconds for run in same_runs)
    noop_s = statistics.median(run.seconds for run in noop)
    import_s = statistics.median(run.seconds for run in import_runs)
    suite_s = statistics.median(run.seconds for run in suites)
    failed_suites = [run for run in suites if run.returncode]
    setup_s = venv.seconds + first_build.seconds
    with_variants_s = setup_s + variants_build.seconds
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
        ("the above, then the default variations' stages (`dvc repro`, one at a time)",
         f"{setup_s:.1f} s + {variants_build.seconds:.1f} s = {with_variants_s:.1f} s"
         f" = {with_variants_s / lesson_s:.2f}x the lesson", "", ""),
        ("`dvc repro --force` of the lesson's stages (MNIST fetched again; LESSONS_OWN)",
         f"{same_s:.1f} s = {same_s / lesson_s:.2f}x the lesson", f"<= {FORCED_TARGET}x",
         verdict(same_s <= FORCED_TARGET * lesson_s)),
        ("`dvc repro --force`: every stage, the scikit-learn model and three lessons' pages too",
         f"{forced_s:.1f} s = {forced_s / lesson_s:.2f}x the lesson", "", ""),
        ("of which TensorFlow's import, in train and in evaluate (the lesson: once)",
         f"2 x {import_s:.1f} s = {2 * import_s / lesson_s:.2f}x the lesson", "", ""),
        (f"`make test` (the whole suite: {tests_passed})",
         f"{suite_s:.0f} s = {suite_s / lesson_s:.1f}x the lesson",
         f"<= {SUITE_TARGET:.1f}x",
         verdict(suite_s <= SUITE_TARGET * lesson_s and not failed_suites)),
        ("no-op `dvc repro`", f"{noop_s:.2f} s = {noop_s / lesson_s:.3f}x the lesson",
         f"<= {NOOP_TARGET}x", verdict(noop_s <= NOOP_TARGET * lesson_s)),
        ("`render.grid_size` 5 -> 4, `dvc repro`", f"{render_change.seconds:.1f} s", "<= 5 s",
         verdict(render_change.seconds <= 5)),
        ("`train.epochs` 5 -> 2 -> 5: the revert",
         f"{revert.seconds:.1f} s, {'restored from the run-cache' if restored else 'retrained'}"
         f" (the change itself: {changed.seconds:.1f} s)", "no training", verdict(restored)),
        ("peak memory of any stage", f"{peak / GIB:.2f} GiB ({peak_stage})", "<= 1 GiB",
         verdict(peak <= GIB)),
        ("training throughput, batch size 32", f"{images_per_second:,} images/s",
         ">= 30,000 images/s", verdict(images_per_second >= 30_000)),
        ("the student notebook, run at full size",
         f"test accuracy {notebook_accuracy:.4f} in {notebook_seconds:.0f} s; the pipeline's "
         f"{accuracy:.4f}: {abs(notebook_accuracy - accuracy) * 100:.2f} points apart",
         "<= 0.5 points", verdict(abs(notebook_accuracy - accuracy) <= 0.005)),
        ("test accuracy (default params)",
         f"{accuracy:.4f} (lesson script: {float(lesson_accuracy[-1]):.4f})", ">= 0.975",
         verdict(accuracy >= 0.975)),
    ]  # fmt: skip
    print(
        f"\nMachine: {cpu_model()}, {instruction_set()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"Load average (1, 5, 15 min) before: {load_before}; after: {load()}")
    print(f"Medians of {rounds} alternating rounds.\n")
    print("| issue 32's measure | rounds | median = x the lesson | target | |")
    print("| --- | --- | --- | --- | --- |")
    print_rows(
        issue_rows(
            [run.seconds for run in lesson_runs],
            [run.seconds for run in fresh_runs],
            [run.seconds for run in suites],
            [run.seconds for run in same_runs],
        )
    )
    print_rows([build_floor([run.seconds for run in lesson_runs], fresh_runs, schedule.cores())])
    print("\n| where `dvc repro --force` of the lesson's stages goes (medians) | x the lesson |")
    print("| --- | --- |")
    print_rows(forced_split([run.seconds for run in lesson_runs], same_parts))
    # A suite's time says little if it failed: each round's own summary, under the table.
    for number, run in enumerate(suites, start=1):
        failed = " (**failed**: a time of a failing suite is no measure)" if run.returncode else ""
        print(f"\n`make test`, round {number}: {suite_summary(run.output)}{failed}")
    print()
    print("| measure | result | target | |\n| --- | --- | --- | --- |")
    print_rows(rows)
    print("\n| variation | fit | test accuracy | target | |\n| --- | --- | --- | --- | --- |")
    for name, target in VARIANT_TARGETS.items():
        accuracy = variant_scores[name]["test"]["accuracy"]
        fit = variant_fits.get(f"variant_train@{name}", float("nan"))
        met = verdict(accuracy >= target)
        print(f"| {name} | {fit:.1f} s | {accuracy:.4f} | >= {target} | {met} |")
    print(
        f"\nCourse page: {lesson_page_bytes / 2**20:.2f} MiB with the lesson's model alone "
        f"(target < 1.5), {page_bytes / 2**20:.2f} MiB with the default variations (< 3)."
    )
    print("\n| network | in-browser prediction (headless Chromium) | target |\n| --- | --- | --- |")
    for name, ms in browser_ms.items():
        target = "<= 100 ms" if name == "cnn" else "<= 5 ms"
        print(f"| {name} | {ms:.2f} ms | {target} |")
    print("\n| stage | wall time | peak memory |\n| --- | --- | --- |")
    for stage, run in stage_runs.items():
        print(f"| {stage} | {run.seconds:.1f} s | {run.peak_bytes / GIB:.2f} GiB |")

    # What the suite once asserted on a full-size build (issue 32): bench/checks.py.
    with tempfile.TemporaryDirectory(prefix="digit-checks-") as folder:
        if failed := checks.report(Path(folder)):
            raise SystemExit(f"bench: {failed} full-size check(s) failed")


if __name__ == "__main__":
    main()
