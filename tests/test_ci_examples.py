"""The example CI files (examples/ci/) and the pre-commit hook, run for real.

Every shell step of the GitHub workflow and the Azure pipeline runs in bash against a local
target (``tests/ci_runner.py``), through a pull request, its merge, a fork's pull request, a
broken manifest and an org changed behind the plan's back. The Azure pipeline's comment step
talks to a stand-in of the Azure DevOps REST API on 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
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

WORKFLOW = ROOT / "examples/ci/.github/workflows/reconciler.yml"
PIPELINE = ROOT / "examples/ci/.azure-pipelines/azure-pipelines.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
PRE_COMMIT_CONFIG = ROOT / "examples/ci/.pre-commit-config.yaml"
GIT = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(workspace: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=workspace, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def reconciler(machine: Machine, *args: str, env: dict[str, str] | None = None) -> int:
    return subprocess.run(
        ["reconciler", *args],
        cwd=machine.workspace,
        env={**machine.base_env, **SECRETS, **(env or {})},
        capture_output=True,
        check=False,
    ).returncode


@pytest.fixture
def machine(tmp_path) -> Machine:
    """A repository whose main branch holds the examples (already applied to the org) and a
    pull request's branch that changes a queue and a routing rule."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    env = base_environment(tmp_path, {**GIT, "RECONCILER_TARGET": f"local:{tmp_path / 'org.db'}"})
    machine = Machine(workspace, env)
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


# --- GitHub Actions -----------------------------------------------------------------------------

GITHUB_SECRETS = {f"secrets.{name}": value for name, value in SECRETS.items()}
SAME_REPOSITORY = {
    **GITHUB_SECRETS,
    "secrets.GBM_SERVICE_ACCOUNT_KEY": KEY_FILE.strip(),
    "github.event.pull_request.head.repo.full_name": "contoso/omnichannel",
    "github.repository": "contoso/omnichannel",
    "github.base_ref": "main",
    "github.token": "a-github-token",
}
# GitHub hands a fork's pull request no secrets: they read as empty strings.
FORK = {
    **dict.fromkeys((*GITHUB_SECRETS, "secrets.GBM_SERVICE_ACCOUNT_KEY"), ""),
    "github.event.pull_request.head.repo.full_name": "someone/omnichannel-fork",
    "github.repository": "contoso/omnichannel",
    "github.base_ref": "main",
    "github.token": "a-github-token",
}


def github_emulation() -> dict[str, Any]:
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
        assert 'fs.readFileSync("plan.md"' in step["with"]["script"]
        result.outputs["comment"] = (machine.workspace / "plan.md").read_text()

    def reviewed_plan(step: dict[str, Any], machine: Machine, result: Result) -> None:
        assert "gh run download" in step["run"]
        assert "--name reconciler-plan-prod --dir reviewed" in step["run"]
        stored = machine.artifacts["reconciler-plan-prod"] / "plan.json"
        copy_artifact(stored, machine.workspace / "reviewed/plan.json")

    return {
        "actions/checkout": nothing,
        "actions/setup-python": nothing,
        "azure/login": nothing,
        "actions/upload-artifact": upload,
        "actions/github-script": comment,
        "install": install,
        "reviewed-plan": reviewed_plan,
    }


def pull_request(machine: Machine, expressions: dict[str, str] = SAME_REPOSITORY) -> Result:
    return run_github_job(
        load(WORKFLOW),
        "plan",
        GitHubRun("pull_request", expressions),
        machine,
        github_emulation(),
    )


def merge(machine: Machine) -> Result:
    git(machine.workspace, machine.base_env, "checkout", "-q", "main")
    git(machine.workspace, machine.base_env, "merge", "-q", "--ff-only", "pull-request")
    for leftover in ("plan.md", "plan.json"):
        (machine.workspace / leftover).unlink(missing_ok=True)
    return run_github_job(
        load(WORKFLOW), "apply", GitHubRun("push", SAME_REPOSITORY), machine, github_emulation()
    )


def test_the_workflow_is_valid_yaml_with_a_concurrency_group_per_environment():
    workflow = load(WORKFLOW)
    assert set(workflow["on"]) == {"pull_request", "push"}
    assert workflow["on"]["push"]["branches"] == ["main"]
    for job in workflow["jobs"].values():
        assert job["concurrency"] == {"group": "reconciler-prod", "cancel-in-progress": False}
    assert workflow["jobs"]["apply"]["environment"] == "prod"
    assert workflow["permissions"] == {"contents": "read"}


