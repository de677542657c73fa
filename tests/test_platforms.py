"""The locks install on every platform and Python in the README's table: checked by uv, which
resolves them for each target without installing (so a lock that would fail on a Mac fails here).
And what they install for DVC's own speed is what DVC uses."""

from __future__ import annotations

import pytest

from tests.helpers import ROOT
from tools import platforms

PAIRS = [(platform, python) for platform in platforms.PLATFORMS for python in platforms.PYTHONS]


@pytest.mark.parametrize(("platform", "python"), PAIRS)
def test_every_pinned_package_installs_on_the_target(platform, python):
    assert platforms.check(platform, python) is None


def test_a_lock_without_the_platform_markers_fails_for_a_mac(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("tensorflow-cpu==2.21.0\n")
    problem = platforms.check("aarch64-apple-darwin", "3.12", (lock,))
    # uv names the newest tag it looked for as the example.
    assert problem == "tensorflow-cpu==2.21.0 has no wheel for macosx_13_0_arm64"


def test_an_intel_mac_is_refused_because_tensorflow_has_no_wheel_for_it():
    problem = platforms.check("x86_64-apple-darwin", "3.12")
    assert problem is not None
    assert problem.startswith("tensorflow==2.21.0 has no wheel for macosx_")
    assert problem.endswith("_x86_64")


def test_other_failures_are_summed_up_in_one_line():
    output = "Using CPython 3.11.7\nerror: No solution found\n  cause: pkg==9 was not found\n"
    assert platforms.explain(output) == "error: No solution found cause: pkg==9 was not found"


def test_dvc_reads_dvc_lock_with_ruamels_c_parser(monkeypatch):
    """DVC reads dvc.yaml and dvc.lock several times for each stage it runs, with ruamel.yaml's
    safe loader, which is pure Python unless ruamel.yaml.clib is installed (the lock brings it
    through requirements.in's `ruamel.yaml[oldlibyaml]`; docs/benchmarks.md has the cost)."""
    from dvc.utils.serialize import load_yaml
    from ruamel.yaml.main import YAML, CParser

    parsers = []
    original = YAML.get_constructor_parser

    def noted(self, stream):
        constructor, parser = original(self, stream)
        parsers.append(type(parser))
        return constructor, parser

    monkeypatch.setattr(YAML, "get_constructor_parser", noted)
    stages = load_yaml(ROOT / "dvc.lock")["stages"]
    assert "train" in stages
    assert CParser is not None, "ruamel.yaml's C parser is missing: make venv installs it"
    assert parsers and all(issubclass(parser, CParser) for parser in parsers), parsers
