"""The tests' own helpers (tests/helpers.py): what every command a test runs gets."""

from __future__ import annotations

import configobj

from tests.helpers import ROOT, run

# Whether DVC would send its usage report after a command run in the current folder.
REPORTS = ["python", "-c", "from dvc.analytics import is_enabled; print(is_enabled())"]


def test_the_dvc_a_test_runs_sends_no_usage_report_even_before_the_config_says_so(tmp_path):
    """A repository just made with `dvc init` does not yet say `core.analytics false`, so DVC
    would report from it; in the tests' environment `dvc init` announces no usage analytics
    and DVC reports nothing. The check itself: with DVC_NO_ANALYTICS empty and no user or
    system config, the same repository would report."""
    run(["git", "init", "-q"], tmp_path)
    said = run(["dvc", "init"], tmp_path).stdout
    assert "Initialized DVC repository" in said
    assert "usage analytics" not in said
    assert run(REPORTS, tmp_path).stdout == "False\n"

    reporting = {
        "DVC_NO_ANALYTICS": "",
        "DVC_TEST": "",
        "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "user"),
        "DVC_SYSTEM_CONFIG_DIR": str(tmp_path / "system"),
    }
    assert run(REPORTS, tmp_path, env=reporting).stdout == "True\n"


def test_the_projects_own_config_keeps_dvcs_usage_reports_off():
    """What a course author's clone and CI get, which the tests' environment no longer shows:
    the committed .dvc/config turns DVC's usage reports off."""
    config = configobj.ConfigObj(str(ROOT / ".dvc" / "config"))
    assert config["core"]["analytics"] == "false"
