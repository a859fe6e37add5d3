"""``reconciler plan`` end to end: the shipped examples against a real local emulator target."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from examples_project import MARKERS, ROOT, SECRETS, copy_examples

from reconciler.apply.applier import ApplyOptions, apply_manifests
from reconciler.cli import main
from reconciler.dataverse import DataverseClient, ServerError, StaticToken
from reconciler.dataverse.retry import RetryPolicy
from reconciler.mapping import kinds as k
from reconciler.plan.definition import Plan
from reconciler.plan.evaluator import Result
from reconciler.plan.planner import PlanFailed, PlanOptions, make_plan, plan_with, prepare
from reconciler.plan.stages import Step
from reconciler.targets import connect, parse_target

TABLES_READ = len(k.KINDS) + 1  # every managed table, plus the languages


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return copy_examples(tmp_path, monkeypatch)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, "plan", "examples", "--env", "dev", "--format", "json", *args)
    assert err == "", err
    return code, json.loads(out)


class Quiet:
    """The applier's ``Ui`` for set-up: shows nothing, and the answer is always yes."""

    def show(self, plan: Plan) -> None:
        pass

    def confirm(self, plan: Plan) -> bool:
        return True

    def started(self, steps: Sequence[Step]) -> None:
        pass

    def finished(self, result: Result) -> None:
        pass


def apply_examples(project: Path, environ: dict[str, str], db: str) -> None:
    """Apply the examples to ``db`` with the real applier (``apply --yes`` without output)."""
    options = PlanOptions(paths=[str(project)], env="dev", target=db, environ=environ)
    applied = asyncio.run(apply_manifests(options, ApplyOptions(environ=environ), Quiet()))
    assert applied.complete
    assert len(applied.results) == 38  # 36 records, then two channel instances linked


def environ() -> dict[str, str]:
    return dict(SECRETS)


# --- an empty target ------------------------------------------------------------------------


def test_empty_target_every_record_is_created_in_dependency_order(project, capsys):
    code, plan = plan_json(capsys)
    assert code == 0
    actions = {change["action"] for change in plan["changes"]}
    assert actions == {"create"}
    assert plan["summary"] == {
        "create": 36,
        "update": 0,
        "replace": 0,
        "delete": 0,
        "adopt": 0,
        "noop": 0,
        "conflict": 0,
    }
    stages = [k.STAGE[change["kind"]] for change in plan["changes"]]
    assert stages == sorted(stages)
    position = {change["address"]: i for i, change in enumerate(plan["changes"])}
    for change in plan["changes"]:
        for dependency in change["depends_on"]:
            assert position[dependency] < position[change["address"]], change["address"]
    assert plan["requests"] <= TABLES_READ + 3
    assert list(plan) == [
        "format_version",
        "tool_version",
        "created_at",
        "target",
        "summary",
        "changes",
        "warnings",
        "follow_up",
        "unmanaged",
        "requests",
        "managed",
        "max_delete_percent",
        "ledger",
        "checksum",
        "signature",
    ]
    # A new target holds no ledger: apply writes one listing what it creates.
    assert plan["ledger"]["found"] is False
    assert plan["ledger"]["pending"] == 36
    assert plan["target"]["url"] == "local:examples/.reconciler/dev.db"
    assert re.fullmatch(r"[0-9a-f-]{36}", plan["target"]["organization_id"])


def test_text_plan_reads_like_terraform_and_prints_the_request_count(project, capsys):
    code, out, err = run(capsys, "plan", "examples", "--env", "dev", "--no-color")
    assert code == 0
    assert err == ""
    count = int(re.search(r"Read the target in (\d+) requests\.", out)[1])
    assert count <= TABLES_READ + 3
    assert (
        out.rstrip().splitlines()[-1]
        == "Plan: 36 to create, 0 to update, 0 to replace, 0 to delete."
    )
    assert '  + Queue "vip-support" {' in out
    assert "      + rules[Dutch speakers]:\n            name: Dutch speakers\n" in out
    assert "            routeTo: dutch-support\n" in out
    assert "\x1b[" not in out
    order = [
        out.index(f"# {a} will be created")
        for a in (
            "Queue/vip-support",
            "FacebookAccount/contoso-facebook",
            "Workstream/facebook-support",
            "RoutingRuleSet/facebook-support-routing",
            "Workstream/facebook-support/routing",
            "FacebookAccount/contoso-facebook/Contoso Support",
        )
    ]
    assert order == sorted(order)