def test_a_pull_request_is_validated_planned_and_commented(machine):
    result = pull_request(machine)
    assert result.failed is None, result.outputs
    assert result.ran == [
        "actions/checkout",
        "actions/setup-python",
        "install",
        "validate",
        "fork",
        "azure/login",
        "service-account-key",
        "plan",
        "actions/upload-artifact",
        "actions/github-script",
    ]
    assert result.outputs["validate"].startswith("::warning file=manifests/google-business")
    comment = result.outputs["comment"]
    assert comment.startswith("### reconciler plan for ")
    assert "**Plan: 0 to create, 2 to update, 0 to replace, 0 to delete.**" in comment
    assert comment.count("```mermaid") == 1  # the routing the pull request changes
    summary = machine.workspace.parent / "plan-step-summary.md"
    assert summary.read_text() == comment
    saved = json.loads((machine.artifacts["reconciler-plan-prod"] / "plan.json").read_text())
    assert saved["summary"]["update"] == 2
    for marker in SECRETS.values():
        assert marker not in comment
        assert marker not in json.dumps(saved)


def test_the_merge_applies_the_reviewed_plan_and_converges(machine):
    assert pull_request(machine).failed is None
    result = merge(machine)
    assert result.failed is None, result.outputs
    assert result.ran[-3:] == ["service-account-key", "apply", "converged"]
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


def test_a_fork_gets_the_offline_comparison_without_secrets(machine):
    before = (machine.workspace.parent / "org.db").stat().st_mtime_ns
    result = pull_request(machine, FORK)
    assert result.failed is None, result.outputs
    assert result.ran[-2:] == ["fork", "against"]
    assert "plan" not in result.ran
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


# --- Azure Pipelines ----------------------------------------------------------------------------


class PullRequestThreads(BaseHTTPRequestHandler):
    """The Azure DevOps pull-request threads API, as the pipeline's comment step uses it."""

    threads: list[dict[str, Any]]
    seen: list[tuple[str, str]]

    def _check(self) -> str:
        url = urlsplit(self.path)
        assert parse_qs(url.query) == {"api-version": ["7.1"]}
        assert self.headers["Authorization"] == "Bearer ado-token"
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
        assert self._check() == ""
        self._answer({"value": self.threads, "count": len(self.threads)})

    def do_POST(self) -> None:
        assert self._check() == ""
        thread = {**self._body(), "id": len(self.threads) + 1}
        thread["comments"] = [{**c, "id": 1} for c in thread["comments"]]
        self.threads.append(thread)
        self._answer(thread)

    def do_PATCH(self) -> None:
        path = self._check()
        thread_id, comment_id = path.strip("/").split("/comments/")
        comment = self.threads[int(thread_id) - 1]["comments"][int(comment_id) - 1]
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


def ado_run(machine: Machine, collection: str, reason: str) -> AdoRun:
    root = machine.workspace.parent
    for folder in ("staging", "pipeline"):  # an agent has both before any step runs
        (root / folder).mkdir(exist_ok=True)
    group = {**SECRETS, "GBM_SERVICE_ACCOUNT_KEY": KEY_FILE.strip()}
    return AdoRun(
        variables={
            "Build.Reason": reason,
            "Build.SourceBranch": "refs/heads/main"
            if reason != "PullRequest"
            else "refs/pull/7/merge",
            "Build.ArtifactStagingDirectory": str(root / "staging"),
            "Build.Repository.ID": "repo-1",
            "Pipeline.Workspace": str(root / "pipeline"),
            "System.AccessToken": "ado-token",
            "System.CollectionUri": collection,
            "System.TeamProject": "Contoso Omnichannel",
            "System.PullRequest.PullRequestId": "7",
            **group,
        },
        secrets=frozenset({*group, "System.AccessToken"}),
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


def test_the_pipeline_is_valid_yaml_with_a_lock_per_environment():
    pipeline = load(PIPELINE)
    assert [stage["stage"] for stage in pipeline["stages"]] == ["plan", "apply"]
    assert all(stage["lockBehavior"] == "sequential" for stage in pipeline["stages"])
    (deployment,) = pipeline["stages"][1]["jobs"]
    assert deployment["environment"] == "reconciler-prod"


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
        "validate",
        "service_account_key",
        "plan",
        "publish-6",
        "comment",
    ]
    assert "##vso[task.uploadsummary]" in result.outputs["plan"]
    (thread,) = threads.threads
    content = thread["comments"][0]["content"]
    assert content.startswith("<!-- reconciler-plan:prod -->\n### reconciler plan for ")
    assert "2 to update" in content
    assert thread["status"] == 4

    # A second push: the same thread's comment is updated, no second thread appears.
    routing = machine.workspace / "manifests/facebook-routing.yaml"
    routing.write_text(routing.read_text().replace("value: Piet Jansen", "value: Jan Jansen"))
    queues = machine.workspace / "manifests/queues.yaml"
    queues.write_text(queues.read_text().replace("priority: 21", "priority: 22", 1))
    result = run_ado_stage(pipeline, "plan", run, machine, ado_emulation())
    assert result.failed is None, result.outputs
    assert len(threads.threads) == 1
    assert "+ priority: 22" in threads.threads[0]["comments"][0]["content"]
    assert [method for method, _ in threads.seen] == ["GET", "POST", "GET", "PATCH"]
    # Pull-request builds never reach the apply stage.
    assert run_ado_stage(pipeline, "apply", run, machine, ado_emulation()).ran == []


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
    assert applied.ran[-1] == "apply"
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
