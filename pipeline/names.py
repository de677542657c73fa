"""The names a variation may have, and who may see it: what params.yaml's `variants` may hold,
for the stages that read the names (variant_settings, compare, values) without reading each
variation's settings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# A variation's name becomes part of stage names and paths.
NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
# The comparison, the page and the key call the lesson's own model so.
LESSON = "lesson"
# And the logistic-regression lesson's scikit-learn model so (stages/logistic_regression.py).
SKLEARN = "sklearn"
# The names of the comparison's models that are not variations, and what each names there: a
# variation may not take them.
RESERVED = {LESSON: "the lesson's own model", SKLEARN: "the scikit-learn model"}


def is_variation(name: object) -> bool:
    return isinstance(name, str) and bool(NAME.fullmatch(name)) and name not in RESERVED


# The key beside a variation's `model` and `train` that keeps its settings from students. Its
# rule is the variation's own (stages/variants.py), so a misspelt key is refused there.
INSTRUCTOR_ONLY = "instructor_only"
# The subfolder of the comparison with its figures as the instructor's outputs show them:
# drawn with the instructor-only variations too (stages/compare.py).
INSTRUCTOR_FIGURES = "instructor"


def variants_section(value: Any) -> str | None:
    """The variants section, as far as the stages that only need its names read it: a mapping
    of valid names (each variation's settings are checked by its variant_settings stage)."""
    if isinstance(value, Mapping) and all(is_variation(name) for name in value):
        return None
    return (
        "is not a mapping of variant names (lowercase letters, digits and _, "
        f"not {' or '.join(RESERVED)}) to settings"
    )


def instructor_only(variants: Mapping[str, Any] | None) -> list[str]:
    """The variations marked `instructor_only: true`, in params.yaml's order. Anything but a
    true flag leaves a variation for everyone; its variant_settings stage refuses a flag that
    is not true or false before any stage reads this."""
    return [
        name
        for name, settings in (variants or {}).items()
        if isinstance(settings, Mapping) and settings.get(INSTRUCTOR_ONLY) is True
    ]
