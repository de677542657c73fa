"""The tests' own helpers (tests/helpers.py): what every command a test runs gets."""

from __future__ import annotations

from tests.helpers import run


def test_the_dvc_a_test_runs_sends_no_usage_report_even_before_the_config_says_so(tmp_path):
    """A repository just made with `dvc init` does not yet say `core.analytics false`, and DVC
    would send its usage report from it; the tests' environment turns that off for every
    DVC command a test runs."""
    run(["git", "init", "-q"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    enabled = run(
        ["python", "-c", "from dvc.analytics import is_enabled; print(is_enabled())"], tmp_path
    )
    assert enabled.stdout == "False\n"
