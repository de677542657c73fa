"""How a stage runs from the command line.

Problems a user can fix end in one line on stderr, not a traceback."""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def arguments(
    stage: str,
    files: Sequence[str],
    argv: list[str] | None,
    parser: argparse.ArgumentParser | None = None,
) -> argparse.Namespace:
    """A stage's command line as dvc.yaml's cmd writes it: `--<name> PATH` for each of `files`,
    every one required, and whatever else `parser` already takes. The stage module names its
    files, so what it reads and writes stays in plain sight there and in dvc.yaml."""
    parser = parser or argparse.ArgumentParser(prog=f"python -m stages.{stage}")
    for name in files:
        parser.add_argument(f"--{name}", type=Path, required=True)
    return parser.parse_args(argv)


class StageError(Exception):
    """A problem with the input that the user can fix; its message is one line saying how."""


def run(main: Callable[[], object]) -> None:
    """Call a stage's main() and end the process: exit code 0, or a one-line message and 1
    for a StageError, or 128 + the signal for Ctrl-C and SIGTERM."""
    # SIGTERM (a killed `dvc repro`, a closed terminal) unwinds like Ctrl-C, so the writers in
    # pipeline.artifacts remove their temporary files on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        main()
        code = 0
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt as interruption:
        print("interrupted: nothing half-written was left behind", file=sys.stderr)
        code = 128 + getattr(interruption, "signum", signal.SIGINT)
    _leave(code)


def _leave(code: int) -> None:
    """End the process as Python would, without tearing down the modules it loaded.

    By now every output is closed and renamed into place (the writers in pipeline.artifacts are
    context managers). What a normal exit does that matters is run the atexit handlers
    (coverage saves its data there) and flush the standard streams; both are done here. What
    it skips is the interpreter's teardown of every module, which in a process that loaded
    TensorFlow takes most of a second (docs/benchmarks.md), twice in every build.

    A profiler or debugger watching the process writes its report after the code returns, in
    the teardown skipped here, so then the process ends normally: Python 3.11 shows them
    through sys.gettrace() and sys.getprofile(), 3.12 and 3.13 (where cProfile and coverage
    may use sys.monitoring instead) through sys.monitoring's tools.
    """
    if _watched():
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        # The streams cannot be written (a closed pipe): say so in the exit code, as Python's
        # own exit does.
        code = code or 120
    os._exit(code)


def _watched() -> bool:
    """Whether a tracer, profiler or debugger is attached to this process."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12 and later
    if monitoring is None:
        return False
    return any(monitoring.get_tool(tool) is not None for tool in range(6))


class Interrupted(KeyboardInterrupt):
    """Raised by SIGTERM, so that it unwinds (and cleans up) like Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextmanager
def deferred_interrupts() -> Iterator[list[int]]:
    """Within the block, note Ctrl-C and SIGTERM instead of raising at once; raise after it.

    An exception raised while TensorFlow runs Python code on its own threads (as it does for
    a keras.utils.PyDataset) can abort the process without cleaning up. The block's code
    checks the yielded list at a safe point (a Keras callback) and stops there.
    """
    received: list[int] = []
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum))
                for signum in signals}  # fmt: skip
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise Interrupted(received[0])
