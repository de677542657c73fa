"""Each stage checks only the settings its module reads, with the rules the module declares;
a mistake ends in one line naming the key, the value and what is allowed."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from digits import training
from pipeline import config
from stages import compare, download, prepare, render, variants
from tests.helpers import LESSON_STAGES, ROOT

STAGES = LESSON_STAGES
VARIANT_STAGES = ["variant_settings@cnn", "variant_train@cnn", "variant_evaluate@cnn", "compare"]
# The rules of every stage module, by the section they check.
RULES = {
    **download.SETTINGS,
    **prepare.SETTINGS,
    **training.SETTINGS,
    **render.SETTINGS,
    **compare.SETTINGS,
}


@pytest.fixture
def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def check_all(tree) -> dict:
    return config.check(tree, ["data", "prepare", "model", "train", "render", "variants"], RULES)


def test_the_shipped_params_are_valid_and_keep_the_lessons_defaults(params):
    flat = check_all(params)
    assert flat["train.epochs"] == 5
    assert flat["train.batch_size"] == 32
    assert flat["train.optimizer"] == "adam"
    assert flat["model.hidden_units"] == [128]
    assert flat["model.activation"] == "relu"
    assert flat["render.grid_size"] == 5
    assert flat["prepare.test_size"] == 10_000
    assert set(flat) == set(RULES)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("train", "optimizer", "adamm", "train.optimizer = 'adamm' is not one of adam, rmsprop"),
        ("train", "epochs", "five", "train.epochs = 'five' is not a whole number from 1 to 1000"),
        ("train", "epochs", 0, "train.epochs = 0 is not a whole number from 1 to 1000"),
        ("train", "epochs", True, "train.epochs = True is not a whole number from 1 to 1000"),
        ("train", "learning_rate", 0, "train.learning_rate = 0 is not a number above 0 (at"),
        ("train", "learning_rate", -0.1, "train.learning_rate = -0.1 is not a number above 0"),
        ("model", "hidden_units", "abc", "model.hidden_units = 'abc' is not a list of up to 16"),
        ("model", "hidden_units", [128, -4], "model.hidden_units = [128, -4] is not a list"),
        ("model", "activation", "relu6", "model.activation = 'relu6' is not one of relu, leaky"),
        ("model", "dropout", 1.0, "model.dropout = 1.0 is not a number from 0 below 1"),
        ("model", "kind", "rnn", "model.kind = 'rnn' is not one of dense, cnn"),
        ("render", "grid_size", 0, "render.grid_size = 0 is not a whole number from 1 to 100"),
        ("prepare", "test_size", 10_001, "prepare.test_size = 10001 is not a whole number from 1"),
        ("data", "source", "no/such/mnist.npz", "data.source = 'no/such/mnist.npz' is not one of"),
    ],
)  # fmt: skip
def test_a_bad_value_is_named_with_what_is_allowed(params, section, key, value, message):
    params[section][key] = value
    with pytest.raises(config.ParamsError) as error:
        check_all(params)
    assert str(error.value).startswith(f"params.yaml: {message}")
    assert "\n" not in str(error.value)


# Odd values a hand edit can leave: each must end in the one-line error, never a traceback.
ODD_VALUES = [
    None, "", [], {}, [[1, 2], [3]], {"a": 1}, 10**30, -10**30, -1, math.nan, math.inf,
    "x" * 300, "/etc/passwd", "../../outside.npz", True,
]  # fmt: skip


# The odd values above that a key does take: an empty list is logistic regression, and
# data.source may name any existing file (the download stage then refuses what is no MNIST).
# compare reads only the variants' names ("a" is one); variant_settings@a checks the rest.
TAKEN = {"model.hidden_units": [[]], "data.source": ["/etc/passwd"], "variants": [{}, {"a": 1}]}


@pytest.mark.parametrize("key", sorted(RULES))
def test_every_key_refuses_every_odd_value_in_one_line(params, key):
    *parents, last = key.split(".")
    for value in ODD_VALUES:
        tree = yaml.safe_load(yaml.safe_dump(params))
        node = tree
        for part in parents:
            node = node[part]
        node[last] = value
        if value in TAKEN.get(key, []):
            assert check_all(tree)[key] == value
            continue
        with pytest.raises(config.ParamsError) as error:
            check_all(tree)
        message = str(error.value)
        assert message.startswith(f"params.yaml: {key} = "), (value, message)
        assert "\n" not in message and len(message) < 300, message


def test_an_unknown_key_is_refused_and_the_allowed_keys_include_nested_ones(params):
    params["train"]["epoch"] = 10
    with pytest.raises(config.ParamsError) as error:
        check_all(params)
    message = str(error.value)
    assert message.startswith("params.yaml: unknown key train.epoch; allowed: train.epochs, ")
    assert message.endswith("train.augmentation.zoom, train.augmentation.shift")


def test_augmentation_is_checked_key_by_key(params):
    params["train"]["augmentation"]["rotation"] = -5
    with pytest.raises(
        config.ParamsError, match=r"train\.augmentation\.rotation = -5 is not a number"
    ):
        check_all(params)
    params["train"]["augmentation"] = {"rotation": 10, "zoom": 0.1, "shift": 0.1, "flip": True}
    with pytest.raises(
        config.ParamsError, match=r"unknown key train\.augmentation\.flip; allowed: train\.epochs"
    ):
        check_all(params)


def test_a_section_that_is_not_a_mapping_is_named(params):
    params["train"]["augmentation"] = None
    with pytest.raises(config.ParamsError) as error:
        check_all(params)
    assert str(error.value) == (
        "params.yaml: train.augmentation = None is not a section holding "
        "train.augmentation.rotation, train.augmentation.zoom, train.augmentation.shift"
    )


def test_a_mapping_where_a_value_belongs_is_named(params):
    params["train"]["epochs"] = {"value": 5}
    with pytest.raises(config.ParamsError) as error:
        check_all(params)
    assert str(error.value) == (
        "params.yaml: train.epochs = {'value': 5} is not a whole number from 1 to 1000"
    )


def test_a_missing_key_is_named(params):
    del params["train"]["seed"]
    with pytest.raises(config.ParamsError, match=r"^params.yaml: train\.seed is missing$"):
        check_all(params)


def test_keys_outside_the_declared_ones_are_neither_read_nor_checked(params):
    params["render"]["grid_size"] = "huge"
    params["rendr"] = {"typo": 1}
    values = config.check(params, ["model", "train"], training.SETTINGS)
    assert values["train.epochs"] == 5
    assert not any(key.startswith("render") for key in values)


def test_a_single_declared_key_is_checked_alone(params):
    params["render"]["grid_size"] = "huge"
    assert config.check(params, ["render.confused_pairs"], render.SETTINGS) == {
        "render.confused_pairs": 10
    }


def test_early_stopping_needs_a_validation_split(params):
    params["train"]["early_stopping_patience"] = 2
    values = check_all(params)
    assert training.settings_together(values) == (
        "train.early_stopping_patience = 2 needs train.validation_split above 0"
    )
    values["train.validation_split"] = 0.1
    assert training.settings_together(values) is None


def test_a_local_source_that_exists_is_allowed(params, tmp_path, monkeypatch):
    (tmp_path / "mnist.npz").write_bytes(b"checked later, by the download stage")
    monkeypatch.chdir(tmp_path)
    params["data"]["source"] = "mnist.npz"
    assert check_all(params)["data.source"] == "mnist.npz"


def test_broken_yaml_is_one_line(tmp_path):
    broken = tmp_path / "params.yaml"
    broken.write_text("train:\n  epochs: [5\n")
    with pytest.raises(config.ParamsError, match=r"params.yaml: not valid YAML at line \d"):
        config.read_yaml(broken)


def test_a_stage_reads_the_sections_of_its_own_rules_only(tmp_path, monkeypatch):
    """A typo in a render setting stops render, not train."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["render"]["grid_size"] = "huge"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert config.read_params(training.SETTINGS)["train.epochs"] == 5
    with pytest.raises(config.ParamsError, match=r"^params.yaml: render.grid_size = 'huge' is"):
        config.read_params(render.SETTINGS)


