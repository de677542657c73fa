"""dvc.yaml says what each stage reads; the stage modules say what they read. These tests hold
the two to each other, since DVC reruns a stage only for what dvc.yaml declares and the
stages no longer ask DVC anything at run time.

For every stage DVC resolves (each `foreach` instance included):
- its params are the sections its module's rules read (`config.sections`);
- the files its cmd passes are exactly its data deps and outs;
- its code deps are the stages/*.py its module imports, directly or through others, plus
  requirements.lock (and not the tools' lock).

The same checks run on edited copies of dvc.yaml, which they must refuse.
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import config
from stages import variants
from tests.helpers import ROOT, copy_build, run

STAGES = ROOT / "stages"
# The packages of the project's code, lowest first: a module may import from its own package
# and the ones before it, never from one after it (stages, which dvc.yaml runs, come last).
LAYERS = ["pipeline", "digits", "courseware", "stages"]
# Options in a cmd whose value is not a file.
NOT_FILES = {"--name", "--audience"}


def module_file(dotted: str) -> str | None:
    """`digits.model` -> `digits/model.py`, if that is one of the project's modules."""
    path = dotted.replace(".", "/") + ".py"
    return path if dotted.split(".")[0] in LAYERS and (ROOT / path).is_file() else None


def imports_of(path: str) -> set[str]:
    """The project's modules that the module at `path` (`stages/train.py`) imports itself,
    anywhere in the file, as paths."""
    return set(_imports_in((ROOT / path).read_text(encoding="utf-8")))


