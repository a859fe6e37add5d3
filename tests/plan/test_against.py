"""``plan --against GIT_REF``: the manifests at a revision against the working tree, offline.

Each test builds a real git repository in tmp, commits the examples and changes them. No
secret is in the environment and ``RECONCILER_TARGET`` names a real org: the comparison must
need neither.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from examples_project import ROOT, SECRETS

from reconciler.cli import main

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, env=os.environ
    )
    return done.stdout.strip()


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOME", str(tmp_path))  # no user git config
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECONCILER_TARGET", "https://contoso.crm4.dynamics.com")
    monkeypatch.delenv("NO_COLOR", raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    shutil.copytree(ROOT / "examples", root / "manifests", ignore=shutil.ignore_patterns("*.json"))
    (root / "README.md").write_text("not a manifest\n")
    commit(root, "the examples")
    monkeypatch.chdir(root)
    return root


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))


def against(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["plan", "manifests", "--env", "dev", *args])
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys, *args: str) -> dict:
    code, out, err = against(capsys, "--format", "json", *args)
    assert code in (0, 2), err
    return json.loads(out)


def changed(plan: dict) -> dict[str, tuple[str, list[tuple]]]:
    return {
        c["address"]: (c["action"], [(f["path"], f["before"], f["after"]) for f in c["fields"]])
        for c in plan["changes"]
        if c["action"] != "noop"
    }


def test_the_previous_commit_against_the_working_tree(repo, capsys):
    edit(repo / "manifests/queues.yaml", "priority: 20", "priority: 21")
    edit(repo / "manifests/facebook-routing.yaml", "value: Jan de Vries", "value: Piet")
    commit(repo, "a PR's change")

    plan = as_json(capsys, "--against", "HEAD~1")
    sha = git(repo, "rev-parse", "HEAD~1")
    assert plan["target"] == {"url": f"git:HEAD~1 ({sha[:12]})", "organization_id": None}
    assert plan["requests"] == 0
    assert changed(plan) == {
        "Queue/overflow-support": ("update", [("priority", 20, 21)]),
        "RoutingRuleSet/facebook-support-routing": (
            "update",
            [
                (
                    "rules[Known VIP customer].when",
                    {"field": "facebook.customerName", "op": "equals", "value": "Jan de Vries"},
                    {"field": "facebook.customerName", "op": "equals", "value": "Piet"},
                )
            ],
        ),
    }
    assert plan["summary"]["update"] == 2
    assert plan["summary"]["noop"] == 34

    code, out, _ = against(capsys, "--against", "HEAD~1", "--detailed-exitcode")
    assert code == 2
    assert out.startswith(f"Changes from HEAD~1 ({sha[:12]}) to the working tree")
    assert "~ priority: 20 → 21" in out
    # Nothing was read or written: no local target appeared.
    assert not (repo / ".reconciler").exists()
    assert not (repo / "manifests" / ".reconciler").exists()

    code, out, _ = against(capsys, "--against", "HEAD", "--detailed-exitcode")
    assert code == 0
    assert out.endswith(
        f"No changes. The manifests match HEAD ({git(repo, 'rev-parse', '--short=12', 'HEAD')}).\n"
    )


def test_uncommitted_changes_count_and_layout_changes_do_not(repo, capsys):
    queues = repo / "manifests/queues.yaml"
    text = queues.read_text()
    # Another layout of the same records: comments gone, flow style, documents in another
    # order and file, keys reordered. None of it changes a record.
    documents = [d for d in text.split("---\n") if "kind: Queue" in d]
    queues.write_text("---\n".join(reversed(documents[1:])))
    (repo / "manifests/more/").mkdir()
    (repo / "manifests/more/first-queue.yml").write_text(documents[0])
    code, out, err = against(capsys, "--against", "HEAD", "--detailed-exitcode")
    assert (code, err) == (0, "")
    assert "No changes. The manifests match HEAD" in out


def test_added_and_removed_documents(repo, capsys):
    queues = repo / "manifests/queues.yaml"
    queues.write_text(
        queues.read_text().split("---\n", 1)[0]  # keep only the first document…
        + "---\n"
        + queues.read_text().split("---\n", 1)[1]
    )
    text = queues.read_text()
    start = text.index("kind: Queue\nmetadata:\n  name: callback-line")
    queues.write_text(text[: text.rindex("---", 0, start)])  # callback-line removed
    (repo / "manifests/new.yaml").write_text(
        "apiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata: {name: brand-new}\n"
        "spec: {type: messaging, priority: 4}\n"
    )
    plan = as_json(capsys, "--against", "HEAD")
    assert changed(plan)["Queue/brand-new"][0] == "create"
    assert "Queue/callback-line" not in changed(plan)
    (warning,) = [w for w in plan["warnings"] if w["code"] == "no-longer-in-manifests"]
    assert warning["address"] == "Queue/callback-line"
    assert "--prune deletes it" in warning["message"]

    plan = as_json(capsys, "--against", "HEAD", "--prune")
    assert changed(plan)["Queue/callback-line"] == ("delete", [])
    assert plan["changes"][0]["address"] == "Queue/callback-line"  # deletes first


def test_a_revision_without_the_manifests_makes_everything_new(repo, capsys):
    shutil.copytree(repo / "manifests", repo / "team-b")
    code = main(["plan", "team-b", "--env", "dev", "--against", "HEAD", "--format", "json"])
    plan = json.loads(capsys.readouterr().out)
    assert code == 0
    assert plan["summary"]["create"] == len(plan["changes"]) == 36


def test_secrets_compare_by_source_and_never_by_value(repo, capsys, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)  # even when set, values are never read
    edit(repo / "manifests/facebook.yaml", "{fromEnv: FB_APP_SECRET}", "{fromEnv: FB_APP_SECRET_2}")
    plan = as_json(capsys, "--against", "HEAD")
    (secret,) = changed(plan).values()
    assert secret[0] == "update"
    (field,) = plan["changes"][[c["action"] for c in plan["changes"]].index("update")]["fields"]
    assert field == {
        "path": "applicationSecret",
        "before": None,
        "after": None,
        "sensitive": True,
        "fingerprint": None,
        "source": "env:FB_APP_SECRET_2",
    }
    _, out, _ = against(capsys, "--against", "HEAD", "--format", "markdown")
    for marker in SECRETS.values():
        assert marker not in out
        assert marker not in json.dumps(plan)
    # The key file is named relative to the repository, so both checkouts agree on it.
    assert '"source": "file:manifests/gbm-service-account.json"' not in json.dumps(plan)
    (repo / "manifests/gbm-service-account.json").unlink(missing_ok=True)
    assert "serviceAccountKey" not in out


def test_a_new_namespace_replaces_every_record(repo, capsys):
    edit(
        repo / "manifests/reconciler.yaml",
        "namespace: 3b7c1e62-5d0a-4c8e-9f21-6a4d2b8e7c10",
        "namespace: 00000000-0000-4000-8000-000000000001",
    )
    plan = as_json(capsys, "--against", "HEAD")
    assert plan["summary"]["replace"] == len(plan["changes"]) == 36
    assert "metadata.id or the project's namespace changed" in plan["changes"][0]["reason"]


def test_a_create_only_field_is_a_replace(repo, capsys):
    edit(repo / "manifests/facebook.yaml", "mode: push", "mode: pick")
    edit(repo / "manifests/facebook.yaml", "agentAffinity: true", "agentAffinity: false")
    plan = as_json(capsys, "--against", "HEAD")
    action, _ = changed(plan)["Workstream/facebook-support"]
    assert action == "replace"


def test_the_markdown_form_draws_the_changed_routing(repo, capsys):
    edit(repo / "manifests/facebook-routing.yaml", "value: Jan de Vries", "value: Piet")
    code, out, _ = against(capsys, "--against", "HEAD", "--format", "markdown")
    assert code == 0
    sha = git(repo, "rev-parse", "--short=12", "HEAD")
    assert out.startswith(f"### reconciler plan: `HEAD ({sha})` → working tree")
    assert out.count("```mermaid") == 1
    assert "offline: no target read" in out


def test_an_invalid_revision_is_located_in_it(repo, capsys):
    edit(repo / "manifests/queues.yaml", "priority: 20", "priorty: 20")
    commit(repo, "broken")
    edit(repo / "manifests/queues.yaml", "priorty: 20", "priority: 20")
    code, out, err = against(capsys, "--against", "HEAD")
    assert code == 1
    assert out == ""
    assert "HEAD:manifests/queues.yaml:" in err
    assert "unknown field 'priorty'" in err
    assert str(Path(os.sep, "tmp")) not in err.replace(str(repo), "")


def test_what_time_made_invalid_in_the_revision_is_ignored_there(repo, capsys):
    facebook = repo / "manifests/facebook.yaml"
    page = 'pageId: "104857600000001"\n'
    edit(facebook, page, page + "      tokenRotatedOn: 2020-01-01\n")
    commit(repo, "a token rotated long ago: past its 60 days now")
    recent = (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
    edit(facebook, "tokenRotatedOn: 2020-01-01", f"tokenRotatedOn: {recent}")
    code, out, err = against(capsys, "--against", "HEAD")
    assert code == 0, err
    assert "0 to update" not in out
    assert "No changes" in out  # the rotation date is a note, not a field of the record


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--against", "no-such-branch"], "cannot find the git revision 'no-such-branch'"),
        (["--against=--help"], "expects a git revision"),
        (["--against", "HEAD", "--target", "local"], "it reads no --target"),
        (["--against", "HEAD", "--out", "plan.json"], "use --format json"),
    ],
)
def test_usage_errors(repo, capsys, args, message):
    code, out, err = against(capsys, *args)
    assert code == 1
    assert out == ""
    assert message in err
    assert "Traceback" not in err
    assert not (repo / "plan.json").exists()


def test_outside_a_repository(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    shutil.copytree(
        ROOT / "examples", tmp_path / "manifests", ignore=shutil.ignore_patterns("*.json")
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = against(capsys, "--against", "HEAD")
    assert code == 1
    assert err.startswith("error: cannot find the git repository: ")


def test_from_a_subfolder_with_relative_paths(repo, capsys, monkeypatch):
    edit(repo / "manifests/queues.yaml", "priority: 20", "priority: 21")
    monkeypatch.chdir(repo / "manifests")
    code = main(["plan", ".", "--env", "dev", "--against", "HEAD", "--format", "json"])
    plan = json.loads(capsys.readouterr().out)
    assert code == 0
    assert changed(plan) == {"Queue/overflow-support": ("update", [("priority", 20, 21)])}
    code = main(["plan", "queues.yaml", "--env", "dev", "--against", "HEAD", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    assert changed(json.loads(out)) == {
        "Queue/overflow-support": ("update", [("priority", 20, 21)])
    }


def test_ensure_absent_deletes_what_the_revision_had(repo, capsys):
    edit(
        repo / "manifests/queues.yaml",
        "name: callback-line\n",
        "name: callback-line\n  ensure: absent\n",
    )
    plan = as_json(capsys, "--against", "HEAD")
    assert changed(plan)["Queue/callback-line"] == ("delete", [])
    commit(repo, "callback-line absent")
    plan = as_json(capsys, "--against", "HEAD")
    (absent,) = [c for c in plan["changes"] if c["address"] == "Queue/callback-line"]
    assert (absent["action"], absent["reason"]) == ("noop", "already absent")


def test_several_environments_need_env(repo, capsys):
    code = main(["plan", "manifests", "--against", "HEAD"])
    err = capsys.readouterr().err
    assert code == 1
    assert "choose one with --env" in err


def test_errors_of_the_working_tree_stop_it(repo, capsys):
    edit(repo / "manifests/queues.yaml", "priority: 20", "priorty: 20")
    code, out, err = against(capsys, "--against", "HEAD")
    assert (code, out) == (1, "")
    assert "manifests/queues.yaml:" in err
    assert "HEAD:" not in err


def test_an_environment_the_revision_lacks(repo, capsys):
    edit(repo / "manifests/reconciler.yaml", "  dev:\n", "  development:\n")
    commit(repo, "renamed")
    edit(repo / "manifests/reconciler.yaml", "  development:\n", "  dev:\n")
    code, _, err = against(capsys, "--against", "HEAD")
    assert code == 1
    assert "error: at HEAD (" in err
    assert "unknown environment 'dev'" in err


def test_apply_refuses_a_comparison(repo, capsys):
    edit(repo / "manifests/queues.yaml", "priority: 20", "priority: 21")
    code, out, _ = against(capsys, "--against", "HEAD", "--format", "json")
    assert code == 0
    (repo / "comparison.json").write_text(out)
    code = main(["apply", "--plan", "comparison.json", "--yes"])
    err = capsys.readouterr().err
    assert code == 3
    assert "is a comparison with the git revision HEAD (" in err
    assert "plan --against" in err


def test_a_rename_with_previous_names_keeps_the_record(repo, capsys):
    edit(
        repo / "manifests/queues.yaml",
        "  name: callback-line\n",
        "  name: call-back\n  previousNames: [callback-line]\n",
    )
    plan = as_json(capsys, "--against", "HEAD", "--prune")
    (renamed,) = [c for c in plan["changes"] if c["address"] == "Queue/call-back"]
    # Its display name follows its name: one update, in place, with the id it had.
    assert (renamed["action"], renamed["renamed_from"]) == ("update", "Queue/callback-line")
    assert renamed["reason"].startswith("renamed from Queue/callback-line (keeps its id); ")
    assert [(f["path"], f["before"], f["after"]) for f in renamed["fields"]] == [
        ("displayName", "callback-line", "call-back")
    ]
    assert "Queue/callback-line" not in changed(plan)  # not deleted
    assert [w for w in plan["warnings"] if w["code"] == "no-longer-in-manifests"] == []
    namespace = yaml.safe_load((repo / "manifests/reconciler.yaml").read_text())["namespace"]
    assert renamed["id"] == str(uuid.uuid5(uuid.UUID(namespace), "Queue/callback-line"))


def test_members_show_as_apply_would_change_them(repo, capsys):
    """Offline, members compare as the lists say: an added member always, a dropped one only
    with --prune, and a list left out changes nothing (apply leaves the members as they are).
    No user is looked up: the comparison reads no target."""
    queues = repo / "manifests/queues.yaml"
    edit(queues, "priority: 20", "priority: 20\n  members: [ada@contoso.com, bob@contoso.com]")
    commit(repo, "members")
    edit(queues, "[ada@contoso.com, bob@contoso.com]", "[ada@contoso.com, grace@contoso.com]")
    added = ('members["grace@contoso.com"]', None, "grace@contoso.com")
    removed = ('members["bob@contoso.com"]', "bob@contoso.com", None)
    assert changed(as_json(capsys, "--against", "HEAD"))["Queue/overflow-support"] == (
        "update",
        [added],
    )
    assert changed(as_json(capsys, "--against", "HEAD", "--prune"))["Queue/overflow-support"] == (
        "update",
        [removed, added],
    )
    edit(queues, "\n  members: [ada@contoso.com, grace@contoso.com]", "")
    assert "Queue/overflow-support" not in changed(as_json(capsys, "--against", "HEAD", "--prune"))
