"""How a stage runs from the command line.

Problems a user can fix end in one line on stderr, not a traceback."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def import_keras():
    """Import Keras (and TensorFlow under it) without their start-up notices.

    TF_CPP_MIN_LOG_LEVEL quiets TensorFlow's own logging, but absl's "All log messages before
    absl::InitializeLog()" and oneDNN's notice are written by C++ straight to file descriptor 2
    while TensorFlow loads, before any setting applies. So the import runs with descriptor 2 on
    the null device; what goes wrong afterwards shows as usual.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN, TensorFlow's CPU kernels on x86-64, picks its code by the CPU's instruction set,
    # and its AVX-512 code adds up in another order than its AVX2 code: on an AVX-512 Xeon,
    # one epoch gave other weights (the lesson's model and the assignment's, the two tried)
    # once oneDNN was held to AVX2. Holding it to AVX2 everywhere makes AVX-512 CPUs give the
    # bytes of every x86-64 CPU with AVX2 (Intel since 2013, AMD since 2015). It costs the CNN
    # speed on AVX-512 CPUs (an epoch: 21.8 s instead of 13.7 s here), not the dense networks.
    # This overrides the environment on purpose: the same inputs must give the same bytes on
    # any of these CPUs.
    os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            import keras
            import tensorflow  # noqa: F401  (loads the C++ runtime that prints the notices)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return keras


class StageError(Exception):
    """A problem with the input that the user can fix; its message is one line saying how."""


def run(main: Callable[[], object]) -> None:
    """Call a stage's main() and end the process: exit code 0, or a one-line message and 1
    for a StageError, or 128 + the signal for Ctrl-C and SIGTERM."""
    # SIGTERM (a killed `dvc repro`, a closed terminal) unwinds like Ctrl-C, so the writers in
    # stages.artifacts remove their temporary files on the way out.
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
    """Exit at once, without the interpreter's teardown, unless a profiler or debugger is
    watching (they write their reports in it).

    By now every output is closed and renamed into place (the writers in stages.artifacts are
    context managers), so the teardown has nothing left to save; but in a process that loaded
    TensorFlow it takes 1.2-1.4 s here (a 6 s training: 7.2-7.7 s to the shell, 6.1-6.3 s
    with this), twice in every build. Only the standard streams are still buffered; if they
    cannot be written, the exit code says so, as Python's own exit would (120).
    """
    if sys.gettrace() or sys.getprofile():
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        code = code or 120
    os._exit(code)


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
