"""The logistic-regression lesson's stage: scikit-learn on MNIST's images joined, split at
random, with outputs that repeat byte for byte whatever threads or kernels the environment
asks for."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from digits import blas
from pipeline import artifacts, cli, config
from stages import logistic_regression
from tests.helpers import ROOT

SMALL = {"images": 1500, "test_size": 0.2, "random_state": 42, "max_iter": 10000, "C": 1.0}
OUTPUTS = ["model.pkl", "metrics.json", "predictions.csv", "confusion_matrix.csv", "per_class.csv"]


def stage_project(folder: Path, **changes) -> Path:
    """A folder with params.yaml holding the sklearn section (SMALL, with `changes`)."""
    folder.mkdir(parents=True, exist_ok=True)
    tree = {"sklearn": SMALL | changes}
    (folder / "params.yaml").write_text(yaml.safe_dump(tree), encoding="utf-8")
    return folder


def stage_argv(raw: Path, out: Path) -> list[str]:
    return [
        "--raw", str(raw), "--model", str(out / "model.pkl"),
        "--metrics", str(out / "metrics.json"), "--predictions", str(out / "predictions.csv"),
        "--confusion", str(out / "confusion_matrix.csv"),
        "--per-class", str(out / "per_class.csv"),
    ]  # fmt: skip


def unheld() -> dict[str, str]:
    """This environment without the hold's settings, as a user's shell would be."""
    return {key: value for key, value in os.environ.items() if key not in blas.HELD}


def run_stage(project: Path, raw: Path, out: Path, env: dict[str, str]):
    """The stage as dvc.yaml runs it, from `project`, with `env` added to the environment."""
    environment = unheld() | {"PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "stages.logistic_regression", *stage_argv(raw, out)],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
    )


def test_the_outputs_repeat_byte_for_byte_with_two_threads_and_other_kernels_asked(
    real_mnist, tmp_path
):
    project = stage_project(tmp_path / "project")
    asked = {
        "one": {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        # Two threads, and kernels and NumPy loops of another choice than the hold's: the
        # stage's hold overrides all of them.
        "two": {
            "OMP_NUM_THREADS": "2",
            "OPENBLAS_NUM_THREADS": "2",
            "OPENBLAS_CORETYPE": "Sandybridge",
            "NPY_DISABLE_CPU_FEATURES": "",
        },
    }
    built = {}
    for name, env in asked.items():
        result = run_stage(project, real_mnist, tmp_path / name, env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("logistic_regression: converged after "), result.stdout
        built[name] = {file: (tmp_path / name / file).read_bytes() for file in OUTPUTS}
    assert built["one"] == built["two"]

    out = tmp_path / "one"
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    model = pickle.loads((out / "model.pkl").read_bytes())
    assert metrics["images"] == 1500
    assert metrics["train"] == {"images": 1200}
    assert metrics["test"]["images"] == 300
    assert metrics["iterations"] == int(model.n_iter_[0]) < SMALL["max_iter"]
    assert metrics["converged"] is True
    assert metrics["test"]["weights"] == 784 * 10 + 10
    # Each prediction names its image among MNIST's training images then test images, and
    # the model read from the file gives the written answers again.
    predictions = pd.read_csv(out / "predictions.csv")
    with np.load(real_mnist) as mnist:
        images = np.concatenate([mnist["x_train"], mnist["x_test"]])[:1500]
        digits = np.concatenate([mnist["y_train"], mnist["y_test"]])[:1500]
    assert list(predictions["true"]) == list(digits[predictions["image"]])
    again = model.predict(images[predictions["image"]].reshape(-1, 784) / 255.0)
    assert list(again) == list(predictions["predicted"])
    accuracy = np.mean(predictions["true"] == predictions["predicted"])
    assert metrics["test"]["accuracy"] == round(float(accuracy), 6) > 0.8


def test_the_held_process_runs_haswell_kernels_and_numpys_avx2_loops():
    """run_held starts the command again in the held environment: both OpenBLAS libraries
    report Haswell's kernels there, and NumPy's AVX-512 loops are off."""
    environment = unheld()
    started = subprocess.run(
        [sys.executable, "-c", "from digits import blas; "
         "blas.run_held('threadpoolctl', ['-i', 'numpy', 'scipy.linalg'])"],
        cwd=ROOT, env=environment, capture_output=True, text=True, check=True,
    )  # fmt: skip
    libraries = [entry for entry in json.loads(started.stdout) if entry["user_api"] == "blas"]
    assert len(libraries) == 2  # NumPy's OpenBLAS and SciPy's.
    assert {entry["architecture"] for entry in libraries} == {"Haswell"}
    check = (
        "from numpy._core._multiarray_umath import __cpu_features__ as found; "
        "print(found['X86_V4'], found['AVX512_ICL'], found['AVX2'])"
    )
    held = subprocess.run(
        [sys.executable, "-c", check], env=environment | blas.HELD,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert held.stdout == "False False True\n"


def test_one_thread_holds_every_pool_to_one_whatever_the_environment_says():
    from threadpoolctl import threadpool_info

    with blas.one_thread():
        assert {pool["num_threads"] for pool in threadpool_info()} == {1}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"test_size": 0},
            "params.yaml: sklearn.test_size = 0 is not a number above 0 and below 1",
        ),
        (
            {"images": 80_000},
            "params.yaml: sklearn.images = 80000 is not a whole number from 100 to 70000",
        ),
        (
            {"C": 0},
            "params.yaml: sklearn.C = 0 is not a number above 0 (at most 1e6)",
        ),
        (
            {"images": 100, "test_size": 0.95},
            "params.yaml: sklearn.test_size = 0.95 of sklearn.images = 100 leaves 5 training "
            "and 95 test images; each part needs at least 10",
        ),
    ],
)
def test_a_setting_out_of_range_is_named_in_one_line(changes, message, tmp_path, monkeypatch):
    monkeypatch.chdir(stage_project(tmp_path, **changes))
    with pytest.raises(config.ParamsError) as refused:
        logistic_regression.main(stage_argv(tmp_path / "raw.npz", tmp_path / "out"))
    assert str(refused.value) == message
    assert not (tmp_path / "out").exists()


def test_a_raw_file_that_is_not_mnist_is_named_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(stage_project(tmp_path))
    raw = tmp_path / "raw.npz"
    artifacts.write_npz(raw, {"x_train": np.zeros((3, 28, 28), np.uint8)})
    with pytest.raises(cli.StageError) as refused:
        logistic_regression.main(stage_argv(raw, tmp_path / "out"))
    assert str(refused.value).startswith(f"{raw} is not the MNIST file the download stage writes (")
    assert "x_test" in str(refused.value)
    assert not (tmp_path / "out").exists()
