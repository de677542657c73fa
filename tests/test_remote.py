"""Shared builds: push a build to a DVC remote, and a fresh clone pulls it instead of retraining."""

from __future__ import annotations

import pytest

from tests.conftest import build_and_commit, run, small_project, stages_run

pytestmark = pytest.mark.slow


def test_a_pushed_build_is_pulled_into_a_fresh_clone_and_nothing_reruns(tmp_path, real_mnist):
    origin = small_project(tmp_path / "origin", real_mnist, train_size=1000, test_size=200)
    run(["dvc", "remote", "add", "--default", "shared", str(tmp_path / "remote")], origin)
    build_and_commit(origin)
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
