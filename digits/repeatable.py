"""Loading Keras so that the same inputs give the same bytes, on any x86-64 CPU.

Everything that decides how TensorFlow computes, and so whether a rebuild repeats, is set
here and nowhere else: the instruction set oneDNN may use, the threads an op runs on (a
training's count is fixed per network in digits/training.py, an evaluation's here), and the
seeds and op determinism of a training. docs/reproducibility.md says what was measured.
"""

from __future__ import annotations

import os
import sys

# What Keras imports only if they are installed, for features no stage uses (see import_keras).
KERAS_EXTRAS = ("sklearn", "matplotlib", "matplotlib.pyplot", "pandas", "IPython")


def import_keras():
    """Import Keras (and TensorFlow under it) held to AVX2, without their start-up notices.

    oneDNN, TensorFlow's CPU kernels on x86-64, picks its code by the CPU's instruction set,
    and its AVX-512 code adds up in another order than its AVX2 code, so an AVX-512 CPU
    trained other weights. Holding it to AVX2 everywhere makes AVX-512 CPUs give the bytes of
    every x86-64 CPU with AVX2 (Intel since 2013, AMD since 2015). This overrides the
    environment on purpose: the same inputs must give the same bytes on any of these CPUs.

    TF_CPP_MIN_LOG_LEVEL quiets TensorFlow's own logging, but absl's "All log messages before
    absl::InitializeLog()" and oneDNN's notice are written by C++ straight to file descriptor 2
    while TensorFlow loads, before any setting applies. So the import runs with descriptor 2 on
    the null device; what goes wrong afterwards shows as usual.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    # Keras imports scikit-learn (and SciPy's statistics under it) for its scikit-learn
    # wrappers, matplotlib and its pyplot for its image galleries, pandas to slice data
    # frames given to fit(), and IPython to show a saved model's files in a notebook, each
    # only if it is installed, and nothing here uses any of them through Keras: about 1.2 s
    # of every process that trains or evaluates a network for scikit-learn and pyplot, and
    # 0.55 s more of a training's for the rest (docs/benchmarks.md). A None
    # entry in sys.modules makes such an import fail at once, and Keras carries on as it does
    # where they are not installed. The entries go afterwards, so that the process may still
    # import them itself; those Keras features stay unusable in it (a process that needs them
    # imports the package before this, and it is left alone: evaluate's scores need pandas).
    skipped = [name for name in KERAS_EXTRAS if name not in sys.modules]
    for name in skipped:
        sys.modules[name] = None  # type: ignore[assignment]
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            import keras
            import tensorflow  # noqa: F401  (loads the C++ runtime that prints the notices)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        for name in skipped:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return keras


# The environment variable TensorFlow reads, once, when it starts, for the threads each op may
# split its work over (its default: every core the process may use). A training sets it to its
# network's count (digits/training.py), an evaluation to EVALUATION_THREADS.
THREADS_VARIABLE = "TF_NUM_INTRAOP_THREADS"

# The threads each op of an evaluation (and of digit-predict) runs on, whatever the machine's
# cores. TensorFlow's default split the logistic variation's product over every core, and one
# core and two gave other probabilities in its predictions (docs/reproducibility.md). The
# stage took as long on one thread as on two, within the noise, since most of it is
# TensorFlow's start, and one leaves the other cores to the stages beside it in a build
# (docs/benchmarks.md).
EVALUATION_THREADS = 1


def threads_per_op(declared: int) -> int:
    """The threads each op of a training or an evaluation runs on: `declared`
    (digits/training.py fixes it per network, EVALUATION_THREADS for an evaluation), unless
    the environment sets TF_NUM_INTRAOP_THREADS, as bench/threads.py does to compare counts.
    Returns the count in effect, which the environment then holds.

    TensorFlow reads the setting once, when it starts, so this is called where a training
    or an evaluation process starts, before anything imports TensorFlow. The count changes no
    byte of what is trained (op determinism; tests/test_threads.py), only how fast; an
    evaluation's predictions may change with it, so its count is fixed too.
    """
    os.environ.setdefault(THREADS_VARIABLE, str(declared))
    return threads_in_effect(declared)


def threads_in_effect(declared: int) -> int:
    """`declared`, or what the environment's TF_NUM_INTRAOP_THREADS sets instead (a number of
    1 or more; TensorFlow takes 0 for its default, every core, and so does this)."""
    given = os.environ.get(THREADS_VARIABLE, "").strip()
    if not given:
        return declared
    try:
        count = int(given)
    except ValueError:
        return declared
    return count if count > 0 else every_core()


def every_core() -> int:
    """The cores this process may use, which TensorFlow splits an op over by default (a
    container or `taskset` may allow fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def seed_everything(seed: int) -> None:
    """Make training repeat exactly: the same seed gives the same initial weights, shuffles,
    augmentations and dropout masks, op determinism the same sums, and exact arithmetic the
    same bytes on Intel and AMD CPUs alike.

    Grappler, TensorFlow's graph optimizer, rewrites `x / sqrt(y)` in a training step (as
    RMSprop's update is written) to `x * rsqrt(y)`, and TensorFlow computes rsqrt from the
    CPU's approximate reciprocal square root instruction with one Newton step. That
    instruction's result is the CPU maker's own (Intel's and AMD's tables differ), unlike a
    square root and a division, which IEEE 754 rounds exactly on every CPU. Here 22% of a
    million rsqrt results differed from the correctly rounded 1/sqrt (AMD EPYC). So
    Grappler's arithmetic rewrites are off: a training keeps the square root and the
    division it was written with. On the AMD EPYC this changed the weights of the RMSprop
    networks only; the Adam ones (the lesson's, the logistic and the CNN) kept their bytes
    (docs/reproducibility.md).
    """
    keras = import_keras()
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})
