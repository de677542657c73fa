"""Writing outputs: atomically, and so that equal content gives equal bytes.

Every writer here fills a temporary file and renames it into place only when it is complete,
so a run that is interrupted or fails leaves the old file or no file, never half of one. In a
DVC project the temporary lives in .dvc/tmp/partial (same filesystem, so the rename is
atomic), not beside the destination: a folder another stage reads whole (reports/variants,
models/variants) never holds a killed stage's leftover, which would change its hash.

Formats that would embed the time of writing (zip archives) are written with a fixed
timestamp, so rebuilding with the same params gives the same bytes and DVC sees no change.
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

# The earliest time a zip entry can carry; used for every entry so archives repeat exactly.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
# Where temporaries go in a DVC project: git and DVC ignore .dvc/tmp, and no stage reads it.
PARTIAL = Path(".dvc/tmp/partial")


def scratch(dest: Path) -> tuple[Path, str]:
    """The folder the temporaries for `dest` are made in, and the name they start with.

    In a DVC project (the nearest folder above `dest` holding .dvc) that is .dvc/tmp/partial,
    named after `dest`'s path in the project; elsewhere, or when .dvc/tmp is on another
    filesystem than `dest` (a rename across filesystems is a copy, not atomic), beside
    `dest`, named after it. `dest`'s folder must exist.
    """
    dest = Path(dest).absolute()
    for root in dest.parents:
        if (root / ".dvc").is_dir():
            folder = root / PARTIAL
            folder.mkdir(parents=True, exist_ok=True)
            if folder.stat().st_dev == dest.parent.stat().st_dev:
                return folder, "." + "+".join(dest.relative_to(root).parts)
            break
    return dest.parent, f".{dest.name}"


@contextmanager
def atomic_file(dest: Path) -> Iterator[Path]:
    """Yield a temporary path (see `scratch`); rename it to `dest` if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    folder, prefix = scratch(dest)
    if folder != dest.absolute().parent:
        # What a killed writer of `dest` left (a model can be large) goes now; DVC runs one
        # stage at a time on an output, so no other writer of `dest` is running.
        for leftover in folder.glob(f"{glob.escape(prefix)}.partial-*"):
            leftover.unlink(missing_ok=True)
    # Keep the destination's suffix: Keras, numpy and matplotlib choose the format by it.
    fd, name = tempfile.mkstemp(dir=folder, prefix=f"{prefix}.partial-", suffix=dest.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(FILE_MODE)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield a temporary folder (see `scratch`); it replaces `dest` if the block succeeds.

    What a crash leaves (a killed process, a machine that stops):
    - before the new folder is complete, or after it is in place: the old folder, or the new
      one, under `dest`;
    - between the two renames that swap them (a few microseconds): no `dest`, the old folder
      as `.<name>.old-*` and the new one as `.<name>.new-*` in the scratch folder;
    - in every case, possibly `.<name>.new-*` or `.<name>.old-*` folders in the scratch
      folder, which the next call for `dest` deletes before it starts.
    An exception in the block (a failed stage, Ctrl-C) leaves the old folder and nothing
    else. (Linux cannot swap two folders in one rename from Python's standard library.)
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for leftover in leftovers(dest):
        shutil.rmtree(leftover, ignore_errors=True)
    folder, prefix = scratch(dest)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f"{prefix}.new-"))
    old = folder / f"{prefix}.old-{tmp.name.rpartition('-')[2]}"
    try:
        yield tmp
        tmp.chmod(0o755)
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not dest.exists():
            os.replace(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def leftovers(dest: Path) -> list[Path]:
    """The temporary folders an interrupted atomic_dir(dest) may have left (see `scratch`)."""
    dest = Path(dest)
    if not dest.parent.is_dir():
        return []
    folder, prefix = scratch(dest)
    found = [
        *folder.glob(f"{glob.escape(prefix)}.new-*"),
        *folder.glob(f"{glob.escape(prefix)}.old-*"),
    ]
    return sorted(path for path in found if path.is_dir())


def write_zip(dest: Path, members: Mapping[str, bytes], *, compress: bool = False) -> None:
    """Write a zip archive whose bytes depend only on `members` (names in the given order)."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_file(dest) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.external_attr = FILE_MODE << 16
            info.compress_type = method
            archive.writestr(info, data)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_npz(dest: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Like np.savez, but reproducible to the byte (np.savez stamps the current time)."""
    write_zip(dest, {f"{name}.npy": npy_bytes(array) for name, array in arrays.items()})


def write_npy(dest: Path, array: np.ndarray) -> None:
    with atomic_file(dest) as tmp:
        np.save(tmp, np.ascontiguousarray(array), allow_pickle=False)


def write_json(dest: Path, data: Any) -> None:
    with atomic_file(dest) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_text(dest: Path, text: str) -> None:
    with atomic_file(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


# Figures are drawn at this many dots per inch. PNG metadata would otherwise name the
# matplotlib version; the pixels say all there is.
DPI = 100
PNG_METADATA = {"Software": None}


def write_png(figure: Any, dest: Path) -> None:
    """Save a matplotlib Figure as a PNG whose bytes depend only on what it draws."""
    with atomic_file(dest) as tmp:
        figure.savefig(tmp, dpi=DPI, metadata=PNG_METADATA, format="png")


def write_csv(dest: Path, frame: Any) -> None:
    """Write a pandas DataFrame with a fixed float format and line ending."""
    with atomic_file(dest) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6f", lineterminator="\n")


def rewrite_zip(path: Path, edits: Mapping[str, Callable[[bytes], bytes]]) -> None:
    """Rewrite an archive in place with fixed timestamps, applying `edits` to named members."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    for name, edit in edits.items():
        if name in members:
            members[name] = edit(members[name])
    write_zip(path, members, compress=True)


def write_split(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Save one split (train or test) as x_<split>.npy and y_<split>.npy in `folder`."""
    write_npy(Path(folder) / f"x_{split}.npy", images)
    write_npy(Path(folder) / f"y_{split}.npy", labels)


def read_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a split saved by write_split, memory-mapped so only what is used is read."""
    folder = Path(folder)
    images = np.load(folder / f"x_{split}.npy", mmap_mode="r", allow_pickle=False)
    labels = np.load(folder / f"y_{split}.npy", mmap_mode="r", allow_pickle=False)
    return images, labels
