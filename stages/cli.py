"""How a stage runs from the command line.

Problems a user can fix end in one line on stderr, not a traceback."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable


class StageError(Exception):
    """A problem with the input that the user can fix; its message is one line saying how."""


def run(main: Callable[[], object]) -> None:
    """Call a stage's main(); turn a StageError or Ctrl-C into a one-line message and exit code."""
    # SIGTERM (a killed `dvc repro`, a closed terminal) unwinds like Ctrl-C, so the writers in
    # stages.artifacts remove their temporary files on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        main()
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except Interrupted as interruption:
        print("interrupted: nothing half-written was left behind", file=sys.stderr)
        sys.exit(128 + interruption.signum)
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was left behind", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """Raised by SIGTERM, so that it unwinds (and cleans up) like Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted(signum)
