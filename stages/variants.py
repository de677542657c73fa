"""Variant settings: one of the lesson's variations, as the settings its training runs with.

A variant in params.yaml overrides some model.* and train.* settings; everything it does not
set comes from the lesson's own. This stage (one per variant, `variant_settings@<name>` in
dvc.yaml) writes the result, so that the variant's training depends on exactly the settings
it trains with: a new train.epochs retrains every variant that does not set its own, and a
new variants.cnn.train.epochs retrains the CNN alone.

Reads:  --name, the variant's name; params model.*, train.* and variants.<name>.*.
Writes: --variant, the variant's settings file, JSON: {"changes": the overrides, as dotted
        keys, and "model", "train": every setting, overrides applied}.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from digits import training
from pipeline import artifacts, cli, config
from pipeline.names import INSTRUCTOR_ONLY, NAME, RESERVED


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise config.ParamsError(
            f"{config.PARAMS_FILE}: variants.{name} is not a name of lowercase letters, digits "
            "and _ starting with a letter (at most 32)"
        )
    if name in RESERVED:
        raise config.ParamsError(
            f"{config.PARAMS_FILE}: variants.{name} is not allowed: the comparison calls "
            f"{RESERVED[name]} so; choose another name"
        )


def rules_for(name: str) -> dict[str, config.Rule]:
    """The lesson's rules, the same rules for the variant's optional overrides, and its
    optional `instructor_only` flag (a misspelt flag is an unknown key, refused)."""
    overrides = {f"variants.{name}.{key}": rule for key, rule in training.SETTINGS.items()}
    flag = {f"variants.{name}.{INSTRUCTOR_ONLY}": config.boolean}
    return {**training.SETTINGS, **overrides, **flag}


def resolve(values: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The lesson's model.* and train.* settings with the variant's overrides applied. Who
    may see the variation is not a setting it trains with, so its training does not rerun
    when that changes."""
    prefix = f"variants.{name}."
    changes = {
        key.removeprefix(prefix): v
        for key, v in values.items()
        if key.startswith(prefix) and key != prefix + INSTRUCTOR_ONLY
    }
    settings = {key: values[key] for key in training.SETTINGS}
    settings.update(changes)
    return {"changes": changes, **training.nest(settings)}


def variant_settings(name: str, values: Mapping[str, Any], dest: Path) -> dict[str, Any]:
    resolved = resolve(values, name)
    problem = training.settings_together(
        config.flatten({k: resolved[k] for k in ("model", "train")})
    )
    if problem:
        raise config.ParamsError(f"{config.PARAMS_FILE}: variants.{name}: {problem}")
    artifacts.write_json(dest, resolved)
    changes = ", ".join(f"{key}={value}" for key, value in resolved["changes"].items())
    print(f"variant_settings: {name}: {changes or 'the lesson unchanged'}")
    return resolved


def name_in(argv: list[str]) -> str | None:
    """The words after --name, up to the next option: dvc.yaml's cmd puts a name in unquoted,
    so the shell splits one with a space (`my net`) into several arguments."""
    if "--name" not in argv:
        return None
    start = argv.index("--name") + 1
    end = next((at for at in range(start, len(argv)) if argv[at].startswith("--")), len(argv))
    return " ".join(argv[start:end]) if end > start else None


def main(argv: list[str] | None = None) -> None:
    # The naming rule speaks before argparse, which would only call the name's words
    # "unrecognized arguments".
    name = name_in(sys.argv[1:] if argv is None else argv)
    if name is not None:
        check_name(name)
    parser = argparse.ArgumentParser(prog="python -m stages.variants")
    parser.add_argument("--name", required=True)
    args = cli.arguments("variants", ["variant"], argv, parser)
    check_name(args.name)
    values = config.read_params(rules_for(args.name), optional=(f"variants.{args.name}",))
    variant_settings(args.name, values, args.variant)


if __name__ == "__main__":
    cli.run(main)
