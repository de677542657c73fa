"""Commands around the pipeline (they may ask DVC; the stages never do)."""

from __future__ import annotations

import sys
from pathlib import Path


def dvc() -> str:
    """The dvc installed beside this interpreter (requirements.lock pins it)."""
    return str(Path(sys.executable).with_name("dvc"))