def test_markdown_plan_starts_with_the_summary_table(project, capsys):
    code, out, _ = run(capsys, "plan", "examples", "--env", "dev", "--format", "markdown")
    assert code == 0
    assert out.index("| Action | Count |") < out.index("<details>")
    assert "| create | 36 |" in out
    assert "**Plan: 36 to create, 0 to update, 0 to replace, 0 to delete.**" in out


def test_the_json_plan_validates_against_its_schema(project, capsys):
    _, plan = plan_json(capsys)
    schema = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(plan)]
    assert errors == []


def test_two_plans_of_the_same_inputs_have_the_same_checksum(project, capsys):
    _, first = plan_json(capsys)
    _, second = plan_json(capsys)
    assert first["checksum"] == second["checksum"]
    assert first["checksum"].startswith("sha256:")
    assert {**first, "created_at": "", "requests": 0} == {**second, "created_at": "", "requests": 0}


def test_the_checksum_covers_what_the_plan_would_do(project, capsys):
    _, first = plan_json(capsys)
    queues = project / "queues.yaml"
    queues.write_text(queues.read_text().replace("priority: 20", "priority: 21"))
    _, second = plan_json(capsys)
    assert first["checksum"] != second["checksum"]


def test_out_writes_the_json_plan_whatever_is_printed(project, capsys):
    code, out, _ = run(capsys, "plan", "examples", "--env", "dev", "--out", "plan.json")
    assert code == 0
    assert out.startswith("Target: ")
    saved = json.loads(Path("plan.json").read_text())
    _, printed = plan_json(capsys)
    assert saved["checksum"] == printed["checksum"]


def test_out_to_a_missing_folder_is_an_error_not_a_traceback(project, capsys):
    code, _, err = run(capsys, "plan", "examples", "--env", "dev", "--out", "no/such/plan.json")
    assert code == 1
    assert err.startswith("error: cannot write the plan to no/such/plan.json")


@pytest.mark.parametrize("extra", [[], ["-v"], ["--format", "markdown"], ["--format", "json"]])
def test_no_secret_value_appears_in_any_format(project, capsys, extra):
    code, out, err = run(capsys, "plan", "examples", "--env", "dev", "--out", "p.json", *extra)
    assert code == 0
    written = Path("p.json").read_text()
    for marker in MARKERS:
        assert marker not in out + err + written
    assert "(sensitive" in out or '"sensitive": true' in out


# --- a target that matches, then drifts -------------------------------------------------------


def test_after_a_perfect_apply_the_plan_is_empty(project, capsys):
    apply_examples(project, environ(), "local:examples/.reconciler/dev.db")
    code, out, _ = run(capsys, "plan", "examples", "--env", "dev", "--detailed-exitcode")
    assert code == 0
    assert "No changes. The target matches the manifests." in out
    assert "36 unchanged." in out
    assert "After apply:" not in out


def test_detailed_exitcode_is_2_when_there_are_changes(project, capsys):
    code, _, _ = run(capsys, "plan", "examples", "--env", "dev", "--detailed-exitcode")
    assert code == 2


