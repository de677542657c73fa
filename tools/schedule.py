"""Build the pipeline with every core: the stages whose upstream stages are built run at once.

DVC runs one stage at a time, and two `dvc repro` runs in one workspace collide (each locks the
outputs of every stage it walks). Runs of one stage each do not, so this scheduler reads
DVC's own graph of the stages and runs each stage, once every stage it depends on has ended, as
`dvc --wait-for-lock repro --single-item <stage>`, a process of its own, as many at a time as
their threads fit in the cores this process may use (or --jobs): a training counts the threads
its network trains on (digits/training.py), an evaluation the count fixed for evaluations
(digits/repeatable.py), any other stage one (`threads`). DVC itself decides, as in a serial
build, whether a stage has to run, may come from the run-cache, or did not change; stages
that `dvc status` finds up to date, with nothing upstream of them to run, start no process
at all.

Each stage's output is printed as one block when it ends, every line after the stage's name.
If a stage fails, the stages running beside it are stopped, and one line names it; Ctrl-C (or
SIGTERM) stops them all. A stopped stage leaves nothing half-written: its command is stopped,
not DVC (see `stop`), and the stages write their outputs through temporary files
(pipeline/artifacts.py).

DVC writes a stage's entry in dvc.lock when the stage ends, so stages ending in another order
would leave another dvc.lock. After the build, the entries are put in the order a serial
`dvc repro` leaves them: the entries dvc.lock held before in their places, and the new ones
after them in the order the serial build runs the stages (`serial_layout`). The same goes for
the lines DVC adds to the .gitignore files beside the outputs.

    python -m tools.schedule [--jobs N]   build on N cores (default: the cores);
                                          --jobs 1 runs `dvc repro` itself, the serial build

This is a tool, not a pipeline stage: it imports DVC and none of the stages (the rules of a
training's settings and threads come from digits/training.py, as the train stage's do).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from digits import repeatable, training
from pipeline import config
from tools import dvc

LOCK_FILE = "dvc.lock"


class ScheduleError(Exception):
    """A problem the user can fix; its message is one line saying what and how."""


@dataclass(frozen=True)
class Pipeline:
    """The stages, by name, in the order a serial `dvc repro` runs them, and what each needs."""

    order: tuple[str, ...]
    upstream: Mapping[str, frozenset[str]]  # The stages whose outputs a stage reads.
    outs: Mapping[str, tuple[str, ...]]  # Each stage's outputs, as dvc.yaml lists them.
    commands: Mapping[str, str] = field(default_factory=dict)  # Each stage's cmd.

    def outputs(self) -> list[str]:
        """Every stage's outputs, in the order a serial build writes them."""
        return [path for stage in self.order for path in self.outs[stage]]


def cores() -> int:
    """The cores this process may use (a container or `taskset` may allow fewer than the
    machine has); where the system cannot say (macOS, Windows), the machine's cores."""
    return repeatable.every_core()


def serial_order(graph: Any) -> list[Any]:
    """The stages in the order a serial `dvc repro` runs them.

    `graph` is DVC's: its nodes in dvc.yaml's order, an edge from each stage to every stage it
    depends on. DVC 3.67 (requirements.lock pins it) walks it depth first from each stage in
    turn and runs a stage after every stage it depends on (`plan_repro` in dvc/repo/reproduce.py:
    networkx's depth-first post-order), so the same walk here gives the same order.
    """
    import networkx as nx

    return list(nx.dfs_postorder_nodes(graph))


