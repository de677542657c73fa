"""Running NumPy, SciPy and scikit-learn so that the same inputs give the same bytes.

What decides the arithmetic of a scikit-learn fit on the CPU, and so whether a rebuild
repeats, is set here and nowhere else: which OpenBLAS kernels run the matrix products, which
of NumPy's instruction-set variants run its element-wise functions, and how many threads
share a product. digits/repeatable.py does the same for TensorFlow; docs/reproducibility.md
says what was measured.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

# Both OpenBLAS libraries (NumPy's and SciPy's each bundle one) choose their kernels by the CPU
# when they load, and a SkylakeX (AVX-512) kernel adds up a product in another order than a
# Haswell (AVX2) one: on an AMD EPYC the fitted weights differed. Haswell's kernels run on
# every x86-64 CPU with AVX2, the same CPUs TensorFlow's hold asks for.
# NumPy picks its exp, log and other loops by the CPU too (an AVX-512 exp rounds otherwise
# than an AVX2 one): the fit did not change, the predicted probabilities did. Turning off
# NumPy's AVX-512 variants holds it to the AVX2 ones that every such CPU runs. A feature
# the CPU lacks may be named: NumPy skips it.
HELD = {
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}


def is_held() -> bool:
    """Whether this process started with the hold in its environment."""
    return all(os.environ.get(name) == value for name, value in HELD.items())


def run_held(module: str, argv: Sequence[str]) -> None:
    """Go on in this process if it is held; otherwise replace it with `python -m module
    argv` in the held environment.

    OpenBLAS and NumPy read these settings once, when they load, and a stage module has
    loaded NumPy by the time its command runs (pipeline.artifacts imports it). So the command
    starts again, at the cost of one more start of Python, rather than asking everyone who
    runs it to set the environment first. The environment's other settings are kept; the
    held ones override what it says, on purpose.
    """
    if is_held():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], {**os.environ, **HELD})


@contextmanager
def one_thread() -> Iterator[None]:
    """Within the block, every BLAS library and OpenMP runtime loaded runs on one thread,
    whatever OMP_NUM_THREADS or OPENBLAS_NUM_THREADS say: with two threads a product is
    split in two and added up in another order, and the fit took other weights."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
