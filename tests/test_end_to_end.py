"""The lesson end to end: real MNIST through the mirror, the default params, `dvc repro`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stages import download
from tests.helpers import LESSON_STAGES, copy_project, run, set_params, set_variants, stages_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lesson(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("lesson") / "project")
    # The lesson at full size; the variations are built on small data in test_variants.py
    # and at full size by `make repro` and `make bench`, and so is the scikit-learn model
    # (tests/test_logistic_regression.py, and the small builds).
    set_params(project, data__source="mirror", sklearn__images=2500)
    set_variants(project, {})
    result = run(["dvc", "repro"], project)
    return project, result.stdout


def test_every_stage_runs_and_the_data_is_the_canonical_mnist(lesson):
    project, output = lesson
    assert stages_run(output) == LESSON_STAGES
    assert "verified MNIST from mirror" in output
    assert "Epoch 5/5" in output
    with np.load(project / "data/raw/mnist.npz") as raw:
        assert raw["x_train"].shape == (60_000, 28, 28) and raw["x_test"].shape == (10_000, 28, 28)
        for name, expected in download.ARRAY_SHA256.items():
            assert download.sha256(raw[name].tobytes()) == expected


def test_the_lesson_reaches_97_percent_on_the_test_set(lesson):
    project, _ = lesson
    metrics = json.loads((project / "reports/metrics.json").read_text())["test"]
    assert metrics["images"] == 10_000
    assert metrics["accuracy"] >= 0.97
    page = (project / "reports/lessons/digit-predictor/index.html").read_text()
    assert f"Test accuracy <strong>{metrics['accuracy']:.2%}</strong>" in page


@pytest.fixture
def seven(lesson):
    """The lesson's first test digit as a 140x140 PNG, dark ink on light paper."""
    project, _ = lesson
    with np.load(project / "data/raw/mnist.npz") as raw:
        digit = raw["x_test"][0]
    path = project / "seven.png"
    Image.fromarray(255 - digit).resize((140, 140), Image.Resampling.BILINEAR).save(path)
    return path


def test_your_own_seven_is_read_as_7_and_a_broken_file_is_named(lesson, seven):
    project, _ = lesson
    (project / "broken.png").write_bytes(b"this is not a picture")
    result = run(
        [sys.executable, "-m", "digits.predict", "seven.png", "broken.png"], project, check=False
    )
    assert result.returncode == 1
    assert result.stdout.startswith("seven.png: 7  (7: ")
    # Only the answers and the errors: none of TensorFlow's start-up notices.
    assert result.stderr == "error: broken.png: not a PNG, JPEG or other image Pillow can read\n"


def test_the_console_script_answers_in_json(lesson, seven):
    """`digit-predict`, installed into .venv by make, is the same command."""
    project, _ = lesson
    console_script = Path(sys.executable).parent / "digit-predict"
    as_json = run([str(console_script), "--json", "seven.png"], project)
    (record,) = json.loads(as_json.stdout)
    assert record["file"] == "seven.png"
    assert record["digit"] == 7 and record["top3"][0]["probability"] > 0.5
