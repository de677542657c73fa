"""Helpers shared by the tests and the benchmark: run the pipeline in a copy of the project.

No pytest here, so that bench/run.py can import it too; fixtures live in conftest.py.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from stages import download, render

ROOT = Path(__file__).resolve().parents[1]
# What a copy of the project needs to run: the pipeline, its params, code and pins.
# The project's code: the stages dvc.yaml runs, the packages they share, and the page's
# templates, scripts and styles.
CODE = ["stages", "pipeline", "digits", "courseware", "templates"]
PROJECT_FILES = [
    # The project's own: Python's compiled modules, which the stages and the scheduler write
    # as they run, stay out of a copy's commits as out of the project's.
    ".gitignore",
    "dvc.yaml",
    "params.yaml",
    "requirements.lock",
    "requirements-dev.lock",
    *CODE,
    "course",
    "reports/variants/README.md",
    "models/variants/README.md",
    ".dvc/plots/variants.json",
]


# The course's lessons, in order, and each lesson's stages (`<stage>@<lesson>`).
LESSONS = yaml.safe_load((ROOT / "course/course.yaml").read_text(encoding="utf-8"))["lessons"]
PER_LESSON = ["notebook", "key_notebook", "page", "answer_key"]


def lesson_stages(name: str) -> list[str]:
    """The four stages of one lesson, in the order `dvc repro` runs them."""
    return [f"{stage}@{name}" for stage in PER_LESSON]


def course_rebuilt(name: str) -> list[str]:
    """What editing one lesson's files reruns: the home pages and that lesson's stages."""
    return ["home", *lesson_stages(name), "instructor_home"]


# The stages of a build without variations that follow the models, and those of them that
# rerun when the build's values change (the home pages read the lessons' folders only).
VALUES_ON = ["values", *[f"{stage}@{name}" for stage in PER_LESSON for name in LESSONS]]
COURSE_STAGES = ["compare", *VALUES_ON]
BUILT_AFTER_MODELS = ["compare", "values", "home", *VALUES_ON[1:], "instructor_home"]
# The whole build without variations, in the order `dvc repro` runs it: `sklearn` is the
# logistic-regression lesson's model, which DVC runs after the Keras lesson's.
LESSON_STAGES = ["download", "prepare", "train", "evaluate", "render", "sklearn"]
LESSON_STAGES += BUILT_AFTER_MODELS


@functools.lru_cache(maxsize=8)
def _pipeline(text: str) -> dict:
    """dvc.yaml parsed, once for each text it has held: the odd-course-file tests ask for
    stages some thousand times, and parsing the file each time took about half of their time
    (issue 32). Keyed by the text, so that a test that edits a copy's dvc.yaml reads the
    edit; callers get their own copy of each entry (stage_entry goes through JSON)."""
    return yaml.safe_load(text)


def stage_entry(name: str, root: Path = ROOT) -> dict:
    """A stage of dvc.yaml with its `${paths.*}` filled in, and for a stage of a lesson or a
    variation (`<stage>@<name>`), its `${item}` or `${key}`: what DVC runs, read from the file."""
    tree = _pipeline((root / "dvc.yaml").read_text(encoding="utf-8"))
    paths = next(item["paths"] for item in tree["vars"] if isinstance(item, dict))
    stage, _, item = name.partition("@")
    entry = tree["stages"][stage]["do"] if item else tree["stages"][stage]
    filled = re.sub(
        r"\$\{(paths\.(\w+)|item|key)\}",
        lambda found: paths[found.group(2)] if found.group(2) else item,
        json.dumps(entry),
    )
    return json.loads(filled)


def run_stage(stage: str) -> None:
    """A stage of dvc.yaml run in-process in the current folder: its module's main() with the
    command dvc.yaml gives it (`python -m stages.<name> ...`), as DVC would run it, without
    DVC or a new Python."""
    import importlib
    import shlex

    python, dash_m, module, *argv = shlex.split(stage_entry(stage)["cmd"])
    assert (python, dash_m) == ("python", "-m")
    importlib.import_module(module).main(argv)


def add_an_epoch(history_file: Path) -> None:
    """history.csv as a training one epoch longer leaves it: the last epoch's row again, one
    epoch on. Written as a new file, since DVC may have linked the build's to its cache."""
    import pandas as pd

    history = pd.read_csv(history_file)
    next_epoch = history.iloc[[-1]].assign(epoch=history["epoch"].iloc[-1] + 1)
    history_file.unlink()
    pd.concat([history, next_epoch]).to_csv(history_file, index=False)


