"""Outputs are written whole or not at all, and equal content gives equal bytes."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import artifacts
from tests.helpers import CODE, ROOT


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    dest = tmp_path / "model.keras"
    dest.write_text("previous build")
    with pytest.raises(KeyboardInterrupt), artifacts.atomic_file(dest) as tmp:
        tmp.write_text("half of a new bu")
        raise KeyboardInterrupt
    assert dest.read_text() == "previous build"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_the_temporary_file_keeps_the_suffix_that_picks_the_format(tmp_path):
    with artifacts.atomic_file(tmp_path / "sub" / "grid.png") as tmp:
        assert tmp.suffix == ".png"
        assert tmp.parent == tmp_path / "sub"
        tmp.write_bytes(b"png")
    assert (tmp_path / "sub" / "grid.png").read_bytes() == b"png"


def test_a_failed_folder_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), artifacts.atomic_dir(tmp_path / "figures") as tmp:
        (tmp / "one.png").write_bytes(b"1")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_write_replaces_the_old_folder_whole(tmp_path):
    old = tmp_path / "figures"
    old.mkdir()
    (old / "stale.png").write_bytes(b"old")
    with artifacts.atomic_dir(old) as tmp:
        (tmp / "new.png").write_bytes(b"new")
    assert [p.name for p in old.iterdir()] == ["new.png"]


def test_a_failed_folder_write_keeps_the_old_folder_whole(tmp_path):
    old = tmp_path / "figures"
    old.mkdir()
    (old / "kept.png").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), artifacts.atomic_dir(old) as tmp:
        (tmp / "new.png").write_bytes(b"new")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures"]
    assert [p.name for p in old.iterdir()] == ["kept.png"]


# A process that writes a new `figures` folder with atomic_dir and dies (os._exit, as a
# SIGKILL would end it, running no cleanup) at one point: "block" inside the with block,
# "swap-1" or "swap-2" instead of the first or second rename, "cleanup" instead of deleting
# the old folder.
CRASH = """
import os, shutil, sys
from pathlib import Path
from pipeline import artifacts
dest, crash = Path(sys.argv[1]), sys.argv[2]
renames, real_replace, real_rmtree = [], os.replace, shutil.rmtree
def replace(source, target):
    renames.append(source)
    if crash == f"swap-{len(renames)}":
        os._exit(9)
    real_replace(source, target)
def rmtree(path, *args, **kwargs):
    if crash == "cleanup":
        os._exit(9)
    real_rmtree(path, *args, **kwargs)
os.replace, shutil.rmtree = replace, rmtree
with artifacts.atomic_dir(dest) as tmp:
    (tmp / "new.png").write_bytes(b"new")
    if crash == "block":
        os._exit(9)
