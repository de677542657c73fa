"""Benchmark: how a DVC run's time splits between the stages' commands and DVC's own work.

    python -m bench.dvc_share repro --force --single-item train evaluate

Runs DVC in this process, as the `dvc` command does, with its arguments, and times each
process DVC starts (a stage's command, in a shell) from its start to its end. DVC's own work
is the rest: reading dvc.yaml and dvc.lock, hashing and caching outputs, and writing dvc.lock
after each stage. The last line printed is `dvc_share: ` and a JSON object: DVC's exit code,
the seconds of its run in this process (the interpreter's start and DVC's import not
included) and the seconds of each command, in the order they ended.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

PREFIX = "dvc_share: "


def timed_run(
    run: Callable[[], Any], popen: type[subprocess.Popen] = subprocess.Popen
) -> tuple[Any, float, list[float]]:
    """Call `run` with every process started through `popen` timed from start to end; return
    its result, its seconds and each process's seconds, in the order they ended."""
    spans: list[float] = []
    started_at: dict[int, float] = {}
    original_init, original_wait = popen.__init__, popen.wait

    def init(self: subprocess.Popen, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        original_init(self, *args, **kwargs)
        started_at[id(self)] = started

    def wait(self: subprocess.Popen, *args: Any, **kwargs: Any) -> int:
        code = original_wait(self, *args, **kwargs)
        started = started_at.pop(id(self), None)
        if started is not None:
            spans.append(time.perf_counter() - started)
        return code

    popen.__init__, popen.wait = init, wait  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        result = run()
        return result, time.perf_counter() - started, spans
    finally:
        popen.__init__, popen.wait = original_init, original_wait  # type: ignore[method-assign]


def parse(output: str) -> dict[str, Any]:
    """The figures of the last `dvc_share: ` line of an output."""
    lines = [line for line in output.splitlines() if line.startswith(PREFIX)]
    if not lines:
        raise ValueError(f"no {PREFIX!r} line in the output")
    return json.loads(lines[-1].removeprefix(PREFIX))


def main(argv: Sequence[str] | None = None) -> int:
    from dvc.cli import main as dvc_main

    arguments = list(sys.argv[1:] if argv is None else argv)
    code, seconds, commands = timed_run(lambda: dvc_main(arguments))
    figures = {"returncode": code, "seconds": seconds, "commands": commands}
    print(PREFIX + json.dumps(figures), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
