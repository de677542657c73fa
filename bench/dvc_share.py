"""Benchmark: how a DVC run's time splits between the stages' commands and DVC's own work.

    python -m bench.dvc_share repro --force --single-item train evaluate

Runs DVC's command line in this process, with these arguments, and times each stage's
command from its start to its end (DVC's `dvc.stage.run._run`, which starts a command in a
shell and waits for it; no other process DVC may start, such as git, is counted). DVC's own
work is the rest: reading dvc.yaml and dvc.lock, checking and caching files, and rewriting
dvc.lock after each stage. DVC's modules are imported before the clock starts, so the time
outside the run is the interpreter's start, that import and the exit. The last line printed
is `dvc_share: ` and a JSON object: DVC's exit code, the seconds of its run, and each
command's text and seconds, in the order they ran.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

PREFIX = "dvc_share: "


def timed_run(run: Callable[[], Any], module: ModuleType) -> tuple[Any, float, list[dict]]:
    """Call `run` with `module._run(executable, cmd, **kwargs)` timed; return its result, its
    seconds, and each call's command and seconds, in order."""
    commands: list[dict] = []
    original = module._run

    def timed(executable: Any, cmd: str, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(executable, cmd, **kwargs)
        finally:
            commands.append({"cmd": cmd, "seconds": time.perf_counter() - started})

    module._run = timed
    try:
        started = time.perf_counter()
        result = run()
        return result, time.perf_counter() - started, commands
    finally:
        module._run = original


def parse(output: str) -> dict[str, Any]:
    """The figures of the last `dvc_share: ` line of an output."""
    lines = [line for line in output.splitlines() if line.startswith(PREFIX)]
    if not lines:
        raise ValueError(f"no {PREFIX!r} line in the output")
    return json.loads(lines[-1].removeprefix(PREFIX))


def main(argv: Sequence[str] | None = None) -> int:
    # Everything `dvc repro` imports, before the clock starts: the command line's parser
    # imports each command's module, and a run imports the repository, reproduction and
    # stage modules it uses.
    import dvc.repo.reproduce  # noqa: F401
    import dvc.stage.run
    from dvc.cli import main as dvc_main
    from dvc.cli.parser import get_main_parser

    get_main_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    code, seconds, commands = timed_run(lambda: dvc_main(arguments), dvc.stage.run)
    figures = {"returncode": code, "seconds": seconds, "commands": commands}
    print(PREFIX + json.dumps(figures), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
