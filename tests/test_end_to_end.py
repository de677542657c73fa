"""The lesson end to end, on the session's small real-data build (tests/conftest.py:
lesson_build, 2,000 training and 500 test images, one epoch): the page quotes the build's
score, and a student's own digit is read by the trained model.

The lesson at full size (MNIST fetched through the PyPI mirror, every stage, five epochs, at
least 97 % on the 10,000 test images, a seven read as 7 by that model) is `make bench`'s
(bench/checks.py) since issue 32; docs/benchmarks.md says where each check went. The stages a
build runs, and the canonical arrays it verifies: tests/test_pipeline.py, on this build.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seven(lesson_build, tmp_path_factory) -> Path:
    """The lesson's first test digit as a 140x140 PNG, dark ink on light paper (a clear 7,
    which the small build's model reads right too)."""
    with np.load(lesson_build[0] / "data/raw/mnist.npz") as raw:
        digit = raw["x_test"][0]
    path = tmp_path_factory.mktemp("digits") / "seven.png"
    Image.fromarray(255 - digit).resize((140, 140), Image.Resampling.BILINEAR).save(path)
    return path


def test_the_page_quotes_the_builds_accuracy_on_its_test_images(lesson_build):
    project, _ = lesson_build
    metrics = json.loads((project / "reports/metrics.json").read_text())["test"]
    assert metrics["images"] == 500
    page = (project / "reports/lessons/digit-predictor/index.html").read_text()
    assert f"Test accuracy <strong>{metrics['accuracy']:.2%}</strong>" in page


def test_your_own_seven_is_read_as_7_and_a_broken_file_is_named(lesson_build, seven):
    project, _ = lesson_build
    broken = seven.with_name("broken.png")
    broken.write_bytes(b"this is not a picture")
    result = run(
        [sys.executable, "-m", "digits.predict", str(seven), str(broken)], project, check=False
    )
    assert result.returncode == 1
    assert result.stdout.startswith(f"{seven}: 7  (7: ")
    # Only the answers and the errors: none of TensorFlow's start-up notices.
    assert result.stderr == f"error: {broken}: not a PNG, JPEG or other image Pillow can read\n"


def test_the_console_script_answers_in_json(lesson_build, seven):
    """`digit-predict`, installed into .venv by make, is the same command."""
    project, _ = lesson_build
    console_script = Path(sys.executable).parent / "digit-predict"
    as_json = run([str(console_script), "--json", str(seven)], project)
    (record,) = json.loads(as_json.stdout)
    assert record["file"] == str(seven)
    assert record["digit"] == 7 and record["top3"][0]["probability"] > 0.5
