"""tools/units.py relies on two private places of DVC (3.67, pinned), since DVC has no option
for either: the one function that starts a stage's command, which the assembler replaces to
refuse training, and the method that takes back .gitignore entries after a failed run. These
tests fail when an upgrade of DVC moves or renames them, before a split build misbehaves.
"""

from __future__ import annotations

import inspect

from tools import units


def test_dvc_starts_a_stages_command_through_the_module_function_units_replaces():
    from dvc.stage import run as stage_run

    assert list(inspect.signature(stage_run.cmd_run).parameters)[:1] == ["stage"]
    # run_stage looks cmd_run up in its module when it runs, so replacing the module's name
    # replaces what it calls.
    assert "cmd_run" in stage_run.run_stage.__code__.co_names


def test_the_guard_replaces_cmd_run_within_its_block_only():
    from dvc.stage import run as stage_run

    original = stage_run.cmd_run
    with units.commands_guarded(lambda stage: False):
        assert stage_run.cmd_run is not original

        class Stage:
            addressing = "train"

        try:
            stage_run.cmd_run(Stage())
        except units.HeldBack as refused:
            assert "train was not run on the assembling machine" in str(refused)
        else:
            raise AssertionError("the guard ran a command it should have refused")
    assert stage_run.cmd_run is original


def test_dvc_takes_back_gitignore_entries_through_the_method_units_replaces():
    from dvc.repo.scm_context import SCMContext

    assert list(inspect.signature(SCMContext.ignore_remove).parameters) == ["self", "path"]
    source = inspect.getsource(SCMContext)
    assert "self.ignore_remove(" in source  # Called through the instance, so replaceable.