def test_drift_is_shown_in_manifest_terms_and_secrets_only_as_fingerprints(
    project, capsys, monkeypatch
):
    apply_examples(project, environ(), "local:examples/.reconciler/dev.db")
    queues = project / "queues.yaml"
    queues.write_text(queues.read_text().replace("priority: 1 ", "priority: 2 "))
    routing = project / "facebook-routing.yaml"
    routing.write_text(
        routing.read_text().replace("routeTo: dutch-support", "routeTo: vip-support")
    )
    monkeypatch.setenv("FB_APP_SECRET", "MARKER-rotated-secret-3c3c")
    code, plan = plan_json(capsys, "--detailed-exitcode")
    assert code == 2
    changed = {c["address"]: c for c in plan["changes"] if c["action"] != "noop"}
    assert set(changed) == {
        "Queue/vip-support",
        "RoutingRuleSet/facebook-support-routing",
        "FacebookAccount/contoso-facebook",
    }
    assert changed["Queue/vip-support"]["fields"] == [
        {
            "path": "priority",
            "before": 1,
            "after": 2,
            "sensitive": False,
            "fingerprint": None,
            "source": None,
        }
    ]
    (rule,) = changed["RoutingRuleSet/facebook-support-routing"]["fields"]
    assert (rule["path"], rule["before"], rule["after"]) == (
        "rules[Dutch speakers].routeTo",
        "dutch-support",
        "vip-support",
    )
    (secret,) = changed["FacebookAccount/contoso-facebook"]["fields"]
    assert secret["path"] == "applicationSecret"
    assert secret["sensitive"] is True
    assert secret["before"] is None
    assert secret["after"] is None
    assert re.fullmatch(r"sha256:[0-9a-f]{12}", secret["fingerprint"])
    assert secret["source"] == "env:FB_APP_SECRET"
    assert "MARKER-rotated-secret-3c3c" not in json.dumps(plan)
    assert "MARKER-app-secret-7f3a" not in json.dumps(plan)


def test_a_removed_queue_is_deleted_only_with_prune(project, capsys):
    apply_examples(project, environ(), "local:examples/.reconciler/dev.db")
    queues = project / "queues.yaml"
    text = queues.read_text()
    start = text.index(
        "---\napiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata:\n  name: callback-line"
    )
    queues.write_text(text[:start])
    code, plan = plan_json(capsys)
    assert code == 0
    assert plan["summary"]["delete"] == 0
    (warning,) = [w for w in plan["warnings"] if w["code"] == "not-in-manifests"]
    assert "Queue/callback-line" in warning["message"]
    assert "--prune" in warning["message"]
    code, plan = plan_json(capsys, "--prune")
    (delete,) = [c for c in plan["changes"] if c["action"] == "delete"]
    assert delete["address"] == "Queue/callback-line"
    assert delete["reason"] == "no longer in the manifests (--prune)"
    assert delete["etag"].startswith('W/"')
    assert plan["changes"][0] == delete  # deletes come first


def test_a_record_someone_else_made_with_our_name_is_a_conflict(project, capsys):
    async def make_foreign() -> None:
        async with connect(parse_target("local:examples/.reconciler/dev.db"), {}) as client:
            await client.create(
                "queues",
                {
                    "name": "vip support (DEV)",
                    "msdyn_isomnichannelqueue": True,
                    "msdyn_queuetype": 192350000,
                    "msdyn_priority": 4,
                },
            )
            await client.create(
                "queues",
                {
                    "name": "Somebody else's",
                    "msdyn_isomnichannelqueue": True,
                    "msdyn_queuetype": 192350000,
                    "msdyn_priority": 4,
                },
            )

    asyncio.run(make_foreign())
    code, out, _ = run(capsys, "plan", "examples", "--env", "dev", "--no-color")
    assert code == 3
    assert '! Queue "vip-support" conflicts:' in out
    assert "set metadata.id: " in out
    assert "Unmanaged: 1 Queue" in out
    assert out.rstrip().endswith(", 1 conflict.")


# --- errors -----------------------------------------------------------------------------------


def test_a_missing_secret_is_an_error_at_the_reference(project, capsys, monkeypatch):
    monkeypatch.delenv("FB_PAGE_TOKEN_DEALS")
    code, out, err = run(capsys, "plan", "examples", "--env", "dev")
    assert code == 1
    assert out == ""
    assert (
        "examples/facebook.yaml:17:7: error: spec.pages[1].accessToken: environment variable "
        "FB_PAGE_TOKEN_DEALS is not set"
    ) in err
    assert err.rstrip().endswith("error: no plan: 1 error in the manifests")
    assert not Path("examples/.reconciler/dev.db").exists()  # nothing read, nothing created


def test_several_environments_need_env(project, capsys):
    code, _, err = run(capsys, "plan", "examples")
    assert code == 1
    assert "choose one with --env" in err


def test_invalid_manifests_are_reported_like_validate(project, capsys):
    queues = project / "queues.yaml"
    queues.write_text(queues.read_text().replace("priority: 20", "priority: 0"))
    code, _, err = run(capsys, "plan", "examples", "--env", "dev")
    assert code == 1
    assert "examples/queues.yaml:" in err
    assert "spec.priority: must be at least 1" in err


