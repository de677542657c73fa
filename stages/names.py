"""The names a variation may have: what params.yaml's `variants` may hold, for the stages that
read the names (variant_settings, compare, values) without reading each variation's settings."""

from __future__ import annotations

import re

# A variation's name becomes part of stage names and paths.
NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
# The comparison, the page and the key call the lesson's own model so.
LESSON = "lesson"


def is_variation(name: object) -> bool:
    return isinstance(name, str) and bool(NAME.fullmatch(name)) and name != LESSON
