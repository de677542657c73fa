"""Each stage checks, and sees, only the settings and files dvc.yaml declares for it, as DVC
resolves dvc.yaml; the rules for a section live in the stage module that owns it."""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import math
from pathlib import Path

import pytest
import yaml

from stages import compare, config, download, prepare, render, train
from tests.helpers import ROOT, copy_project

STAGES = ["download", "prepare", "train", "evaluate", "render", "page"]
VARIANT_STAGES = ["variant_settings@cnn", "variant_train@cnn", "variant_evaluate@cnn", "compare"]
# The rules each stage hands to config.load, by the section they check.
RULES = {
    **download.SETTINGS,
    **prepare.SETTINGS,
    **train.SETTINGS,
    **render.SETTINGS,
    **compare.SETTINGS,
}


@pytest.fixture
def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture(scope="module")
def declared() -> dict[str, config.Declared]:
    """What DVC resolves each stage of the project to."""
    return {stage: config.declared(stage, ROOT) for stage in STAGES + VARIANT_STAGES}


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
    values = config.check(params, ["model", "train"], train.SETTINGS)
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
    assert train.settings_together(values) == (
        "train.early_stopping_patience = 2 needs train.validation_split above 0"
    )
    values["train.validation_split"] = 0.1
    assert train.settings_together(values) is None


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


def test_dvc_resolves_what_each_stage_declares(declared):
    render_stage = declared["render"]
    assert render_stage.params == ("render",)
    assert render_stage.outs == {"reports/figures", "reports/confusion_summary.md"}
    assert "data/prepared/test" in render_stage.deps
    assert declared["page"].params == ("model", "train", "render.confused_pairs")
    assert declared["evaluate"].params == ()
    assert declared["train"].outs == {"models/model.keras", "reports/history.csv"}


def test_an_unknown_stage_is_refused():
    with pytest.raises(config.ParamsError, match=r"^dvc.yaml: cannot resolve stage 'deploy'"):
        config.declared("deploy", ROOT)


def test_the_trained_model_is_found_through_dvc():
    assert config.output_of("train", ".keras", ROOT) == ROOT / "models/model.keras"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("config") / "project")


def test_load_hands_a_stage_its_settings_and_files(project, monkeypatch):
    monkeypatch.chdir(project)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    argv = ["--train-set", "data/prepared/train", "--model", "models/model.keras"]
    argv += ["--history", "reports/history.csv"]
    params = config.load("train", train.SETTINGS, ("train_set", "model", "history"), argv=argv)
    assert params["train.epochs"] == 5
    assert params.path("model") == Path("models/model.keras")
    with pytest.raises(KeyError, match="render.grid_size is not declared under stages.train"):
        params["render.grid_size"]
    with pytest.raises(KeyError, match="--figures is not among the files of stages.train"):
        params.path("figures")


def test_load_refuses_a_file_the_stage_does_not_declare(project, monkeypatch):
    monkeypatch.chdir(project)
    argv = ["--train-set", "data/prepared/test", "--model", "m.keras", "--history", "h.csv"]
    with pytest.raises(config.ParamsError) as error:
        config.load("train", train.SETTINGS, ("train_set", "model", "history"), argv=argv)
    assert str(error.value) == (
        "dvc.yaml: --train-set data/prepared/test is not among the deps or outs of stages.train"
    )


def test_load_names_a_missing_file_option(project, monkeypatch):
    monkeypatch.chdir(project)
    with pytest.raises(config.StageError) as error:
        config.load("render", render.SETTINGS, ("figures",), argv=[])
    assert str(error.value) == (
        "python -m stages.render: the following arguments are required: --figures"
    )


def test_load_follows_the_stage_dvc_runs(project, monkeypatch):
    """Under `dvc repro`, DVC_STAGE names the stage; load resolves that one."""
    monkeypatch.chdir(project)
    monkeypatch.setenv("DVC_STAGE", "prepare")
    with pytest.raises(config.ParamsError, match="is not among the deps or outs of stages.prepare"):
        config.load("train", train.SETTINGS, ("model",), argv=["--model", "models/model.keras"])


class Recorder:
    """Stands in for what config.load returns and remembers what main() read."""

    def __init__(self, params: config.StageParams):
        self.params = params
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return self.params[key]

    def declared_keys(self):
        return self.params.declared_keys()

    def path(self, name):
        self.read.add(f"--{name}")
        return self.params.path(name)


@pytest.mark.parametrize(
    ("stage", "module_name", "function"),
    [(stage, stage, stage) for stage in STAGES]
    + [
        ("variant_settings@cnn", "variants", "variant_settings"),
        ("compare", "compare", "compare"),
    ],
)
def test_each_stage_reads_exactly_what_it_declares(
    stage, module_name, function, declared, params, monkeypatch
):
    """main() must ask for every declared data file and use every declared key: a declared but
    unread one would rerun the stage for nothing; an undeclared one raises (see above)."""
    paths = yaml.safe_load((ROOT / "dvc.yaml").read_text())["vars"][0]["paths"]
    paths["variant"] = "reports/variants/cnn/settings.json"
    paths.update(script="stages/page.js", style="stages/page.css")
    module = importlib.import_module(f"stages.{module_name}")
    found = declared[stage]
    asked = {}

    def fake_load(name, rules, files=(), *, together=None, optional=(), argv=None):
        asked.update(name=name, files=list(files))
        values = config.check(params, found.params, rules, optional=optional)
        recorder = Recorder(config.StageParams(name, values, {f: Path(paths[f]) for f in files}))
        asked["recorder"] = recorder
        return recorder

    monkeypatch.setattr(config, "load", fake_load)
    monkeypatch.setenv("DVC_STAGE", stage)
    calls = []
    monkeypatch.setattr(module, function, lambda *args, **kwargs: calls.append((args, kwargs)))
    module.main()
    assert len(calls) == 1
    assert asked["name"] == stage
    data_files = {path for path in found.files if not path.endswith(".py")}
    assert {paths[name] for name in asked["files"]} == data_files - {"requirements.lock"}
    recorder = asked["recorder"]
    assert recorder.read == set(recorder.params.values) | {f"--{n}" for n in asked["files"]}
    for name in found.params:
        assert any(key == name or key.startswith(name + ".") for key in recorder.params.values)


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