# Parsed once for each text a module holds: the checks of dvc.yaml ask for the graph once
# per stage, and parsing every module each time took most of a check (issue 32).
@functools.lru_cache(maxsize=256)
def _imports_in(source: str) -> frozenset[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {module_file(name) for name in names} - {None}
    return frozenset(found)


def import_graph() -> dict[str, set[str]]:
    return {
        path.relative_to(ROOT).as_posix(): imports_of(path.relative_to(ROOT).as_posix())
        for layer in LAYERS
        for path in sorted((ROOT / layer).glob("*.py"))
    }


def reach(graph: dict[str, set[str]], module: str) -> set[str]:
    """`module` and every module it imports in `graph`, directly or through others."""
    found, pending = {module}, [module]
    while pending:
        for name in graph[pending.pop()] - found:
            found.add(name)
            pending.append(name)
    return found


def imported_by(path: str) -> set[str]:
    return reach(import_graph(), path)


def circles(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The pairs of modules that import each other, directly or through others."""
    return sorted(
        (module, other)
        for module in graph
        for other in reach(graph, module) - {module}
        if module < other and module in reach(graph, other)
    )


def expected_params(module: str, options: dict[str, str]) -> list[str]:
    """The params sections the stage's module reads, given its cmd's options."""
    if module == "variants":
        return config.sections(variants.rules_for(options["--name"]))
    if module == "train" and "--settings" in options:
        return []  # A variation's training reads the file its variant_settings stage wrote.
    rules = getattr(importlib.import_module(f"stages.{module}"), "SETTINGS", {})
    return config.sections(rules)


def cmd_options(cmd: str) -> tuple[str, dict[str, str]]:
    """`python -m stages.train --model m.keras ...` -> ("train", {"--model": "m.keras"})."""
    words = shlex.split(cmd)
    if words[:2] != ["python", "-m"] or not words[2].startswith("stages."):
        raise ValueError(f"cmd does not run a stage module: {cmd}")
    options = dict(zip(words[3::2], words[4::2], strict=True))
    return words[2].removeprefix("stages."), options


def inside(path: str, folders: set[str]) -> bool:
    """Whether `path` is one of `folders` or lies in one of them."""
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def problems(pipeline_root: Path) -> list[str]:
    """What dvc.yaml in `pipeline_root`, as DVC resolves it, gets wrong about the modules."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    found = []
    with Repo(str(pipeline_root)) as repo:
        stages = list(repo.index.stages)
    for stage in stages:
        module, options = cmd_options(stage.cmd)
        params = [
            key for dep in stage.deps if isinstance(dep, ParamsDependency) for key in dep.params
        ]
        deps = {dep.def_path for dep in stage.deps if not isinstance(dep, ParamsDependency)}
        outs = {out.def_path for out in stage.outs}
        code = {dep for dep in deps if dep.split("/")[0] in LAYERS and dep.endswith(".py")}
        data = deps - code - {"requirements.lock", "requirements-dev.lock"}
        files = {value for option, value in options.items() if option not in NOT_FILES}

        wanted = expected_params(module, options)
        if sorted(params) != sorted(wanted):
            found.append(f"{stage.name}: params {params}, but stages/{module}.py reads {wanted}")
        # A lesson's stages depend on its whole folder (its images too) and pass the files in
        # it that they read: a file in a declared folder is declared, and a folder is passed
        # when a file in it is.
        unpassed = {path for path in files - outs if not inside(path, data)}
        if unpassed:
            found.append(f"{stage.name}: cmd passes {sorted(unpassed)}, not deps or outs")
        undeclared = {path for path in data | outs if not any(inside(f, {path}) for f in files)}
        if undeclared:
            found.append(f"{stage.name}: deps or outs {sorted(undeclared)} not in its cmd")
        modules = imported_by(f"stages/{module}.py")
        if code != modules:
            found.append(
                f"{stage.name}: code deps lack {sorted(modules - code)}, "
                f"have extra {sorted(code - modules)}"
            )
        if "requirements.lock" not in deps or "requirements-dev.lock" in deps:
            found.append(f"{stage.name}: must depend on requirements.lock and not the dev lock")
    return found


def test_dvc_yaml_declares_what_every_stage_module_reads_and_imports():
    assert problems(ROOT) == []


def settings_reads(path: Path) -> list[str]:
    """How a module reads params: what each call to config.read_params is given first, and any
    other reading of params.yaml (a yaml.safe_load or yaml.load, or a literal 'params.yaml')."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "read_params":
            found.append(ast.unparse(node.args[0]) if node.args else "nothing")
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in (
            "yaml.safe_load",
            "yaml.load",
        ):
            found.append(ast.unparse(node.func))
        elif isinstance(node, ast.Constant) and node.value == "params.yaml":
            found.append("'params.yaml'")
    return found


def test_stage_modules_read_params_only_through_their_own_rules():
    """The check above compares dvc.yaml with each module's SETTINGS; that holds only if a
    module reads params through its SETTINGS and no other way."""
    reads = {
        path.stem: settings_reads(path)
        for layer in LAYERS
        for path in (ROOT / layer).glob("*.py")
        if path.stem != "__init__"
    }
    assert sorted(reads.pop("config")) == ["'params.yaml'", "yaml.safe_load"]
    assert reads.pop("variants") == ["rules_for(args.name)"]
    # These read the author's YAML (the quiz, a cell's :tags:), not params.yaml: the quiz
    # with a loader of its own that keeps its choices as written.
    assert reads.pop("quiz") == ["yaml.load"]
    assert reads.pop("lesson") == ["yaml.safe_load"]
    # The course list (with a loader that refuses a key given twice) and a lesson's front matter.
    assert reads.pop("course") == ["yaml.load", "yaml.safe_load"]
    assert {name: found for name, found in reads.items() if found} == {
        name: ["SETTINGS"]
        for name in (
            "download",
            "prepare",
            "train",
            "render",
            "compare",
            "values",
            "logistic_regression",
        )
    }


def test_every_stage_and_variation_is_checked():
    """The check above sees every stage, the foreach instances included."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        names = {stage.name for stage in repo.index.stages}
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())["variants"]
    assert shipped  # So that the foreach stages below are really there to check.
    for name in shipped:
        assert {f"variant_{step}@{name}" for step in ("settings", "train", "evaluate")} <= names
    assert {
        "download",
        "prepare",
        "train",
        "evaluate",
        "render",
        "sklearn",
        "compare",
        "home",
    } <= names
    lessons = yaml.safe_load((ROOT / "course/course.yaml").read_text())["lessons"]
    assert len(lessons) >= 2  # So that the lessons' foreach stages are there to check.
    for name in lessons:
        assert {f"{step}@{name}" for step in ("notebook", "page", "answer_key")} <= names


def pipeline_copy(folder: Path, edit) -> Path:
    """dvc.yaml and params.yaml in a DVC project of their own, dvc.yaml edited by `edit`."""
    # What `dvc init --no-scm` writes, without its second of start-up.
    (folder / ".dvc/tmp").mkdir(parents=True)
    (folder / ".dvc/config").write_text("[core]\n    no_scm = True\n")
    (folder / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (folder / "course").mkdir()
    (folder / "course/course.yaml").write_text((ROOT / "course/course.yaml").read_text())
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    edit(pipeline["stages"])
    (folder / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return folder


def remove(items: list, item) -> None:
    items.remove(item)


# Each edit makes dvc.yaml disagree with the code in one way; the line it must produce.
MUTATIONS = {
    "a code dep left out": (
        lambda s: remove(s["train"]["deps"], "digits/model.py"),
        "train: code deps lack ['digits/model.py']",
    ),
    "a code dep the module does not import": (
        lambda s: s["evaluate"]["deps"].append("stages/render.py"),
        "evaluate: code deps lack [], have extra ['stages/render.py']",
    ),
    "a foreach stage's code dep left out": (
        lambda s: remove(s["variant_settings"]["do"]["deps"], "digits/training.py"),
        "variant_settings@cnn: code deps lack ['digits/training.py']",
    ),
    "a params section the module does not read": (
        lambda s: s["page"]["do"].setdefault("params", []).append("render.confused_pairs"),
        "page@digit-predictor: params ['render.confused_pairs'], but stages/page.py reads []",
    ),
    "a lesson's folder left out of its stage's deps": (
        lambda s: remove(s["answer_key"]["do"]["deps"], "${paths.lessons}/${item}"),
        "answer_key@tensorflow-keras: cmd passes ['course/tensorflow-keras/plan.md', "
        "'course/tensorflow-keras/quiz.yaml'], not deps or outs",
    ),
    "a params section the module reads, left out": (
        lambda s: remove(s["train"]["params"], "model"),
        "train: params ['train'], but stages/train.py reads ['model', 'train']",
    ),
    "a file the cmd passes that is not declared": (
        lambda s: s["train"].update(cmd=s["train"]["cmd"].replace("${paths.history}", "h.csv")),
        "train: cmd passes ['h.csv'], not deps or outs",
    ),
    "a declared file the cmd does not pass": (
        lambda s: s["render"]["deps"].append("data/raw/mnist.npz"),
        "render: deps or outs ['data/raw/mnist.npz'] not in its cmd",
    ),
    "the run-time lock left out": (
        lambda s: remove(s["download"]["deps"], "requirements.lock"),
        "download: must depend on requirements.lock",
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_an_edited_dvc_yaml_that_disagrees_with_the_code_is_refused(mutation, tmp_path):
    edit, expected = MUTATIONS[mutation]
    found = problems(pipeline_copy(tmp_path, edit))
    assert any(line.startswith(expected) for line in found), found


def test_the_unedited_copy_passes(tmp_path):
    """The mutation tests' copy itself is sound, so their failures come from their edits."""
    assert problems(pipeline_copy(tmp_path, lambda stages: None)) == []


def test_no_two_modules_import_each_other_even_through_others():
    graph = import_graph()
    assert {"stages/train.py", "digits/model.py", "stages/page.py", "pipeline/config.py"} <= set(
        graph
    )
    assert circles(graph) == []


def climbing(graph: dict[str, set[str]]) -> list[str]:
    """The imports that run from a package to one after it in LAYERS: a shared module that
    imports a stage, the pipeline's plumbing that imports the network, and so on."""
    rank = {layer: number for number, layer in enumerate(LAYERS)}
    return sorted(
        f"{module} imports {other}"
        for module, others in graph.items()
        for other in others
        if rank[other.split("/")[0]] > rank[module.split("/")[0]]
    )


def test_no_shared_module_imports_a_stage_and_no_import_climbs_back_up():
    """stages/ holds only what dvc.yaml runs; pipeline/, digits/ and courseware/ serve them
    and never reach back; no stage imports another stage."""
    graph = import_graph()
    assert climbing(graph) == []
    stage_to_stage = sorted(
        f"{module} imports {other}"
        for module, others in graph.items()
        if module.startswith("stages/")
        for other in others
        if other.startswith("stages/")
    )
    assert stage_to_stage == []
    run_by_dvc = {
        cmd_options(stage["cmd"])[0]
        for stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values()
        if "cmd" in stage or "do" in stage
        for stage in [stage.get("do", stage)]
    }
    assert {path.stem for path in STAGES.glob("*.py")} - {"__init__"} == run_by_dvc


def test_the_direction_check_finds_an_import_that_climbs():
    graph = {"pipeline/config.py": {"digits/model.py"}, "digits/model.py": set()}
    assert climbing(graph) == ["pipeline/config.py imports digits/model.py"]
    assert climbing({"stages/page.py": {"courseware/quiz.py"}}) == []


def test_the_circle_check_finds_circles_direct_and_through_others():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ("a", "b"), ("a", "c"), ("b", "c")
    ]  # fmt: skip
    assert circles({"model": {"train"}, "train": {"model"}}) == [("model", "train")]


def test_no_stage_module_imports_dvc():
    """Only digit-predict, a command and not a stage, asks DVC where the model is."""
    for path in [path for layer in LAYERS for path in (ROOT / layer).glob("*.py")]:
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
        assert ("dvc" in names) == (path.stem == "predict"), path.name


# Runs every stage of a build in one process, as dvc.yaml's cmd calls it, and prints which
# DVC modules were loaded after each.
EVERY_MAIN = """
import importlib, json, shlex, sys
loaded = {}
for name, cmd in json.loads(sys.argv[1]):
    words = shlex.split(cmd)
    importlib.import_module(words[2]).main(words[3:])
    loaded[name] = sorted(m for m in sys.modules if m == "dvc" or m.startswith("dvc."))
print(json.dumps(loaded))
"""


@pytest.mark.slow
def test_each_stages_main_leaves_dvc_unloaded(lesson_build, tmp_path):
    project = copy_build(lesson_build[0], tmp_path / "project")
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    commands = [(name, entry["cmd"]) for name, entry in lock.items()]
    commands.append(
        ("variant_settings@x", f"python -m stages.variants --name x --variant {tmp_path}/x.json")
    )
    assert len(commands) >= 8
    result = run([sys.executable, "-c", EVERY_MAIN, json.dumps(commands)], project)
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert set(loaded) == {name for name, _ in commands}
    assert loaded == {name: [] for name in loaded}


def test_a_params_mistake_in_a_variation_is_named_before_training(tmp_path):
    """The name `lesson` is refused by variant_settings, in one line."""
    result = subprocess.run(
        [sys.executable, "-m", "stages.variants", "--name", "lesson", "--variant", "x.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: params.yaml: variants.lesson is not allowed: the comparison calls the lesson's "
        "own model so; choose another name\n"
    )
    assert not (ROOT / "x.json").exists()