def read_pipeline(root: Path) -> Pipeline:
    """Ask DVC for the stages of the project and the graph between them."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    # DVC names a stage relative to the current folder (`../dvc.yaml:train` from below), so
    # the names are taken in the project's folder, where `dvc repro <name>` runs.
    with contextlib.chdir(root):
        try:
            with Repo(str(root)) as repo:
                graph = repo.index.graph.copy()
        except DvcException as error:
            raise ScheduleError(f"cannot resolve the pipeline: {_one_line(error)}") from None
        # As in `dvc repro`: a frozen stage does not wait for, nor rebuild, what it depends on.
        for stage in list(graph):
            if stage.frozen:
                graph.remove_edges_from(list(graph.out_edges(stage)))
        order = tuple(stage.addressing for stage in serial_order(graph))
        upstream = {
            stage.addressing: frozenset(dep.addressing for dep in graph.successors(stage))
            for stage in graph
        }
        outs = {
            stage.addressing: tuple(
                Path(os.path.normpath(out.def_path)).as_posix() for out in stage.outs
            )
            for stage in graph
        }
        commands = {
            stage.addressing: stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd)
            for stage in graph
        }
    return Pipeline(order, upstream, outs, commands)


def threads(command: str, root: Path) -> int:
    """The threads a stage's command computes on, which the build counts against the cores.

    A training (`python -m stages.train`) runs each op on the threads fixed for its network's
    kind (digits/training.py), read from the settings it trains with: a variation's settings
    file, which its upstream stage has written by the time the training is ready, else
    params.yaml. An evaluation (`python -m stages.evaluate`) runs on the count fixed for
    evaluations (digits/repeatable.py). TF_NUM_INTRAOP_THREADS in the environment, which both
    inherit, overrides either. Every other stage computes on one thread.
    """
    words = shlex.split(command)
    if words[:3] == ["python", "-m", "stages.evaluate"]:
        return repeatable.threads_in_effect(repeatable.EVALUATION_THREADS)
    if words[:3] != ["python", "-m", "stages.train"]:
        return 1
    given = words.index("--settings") + 1 if "--settings" in words else None
    settings = root / (words[given] if given and given < len(words) else config.PARAMS_FILE)
    try:
        values = config.read_params(training.SETTINGS, file=settings)
    except (config.StageError, OSError):
        # The stage itself will refuse these settings, and say why; it ends before training.
        return 1
    return repeatable.threads_in_effect(training.threads_per_op(values))


def startable(ready: Sequence[str], need: Mapping[str, int], busy: int, cores: int) -> list[str]:
    """Of the `ready` stages (in serial order), those to start now: each in turn if its
    threads (`need`, at most `cores`) fit beside the `busy` ones, so that a stage that does
    not fit waits and the ones after it that fit start meanwhile. Then, if a core would still
    be idle with stages ready, the first of them starts anyway, on more threads than are free
    until the stages beside it end: a core left idle for the length of a training (as a
    two-thread training waiting beside a one-thread one would leave it) costs more than a
    few threads too many."""
    chosen = []
    for stage in ready:
        threads = min(need[stage], cores)
        if busy + threads <= cores:
            chosen.append(stage)
            busy += threads
    waiting = [stage for stage in ready if stage not in chosen]
    if busy < cores and waiting:
        chosen.append(waiting[0])
    return chosen


def outdated(root: Path) -> set[str]:
    """The stages `dvc status` lists: changed, or never built."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with contextlib.chdir(root), Repo(str(root)) as repo:
            return set(repo.status())
    except DvcException as error:
        raise ScheduleError(f"dvc status failed: {_one_line(error)}") from None


def to_run(pipeline: Pipeline, changed: Iterable[str]) -> list[str]:
    """The stages to hand to DVC, in serial order: those `dvc status` lists, and every stage
    downstream of one, since a stage that reruns may change what the ones after it read."""
    chosen = set(changed)
    for stage in pipeline.order:  # Upstream stages come first, so one pass is enough.
        if pipeline.upstream[stage] & chosen:
            chosen.add(stage)
    return [stage for stage in pipeline.order if stage in chosen]


def serial_layout(before: Sequence[str], after: Iterable[str], order: Sequence[str]) -> list[str]:
    """The order of a file's entries (dvc.lock's stages, a .gitignore's lines) that a serial
    `dvc repro` leaves.

    DVC rewrites an entry in its place and adds a new one at the end, so a serial build keeps
    the entries the file held `before` in their order, and adds the others in the `order` it
    writes them in. `after` are the entries the build left, in any order; an entry `order`
    does not name (none that DVC writes) keeps its place after the others.
    """
    after = list(after)
    kept = [entry for entry in before if entry in after]
    position = {entry: index for index, entry in enumerate(order)}
    added = sorted(
        (entry for entry in after if entry not in kept),
        key=lambda entry: (position.get(entry, len(position)), after.index(entry)),
    )
    return kept + added


