"""params.yaml is checked in one place, and each stage sees only what dvc.yaml declares."""

from __future__ import annotations

import ast
import hashlib
import importlib
from pathlib import Path

import pytest
import yaml

from stages import config
from tests.conftest import ROOT


@pytest.fixture
def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def dvc_spec() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_the_shipped_params_are_valid_and_keep_the_lessons_defaults(params):
    flat = config.validate(params)
    assert flat["train.epochs"] == 5
    assert flat["train.batch_size"] == 32
    assert flat["train.optimizer"] == "adam"
    assert flat["model.hidden_units"] == [128]
    assert flat["model.activation"] == "relu"
    assert flat["render.grid_size"] == 5
    assert flat["prepare.test_size"] == 10_000


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        (
            "train",
            "optimizer",
            "adamm",
            "train.optimizer = 'adamm' is not one of adam, rmsprop, sgd",
        ),
        ("train", "epochs", "five", "train.epochs = 'five' is not a whole number from 1 to 1000"),
        ("train", "epochs", 0, "train.epochs = 0 is not a whole number from 1 to 1000"),
        ("train", "epochs", True, "train.epochs = True is not a whole number"),
        ("train", "learning_rate", 0, "train.learning_rate = 0 is not a number above 0"),
        ("train", "learning_rate", -0.1, "train.learning_rate = -0.1 is not a number above 0"),
        (
            "model",
            "hidden_units",
            "abc",
            "model.hidden_units = 'abc' is not a list of layer widths",
        ),
        ("model", "hidden_units", [128, -4], "model.hidden_units = [128, -4] is not a list"),
        (
            "model",
            "activation",
            "relu6",
            "model.activation = 'relu6' is not one of relu, leaky_relu",
        ),
        ("model", "dropout", 1.0, "model.dropout = 1.0 is not a number from 0 below 1"),
        ("model", "kind", "rnn", "model.kind = 'rnn' is not one of dense, cnn"),
        ("render", "grid_size", 0, "render.grid_size = 0 is not a whole number from 1 to 100"),
        ("prepare", "test_size", 10_001, "prepare.test_size = 10001 is not a whole number from 1"),
        ("data", "source", "no/such/mnist.npz", "data.source = 'no/such/mnist.npz' is not one of"),
        (
            "paths",
            "model",
            "/abs/model.keras",
            "paths.model = '/abs/model.keras' is not a relative",
        ),
    ],
)
def test_a_bad_value_is_named_with_what_is_allowed(params, section, key, value, message):
    params[section][key] = value
    with pytest.raises(config.ParamsError) as error:
        config.validate(params)
    assert str(error.value).startswith(f"params.yaml: {message}")
    assert "\n" not in str(error.value)


def test_an_unknown_key_is_refused_not_ignored(params):
    params["train"]["epoch"] = 10
    with pytest.raises(
        config.ParamsError, match=r"unknown key train\.epoch; allowed: train\.epochs"
    ):
        config.validate(params)


def test_augmentation_is_checked_key_by_key(params):
    params["train"]["augmentation"]["rotation"] = -5
    with pytest.raises(
        config.ParamsError, match=r"train\.augmentation\.rotation = -5 is not a number"
    ):
        config.validate(params)
    params["train"]["augmentation"] = {"rotation": 10, "zoom": 0.1, "shift": 0.1, "flip": True}
    with pytest.raises(
        config.ParamsError, match=r"unknown key train\.augmentation\.flip; allowed: "
    ):
        config.validate(params)


def test_an_unknown_section_is_refused(params):
    params["trian"] = {"epochs": 3}
    with pytest.raises(config.ParamsError, match=r"unknown key trian\.epochs; allowed: sections"):
        config.validate(params)


def test_a_missing_key_is_named(params):
    del params["train"]["seed"]
    with pytest.raises(config.ParamsError, match=r"train\.seed is missing"):
        config.validate(params)


def test_a_grid_larger_than_the_test_set_is_refused(params):
    params["prepare"]["test_size"] = 20
    with pytest.raises(config.ParamsError, match="grid_size = 5 needs 25 test images"):
        config.validate(params)


def test_early_stopping_needs_a_validation_split(params):
    params["train"]["early_stopping_patience"] = 2
    with pytest.raises(config.ParamsError, match="needs train.validation_split above 0"):
        config.validate(params)


