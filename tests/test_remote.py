"""Shared builds: push a build to a DVC remote, and a fresh clone pulls it instead of retraining.

Two kinds of remote: a local folder, and S3, served by moto's S3-compatible server on the
loopback address, reached by DVC's S3 plugin (dvc-s3) through the remote's endpoint URL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import copy_build, free_port, run, stages_run

pytestmark = pytest.mark.slow

OUTPUTS = (
    "models/model.keras",
    "reports/metrics.json",
    "reports/lessons/digit-predictor/index.html",
)
# No credentials from the machine, and no look-up of EC2's metadata address for them: the
# tests reach only the loopback server.
NO_AWS = {
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def origin(tmp_path_factory, lesson_build):
    """A small committed build, to be pushed."""
    return copy_build(lesson_build[0], tmp_path_factory.mktemp("remote") / "origin")


def add_s3_remote(project: Path, name: str, url: str, endpoint: str, credentials: bool = True):
    run(["dvc", "remote", "add", name, url], project)
    run(["dvc", "remote", "modify", name, "endpointurl", endpoint], project)
    if credentials:
        # Secrets go to .dvc/config.local, which git ignores, as a course team's would.
        for key in ("access_key_id", "secret_access_key"):
            run(["dvc", "remote", "modify", "--local", name, key, "testing"], project)


def assert_pulled_and_nothing_reruns(origin: Path, colleague: Path, remote: str) -> None:
    assert not (colleague / "models/model.keras").exists()
    run(["dvc", "pull", "-r", remote], colleague, env=NO_AWS)
    assert "up to date" in run(["dvc", "status"], colleague).stdout
    assert stages_run(run(["dvc", "repro"], colleague).stdout) == []
    for name in OUTPUTS:
        assert (colleague / name).read_bytes() == (origin / name).read_bytes()


def test_a_build_pushed_to_a_folder_is_pulled_into_a_fresh_clone_and_nothing_reruns(
    tmp_path, origin
):
    run(["dvc", "remote", "add", "folder", str(tmp_path / "store")], origin)
    assert "pushed" in run(["dvc", "push", "-r", "folder"], origin).stdout
    run(["git", "commit", "-q", "-am", "Share builds through a folder"], origin)

    run(["git", "clone", "-q", str(origin), str(tmp_path / "colleague")], tmp_path)
    assert_pulled_and_nothing_reruns(origin, tmp_path / "colleague", "folder")


def test_a_build_pushed_to_s3_is_pulled_into_a_fresh_clone_and_nothing_reruns(
    tmp_path, origin, s3_endpoint
):
    add_s3_remote(origin, "s3", "s3://course/digits", s3_endpoint)
    pushed = run(["dvc", "push", "-r", "s3"], origin, env=NO_AWS).stdout
    assert "pushed" in pushed
    run(["git", "commit", "-q", "-am", "Share builds through S3"], origin)

    run(["git", "clone", "-q", str(origin), str(tmp_path / "colleague")], tmp_path)
    colleague = tmp_path / "colleague"
    for key in ("access_key_id", "secret_access_key"):
        run(["dvc", "remote", "modify", "--local", "s3", key, "testing"], colleague)
    assert_pulled_and_nothing_reruns(origin, colleague, "s3")


def push_fails(project: Path, remote: str, **env: str) -> str:
    """Push to a broken remote (with `env` set too): DVC's own error line; the local build
    stays as it was."""
    before = {name: (project / name).read_bytes() for name in OUTPUTS}
    result = run(["dvc", "push", "-r", remote], project, check=False, env=NO_AWS | env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert {name: (project / name).read_bytes() for name in OUTPUTS} == before
    assert "up to date" in run(["dvc", "status"], project).stdout
    return result.stderr


def test_a_wrong_endpoint_is_refused_with_dvcs_error(origin):
    add_s3_remote(origin, "nowhere", "s3://course/digits", f"http://127.0.0.1:{free_port()}")
    # boto retries a refused connection, with pauses between (about 10 s here); its first
    # attempt ends in the same error.
    error = push_fails(origin, "nowhere", AWS_MAX_ATTEMPTS="1")
    assert error.startswith("ERROR: unexpected error - Could not connect to the endpoint URL")


def test_missing_credentials_are_refused_with_dvcs_error(origin, s3_endpoint):
    add_s3_remote(origin, "anonymous", "s3://course/digits", s3_endpoint, credentials=False)
    error = push_fails(origin, "anonymous")
    assert error.startswith("ERROR: unexpected error - Unable to locate credentials")


def test_a_missing_bucket_is_refused_with_dvcs_error(origin, s3_endpoint):
    add_s3_remote(origin, "nobucket", "s3://no-such-bucket/digits", s3_endpoint)
    error = push_fails(origin, "nobucket")
    assert error.startswith("ERROR: unexpected error - The specified bucket does not exist")
    assert "(NoSuchBucket)" in error
