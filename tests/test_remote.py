"""Shared builds: push a build to a DVC remote, and a fresh clone pulls it instead of retraining."""

from __future__ import annotations

import pytest

from tests.conftest import copy_project, run, set_params, stages_run

pytestmark = pytest.mark.slow


def test_a_pushed_build_is_pulled_into_a_fresh_clone_and_nothing_reruns(tmp_path, real_mnist):
    origin = copy_project(tmp_path / "origin")
    set_params(
        origin,
        data__source=str(real_mnist),
        prepare__train_size=1000,
        prepare__test_size=200,
        train__epochs=1,
    )
    run(["dvc", "remote", "add", "--default", "shared", str(tmp_path / "remote")], origin)
    run(["dvc", "repro"], origin)
    run(["git", "add", "-A"], origin)
    run(["git", "commit", "-q", "-m", "build"], origin)
    pushed = run(["dvc", "push"], origin).stdout
    assert "pushed" in pushed

    run(["git", "clone", "-q", str(origin), str(tmp_path / "colleague")], tmp_path)
    colleague = tmp_path / "colleague"
    assert not (colleague / "models/model.keras").exists()
    run(["dvc", "pull"], colleague)
    assert "up to date" in run(["dvc", "status"], colleague).stdout
    assert stages_run(run(["dvc", "repro"], colleague).stdout) == []
    for name in ("models/model.keras", "reports/metrics.json", "reports/index.html"):
        assert (colleague / name).read_bytes() == (origin / name).read_bytes()