def test_a_local_source_that_exists_is_allowed(params, tmp_path, monkeypatch):
    (tmp_path / "mnist.npz").write_bytes(b"checked later, by the download stage")
    monkeypatch.chdir(tmp_path)
    params["data"]["source"] = "mnist.npz"
    assert config.validate(params)["data.source"] == "mnist.npz"


def test_broken_yaml_is_one_line(tmp_path):
    broken = tmp_path / "params.yaml"
    broken.write_text("train:\n  epochs: [5\n")
    with pytest.raises(config.ParamsError, match=r"params.yaml: not valid YAML at line \d"):
        config.read_yaml(broken)


def test_a_stage_sees_only_its_declared_params_and_paths(params, dvc_spec):
    render = config.declared("render", config.validate(params), dvc_spec)
    assert render["render.grid_size"] == 5
    assert set(render.paths) == {
        "test_set", "predictions", "confusion", "per_class", "history", "figures", "summary"
    }  # fmt: skip
    with pytest.raises(KeyError, match="train.epochs is not declared under stages.render"):
        render["train.epochs"]
    with pytest.raises(KeyError, match="paths.model is not among the deps or outs"):
        render.path("model")


def test_an_unknown_stage_is_refused(params, dvc_spec):
    with pytest.raises(config.ParamsError, match="no stage named 'deploy'"):
        config.declared("deploy", config.validate(params), dvc_spec)


class Recorder:
    """Wraps a StageParams and remembers which keys and paths were read."""

    def __init__(self, params: config.StageParams):
        self.params = params
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return self.params[key]

    def declared_keys(self):
        return self.params.declared_keys()

    def path(self, name):
        self.read.add(f"paths.{name}")
        return self.params.path(name)


@pytest.mark.parametrize("stage", ["download", "prepare", "train", "evaluate", "render", "page"])
def test_each_stage_reads_exactly_what_it_declares(stage, params, dvc_spec, monkeypatch):
    """main() must use every declared key and path: a declared but unread key would rerun the
    stage for nothing; an undeclared one raises (see above)."""
    module = importlib.import_module(f"stages.{stage}")
    stage_params = config.declared(stage, config.validate(params), dvc_spec)
    recorder = Recorder(stage_params)
    monkeypatch.setattr(config, "load", lambda name: recorder)
    calls = []
    monkeypatch.setattr(module, stage, lambda *args, **kwargs: calls.append((args, kwargs)))
    module.main()
    assert len(calls) == 1
    declared = set(stage_params.values) | {f"paths.{name}" for name in stage_params.paths}
    assert recorder.read == declared


def stage_modules_imported_by(module: str) -> set[str]:
    """The stages.* modules that stages/<module>.py imports, directly or through others."""
    found: set[str] = set()
    pending = [module]
    while pending:
        tree = ast.parse((ROOT / "stages" / f"{pending.pop()}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "stages":
                names = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stages."):
                names = {node.module.removeprefix("stages.")}
            else:
                continue
            pending.extend(names - found)
            found |= names
    return found


def test_every_stage_depends_on_the_code_it_runs(dvc_spec):
    """DVC does not follow imports: each stages/*.py a stage imports must be among its deps,
    and so must the pinned requirements."""
    for name, spec in dvc_spec["stages"].items():
        code = {f"stages/{module}.py" for module in stage_modules_imported_by(name) | {name}}
        assert code <= set(spec["deps"]), name
        assert "requirements.lock" in spec["deps"], name


def test_loading_reads_params_yaml_from_the_working_folder(tmp_path, monkeypatch):
    for name in ("params.yaml", "dvc.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    monkeypatch.chdir(tmp_path)
    assert config.load("train")["train.epochs"] == 5
    assert config.load("train").path("model") == Path("models/model.keras")


def test_the_committed_dvc_lock_matches_the_code_and_params():
    """dvc.lock is committed after a build with the shipped params; a code or params edit
    without a rebuild would leave it describing a build nobody can reproduce."""
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    flat = config.flatten(yaml.safe_load((ROOT / "params.yaml").read_text()))
    assert set(lock["stages"]) == {"download", "prepare", "train", "evaluate", "render", "page"}
    for stage in lock["stages"].values():
        for dep in stage["deps"]:
            source = ROOT / dep["path"]
            if source.suffix in (".py", ".lock"):
                digest = hashlib.md5(source.read_bytes()).hexdigest()
                assert digest == dep["md5"], f"{dep['path']} changed since dvc.lock; run make repro"
        for key, value in config.flatten(stage.get("params", {}).get("params.yaml", {})).items():
            assert flat[key] == value, f"{key} differs from dvc.lock; run make repro"