# Files this large (MNIST, the prepared images) are linked into a workspace, not copied.
LINKED_SIZE = 2**20


def workspace(built: Path, dest: Path) -> Path:
    """The working files of a built project (a shared build or a copy of one), without its git
    history and DVC cache: a folder in which a test changes what a stage reads (a report, a
    setting, a lesson) and runs the stages that follow in-process (`run_stage`), instead of
    retraining through `dvc repro`. Files of LINKED_SIZE or more are symbolic links to the
    build's: the course stages only read them, and a stage that writes one replaces the link
    (pipeline/artifacts.atomic_file), never the build's file."""

    def copy(source: str, target: str) -> None:
        if os.path.getsize(source) >= LINKED_SIZE:
            os.symlink(source, target)
        else:
            shutil.copy2(source, target)

    shutil.copytree(
        built,
        dest,
        ignore=shutil.ignore_patterns(".git", ".dvc", "__pycache__"),
        copy_function=copy,
    )
    return dest


def random_digits(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    return images, labels


def digests_of(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    return {name: download.sha256(array.tobytes()) for name, array in arrays.items()}


def venv_env() -> dict[str, str]:
    """The environment with this interpreter's folder first on PATH, as `make` sets it, so
    that dvc and the stages' `python` are the project's; and DVC's usage reports off."""
    # A repository a test makes has no `core.analytics false` until the test sets it, and
    # `dvc init` itself starts a detached daemon to send DVC's usage report from it. DVC
    # reads this variable before any config, so no command a test runs reports anything
    # (docs/benchmarks.md counts the daemons one suite run started before).
    return dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        DVC_NO_ANALYTICS="1",
    )


def run(
    command: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a command in the project's environment (plus `env`) and capture its output."""
    result = subprocess.run(
        command, cwd=cwd, env=venv_env() | (env or {}), capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{command} failed:\n{result.stdout}\n{result.stderr}")
    return result


def set_params(project: Path, **changes) -> None:
    """Set params in a copy, keys written with __ for dots: train__epochs=1."""
    params_file = project / "params.yaml"
    tree = yaml.safe_load(params_file.read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        tree[section][key] = value
    params_file.write_text(yaml.safe_dump(tree, sort_keys=False))


def copy_project(dest: Path) -> Path:
    """A fresh git + DVC repository holding the project's pipeline."""
    dest.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q"], dest)
    run(["git", "config", "user.email", "test@example.com"], dest)
    run(["git", "config", "user.name", "test"], dest)
    run(["dvc", "init", "-q"], dest)
    run(["dvc", "config", "core.analytics", "false"], dest)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-q", "-m", "project"], dest)
    return dest


def render_reports(test_set: Path, reports: Path, *, misclassified: int) -> None:
    """Run render on what evaluate left in `reports` (confusion.csv, per_class.csv, ...)."""
    render.render(
        test_set,
        reports / "predictions.csv",
        reports / "confusion.csv",
        reports / "per_class.csv",
        reports / "history.csv",
        reports / "figures",
        reports / "confused_pairs.csv",
        reports / "summary.md",
        grid_size=3,
        misclassified=misclassified,
        confused_pairs=3,
    )


def small_project(
    dest: Path,
    mnist: Path,
    *,
    train_size: int = 2000,
    test_size: int = 500,
    variants: dict | None = None,
) -> Path:
    """A copy of the project set to a cut of the real MNIST and one epoch, so it builds fast;
    the scikit-learn model splits as many images as the lesson's model uses.

    Without variations unless `variants` names some: the tests of the variations build them.
    """
    project = copy_project(dest)
    set_params(
        project,
        data__source=str(mnist),
        prepare__train_size=train_size,
        prepare__test_size=test_size,
        train__epochs=1,
        sklearn__images=train_size + test_size,
    )
    set_variants(project, variants or {})
    return project


def stand_in_reports(folder: Path) -> Path:
    """What evaluate and render leave behind in `folder`, for 30 random test digits (60 for
    training, in raw/mnist.npz), without training: stand-in metrics, predictions and
    networks, the figures render draws from them, and a comparison with a CNN variation."""
    import pandas as pd

    from pipeline import artifacts
    from stages import compare, evaluate, prepare

    # The digits of tests/conftest.py's `tiny_mnist`, so that a test may ask for both.
    rng = np.random.default_rng(0)
    x_train, y_train = random_digits(rng, 60)
    x_test, y_test = random_digits(rng, 30)
    raw = folder / "raw" / "mnist.npz"
    artifacts.write_npz(raw, {"x_train": x_train, "y_train": y_train, "x_test": x_test,
                              "y_test": y_test})  # fmt: skip
    test_set = folder / "test"
    prepare.prepare(raw, folder / "train", test_set, train_size=60, test_size=30)
    reports = folder / "reports"
    reports.mkdir()
    true = np.arange(30) % 10
    predicted = np.where(np.arange(30) % 7 == 0, (true + 1) % 10, true)
    pd.DataFrame(
        {"index": range(30), "true": true, "predicted": predicted, "confidence": 0.9}
    ).to_csv(reports / "predictions.csv", index=False)
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (true, predicted), 1)
    confusion = pd.DataFrame(matrix, columns=[str(d) for d in range(10)])
    confusion.insert(0, "true", range(10))
    confusion.to_csv(reports / "confusion.csv", index=False)
    pd.DataFrame(
        {"digit": range(10), "precision": 0.8, "recall": 0.8, "f1": 0.8, "support": 3}
    ).to_csv(reports / "per_class.csv", index=False)
    pd.DataFrame({"epoch": [0, 1], "accuracy": [0.5, 0.7], "loss": [1.0, 0.6]}).to_csv(
        reports / "history.csv", index=False
    )
    (reports / "metrics.json").write_text(
        json.dumps(
            {"test": {"accuracy": 0.8, "loss": 0.61, "macro_f1": 0.8, "images": 30, "weights": 7}}
        )
    )
    render_reports(test_set, reports, misclassified=5)
    cnn = reports / "variants" / "cnn"
    cnn.mkdir(parents=True)
    cnn_settings = {"model": {"kind": "cnn", "hidden_units": [128]}, "train": {"epochs": 1}}
    (cnn / "settings.json").write_text(
        json.dumps({"changes": {"model.kind": "cnn"}, **cnn_settings})
    )
    (cnn / "metrics.json").write_text(
        json.dumps(
            {"test": {"accuracy": 0.9, "loss": 0.3, "macro_f1": 0.9, "images": 30, "weights": 99}}
        )
    )
    pd.DataFrame({"epoch": [0], "accuracy": [0.9], "loss": [0.3]}).to_csv(
        cnn / "history.csv", index=False
    )
    # A stand-in network for each model: the page embeds whatever evaluate exported.
    network = {"layers": [{"type": "flatten"}, {"type": "dense", "units": 10,
               "activation": "softmax", "kernel": evaluate.encode(np.zeros((784, 10))),
               "bias": evaluate.encode(np.zeros(10))}]}  # fmt: skip
    (reports / "network.json").write_text(json.dumps(network))
    (cnn / "network.json").write_text(json.dumps(network))
    # The scikit-learn model, scored higher on a split of its own: it is listed, not ranked.
    scores = {"accuracy": 0.95, "loss": 0.2, "macro_f1": 0.95, "images": 14000, "weights": 7850}
    sklearn = {"test": scores, "train": {"images": 56000}, "images": 70000, "test_size": 0.2,
               "iterations": 261, "max_iter": 10000, "converged": True}  # fmt: skip
    (reports / "sklearn").mkdir()
    (reports / "sklearn" / "metrics.json").write_text(json.dumps(sklearn))
    compare.compare(
        reports / "metrics.json",
        reports / "history.csv",
        reports / "variants",
        folder / "models" / "variants",
        reports / "comparison",
        reports / "sklearn" / "metrics.json",
        names=["cnn"],
    )
    (folder / "model.keras").write_bytes(b"stand-in model")
    return folder


def copy_build(built: Path, dest: Path) -> Path:
    """A copy of a built project, its git history, DVC cache and run-cache included, for a
    test module to change as it likes: only what it changes is built again."""
    shutil.copytree(built, dest, symlinks=True)
    return dest


def set_variants(project: Path, variants: dict) -> None:
    """Replace the variants section of a copy's params.yaml."""
    params_file = project / "params.yaml"
    tree = yaml.safe_load(params_file.read_text())
    tree["variants"] = variants
    params_file.write_text(yaml.safe_dump(tree, sort_keys=False))


def build_and_commit(project: Path) -> str:
    """`dvc repro`, then commit the build as a course author would; return its output."""
    output = run(["dvc", "repro"], project).stdout
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", "build"], project)
    return output


def changed_stages(project: Path) -> set[str]:
    """The stages `dvc status --json` lists: those whose code, data or params changed."""
    return set(json.loads(run(["dvc", "status", "--json"], project).stdout))


def would_rerun(project: Path) -> list[str]:
    """What `dvc repro` would run now, in its order, found without running it: the stages
    `dvc status` lists and every stage downstream of one in DVC's graph (as `make repro`'s
    scheduler finds them, tools/schedule.py). It takes each stage that reruns to change what
    the next ones read, as a new model or a new setting does; where a stage may rerun with
    the same bytes (prepare's training images when only the test size changes), run that
    stage first, for real, so that `dvc status` sees the bytes. Retraining to see what
    reruns took minutes of the suite (issue 32); one test retrains and restores from the
    run-cache for real (tests/test_pipeline.py)."""
    from tools import schedule

    return schedule.to_run(schedule.read_pipeline(project), changed_stages(project))


def stages_run(output: str) -> list[str]:
    """The stages `dvc repro` says it ran, in order."""
    return [
        line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")
    ]


# Chromium as root and headless, with nothing that reaches out to the network by itself
# (this machine's closed network refuses those connections, many at a time).
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Asked once per process: asking Playwright starts a Python of its own.
@functools.cache
def chromium() -> str:
    """The Chromium that `make browser` got: Playwright's own if it is installed, else the
    system's `chromium`. Nothing is installed here: a test that installed software would pass
    on a machine where `make test` could not have set it up."""
    # Playwright is asked in a process of its own, since the tests call this inside their own
    # sync_playwright(), and Playwright's sync API refuses to start inside another.
    ask = (
        "from playwright.sync_api import sync_playwright\n"
        "with sync_playwright() as playwright:\n"
        "    print(playwright.chromium.executable_path)"
    )
    asked = subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True)
    playwrights = asked.stdout.strip() if asked.returncode == 0 else ""
    if playwrights and Path(playwrights).is_file():
        return playwrights
    found = shutil.which("chromium")
    where = playwrights or "Playwright did not say where"
    assert found, (
        f"no Chromium: Playwright's is not installed ({where}) and no `chromium` is on PATH; "
        "run `make browser`"
    )
    return found


# Keras' downloader cannot reach MNIST's canonical URL on these machines, and checks the
# canonical file's hash, which the build's rewritten data/raw/mnist.npz does not have (its four
# arrays are the canonical ones). A notebook run here gets this first cell, which points
# Keras' `get_file` at the build's verified arrays, so the student's own `load_data()` runs.
OFFLINE_MNIST = """\
import keras.src.datasets.mnist as keras_mnist
keras_mnist.get_file = lambda *args, **kwargs: {path!r}
"""
# Without a copy of MNIST to hand to Keras, a download fails at once, as it does offline.
NO_DOWNLOAD = """\
import keras.src.datasets.mnist as keras_mnist
def no_download(*args, **kwargs):
    raise OSError("no internet here: Keras cannot download MNIST")
keras_mnist.get_file = no_download
"""


def execute_notebook(notebook_path: Path, mnist: Path | None, workdir: Path, parameters: str = ""):
    """The notebook run as a student would run it, offline, with `parameters` injected after
    its cell tagged `parameters` (as papermill does); errors are kept in the cells' outputs.
    Keras's download gives it `mnist`, or, with None, fails as it does without internet."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(notebook_path, as_version=4)
    first = OFFLINE_MNIST.format(path=str(mnist)) if mnist else NO_DOWNLOAD
    cells = [nbformat.v4.new_code_cell(first)]
    for cell in notebook.cells:
        cells.append(cell)
        if parameters and "parameters" in cell.metadata.get("tags", []):
            cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["injected"]}))
    notebook.cells = cells
    client = NotebookClient(
        notebook,
        timeout=1800,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(workdir)}},
    )
    # matplotlib draws into the outputs, not to a screen.
    client.execute(env=dict(os.environ, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="2"))
    return notebook


def printed(cells) -> str:
    """What the cells printed."""
    return "".join(output.get("text", "") for cell in cells for output in cell.get("outputs", []))


def readable(text: str) -> str:
    """Text as a reader sees it, whatever its markup: HTML tags and entities, Markdown's
    backticks and asterisks, and line breaks made plain, so that a leak search finds a text
    however the page or the notebook wrote it."""
    import html
    import re

    text = re.sub(r"<[^>]+>", " ", html.unescape(text))
    return " ".join(re.sub(r"[`*]", "", text).split())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# A parent `make` (as `make test` is) passes its options on; a make a test starts begins afresh.
FRESH_MAKE = {"MAKEFLAGS": "", "MAKELEVEL": "", "MFLAGS": ""}


def make_dry_run(*targets: str, env: dict[str, str] | None = None) -> str:
    """What `make -n TARGET ...` would run in the project, as it prints it."""
    return subprocess.run(
        ["make", "-n", *targets],
        cwd=ROOT,
        env=os.environ | FRESH_MAKE | (env or {}),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
