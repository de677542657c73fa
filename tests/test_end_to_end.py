"""The lesson end to end: real MNIST through the mirror, the default params, `dvc repro`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stages import download
from tests.conftest import copy_project, run, set_params, stages_run

pytestmark = pytest.mark.slow


def test_the_lesson_reaches_97_percent_on_the_test_set(tmp_path):
    project = copy_project(tmp_path / "project")
    set_params(project, data__source="mirror")
    result = run(["dvc", "repro"], project)
    assert stages_run(result.stdout) == ["download", "prepare", "train", "evaluate", "render"]
    assert "verified MNIST from mirror" in result.stdout

    with np.load(project / "data/raw/mnist.npz") as raw:
        assert raw["x_train"].shape == (60_000, 28, 28) and raw["x_test"].shape == (10_000, 28, 28)
        for name, expected in download.ARRAY_SHA256.items():
            assert download.sha256(raw[name].tobytes()) == expected
    metrics = json.loads((project / "reports/metrics.json").read_text())["test"]
    assert metrics["images"] == 10_000
    assert metrics["accuracy"] >= 0.97
    assert "Epoch 5/5" in result.stdout
