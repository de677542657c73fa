"""Publishing: the CI workflows, the student site, the freshness gate and the pull request's
comment.

The workflows are read as YAML and held to their rules (the gate, the permissions, the SHA
pins, the fork rule), and checked offline with GitHub's workflow schema and zizmor, as
`make lint` does. The site, the gate and the comment run on copies of the shared builds.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import (
    LESSONS,
    ROOT,
    add_an_epoch,
    copy_build,
    make_dry_run,
    readable,
    run,
    run_stage,
    set_params,
)
from tools import freshness, pr_comment, site

WORKFLOWS = ROOT / ".github" / "workflows"
PULL_REQUEST = WORKFLOWS / "pull-request.yml"
PUBLISH = WORKFLOWS / "publish.yml"
BIN = Path(sys.executable).parent
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"
# `uses: owner/name@<40 hex> # vX.Y.Z`
PATHS = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["vars"][1]["paths"]
PINNED = re.compile(r"^\s*(?:- )?uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v\d+(?:\.\d+){0,2})\s*$")
# The tools run in a copy of the project, which holds the pipeline but not tools/.
TOOLS = {"PYTHONPATH": str(ROOT), "GITHUB_REPOSITORY": ""}


def workflow(path: Path) -> dict[str, Any]:
    """A workflow as YAML reads it, with `on` kept a string (YAML 1.1 reads it as True)."""
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(re.sub(r"^on:", '"on":', text, flags=re.M))


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def runs(job: dict[str, Any]) -> str:
    """Every `run:` of a job, in order, as one text."""
    return "\n".join(step.get("run", "") for step in steps(job))


def uses(job: dict[str, Any]) -> list[str]:
    """The actions a job uses, without their pins."""
    return [step["uses"].split("@")[0] for step in steps(job) if "uses" in step]


def mentions_secrets(job: dict[str, Any]) -> bool:
    return "secrets." in json.dumps(job)


def writes(job: dict[str, Any]) -> dict[str, str]:
    return {scope: grant for scope, grant in job["permissions"].items() if grant == "write"}


@pytest.fixture(scope="module")
def pull_request() -> dict[str, Any]:
    return workflow(PULL_REQUEST)


@pytest.fixture(scope="module")
def publish() -> dict[str, Any]:
    return workflow(PUBLISH)


# The workflows, read as YAML.


def test_both_workflows_validate_against_githubs_schema_offline():
    result = subprocess.run(
        [
            BIN / "check-jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            PULL_REQUEST,
            PUBLISH,
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_offline_at_its_strictest_with_nothing_ignored():
    result = subprocess.run(
        [
            BIN / "zizmor",
            "--offline",
            "--persona",
            "auditor",
            "--no-ignores",
            "--no-progress",
            "--format",
            "plain",
            PULL_REQUEST,
            PUBLISH,
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout
    assert "suppressed" not in result.stdout
    for path in (PULL_REQUEST, PUBLISH):
        assert "zizmor: ignore" not in path.read_text(encoding="utf-8")


def test_make_lint_runs_the_schema_and_zizmor_and_make_site_runs_the_tool():
    dry_run = make_dry_run("lint", "site")
    assert "check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/" in dry_run
    assert "zizmor --offline --persona auditor --no-ignores" in dry_run
    assert "python -m tools.site --out _site" in dry_run


def test_every_action_is_pinned_by_sha_with_its_tag_as_docs_actions_lists_it():
    table = (ROOT / "docs" / "actions.md").read_text(encoding="utf-8")
    row = re.compile(r"^\| `([\w.-]+/[\w.-]+)` \| (v[\d.]+) \| `([0-9a-f]{40})` \|", re.M)
    listed = set(row.findall(table))
    found = set()
    for path in (PULL_REQUEST, PUBLISH):
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.match(r"^\s*(- )?uses:", line):
                pinned = PINNED.match(line)
                assert pinned, f"{path.name}: not pinned by SHA with its tag: {line.strip()}"
                action, sha, tag = pinned.groups()
                found.add((action, tag, sha))
    assert found and found <= listed, f"not in docs/actions.md: {found - listed}"
    assert listed <= found, f"listed in docs/actions.md but unused: {listed - found}"


def test_each_action_has_one_pin_across_the_workflows():
    pins: dict[str, set[str]] = {}
    for path in (PULL_REQUEST, PUBLISH):
        for action, sha, _tag in PINNED.findall(path.read_text(encoding="utf-8")):
            pins.setdefault(action, set()).add(sha)
    assert {action: shas for action, shas in pins.items() if len(shas) > 1} == {}


def test_permissions_are_read_only_except_the_grants_each_job_needs(pull_request, publish):
    for flow in (pull_request, publish):
        assert flow["permissions"] == {"contents": "read"}
        for name, job in flow["jobs"].items():
            assert job["permissions"].get("contents") in ("read", "write"), name
    assert {name: writes(job) for name, job in pull_request["jobs"].items()} == {
        "test": {},
        "gate": {},
        "build": {},
        "comment": {"pull-requests": "write"},
    }
    assert {name: writes(job) for name, job in publish["jobs"].items()} == {
        "build": {},
        "deploy": {"pages": "write", "id-token": "write"},
        "colab": {"contents": "write"},
    }


def test_pull_requests_from_forks_get_the_tests_and_the_gate_and_no_secrets(pull_request, publish):
    assert set(pull_request["on"]) == {"pull_request"}
    for path in (PULL_REQUEST, PUBLISH):
        assert "pull_request_target" not in path.read_text(encoding="utf-8")
    jobs = pull_request["jobs"]
    # The tests and the gate run for every pull request, with no secret and no write access.
    for name in ("test", "gate"):
        assert "if" not in jobs[name], name
        assert not mentions_secrets(jobs[name]) and not writes(jobs[name]), name
    assert "make test" in runs(jobs["test"])
    # Every job with a secret or a write grant runs for this repository's own branches only.
    guarded = [name for name, job in jobs.items() if mentions_secrets(job) or writes(job)]
    assert sorted(guarded) == ["build", "comment"]
    for name in guarded:
        assert jobs[name]["if"] == SAME_REPOSITORY, name


BASE_SHA = "${{ github.event.pull_request.base.sha }}"
# The base commit's copy of the gate, on the pull request's files: tools/ from ../base only.
BASE_GATE = re.compile(
    r"^PYTHONPATH=\.\./base (\.\./base/)?\.venv/bin/python -P -m tools\.freshness"
)


def checkouts(job: dict[str, Any]) -> list[dict[str, Any]]:
    """What each checkout of a job is given (`with:`), in order."""
    return [
        step.get("with", {})
        for step in steps(job)
        if step.get("uses", "").startswith("actions/checkout@")
    ]


def test_the_gate_job_is_never_skipped_and_runs_the_base_commits_copy_without_the_build(
    pull_request,
):
    gate = pull_request["jobs"]["gate"]
    # No `if:` on the job nor on any step: GitHub reports a skipped job as a success.
    assert "if" not in gate and "needs" not in gate
    assert all("if" not in step for step in steps(gate))
    assert "environment" not in gate and not mentions_secrets(gate)
    # The pull request's files in one folder, the base commit's in another.
    assert checkouts(gate) == [
        {"path": "pull-request", "persist-credentials": False},
        {"ref": BASE_SHA, "path": "base", "persist-credentials": False},
    ]
    venv = next(step for step in steps(gate) if step.get("run") == "make venv")
    assert venv["working-directory"] == "base"
    [check] = [step for step in steps(gate) if "tools.freshness" in step.get("run", "")]
    assert check["working-directory"] == "pull-request"
    assert check["run"] == (
        "PYTHONPATH=../base ../base/.venv/bin/python -P -m tools.freshness --no-build"
    )
    # Nothing else runs there: no restore, no build, no code of the pull request.
    assert [step["run"] for step in steps(gate) if "run" in step] == ["make venv", check["run"]]


def test_every_run_of_the_gate_is_the_base_commits_copy(pull_request):
    for name, job in pull_request["jobs"].items():
        for step in steps(job):
            if "tools.freshness" in step.get("run", ""):
                assert BASE_GATE.match(step["run"]), f"{name}: {step['run']}"
                assert {"ref": BASE_SHA, "path": "base", "persist-credentials": False} in (
                    checkouts(job)
                ), name


def test_the_remotes_keys_reach_only_the_step_that_pulls_and_no_file(pull_request, publish):
    for flow in (pull_request, publish):
        for name, job in flow["jobs"].items():
            assert "secrets." not in json.dumps(job.get("env", {})), name
            with_secrets = [step for step in steps(job) if "secrets." in json.dumps(step)]
            for step in steps(job):
                assert "config.local" not in step.get("run", ""), name
                assert "--local" not in step.get("run", ""), name
            if not with_secrets:
                continue
            # One step, which pulls with `make restore`, gets the keys, in its env only.
            [step] = with_secrets
            assert step["run"] == "make restore", name
            assert step["env"] == {
                "AWS_ACCESS_KEY_ID": "${{ secrets.AWS_ACCESS_KEY_ID }}",
                "AWS_SECRET_ACCESS_KEY": "${{ secrets.AWS_SECRET_ACCESS_KEY }}",
            }
            assert "secrets." not in json.dumps({k: v for k, v in step.items() if k != "env"})
    restore = make_dry_run("restore")
    assert "dvc pull --remote" in restore
    assert "--local" not in restore and "config.local" not in restore
    assert "remote modify" not in restore


def test_pull_requests_and_publishing_keep_the_keys_in_environments_of_their_own(
    pull_request, publish
):
    for flow in (pull_request, publish):
        for name, job in flow["jobs"].items():
            if mentions_secrets(job):
                assert job["environment"]["deployment"] is False, name
    assert pull_request["jobs"]["build"]["environment"]["name"] == "dvc-remote-read"
    assert publish["jobs"]["build"]["environment"]["name"] == "dvc-remote"
    page = (ROOT / "docs" / "publishing.md").read_text(encoding="utf-8")
    assert "`dvc-remote-read`" in page and "`dvc-remote`" in page


def test_publishing_and_the_colab_push_run_only_from_main(publish):
    # workflow_dispatch may be run from any branch: every job checks the branch itself.
    for name, job in publish["jobs"].items():
        assert job["if"] == "github.ref == 'refs/heads/main'", name


def test_the_pull_request_build_sets_up_restores_gates_comments_and_previews(pull_request):
    build = pull_request["jobs"]["build"]
    commands = runs(build)
    order = [
        "make venv",
        "make restore",
        "-m tools.freshness",
        "python -m tools.pr_comment",
        "make site",
    ]
    positions = [commands.find(command) for command in order]
    assert -1 not in positions and positions == sorted(positions), dict(
        zip(order, positions, strict=True)
    )
    # The gate here rebuilds what the remote lacks (no --no-build), in the pull request's
    # environment, whose stages it must run.
    gate = next(step for step in steps(build) if "tools.freshness" in step.get("run", ""))
    assert gate["run"] == "PYTHONPATH=../base .venv/bin/python -P -m tools.freshness"
    assert build["defaults"]["run"]["working-directory"] == "pull-request"
    # The base branch's commit reaches the comment through the environment.
    assert "BASE_SHA" in commands and "github.event.pull_request.base.sha" in json.dumps(build)
    artifacts = [step["with"] for step in steps(build) if "upload-artifact" in step.get("uses", "")]
    assert {"name": "course-site", "path": "pull-request/_site/"}.items() <= artifacts[0].items()
    assert {"name": "pr-comment", "path": "pull-request/comment.md"}.items() <= artifacts[1].items()
    comment = pull_request["jobs"]["comment"]
    assert comment["needs"] == "build" and "actions/checkout" not in uses(comment)
    assert pr_comment.MARKER in runs(comment)


def test_publishing_deploys_the_site_and_puts_the_notebook_on_the_colab_branch(publish):
    assert set(publish["on"]) == {"push", "workflow_dispatch"}
    assert publish["on"]["push"] == {"branches": ["main"]}
    assert publish["concurrency"]["group"] == "pages"
    build, deploy, colab = (publish["jobs"][name] for name in ("build", "deploy", "colab"))
    assert "make site" in runs(build) and "make repro" in runs(build)
    assert "actions/upload-pages-artifact" in uses(build)
    assert uses(deploy) == ["actions/deploy-pages"]
    assert deploy["environment"]["name"] == "github-pages"
    assert f"HEAD:refs/heads/{site.COLAB_BRANCH}" in runs(colab)
    assert "actions/checkout" not in uses(colab)
    # Every lesson's notebook reaches the colab branch where the site's links point:
    # lessons/<name>/<name>.ipynb (the path after the upload's wildcard is kept).
    handed = [step["with"] for step in steps(build) if "upload-artifact" in step.get("uses", "")]
    assert [item["path"] for item in handed] == ["_site/lessons/*/*.ipynb"]
    taken = [step["with"] for step in steps(colab) if "download-artifact" in step.get("uses", "")]
    assert [item["path"] for item in taken] == ["colab/lessons"]
    assert "git add lessons README.md" in runs(colab)
    assert site.colab_url("o/r", "lessons/a/a.ipynb").endswith("/blob/colab/lessons/a/a.ipynb")


def test_the_publishing_workflow_uses_no_cache(publish):
    for name, job in publish["jobs"].items():
        assert "actions/cache" not in uses(job), name
        for step in steps(job):
            assert "cache" not in step.get("with", {}), f"{name}: {step}"


def test_no_checkout_leaves_a_token_and_no_run_interpolates_an_expression(pull_request, publish):
    for flow in (pull_request, publish):
        for name, job in flow["jobs"].items():
            for step in steps(job):
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, name
                # Values reach a script through `env:`, never pasted into its text.
                assert "${{" not in step.get("run", ""), f"{name}: {step['run']}"


def test_the_gitlab_pipeline_in_the_docs_validates_against_gitlabs_schema(tmp_path):
    page = (ROOT / "docs" / "publishing.md").read_text(encoding="utf-8")
    pipeline = re.search(r"```yaml\n(# The jobs of .github/workflows/.*?)```", page, flags=re.S)
    assert pipeline, "docs/publishing.md has no .gitlab-ci.yml"
    (tmp_path / ".gitlab-ci.yml").write_text(pipeline.group(1))
    result = subprocess.run(
        [
            BIN / "check-jsonschema",
            "--builtin-schema",
            "vendor.gitlab-ci",
            tmp_path / ".gitlab-ci.yml",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = yaml.safe_load(pipeline.group(1))
    assert "public" in jobs["pages"]["artifacts"]["paths"]
    assert "tools.site --out public" in json.dumps(jobs["pages"]["script"])
    assert "tools.freshness" in json.dumps(jobs["build"]["script"])


# Without a build: the pieces of the tools.


def test_the_colab_link_goes_beside_the_notebook_link():
    page = '<p><a download="lesson.ipynb" href="data:x">Download this lesson as a notebook</a>\n'
    url = site.colab_url("owner/repo", "lessons/first/first.ipynb")
    assert url == (
        "https://colab.research.google.com/github/owner/repo/blob/colab/lessons/first/first.ipynb"
    )
    assert site.with_colab_link(page, url) == (
        '<p><a download="lesson.ipynb" href="data:x">Download this lesson as a notebook</a>'
        f' (<a class="colab-link" href="{url}">Open in Colab</a>)\n'
    )
    with pytest.raises(site.SiteError, match="no 'Download this lesson as a notebook' link"):
        site.with_colab_link("<p>no link</p>", url)
    with pytest.raises(site.SiteError, match="not owner/name"):
        site.colab_url('owner/repo"><script>', "lessons/first/first.ipynb")


def test_the_allow_list_is_the_home_and_each_listed_lessons_page_and_notebook():
    paths = {**PATHS, "home": "reports/index.html", "lesson_pages": "reports/lessons"}
    assert site.course_allow_list(ROOT, paths) == {
        "reports/index.html": "index.html",
        "reports/mnist.npz": "mnist.npz",
        **{
            f"reports/lessons/{name}/{file}": f"lessons/{name}/{file}"
            for name in LESSONS
            for file in ("index.html", f"{name}.ipynb")
        },
    }


def test_the_allow_list_may_not_name_an_instructor_only_output_nor_a_folder_holding_one():
    allowed = site.course_allow_list(ROOT, PATHS)
    hidden = {"reports/instructor/digit-predictor/answer_key.html": "answer_key@digit-predictor"}
    site.check_allow_list(allowed, hidden)
    for named in (
        "reports/instructor/digit-predictor/answer_key.html",
        "reports",
        "reports/instructor/digit-predictor/answer_key.html/x",
    ):
        with pytest.raises(
            site.SiteError, match="instructor-only stage answer_key@digit-predictor"
        ):
            site.check_allow_list({**allowed, named: "x"}, hidden)


# What `dvc status --json` says, as DVC 3 writes it.
STATUS_PARAM = {"train": [{"changed deps": {"params.yaml": {"train": "modified"}}}]}
STATUS_MISSING = {
    "prepare": [{"changed outs": {"data/prepared/train": "deleted"}}],
    "train": [{"changed deps": {"data/prepared/train": "deleted"}}],
    "render": [{"changed deps": {"stages/render.py": "modified"}}],
    "page": [{"changed deps": {"reports/variants": "modified"}}],
    "compare": ["changed command"],
}
OUTS = ["data/prepared/train", "reports/variants/logistic/metrics.json"]


def test_the_gate_tells_a_stale_lock_from_outputs_not_built_yet():
    assert not freshness.missing_outputs(STATUS_PARAM)
    assert freshness.stale_stages(STATUS_PARAM, OUTS, rebuilding=False) == {
        "train": ["params.yaml (train)"]
    }
    assert freshness.missing_outputs(STATUS_MISSING)
    # Missing outputs, and what reads them, are built; changed code or commands are stale.
    assert freshness.stale_stages(STATUS_MISSING, OUTS, rebuilding=True) == {
        "render": ["stages/render.py (modified)"],
        "compare": ["its command"],
    }


def test_the_gate_names_the_stages_whose_outputs_have_other_bytes():
    def lock(z: str) -> dict[str, Any]:
        outs = [{"path": "y", "md5": "2"}, {"path": "z", "md5": z}]
        return {"stages": {"a": {"outs": [{"path": "x", "md5": "1"}]}, "b": {"outs": outs}}}

    committed, rebuilt = lock("3"), lock("4")
    assert freshness.other_bytes(committed, rebuilt) == {"b": ["z"]}


def test_the_variations_table_escapes_what_would_break_a_markdown_table(tmp_path):
    csv_file = tmp_path / "variants.csv"
    csv_file.write_text('variant,changes\nlesson,"a | b\nc"\n')
    assert pr_comment.variants_table(csv_file) == (
        "| variant | changes |\n|---|---|\n| lesson | a \\| b c |"
    )


# The student site, built from a copy of the shared build with its variations.


def site_text(folder: Path) -> str:
    """Everything under a folder as one text, with the notebooks' cells decoded from JSON;
    but the offline MNIST: make site publishes it only if its arrays, and nothing else, are
    those the build verified (the test of a changed mnist.npz below), and the site's test
    checks its bytes are the build's. Read as text, its 55 MB took 4 s of the site's test,
    and 20 s more when made readable again for each piece searched."""
    texts = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix != ".npz":
            text = path.read_text(encoding="utf-8", errors="replace")
            texts.append(text)
            if path.suffix == ".ipynb":
                cells = json.loads(text)["cells"]
                texts += ["".join(cell["source"]) for cell in cells]
    return " ".join(html.unescape("\n".join(texts)).split())


def instructor_only_text(key_html: str) -> list[str]:
    """What only the key holds: the start of each explanation, and its markers."""
    found = ["(instructor only)", "Right for this build", "right-choice"]
    for explanation in re.findall(r'<div class="explanation">(.*?)</div>', key_html, flags=re.S):
        found.append(readable(explanation)[:60])
    return found


def leaks(text: str, key_html: str) -> list[str]:
    seen = readable(text)  # Once, not again for each piece searched.
    return [piece for piece in instructor_only_text(key_html) if piece and piece in seen]


@pytest.fixture(scope="module")
def built(variants_build, tmp_path_factory) -> Path:
    return copy_build(variants_build[0], tmp_path_factory.mktemp("publish") / "project")


def make_site(project: Path, repository: str = "", out: str = "_site"):
    return run(
        [sys.executable, "-m", "tools.site", "--out", out],
        project,
        check=False,
        env=TOOLS | {"GITHUB_REPOSITORY": repository},
    )


@pytest.mark.slow
def test_the_instructor_only_outputs_are_read_from_dvc_yaml(built):
    assert site.instructor_only(built) == {
        "reports/instructor/index.html": "instructor_home",
        **{
            f"reports/instructor/{name}/answer_key.{kind}": f"{stage}@{name}"
            for name in LESSONS
            for kind, stage in (("html", "answer_key"), ("ipynb", "key_notebook"))
        },
    }


@pytest.mark.slow
def test_make_site_holds_the_home_and_every_student_page_and_notebook_and_nothing_of_the_key(
    built,
):
    result = make_site(built)
    assert result.returncode == 0, result.stderr
    out = built / "_site"
    expected = ["index.html", "mnist.npz"]
    for name in LESSONS:
        expected += [f"lessons/{name}/index.html", f"lessons/{name}/{name}.ipynb"]
    files = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    assert files == sorted(expected)
    # Without GITHUB_REPOSITORY, the site is the build's own bytes.
    for name in expected:
        built_as = "reports/" + name
        assert (out / name).read_bytes() == (built / built_as).read_bytes(), name
    assert "Open in Colab" not in (out / "lessons/digit-predictor/index.html").read_text(
        encoding="utf-8"
    )
    key_html = (built / "reports/instructor/digit-predictor/answer_key.html").read_text(
        encoding="utf-8"
    )
    hidden = {built / path for path in site.instructor_only(built)}
    assert hidden and all(path.is_file() for path in hidden)
    published = {path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert [path.name for path in hidden if path.read_bytes() in published] == []
    assert leaks(site_text(out), key_html) == []
    # The search has teeth: the key's own files are full of what it looks for.
    key_folder = built / "key-only"
    key_folder.mkdir()
    for path in hidden:
        kept = key_folder / path.relative_to(built)
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(path.read_bytes())
    assert len(leaks(site_text(key_folder), key_html)) >= 5


@pytest.mark.slow
def test_with_github_repository_set_the_site_links_to_the_notebook_in_colab(built):
    result = make_site(built, repository="owner/repo", out="_site_colab")
    assert result.returncode == 0, result.stderr
    assert "Open in Colab link to owner/repo" in result.stdout
    for name in LESSONS:
        page = (built / f"_site_colab/lessons/{name}/index.html").read_text(encoding="utf-8")
        url = (
            "https://colab.research.google.com/github/owner/repo/blob/colab/"
            f"lessons/{name}/{name}.ipynb"
        )
        assert page.count(f'href="{url}">Open in Colab</a>') >= 1
        link = page.index("Download this lesson as a notebook</a>")
        assert page.index("Open in Colab") - link < 200
    url = "https://colab.research.google.com/github/owner/repo/blob/colab/"
    assert url not in (built / "_site_colab/index.html").read_text(encoding="utf-8")
    # The build's own page is untouched.
    assert url not in (built / "reports/lessons/digit-predictor/index.html").read_text(
        encoding="utf-8"
    )


@pytest.mark.slow
def test_make_site_refuses_a_stage_declared_for_the_instructor_in_one_line(built, tmp_path):
    project = copy_build(built, tmp_path / "project")
    # Declaring the page instructor-only in dvc.yaml is enough for make site to refuse it:
    # the list of what is hidden comes from the declarations, not from tools/site.py.
    pipeline = project / "dvc.yaml"
    text = pipeline.read_text(encoding="utf-8")
    assert text.count("\n  page:\n") == 1
    pipeline.write_text(
        text.replace(
            "\n  page:\n    foreach: ${lessons}\n    do:\n",
            "\n  page:\n    foreach: ${lessons}\n    do:\n      meta: {audience: instructor}\n",
        )
    )
    result = make_site(project, out="_site_refused")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: the site's allow-list names reports/lessons/digit-predictor/index.html, which is "
        "or holds reports/lessons/digit-predictor/index.html, an output of the instructor-only "
        "stage page@digit-predictor (dvc.yaml); nothing was published"
    ]
    assert not (project / "_site_refused").exists()


@pytest.mark.slow
def test_make_site_publishes_the_offline_mnist_only_if_it_is_the_verified_one(built, tmp_path):
    import numpy as np

    project = copy_build(built, tmp_path / "project")
    shutil.rmtree(project / "_site", ignore_errors=True)  # An earlier test's site.
    data = project / "reports/mnist.npz"
    with np.load(data) as arrays:
        changed = {name: arrays[name].copy() for name in arrays.files}
    changed["y_train"][0] = (changed["y_train"][0] + 1) % 10
    data.unlink()  # DVC may have linked it to its cache: write a new file, not through it.
    np.savez(data, **changed)
    result = make_site(project)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: _site/mnist.npz: not the MNIST this build verified; nothing was published"
    ]
    assert not (project / "_site").exists()


@pytest.mark.slow
def test_make_site_without_a_build_says_to_run_make_repro_in_one_line(built, tmp_path):
    project = copy_build(built, tmp_path / "project")
    (project / "reports/lessons/digit-predictor/digit-predictor.ipynb").unlink()
    result = make_site(project)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: reports/lessons/digit-predictor/digit-predictor.ipynb not built yet; "
        "run `make repro` first"
    ]


# The freshness gate and the comment, on copies of the shared build of the lesson.


def gate(project: Path, **env: str):
    return run([sys.executable, "-m", "tools.freshness"], project, check=False, env=TOOLS | env)


@pytest.mark.slow
def test_the_gate_passes_a_fresh_build_and_fails_an_edited_param_naming_its_stage(
    lesson_build, tmp_path
):
    project = copy_build(lesson_build[0], tmp_path / "project")
    result = gate(project)
    assert result.returncode == 0, result.stderr
    assert "dvc.lock matches the code and params" in result.stdout
    set_params(project, train__epochs=2)
    result = gate(project)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    stale = "error: train: dvc.lock does not match params.yaml (train); run `dvc repro` and "
    assert f"{stale}commit dvc.lock" in lines
    assert all(line.startswith("error: ") for line in lines)
    # With outputs missing too, the stale stage still fails, before anything is rebuilt.
    shutil.rmtree(project / "data/prepared")
    result = gate(project)
    assert result.returncode == 1 and "error: train: " in result.stderr
    assert "Running stage" not in result.stdout + result.stderr


@pytest.mark.slow
def test_the_gate_rebuilds_missing_outputs_and_warns_of_other_bytes_naming_the_stage(
    lesson_build, tmp_path
):
    project = copy_build(lesson_build[0], tmp_path / "project")
    # As on a runner whose CPU gives other bytes for one stage: the committed lock records
    # other bytes for render's summary than this machine makes, and the file is not there.
    # No stage reads the summary, so no other entry records its hash: only a rebuild can tell.
    # A hand-edited hash of an output another stage reads fails without building
    # (tests/test_freshness.py).
    lock_file = project / "dvc.lock"
    lock = yaml.safe_load(lock_file.read_text())
    outs = lock["stages"]["render"]["outs"]
    summary = next(out for out in outs if out["path"] == "reports/confusion_summary.md")
    readers = [
        stage
        for stage, entry in lock["stages"].items()
        if any(dep["path"] == summary["path"] for dep in entry.get("deps", []))
    ]
    assert readers == []
    lock_file.write_text(lock_file.read_text().replace(summary["md5"], "0123456789abcdef" * 2, 1))
    (project / "reports/confusion_summary.md").unlink()
    # No run-cache, so that render runs; and no .venv on PATH, as when a CI step calls
    # .venv/bin/python: the gate finds the stages' python itself.
    shutil.rmtree(project / ".dvc/cache/runs")
    result = gate(project, PATH="/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning::")]
    assert warnings == [
        "::warning::render gave other bytes on this runner than dvc.lock records "
        "(reports/confusion_summary.md); bytes across CPU makes are not promised for every "
        "stage (docs/reproducibility.md)"
    ]
    assert "Running stage 'render'" in result.stdout
    assert (project / "reports/confusion_summary.md").is_file()
    assert run(["dvc", "status", "--json"], project).stdout.strip() == "{}"


@pytest.mark.slow
def test_the_comment_shows_the_epochs_and_the_metrics_old_new_and_their_difference(
    lesson_build, tmp_path, monkeypatch
):
    """The comment on a change of train.epochs: the new build is the record of a training of
    two epochs with other scores, put in place of the base's (params.yaml, reports/history.csv
    and metrics.json, as train and evaluate write them), and compare run on it in-process
    (tests.helpers.run_stage), instead of retraining through `dvc repro` as this test once did
    (29 s): the comment reads only these files, through `dvc params diff`, `dvc metrics diff`
    (the base's metrics from the DVC cache, as they are not in git) and compare's table. That
    a new train.epochs retrains is tests/test_course.py's
    test_a_new_setting_reruns_the_model_the_figures_and_the_page."""
    project = copy_build(lesson_build[0], tmp_path / "project")
    base = run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    metrics_file = project / "reports/metrics.json"
    metrics = json.loads(metrics_file.read_text())
    old = metrics["test"]
    set_params(project, train__epochs=2)
    new = dict(old, accuracy=round(old["accuracy"] / 2 + 0.4321, 6), loss=old["loss"] * 0.75)
    metrics_file.unlink()  # DVC may have linked it to its cache: write a new file.
    metrics_file.write_text(json.dumps(dict(metrics, test=new)))
    add_an_epoch(project / "reports/history.csv")
    monkeypatch.chdir(project)
    run_stage("compare")
    run(["git", "commit", "-q", "-am", "two epochs"], project)

    result = run(
        [sys.executable, "-m", "tools.pr_comment", "--base", base, "--preview", "https://x/run"],
        project,
        env=TOOLS,
    )
    text = result.stdout
    assert text.splitlines()[0] == pr_comment.MARKER
    rows = {
        tuple(cell.strip() for cell in line.strip("|").split("|"))
        for line in text.splitlines()
        if line.startswith("|")
    }
    assert ("params.yaml", "train.epochs", "1", "2") in rows
    metrics = {row[1]: row[2:] for row in rows if row[0] == "reports/metrics.json"}
    for name in ("accuracy", "loss"):
        before, after, change = (float(value) for value in metrics[f"test.{name}"])
        assert before == pytest.approx(old[name], abs=1e-5)
        assert after == pytest.approx(new[name], abs=1e-5)
        assert change == pytest.approx(new[name] - old[name], abs=2e-5)
    header = "| variant | changes | test_accuracy | test_loss | macro_f1 | weights | epochs |"
    assert header in text
    columns = next(row for row in rows if row[0] == "variant")
    lesson = next(row for row in rows if row[0] == "lesson")
    assert lesson[columns.index("epochs")] == "2"
    assert "[this run](https://x/run)" in text


def test_the_site_of_a_lesson_since_renamed_is_cleared_but_nothing_else(tmp_path):
    out = tmp_path / "_site"
    for name in ("index.html", "lessons/old/index.html", "lessons/old/old.ipynb"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("x")
    site.clear(out, {"index.html", "lessons/new/index.html", "lessons/new/new.ipynb"})
    assert not out.exists()
    (out / "lessons/old").mkdir(parents=True)
    (out / "lessons/old/notes.txt").write_text("mine")
    stranger = r"holds files make site did not write \(lessons/old/notes.txt\)"
    with pytest.raises(site.SiteError, match=stranger):
        site.clear(out, {"index.html"})
    assert (out / "lessons/old/notes.txt").read_text() == "mine"