def lock_entries(root: Path) -> list[str]:
    """The stages dvc.lock holds, in its order (none if there is no dvc.lock)."""
    from dvc.utils.serialize import load_yaml

    path = root / LOCK_FILE
    if not path.exists():
        return []
    return list(load_yaml(path).get("stages") or {})


def reorder_lock(root: Path, before: Sequence[str], order: Sequence[str]) -> None:
    """Put dvc.lock's entries in the order a serial build leaves them (`serial_layout`),
    written by DVC's own YAML writer, as DVC writes dvc.lock, so that the file is byte for
    byte the one a serial build leaves."""
    from dvc.utils.serialize import dump_yaml, parse_yaml_for_update
    from ruamel.yaml.comments import CommentedMap

    path = root / LOCK_FILE
    if not path.exists():
        return
    # Read as DVC reads dvc.lock to update it (dvc.utils.serialize.modify_yaml).
    data = parse_yaml_for_update(path.read_text(encoding="utf-8"), str(path))
    stages = data.get("stages")
    if not stages:
        return
    wanted = serial_layout(before, list(stages), order)
    if wanted == list(stages):
        return
    data["stages"] = CommentedMap((name, stages[name]) for name in wanted)
    dump_yaml(path, data)


def ignore_files(pipeline: Pipeline, root: Path) -> dict[Path, list[str]]:
    """The .gitignore files where DVC lists the outputs, and the lines each holds now."""
    folders = {(root / path).parent for path in pipeline.outputs()}
    return {folder / ".gitignore": _lines(folder / ".gitignore") for folder in sorted(folders)}


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def reorder_ignores(pipeline: Pipeline, root: Path, before: Mapping[Path, list[str]]) -> None:
    """Put the lines DVC added to each .gitignore (`/<output>`, one per output, as each stage
    ended) in the order a serial build adds them (`serial_layout`)."""
    for path, lines_before in before.items():
        lines = _lines(path)
        if lines == lines_before or not path.read_text(encoding="utf-8").endswith("\n"):
            continue
        folder = path.parent.relative_to(root).as_posix()
        prefix = "" if folder == "." else f"{folder}/"
        order = [
            "/" + out.removeprefix(prefix)
            for out in pipeline.outputs()
            if out.startswith(prefix) and "/" not in out.removeprefix(prefix)
        ]
        wanted = serial_layout(lines_before, lines, order)
        if wanted != lines:
            path.write_text("".join(f"{line}\n" for line in wanted), encoding="utf-8")


@dataclass
class Running:
    stage: str
    process: subprocess.Popen
    output: IO[bytes]
    started: float
    threads: int
    signalled: set[int] = field(default_factory=set)  # The commands told to stop.


def _environment() -> dict[str, str]:
    """This environment with this interpreter's folder first on PATH, as `make` sets it, so
    that the stages' own `python -m stages...` commands run in the project's environment."""
    folder = str(Path(sys.executable).parent)
    return dict(os.environ, PATH=os.pathsep.join([folder, os.environ.get("PATH", "")]))