def test_every_stage_depends_on_the_code_it_runs_and_on_the_run_time_lock_only(declared):
    """DVC does not follow imports: each stages/*.py a stage imports must be among its deps,
    and so must the pinned run-time packages, but not the tools' lock."""
    modules = {"variant_settings": "variants", "variant_train": "train"}
    modules["variant_evaluate"] = "evaluate"
    for name, stage in declared.items():
        module = modules.get(name.split("@")[0], name)
        code = {f"stages/{m}.py" for m in stage_modules_imported_by(module) | {module}}
        assert code <= stage.deps, name
        assert "requirements.lock" in stage.deps, name
        assert "requirements-dev.lock" not in stage.deps, name


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
            if source.suffix in (".py", ".lock"):
                digest = hashlib.md5(source.read_bytes()).hexdigest()
                assert digest == dep["md5"], f"{dep['path']} changed since dvc.lock; run make repro"
        for key, value in config.flatten(stage.get("params", {}).get("params.yaml", {})).items():
            assert flat[key] == value, f"{key} differs from dvc.lock; run make repro"


PIPELINE = {
    "vars": ["extra.yaml"],
    "stages": {
        "one": {"cmd": "true", "deps": ["${source}"], "params": ["x"], "outs": ["one.txt"]},
        "each": {
            "foreach": "${variants}",
            "do": {"cmd": "true", "deps": ["one.txt"], "outs": ["out-${key}.txt"]},
        },
    },
}


@pytest.fixture
def pipeline(tmp_path) -> Path:
    """A small DVC project: a stage whose dep comes from a vars file, and a foreach stage."""
    # What `dvc init --no-scm` writes, without its second of start-up.
    (tmp_path / ".dvc/tmp").mkdir(parents=True)
    (tmp_path / ".dvc/config").write_text("[core]\n    no_scm = True\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(PIPELINE))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"x": 1, "variants": {"a": {}}}))
    (tmp_path / "extra.yaml").write_text(yaml.safe_dump({"source": "in.txt"}))
    return tmp_path


def refuse_to_resolve(*args):
    raise AssertionError("DVC was asked again")


def test_dvc_is_asked_once_while_its_inputs_stay_the_same(pipeline, monkeypatch):
    first = config.declared("one", pipeline)
    assert (first.params, first.deps, first.outs) == (("x",), {"in.txt"}, {"one.txt"})
    monkeypatch.setattr(config, "_resolve", refuse_to_resolve)
    assert config.declared("one", pipeline) == first
    assert config.declared("each@a", pipeline).outs == {"out-a.txt"}


@pytest.mark.parametrize(
    ("file", "change", "stage", "expected"),
    [
        ("params.yaml", {"x": 1, "variants": {"a": {}, "b": {}}}, "each@b", {"out-b.txt"}),
        ("extra.yaml", {"source": "other.txt"}, "one", {"other.txt"}),
        ("dvc.yaml", {**PIPELINE, "vars": [{"source": "third.txt"}]}, "one", {"third.txt"}),
    ],
)
def test_dvc_is_asked_again_when_an_input_of_its_answer_changes(
    pipeline, file, change, stage, expected
):
    config.declared("one", pipeline)
    (pipeline / file).write_text(yaml.safe_dump(change))
    found = config.declared(stage, pipeline)
    assert expected in (found.deps, found.outs)


def test_a_variant_taken_out_of_params_is_unknown_at_once(pipeline):
    config.declared("each@a", pipeline)
    (pipeline / "params.yaml").write_text(yaml.safe_dump({"x": 1, "variants": {"b": {}}}))
    with pytest.raises(config.ParamsError, match=r"^dvc.yaml: cannot resolve stage 'each@a'"):
        config.declared("each@a", pipeline)


@pytest.mark.parametrize("kept", ['{"inputs": ', "[]", '{"inputs": {}, "stages": []}'])
def test_kept_declarations_that_are_unreadable_are_resolved_again(pipeline, kept):
    (pipeline / config.DECLARATIONS).write_text(kept)
    assert config.declared("one", pipeline).deps == {"in.txt"}
    assert "one" in json.loads((pipeline / config.DECLARATIONS).read_text())["stages"]


def test_a_kept_stage_that_is_unreadable_is_resolved_again(pipeline):
    config.declared("one", pipeline)
    kept = json.loads((pipeline / config.DECLARATIONS).read_text())
    kept["stages"]["one"] = "in.txt"
    (pipeline / config.DECLARATIONS).write_text(json.dumps(kept))
    assert config.declared("one", pipeline).deps == {"in.txt"}


def test_declarations_that_cannot_be_kept_are_still_handed_over(pipeline):
    # A folder where the kept file belongs: it can be neither read nor replaced.
    (pipeline / config.DECLARATIONS).mkdir()
    assert config.declared("one", pipeline).deps == {"in.txt"}
    assert config.declared("each@a", pipeline).outs == {"out-a.txt"}
    assert not list((pipeline / ".dvc/tmp").glob(".stage-declarations.json.*"))