def test_the_sections_are_those_dvc_yaml_declares():
    assert config.sections(training.SETTINGS) == ["model", "train"]
    assert config.sections(download.SETTINGS) == ["data"]
    assert config.sections(compare.SETTINGS) == ["variants"]
    assert config.sections(variants.rules_for("cnn")) == ["model", "train", "variants.cnn"]


def test_values_are_checked_together(tmp_path, monkeypatch):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["early_stopping_patience"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(config.ParamsError) as error:
        config.read_params(training.SETTINGS, together=training.settings_together)
    assert str(error.value) == (
        "params.yaml: train.early_stopping_patience = 3 needs train.validation_split above 0"
    )


def test_a_variations_settings_file_is_read_by_the_same_rules(tmp_path):
    settings = tmp_path / "settings.json"
    resolved = variants.resolve(
        config.check(
            yaml.safe_load((ROOT / "params.yaml").read_text()),
            ["model", "train", "variants.cnn"],
            variants.rules_for("cnn"),
            optional=["variants.cnn"],
        ),
        "cnn",
    )
    settings.write_text(json.dumps(resolved))
    assert config.read_params(training.SETTINGS, file=settings)["model.kind"] == "cnn"
    resolved["train"]["epochs"] = 0
    settings.write_text(json.dumps(resolved))
    with pytest.raises(config.ParamsError) as error:
        config.read_params(training.SETTINGS, file=settings)
    assert str(error.value) == (
        f"{settings}: train.epochs = 0 is not a whole number from 1 to 1000"
    )


def test_a_missing_or_broken_settings_file_is_one_line(tmp_path):
    with pytest.raises(config.ParamsError, match=r"settings.json: file not found; run `dvc repro`"):
        config.read_params(training.SETTINGS, file=tmp_path / "settings.json")
    (tmp_path / "settings.json").write_text("{")
    with pytest.raises(config.ParamsError, match=r"settings.json: not valid JSON at line \d+$"):
        config.read_params(training.SETTINGS, file=tmp_path / "settings.json")


def test_the_committed_dvc_lock_matches_the_code_and_params():
    """dvc.lock is committed after a build with the shipped params; a code or params edit
    without a rebuild would leave it describing a build nobody can reproduce."""
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    flat = config.flatten(yaml.safe_load((ROOT / "params.yaml").read_text()))
    names = set(yaml.safe_load((ROOT / "params.yaml").read_text())["variants"])
    foreach = {stage.split("@")[0] for stage in VARIANT_STAGES[:3]}
    variant_stages = {f"{stage}@{name}" for stage in foreach for name in names}
    assert set(lock["stages"]) == {*STAGES, *variant_stages, "compare"}
    for stage in lock["stages"].values():
        for dep in stage["deps"]:
            source = ROOT / dep["path"]
            if source.suffix in (".py", ".lock", ".js", ".css"):
                digest = hashlib.md5(source.read_bytes()).hexdigest()
                assert digest == dep["md5"], f"{dep['path']} changed since dvc.lock; run make repro"
        for key, value in config.flatten(stage.get("params", {}).get("params.yaml", {})).items():
            assert flat[key] == value, f"{key} differs from dvc.lock; run make repro"


def test_a_variation_named_with_a_space_meets_the_naming_rule_not_argparse(tmp_path):
    """dvc.yaml puts the name in the command unquoted, so the shell splits `my net` in two:
    the stage still answers with the naming rule, in one line."""
    shutil.copy(ROOT / "params.yaml", tmp_path)
    command = ["--name", "my", "net", "--variant", "reports/variants/my", "net/settings.json"]
    with pytest.raises(config.ParamsError) as error:
        variants.main(command)
    assert str(error.value) == (
        "params.yaml: variants.my net is not a name of lowercase letters, digits and _ "
        "starting with a letter (at most 32)"
    )
    result = subprocess.run(
        [sys.executable, "-m", "stages.variants", *command],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stderr) == (1, f"error: {error.value}\n")
    assert not (tmp_path / "reports").exists()