# `dvc` itself, made deaf to SIGTERM (`stop` says why). A Python handler, unlike an ignored
# signal, does not pass on to the stage's command, which DVC starts with SIGTERM as it comes.
DVC_DEAF_TO_SIGTERM = (
    "import signal, sys\n"
    "signal.signal(signal.SIGTERM, lambda signum, frame: None)\n"
    "from dvc.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def start(stage: str, root: Path, ended: queue.Queue, threads: int) -> Running:
    """Start `dvc --wait-for-lock repro --single-item <stage>`, its output to a temporary file;
    `ended` gets the stage's name when the process ends."""
    # Closed by `show`, once the stage's output is printed.
    output = tempfile.TemporaryFile()  # noqa: SIM115
    # A process group of its own, so that `stop` reaches the stage's command (and the shell DVC
    # runs it in), and so that the terminal's Ctrl-C reaches this scheduler alone.
    group = (
        {"start_new_session": True}
        if os.name == "posix"
        else {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    )
    process = subprocess.Popen(
        [sys.executable, "-c", DVC_DEAF_TO_SIGTERM]
        + ["--wait-for-lock", "repro", "--single-item", stage],
        cwd=root,
        env=_environment(),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        **group,
    )
    threading.Thread(target=lambda: (process.wait(), ended.put(stage)), daemon=True).start()
    return Running(stage, process, output, time.monotonic(), threads)


def stop(running: Running) -> None:
    """Stop a stage's command, and let DVC end as it does when a command fails.

    The command gets SIGTERM, on which it removes its temporary files and ends
    (pipeline/cli.py). DVC does not hear it: stopped between its steps (hashing, saving to the
    cache, writing dvc.lock, which it writes in place) it could leave them half done, or an
    output that it never recorded. So DVC ends on its own, recording the stage if its command
    had ended well, else nothing. A command DVC starts after the first call (it was still
    checking the stage) gets its SIGTERM at the next call: `_wait` calls again until the
    stage has ended. On Linux the commands are told apart through /proc; on another POSIX
    system the group is signalled at every call. Elsewhere (Windows) `main` builds serially.
    """
    if running.process.poll() is not None:
        return
    commands = _children(running.process.pid)
    if commands is None:
        # Without /proc nothing tells a command DVC has just started from one already
        # stopped, so the group hears SIGTERM at every call (DVC itself ignores it).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(running.process.pid, signal.SIGTERM)
        return
    if commands - running.signalled:
        try:
            os.killpg(running.process.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return  # It has just ended by itself.
        running.signalled |= commands


def _children(pid: int) -> set[int] | None:
    """The processes `pid` started and that still run, or None where the system cannot say."""
    process = Path(f"/proc/{pid}")
    try:
        text = (process / "task" / str(pid) / "children").read_text(encoding="utf-8")
    except OSError:
        # Ended (its folder is gone), or a system without the file (no /proc at all, or a
        # Linux built without it).
        return set() if Path("/proc/self").exists() and not process.exists() else None
    return {int(child) for child in text.split()}


def show(running: Running, how: str) -> None:
    """Print the stage's output as one block, each line after the stage's name."""
    running.output.seek(0)
    text = running.output.read().decode("utf-8", errors="replace")
    running.output.close()
    seconds = time.monotonic() - running.started
    lines = [f"{running.stage} | {line}" for line in text.splitlines()]
    lines.append(f"{running.stage} | {how} after {seconds:.1f} s")
    print("\n".join(lines), flush=True)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM reached the scheduler."""


# The signals received. The handler only notes them, and the scheduler raises Interrupted where
# it waits (`_next`): raised anywhere, it could come between starting a stage's process and
# noting it as running, and leave that process running on its own.
_received: list[int] = []


def _note(signum: int, frame: object) -> None:
    _received.append(signum)


@contextlib.contextmanager
def _signals_noted() -> Iterator[None]:
    """Within the block, Ctrl-C and SIGTERM are noted in `_received`."""
    _received.clear()
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, _note) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def build(root: Path, pipeline: Pipeline, stages: Sequence[str], jobs: int) -> None:
    """Run `stages` (in serial order), each once every stage it depends on has ended, as many
    at a time as their threads fit in `jobs` cores (`startable`). Raises ScheduleError if
    one fails, Interrupted if interrupted; either way, only after every stage started has
    ended."""
    pending = list(stages)
    done: set[str] = set(pipeline.order) - set(stages)
    running: dict[str, Running] = {}
    ended: queue.Queue[str] = queue.Queue()
    failed: str | None = None
    try:
        while pending or running:
            if _received:
                raise Interrupted(_received[0])
            ready = [stage for stage in pending if pipeline.upstream[stage] <= done]
            # A stage's threads are known once it is ready: a training's settings file is
            # written by a stage before it.
            need = {stage: threads(pipeline.commands.get(stage, ""), root) for stage in ready}
            busy = sum(other.threads for other in running.values())
            for stage in startable(ready, need, busy, jobs):
                pending.remove(stage)
                print(f"{stage} | started", flush=True)
                running[stage] = start(stage, root, ended, min(need[stage], jobs))
            stage = _next(ended)
            finished = running.pop(stage)
            if finished.process.returncode == 0:
                done.add(stage)
                show(finished, "done")
                continue
            failed = stage
            for other in running.values():
                stop(other)
            _wait(running, ended)
            show(finished, f"failed (exit code {finished.process.returncode})")
            break
    except BaseException:
        # Interrupted, or anything unforeseen: no stage is left running on its own, and
        # dvc.lock is put in order only once no DVC process writes it any more.
        for other in running.values():
            stop(other)
        _wait(running, ended)
        raise
    if failed is not None:
        beside = "; the stages running beside it were stopped" if running else ""
        raise ScheduleError(f"stage {failed} failed (its output is above){beside}")


def _next(ended: queue.Queue) -> str:
    """The next stage to end; Interrupted once a signal has been received."""
    while not _received:
        try:
            return ended.get(timeout=0.2)
        except queue.Empty:
            continue
    raise Interrupted(_received[0])


def _wait(running: Mapping[str, Running], ended: queue.Queue) -> None:
    """Wait for every stopped stage to end, whatever signal comes meanwhile, and show each;
    meanwhile stop the commands DVC starts."""
    left = dict(running)
    while left:
        try:
            stage = ended.get(timeout=0.2)
        except queue.Empty:
            for other in left.values():
                stop(other)
            continue
        finished = left.pop(stage)
        show(finished, "stopped" if finished.process.returncode else "done")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


class _Arguments(argparse.ArgumentParser):
    """argparse that raises a one-line error instead of printing its usage."""

    def error(self, message: str):
        raise ScheduleError(f"{self.prog}: {message}")


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of cores: JOBS (--jobs) is 1 or more, "
            "and 1 is `dvc repro` itself"
        )
    return value


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Arguments(prog="python -m tools.schedule", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        help="the cores to fill, each stage counting its threads (default: the cores this "
        "process may use; 1: dvc repro)",
    )
    return parser.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        arguments = parse(sys.argv[1:] if argv is None else argv)
        jobs = arguments.jobs or cores()
        if jobs > 1 and os.name != "posix":
            # Stopping one stage of several without stopping DVC in the middle of writing
            # dvc.lock needs POSIX signals (see `stop`); untested elsewhere, so not risked.
            print("note: on this system the stages run one at a time (dvc repro)", flush=True)
            jobs = 1
        if jobs == 1:
            # The serial build, exactly as before: DVC's own.
            try:
                return subprocess.run([dvc(), "repro"], env=_environment()).returncode
            except KeyboardInterrupt:
                raise Interrupted(signal.SIGINT) from None
        from dvc.exceptions import NotDvcRepoError
        from dvc.repo import Repo

        try:
            root = Path(Repo.find_root())
        except NotDvcRepoError:
            raise ScheduleError("not inside a DVC project; run from the project folder") from None
        # DVC names a stage of the project's dvc.yaml by its name alone from its folder.
        os.chdir(root)
        with _signals_noted():
            pipeline = read_pipeline(root)
            stages = to_run(pipeline, outdated(root))
            if not stages:
                print("Every stage is up to date (dvc status); nothing to run.")
                return 0
            print(f"{len(stages)} of {len(pipeline.order)} stages to run or check, on {jobs} cores")
            before, ignores = lock_entries(root), ignore_files(pipeline, root)
            try:
                build(root, pipeline, stages, jobs)
            finally:
                # Whatever the build ended in, the stages that ended wrote their entries.
                reorder_lock(root, before, pipeline.order)
                reorder_ignores(pipeline, root, ignores)
    except ScheduleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Interrupted as interruption:
        print(
            "interrupted: the running stages were stopped; nothing half-written was left behind",
            file=sys.stderr,
        )
        return 128 + interruption.args[0]
    return 0


if __name__ == "__main__":
    sys.exit(main())