"""


@pytest.mark.parametrize(
    ("crash", "under_the_name", "left_over"),
    [
        ("block", ["old.png"], [".figures.new-"]),
        ("swap-1", ["old.png"], [".figures.new-"]),
        ("swap-2", None, [".figures.new-", ".figures.old-"]),
        ("cleanup", ["new.png"], [".figures.old-"]),
    ],
)
def test_a_crash_leaves_the_old_or_new_folder_and_leftovers_the_next_run_removes(
    tmp_path, crash, under_the_name, left_over
):
    dest = tmp_path / "figures"
    dest.mkdir()
    (dest / "old.png").write_bytes(b"old")
    result = subprocess.run(
        [sys.executable, "-c", CRASH, str(dest), crash], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 9, result.stderr
    found = sorted(p.name for p in dest.iterdir()) if dest.exists() else None
    assert found == under_the_name
    leftovers = artifacts.leftovers(dest)
    assert sorted(path.name[: len(".figures.new-")] for path in leftovers) == left_over
    assert all((path / ("new.png" if ".new-" in path.name else "old.png")).exists()
               for path in leftovers)  # fmt: skip

    with artifacts.atomic_dir(dest) as tmp:
        (tmp / "again.png").write_bytes(b"again")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures"]
    assert [p.name for p in dest.iterdir()] == ["again.png"]


def test_npz_files_repeat_to_the_byte_and_load_back(tmp_path, tiny_mnist):
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    artifacts.write_npz(first, tiny_mnist)
    artifacts.write_npz(second, tiny_mnist)
    assert first.read_bytes() == second.read_bytes()
    with np.load(first) as loaded:
        np.testing.assert_array_equal(loaded["x_train"], tiny_mnist["x_train"])


def test_zip_rewrite_fixes_timestamps_and_applies_edits(tmp_path):
    import zipfile

    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", '{"date_saved": "now"}')
    artifacts.rewrite_zip(path, {"metadata.json": lambda data: data.replace(b"now", b"fixed")})
    with zipfile.ZipFile(path) as archive:
        (info,) = archive.infolist()
        assert info.date_time == artifacts.ZIP_EPOCH
        assert archive.read(info) == b'{"date_saved": "fixed"}'


def test_json_and_csv_are_written_in_a_stable_form(tmp_path):
    artifacts.write_json(tmp_path / "m.json", {"b": 1, "a": 0.5})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 0.5, "b": 1}
    assert (tmp_path / "m.json").read_text().index('"a"') < (tmp_path / "m.json").read_text().index(
        '"b"'
    )
    artifacts.write_csv(tmp_path / "t.csv", pd.DataFrame({"x": [1 / 3], "n": [2]}))
    assert (tmp_path / "t.csv").read_text() == "x,n\n0.333333,2\n"


def test_splits_round_trip_memory_mapped(tmp_path, rng):
    images = rng.random((5, 28, 28), dtype=np.float32)
    labels = np.arange(5, dtype=np.uint8)
    artifacts.write_split(tmp_path, "test", images, labels)
    read_images, read_labels = artifacts.read_split(tmp_path, "test")
    assert isinstance(read_images, np.memmap)
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)


# A stage killed (os._exit, as SIGKILL ends it: no cleanup runs) between writing its output
# and renaming it into place, and a writer killed in the middle of its block.
KILLED_STAGE = """
import os, sys
from stages import variants
os.replace = lambda source, target: os._exit(9)
variants.main(sys.argv[1:])
"""
KILLED_WRITER = """
import os, sys
from pipeline import artifacts
with artifacts.atomic_file(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a mod")
    os._exit(9)
"""


@pytest.mark.parametrize(
    ("script", "arguments", "output"),
    [
        (KILLED_STAGE, ["--name", "cnn", "--variant", "reports/variants/cnn/settings.json"],
         "reports/variants/cnn/settings.json"),
        (KILLED_WRITER, ["models/variants/cnn/model.keras"], "models/variants/cnn/model.keras"),
    ],
)  # fmt: skip
def test_a_killed_stage_leaves_nothing_inside_the_folders_other_stages_read(
    tmp_path, script, arguments, output
):
    """reports/variants and models/variants are read whole (compare, values and page depend
    on the folders): a leftover there would change their hash and reach the page."""
    project = tmp_path / "project"
    (project / ".dvc").mkdir(parents=True)
    (project / "params.yaml").write_bytes((ROOT / "params.yaml").read_bytes())
    for folder in ("reports/variants/cnn", "models/variants/cnn"):
        (project / folder).mkdir(parents=True)
        (project / folder / "README.md").write_text("kept", encoding="utf-8")
    (project / output).write_text("the previous build", encoding="utf-8")

    def inside() -> list[str]:
        return sorted(
            str(path.relative_to(project))
            for folder in ("reports/variants", "models/variants")
            for path in (project / folder).rglob("*")
        )

    before = inside()
    killed = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        cwd=project,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),  # This checkout's stages, run elsewhere.
        capture_output=True,
        text=True,
    )
    assert killed.returncode == 9, killed.stderr
    assert inside() == before
    assert (project / output).read_text(encoding="utf-8") == "the previous build"
    # The leftover is in DVC's own temporary folder, named after the output...
    partial = project / artifacts.PARTIAL
    prefix = "." + output.replace("/", "+") + ".partial-"
    assert [path.name.startswith(prefix) for path in partial.iterdir()] == [True]
    # ...and the next writer of that output removes it.
    with artifacts.atomic_file(project / output) as tmp:
        tmp.write_text("the next build", encoding="utf-8")
    assert list(partial.iterdir()) == []
    assert inside() == before
    assert (project / output).read_text(encoding="utf-8") == "the next build"


def test_a_folder_written_in_a_project_swaps_through_dvcs_temporary_folder(tmp_path):
    project = tmp_path / "project"
    (project / ".dvc").mkdir(parents=True)
    figures = project / "reports" / "figures"
    with artifacts.atomic_dir(figures) as tmp:
        assert tmp.parent == project / artifacts.PARTIAL
        (tmp / "grid.png").write_bytes(b"png")
    assert sorted(p.name for p in (project / "reports").iterdir()) == ["figures"]
    assert [p.name for p in figures.iterdir()] == ["grid.png"]
    assert list((project / artifacts.PARTIAL).iterdir()) == []


def text_calls_without_encoding(path: Path) -> list[str]:
    """The calls in a module that read or write text in the locale's encoding: read_text,
    write_text and open (builtin or Path.open) without encoding=, other than binary opens,
    artifacts.write_text (which passes it on) and Pillow's Image.open."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        name = getattr(function, "attr", getattr(function, "id", None))
        owner = getattr(getattr(function, "value", None), "id", None)
        keywords = {keyword.arg: keyword.value for keyword in node.keywords}
        if "encoding" in keywords or owner in ("artifacts", "Image"):
            continue
        if name == "open":
            mode = keywords.get("mode") or next(
                (arg for arg in node.args if isinstance(arg, ast.Constant)), None
            )
            if isinstance(mode, ast.Constant) and "b" in str(mode.value):
                continue
        if name in ("read_text", "write_text", "open"):
            where = f"{path.parent.name}/{path.name}:{node.lineno}"
            found.append(f"{where}: {ast.unparse(node)[:60]}")
    return found


def test_text_is_read_and_written_as_utf8_whatever_the_locale():
    """Windows reads and writes text in its own code page unless told: every text read and
    write in the project's code and tools/ names UTF-8."""
    modules = sorted(path for folder in [*CODE, "tools"] for path in (ROOT / folder).glob("*.py"))
    assert len(modules) > 20
    found = [call for module in modules for call in text_calls_without_encoding(module)]
    assert found == []


def test_the_encoding_scan_finds_what_it_looks_for(tmp_path):
    module = tmp_path / "stages" / "probe.py"
    module.parent.mkdir()
    module.write_text(
        'from pathlib import Path\nPath("a").read_text()\nopen("b", "rb")\n'
        'open("c")\nPath("d").write_text("x", encoding="utf-8")\nPath("e").open("w")\n',
        encoding="utf-8",
    )
    assert [line.split(": ")[0] for line in text_calls_without_encoding(module)] == [
        "stages/probe.py:2", "stages/probe.py:4", "stages/probe.py:6"
    ]  # fmt: skip