def test_a_failed_read_fails_the_plan_instead_of_planning_creates(project):
    """A table that cannot be read is never taken for an empty one."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/msdyn_liveworkstreams"):
            return httpx.Response(500, json={"error": {"code": "0x80040216", "message": "down"}})
        if request.url.path.endswith("/WhoAmI"):
            return httpx.Response(
                200, json={"UserId": "u", "BusinessUnitId": "b", "OrganizationId": "o"}
            )
        return httpx.Response(200, json={"value": []})

    async def go() -> None:
        options = PlanOptions(paths=[str(project)], env="dev", environ=environ())
        prepared = prepare(options)
        client = DataverseClient(
            "https://org.example/api/data/v9.2/",
            auth=StaticToken("t"),
            transport=httpx.MockTransport(handler),
            retry=RetryPolicy.none(),
        )
        async with client:
            await plan_with(client, prepared, options)

    with pytest.raises(ServerError):
        asyncio.run(go())


def test_an_unknown_language_in_the_target_fails_the_plan(project):
    workstreams = project / "facebook.yaml"
    workstreams.write_text(workstreams.read_text().replace("language: nl-NL", "language: nl-BE"))
    options = PlanOptions(paths=[str(project)], env="dev", environ=environ())
    with pytest.raises(PlanFailed) as failed:
        make_plan(options)
    (problem,) = failed.value.diagnostics
    assert "language nl-BE is not available in the target" in problem.message
    assert "FacebookAccount/contoso-facebook/Contoso Support" in problem.message
    # where the account is named (found when asked for: positions are read on demand)
    lines = (project / "facebook.yaml").read_text().splitlines()
    assert problem.location is not None
    assert problem.location.file.endswith("facebook.yaml")
    assert lines[problem.location.line - 1].strip() == "name: contoso-facebook"


def test_ensure_absent_needs_neither_spec_secrets_nor_key_files(project, capsys, monkeypatch):
    """Deleting old Google's Business Messages records must always work (domain §5)."""
    apply_examples(project, environ(), "local:examples/.reconciler/dev.db")
    gbm = project / "google-business-messages.yaml"
    gbm.write_text(gbm.read_text().replace("metadata:\n", "metadata:\n  ensure: absent\n"))
    (project / "gbm-service-account.json").unlink()
    monkeypatch.delenv("GBM_CLIENT_TOKEN")
    code, plan = plan_json(capsys)
    assert code == 0
    deleted = [c["address"] for c in plan["changes"] if c["action"] == "delete"]
    assert deleted == [
        "GoogleBusinessMessagesAccount/contoso-gbm/Contoso Stores",
        "RoutingRuleSet/gbm-stores-routing/step",
        "Workstream/gbm-stores/routing",  # RemoveLink: deleted by the plan, not by cascade
        "RoutingRuleSet/gbm-stores-routing",
        "Workstream/gbm-stores",
        "Workstream/gbm-stores/contract",
        "GoogleBusinessMessagesAccount/contoso-gbm",
    ]


def test_a_renamed_page_is_the_same_page_found_by_its_page_id(project, capsys):
    apply_examples(project, environ(), "local:examples/.reconciler/dev.db")
    facebook = project / "facebook.yaml"
    facebook.write_text(facebook.read_text().replace("Contoso Deals", "Contoso Offers"))
    _, plan = plan_json(capsys)
    changed = [c for c in plan["changes"] if c["action"] != "noop"]
    (page,) = changed
    assert (page["action"], page["kind"]) == ("update", "FacebookPage")
    assert [(f["path"], f["before"], f["after"]) for f in page["fields"]] == [
        ("name", "Contoso Deals", "Contoso Offers")
    ]


def test_a_rule_value_xml_cannot_hold_is_an_error_not_a_crash(project, capsys):
    routing = project / "facebook-routing.yaml"
    routing.write_text(routing.read_text().replace("value: Jan de Vries", 'value: "Jan\\x01"'))
    code, _, err = run(capsys, "plan", "examples", "--env", "dev")
    assert code == 1
    assert "RoutingRuleSet/facebook-support-routing" in err
    assert "unexpected internal error" not in err
