"""``reconciler apply`` end to end: the shipped examples against a real local emulator target,
through the CLI in-process, with every result read back from the target."""

from __future__ import annotations

import asyncio
import base64
import datetime
import io
import json
import re
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from examples_project import KEY_FILE, MARKERS, SECRETS, copy_examples
from served import Served

from reconciler.apply import writer
from reconciler.cli import main
from reconciler.dataverse.errors import NotFound
from reconciler.mapping import kinds as k
from reconciler.plan.definition import compute_checksum
from reconciler.targets import connect, parse_target

NAMESPACE = uuid.UUID("3b7c1e62-5d0a-4c8e-9f21-6a4d2b8e7c10")  # examples/reconciler.yaml
DB = "local:examples/.reconciler/dev.db"
CREATES, STEPS = 36, 38  # the examples: 36 records, two pages/agents linked afterwards
PICK = 192350001  # msdyn_workdistributionmode
SUMMARY = re.compile(
    r"^Apply (complete|incomplete): (\d+) applied, (\d+) stale, (\d+) failed, (\d+) skipped",
    re.M,
)
SUPPORT_PAGE = "FacebookAccount/contoso-facebook/Contoso Support"
SYMBOL = {"create": "+", "update": "~", "link": "~", "delete": "-"}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return copy_examples(tmp_path, monkeypatch)


@pytest.fixture
def applied(project: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """The examples, applied."""
    code, out, err = apply(capsys, "--yes")
    assert (code, err) == (0, ""), out + err
    return project


# --- helpers ----------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def apply(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run(capsys, "apply", "examples", "--env", "dev", "--no-color", *args)


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, "plan", "examples", "--env", "dev", "--format", "json", *args)
    assert err == "", err
    return code, json.loads(out)


def changed(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["address"]: c for c in plan["changes"] if c["action"] != "noop"}


def summary(out: str) -> tuple[str | int, ...]:
    """(complete|incomplete, applied, stale, failed, skipped) from apply's summary line."""
    (found,) = SUMMARY.findall(out)
    return (found[0], *(int(n) for n in found[1:]))


def step_lines(out: str) -> list[str]:
    """The per-step lines apply printed (stdout is not a terminal: one line per step)."""
    head = re.search(r"^Applying (\d+) steps?\.\.\.$", out, re.M)
    assert head, out
    lines = out[head.end() :].lstrip("\n").splitlines()
    end = next(i for i, line in enumerate(lines) if SUMMARY.match(line))
    assert end == int(head[1]), out
    return lines[:end]


def step_keys(out: str) -> Counter[tuple[str, str]]:
    """(symbol, address) of every step apply reported as applied."""
    keys: Counter[tuple[str, str]] = Counter()
    for line in step_lines(out):
        match = re.fullmatch(r"([-+~]) (.+?): .+ \(\d+\.\d\d s\)", line)
        assert match, line
        keys[match[1], match[2]] += 1
    return keys


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def rid(address: str) -> str:
    """The id spec §2 promises a record made by the reconciler."""
    return str(uuid.uuid5(NAMESPACE, address))


async def _read(entity_set: str, record_id: str | None) -> Any:
    async with connect(parse_target(DB), {}) as client:
        if record_id is None:
            return await client.list(entity_set)
        try:
            return await client.get(entity_set, record_id)
        except NotFound:
            return None


def row(kind: k.RecordKind, address: str) -> dict[str, Any] | None:
    """The target's row for ``address`` (by its deterministic id), or None."""
    return asyncio.run(_read(kind.table.entity_set, rid(address)))


def value(kind: k.RecordKind, address: str, column: str) -> Any:
    """One column of the target's row for ``address``, which must exist."""
    found = row(kind, address)
    assert found is not None, f"{address} is not in the target"
    return found[column]


def dump() -> dict[str, list[dict[str, Any]]]:
    """Every row of every managed table (ETags included): equal dumps mean nothing written."""
    assert Path(
        "examples/.reconciler/dev.db"
    ).exists()  # reading must not be what creates the target

    async def go() -> dict[str, list[dict[str, Any]]]:
        result = {}
        for kind in k.KINDS:
            rows = await _read(kind.table.entity_set, None)
            result[kind.name] = sorted(rows, key=lambda r: str(r[kind.table.primary_key]))
        return result

    return asyncio.run(go())


def make_target(capsys: pytest.CaptureFixture[str]) -> None:
    """Create (and seed) the dev target by planning against it."""
    code, _, _ = run(capsys, "plan", "examples", "--env", "dev")
    assert code == 0


class Tty(io.StringIO):
    """A terminal whose user types the given text."""

    def isatty(self) -> bool:
        return True


# --- 1. acceptance ----------------------------------------------------------------------------


def test_apply_then_plan_is_empty_and_a_second_apply_does_nothing(project, capsys):
    code, out, err = apply(capsys, "--yes")
    assert (code, err) == (0, "")
    assert f"Plan: {CREATES} to create, 0 to update, 0 to replace, 0 to delete." in out
    assert summary(out) == ("complete", STEPS, 0, 0, 0)
    keys = step_keys(out)
    assert sum(keys.values()) == STEPS
    assert {symbol for symbol, _ in keys} == {"+", "~"}
    # the follow-up values are the ones the target generated
    app = row(k.FACEBOOK_ACCOUNT, "FacebookAccount/contoso-facebook")
    assert app is not None
    follow_up = out[out.index("Follow-up (outside Dataverse):") :]
    assert follow_up.count(f"callback URL: {app['msdyn_fbcallbackuri']}") == 2
    assert follow_up.count(f"verify token: {app['msdyn_fbverifytoken']}") == 2
    partner = row(k.GBM_ACCOUNT, "GoogleBusinessMessagesAccount/contoso-gbm")
    assert partner is not None
    assert f"webhook URL: {partner['msdyn_googlebusinessmessagescallbackurl']}" in follow_up
    # the secrets reached the target (and only the target)
    assert app["msdyn_fbapplicationsecret"] == SECRETS["FB_APP_SECRET"]
    for page, variable in (("Support", "FB_PAGE_TOKEN_SUPPORT"), ("Deals", "FB_PAGE_TOKEN_DEALS")):
        page_row = row(k.FACEBOOK_PAGE, f"FacebookAccount/contoso-facebook/Contoso {page}")
        assert page_row is not None
        assert page_row["msdyn_fbpageaccesstoken"] == SECRETS[variable]
    assert partner["msdyn_partneraccountclienttoken"] == SECRETS["GBM_CLIENT_TOKEN"]
    key = partner["msdyn_base64credentialfilestring"]
    key += partner.get("msdyn_base64credentialfilestringcontd") or ""
    assert base64.b64decode(key).decode() == KEY_FILE

    code, out, _ = run(capsys, "plan", "examples", "--env", "dev", "--detailed-exitcode")
    assert code == 0, out
    code, plan = plan_json(capsys)
    assert code == 0
    assert {c["action"] for c in plan["changes"]} == {"noop"}
    assert plan["summary"]["noop"] == CREATES
    assert plan["managed"] == CREATES
    for change in plan["changes"]:  # every record has the id derived from its address
        assert change["id"] == rid(change["address"]), change["address"]

    before = dump()
    code, out, err = apply(capsys)  # nothing to confirm: no --yes needed, even without a tty
    assert (code, err) == (0, "")
    assert "No changes. The target matches the manifests." in out
    assert out.count("No changes.") == 1
    assert "Applying" not in out
    assert "Follow-up (outside Dataverse):" in out
    assert dump() == before


def test_the_follow_up_lists_tokens_due_for_rotation(project, capsys):
    rotated = (datetime.date.today() - datetime.timedelta(days=55)).isoformat()
    edit(
        project / "facebook.yaml",
        "accessToken: {fromEnv: FB_PAGE_TOKEN_SUPPORT}",
        f"accessToken: {{fromEnv: FB_PAGE_TOKEN_SUPPORT}}\n      tokenRotatedOn: {rotated}",
    )
    code, out, _ = apply(capsys, "--yes")
    assert code == 0
    follow_up = out[out.index("Follow-up (outside Dataverse):") :]
    assert "spec.pages[0].tokenRotatedOn: the page access token is due for its 60-day" in follow_up


# --- 2. an update ----------------------------------------------------------------------------


def test_a_changed_priority_is_one_update_of_one_row(applied, capsys):
    edit(applied / "queues.yaml", "priority: 1 ", "priority: 2 ")
    _, plan = plan_json(capsys)
    assert list(changed(plan)) == ["Queue/vip-support"]
    change = changed(plan)["Queue/vip-support"]
    assert change["action"] == "update"
    assert [(f["path"], f["before"], f["after"]) for f in change["fields"]] == [("priority", 1, 2)]

    before = dump()
    code, out, err = apply(capsys, "--yes")
    assert (code, err) == (0, "")
    assert summary(out) == ("complete", 1, 0, 0, 0)
    (line,) = step_lines(out)
    assert line.startswith("~ Queue/vip-support: updated (")
    after = dump()
    vip = rid("Queue/vip-support")
    queue = next(r for r in after["Queue"] if r["queueid"] == vip)
    assert queue["msdyn_priority"] == 2
    # nothing else was written
    assert {**after, "Queue": [r for r in after["Queue"] if r["queueid"] != vip]} == {
        **before,
        "Queue": [r for r in before["Queue"] if r["queueid"] != vip],
    }
    code, _, _ = run(capsys, "plan", "examples", "--env", "dev", "--detailed-exitcode")
    assert code == 0


# --- 3. a replace ------------------------------------------------------------------------------


def test_push_to_pick_replaces_the_workstream_and_relinks_the_page(applied, capsys):
    facebook = applied / "facebook.yaml"
    edit(facebook, "mode: push", "mode: pick")
    edit(facebook, "agentAffinity: true", "agentAffinity: false")
    _, plan = plan_json(capsys)
    changes = changed(plan)
    workstream = changes["Workstream/facebook-support"]
    assert workstream["action"] == "replace"
    assert ("distribution.mode", "push", "pick") in [
        (f["path"], f["before"], f["after"]) for f in workstream["fields"]
    ]
    page = changes["FacebookAccount/contoso-facebook/Contoso Support"]
    assert page["action"] == "update"
    assert page["reason"].startswith("unlinked while Workstream/facebook-support")
    routing = changes["Workstream/facebook-support/routing"]
    assert (routing["action"], routing["reason"]) == (
        "update",
        "link to a deleted record cleared; set again",
    )

    code, out, err = apply(capsys, "--yes")
    assert (code, err) == (0, ""), out
    assert summary(out)[0] == "complete"
    lines = step_lines(out)

    def first(prefix: str) -> int:
        return lines.index(next(x for x in lines if x.startswith(prefix)))

    # The page lets go of the workstream, which is deleted, created again, and linked again.
    assert first(f"~ {SUPPORT_PAGE}: unlinked") < first("- Workstream/facebook-support:")
    assert first("- Workstream/facebook-support:") < first("+ Workstream/facebook-support:")
    assert first("+ Workstream/facebook-support:") < first(f"~ {SUPPORT_PAGE}: linked")
    stream = row(k.WORKSTREAM, "Workstream/facebook-support")
    assert stream is not None
    assert stream["msdyn_workdistributionmode"] == PICK
    assert stream["msdyn_enableagentaffinity"] is False
    page_row = row(k.FACEBOOK_PAGE, "FacebookAccount/contoso-facebook/Contoso Support")
    assert page_row is not None
    assert page_row["_msdyn_liveworkstreamid_value"] == rid("Workstream/facebook-support")
    code, _, _ = run(capsys, "plan", "examples", "--env", "dev", "--detailed-exitcode")
    assert code == 0


def unlinked_rows(target: Any) -> list[tuple[str, str, str]]:
    """(entity set, row, lookup) of every row of the project that points nowhere: a routing
    configuration, step, context variable or channel instance missing a link it must have."""
    must_link = [
        (k.ROUTING_CONFIGURATION, ("_msdyn_liveworkstreamid_value",)),
        (k.ROUTING_STEP, ("_msdyn_routingconfigurationid_value", "_msdyn_rulesetid_value")),
        (k.FACEBOOK_PAGE, ("_msdyn_ocfbapplicationid_value",)),
        (k.GBM_AGENT, ("_msdyn_ocgbmpartneraccount_value",)),
        *[
            (kind, ("_msdyn_liveworkstreamid_value",))
            for kind in k.KINDS
            if kind.parent == "msdyn_liveworkstreamid"  # context variables
        ],
    ]
    found = []
    for kind, columns in must_link:
        entity_set = kind.table.entity_set
        for record in target.rows(entity_set):
            found += [
                (entity_set, record[kind.table.primary_key], column)
                for column in columns
                if record[column] is None
            ]
    return found


def test_a_replace_against_a_served_emulator_leaves_no_row_pointing_nowhere(
    project, capsys, tmp_path
):
    """The acceptance: push → pick replaces the Facebook workstream against an emulator served
    over HTTP (the delete rules of the table references: routing configurations survive with
    their link cleared, a page's link refuses the delete); afterwards every row of the
    project still has its links and a second plan is empty."""
    with Served(tmp_path / "org.db") as emulator:
        target = ("--env", "dev", "--target", emulator.url)
        code, out, err = run(capsys, "apply", "examples", *target, "--yes", "--no-color")
        assert (code, err) == (0, ""), out
        assert unlinked_rows(emulator) == []
        facebook = project / "facebook.yaml"
        edit(facebook, "mode: push", "mode: pick")
        edit(facebook, "agentAffinity: true", "agentAffinity: false")

        code, out, err = run(capsys, "apply", "examples", *target, "--yes", "--no-color")
        assert (code, err) == (0, ""), out
        assert summary(out)[0] == "complete"
        assert "Workstream/facebook-support: deleted" in out
        assert unlinked_rows(emulator) == []
        support = emulator.get(f"msdyn_ocfbpages({rid(SUPPORT_PAGE)})").json()
        assert support["_msdyn_liveworkstreamid_value"] == rid("Workstream/facebook-support")
        routing = emulator.get(
            f"msdyn_routingconfigurations({rid('Workstream/facebook-support/routing')})"
        ).json()
        assert routing["_msdyn_liveworkstreamid_value"] == rid("Workstream/facebook-support")
        code, out, _ = run(capsys, "plan", "examples", *target, "--detailed-exitcode", "--no-color")
        assert code == 0, out


# --- 4. prune ----------------------------------------------------------------------------------


def remove_callback_line(project: Path) -> None:
    queues = project / "queues.yaml"
    text = queues.read_text()
    start = text.index(
        "---\napiVersion: reconciler.omnichannel/v1\nkind: Queue\nmetadata:\n  name: callback-line"
    )
    queues.write_text(text[:start])


def test_a_removed_queue_is_deleted_only_with_prune(applied, capsys):
    remove_callback_line(applied)
    _, plan = plan_json(capsys)
    assert plan["summary"]["delete"] == 0
    (warning,) = [w for w in plan["warnings"] if w["code"] == "not-in-manifests"]
    assert "Queue/callback-line" in warning["message"]

    code, out, _ = apply(capsys, "--yes")
    assert code == 0
    assert "No changes. The target matches the manifests." in out
    assert row(k.QUEUE, "Queue/callback-line") is not None

    code, out, err = apply(capsys, "--prune", "--yes")
    assert (code, err) == (0, "")
    (line,) = step_lines(out)
    assert line.startswith("- Queue/callback-line: deleted (")
    assert row(k.QUEUE, "Queue/callback-line") is None
    code, plan = plan_json(capsys, "--prune", "--detailed-exitcode")
    assert code == 0
    assert not [w for w in plan["warnings"] if w["code"] == "not-in-manifests"]


# --- 5. safety ---------------------------------------------------------------------------------


def test_deletes_over_max_delete_percent_are_refused_unless_forced(applied, capsys):
    edit(applied / "reconciler.yaml", "maxDeletePercent: 30", "maxDeletePercent: 2")
    remove_callback_line(applied)  # 1 of 36 = 2.8 % > 2 %
    _, plan = plan_json(capsys, "--prune")
    assert (plan["managed"], plan["max_delete_percent"]) == (CREATES, 2)

    before = dump()
    code, out, err = apply(capsys, "--prune", "--yes")
    assert code == 3
    assert "Plan: 0 to create, 0 to update, 0 to replace, 1 to delete." in out  # shown first
    assert "Applying" not in out
    assert err.startswith(f"error: the plan deletes 1 of {CREATES} managed records")
    assert "--force" in err
    assert dump() == before

    save_plan(capsys, "--prune")  # a saved plan carries its limit
    code, _, err = apply_saved(capsys, "--yes")
    assert code == 3
    assert "--force" in err
    assert dump() == before

    code, out, err = apply(capsys, "--prune", "--yes", "--force")
    assert (code, err) == (0, "")
    assert summary(out) == ("complete", 1, 0, 0, 0)
    assert row(k.QUEUE, "Queue/callback-line") is None


def test_the_delete_refusal_shows_a_share_over_the_limit(applied, capsys):
    edit(applied / "reconciler.yaml", "maxDeletePercent: 30", "maxDeletePercent: 2")
    remove_callback_line(applied)  # 1 of 36 = 2.8 %
    code, _, err = apply(capsys, "--prune", "--yes")
    assert code == 3
    shown = re.search(r"\(([\d.]+)%\), more than safety\.maxDeletePercent \((\d+)%\)", err)
    assert shown, err
    assert float(shown[1]) > float(shown[2]), err


def test_deletes_within_max_delete_percent_need_no_force(applied, capsys):
    edit(applied / "reconciler.yaml", "maxDeletePercent: 30", "maxDeletePercent: 5")
    remove_callback_line(applied)  # 1 of 36 = 2.8 % <= 5 %
    code, out, err = apply(capsys, "--prune", "--yes")
    assert (code, err) == (0, "")
    assert summary(out) == ("complete", 1, 0, 0, 0)
    assert row(k.QUEUE, "Queue/callback-line") is None


def test_the_delete_limit_does_not_apply_below_ten_managed_records(project, capsys):
    for name in (
        "facebook.yaml",
        "facebook-routing.yaml",
        "google-business-messages.yaml",
        "chat.yaml",
    ):
        (project / name).unlink()
    edit(project / "reconciler.yaml", "maxDeletePercent: 30", "maxDeletePercent: 1")
    code, out, _ = apply(capsys, "--yes")
    assert code == 0
    assert summary(out) == ("complete", 6, 0, 0, 0)
    remove_callback_line(project)  # 1 of 6 managed records
    code, out, err = apply(capsys, "--prune", "--yes")
    assert (code, err) == (0, "")
    assert row(k.QUEUE, "Queue/callback-line") is None


def test_a_conflict_refuses_the_whole_apply(project, capsys):
    async def make_foreign() -> None:
        async with connect(parse_target(DB), {}) as client:
            await client.create(
                "queues",
                {
                    "name": "VIP support (dev)",
                    "msdyn_isomnichannelqueue": True,
                    "msdyn_queuetype": 192350000,
                    "msdyn_priority": 4,
                },
            )

    asyncio.run(make_foreign())
    before = dump()
    code, out, err = apply(capsys, "--yes")
    assert code == 3
    assert '! Queue "vip-support" conflicts:' in out
    assert err.startswith("error: the plan has 1 conflict")
    assert "Applying" not in out
    assert dump() == before
    code, _, err = apply(capsys, "--yes", "--force")  # --force is for deletes only
    assert code == 3
    assert err.startswith("error: the plan has 1 conflict")
    assert dump() == before
    code, _, _ = run(capsys, "plan", "examples", "--env", "dev", "--out", "p.json")
    assert code == 3
    code, _, err = run(capsys, "apply", "--plan", "p.json", "--yes", "--force")
    assert code == 3
    assert err.startswith("error: the plan has 1 conflict")
    assert dump() == before


def test_retired_channels_under_policy_error_refuse_before_reading(project, capsys):
    edit(project / "reconciler.yaml", "retiredChannels: warn ", "retiredChannels: error")
    code, out, err = apply(capsys, "--yes")
    assert code == 3
    assert out == ""
    assert "refused by policy.retiredChannels: error" in err
    assert not Path("examples/.reconciler/dev.db").exists()


def test_ensure_absent_deletes_retired_records_without_their_secrets(applied, capsys, monkeypatch):
    gbm = applied / "google-business-messages.yaml"
    gbm.write_text(gbm.read_text().replace("metadata:\n", "metadata:\n  ensure: absent\n"))
    (applied / "gbm-service-account.json").unlink()
    monkeypatch.delenv("GBM_CLIENT_TOKEN")
    code, out, err = apply(capsys, "--yes")
    assert (code, err) == (0, "")
    # the account and its agent, the workstream, its contract and routing configuration, the
    # rule set and its step: nothing of it is left behind unlinked
    assert summary(out) == ("complete", 7, 0, 0, 0)
    assert {symbol for symbol, _ in step_keys(out)} == {"-"}
    assert row(k.GBM_ACCOUNT, "GoogleBusinessMessagesAccount/contoso-gbm") is None
    assert row(k.GBM_AGENT, "GoogleBusinessMessagesAccount/contoso-gbm/Contoso Stores") is None
    assert row(k.WORKSTREAM, "Workstream/gbm-stores") is None
    assert row(k.ROUTING_CONFIGURATION, GBM_ROUTING) is None
    assert "webhook URL" not in out
    code, _, _ = run(capsys, "plan", "examples", "--env", "dev", "--detailed-exitcode")
    assert code == 0


def test_a_real_org_without_credentials_is_an_error_before_any_request(
    project, capsys, monkeypatch
):
    for name in ("DATAVERSE_TOKEN", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    code, out, err = run(capsys, "apply", "examples", "--env", "prod", "--yes")
    assert code == 1
    assert out == ""
    assert err.startswith("error: no credentials for https://contoso.crm4.dynamics.com")


# --- 6. confirmation ---------------------------------------------------------------------------


def test_without_yes_and_no_terminal_apply_refuses(project, capsys):
    assert not sys.stdin.isatty()
    make_target(capsys)
    before = dump()
    code, out, err = apply(capsys)
    assert code == 3
    assert f"Plan: {CREATES} to create" in out
    assert err.startswith("error: stdin is not a terminal")
    assert "--yes" in err
    assert dump() == before


def test_on_a_terminal_yes_applies(project, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Tty("yes\n"))
    code, out, err = apply(capsys)
    assert (code, err) == (0, "")
    prompt = out.index("Do you want to perform these actions? Only 'yes' will be accepted.")
    assert (
        out.index(f"Plan: {CREATES} to create") < prompt < out.index(f"Applying {STEPS} steps...")
    )
    assert summary(out) == ("complete", STEPS, 0, 0, 0)


@pytest.mark.parametrize("answer", ["no\n", "y\n", "YES please\n", ""])
def test_on_a_terminal_anything_but_yes_cancels(project, capsys, monkeypatch, answer):
    make_target(capsys)
    before = dump()
    monkeypatch.setattr(sys, "stdin", Tty(answer))
    code, out, err = apply(capsys)
    assert code == 3
    assert "Do you want to perform these actions?" in out
    assert err == "error: apply cancelled; nothing was written\n"
    assert dump() == before


def test_an_interrupt_at_the_prompt_writes_nothing(project, capsys, monkeypatch):
    class Interrupted(Tty):
        def readline(self, size: int | None = -1) -> str:
            raise KeyboardInterrupt

    make_target(capsys)
    before = dump()
    monkeypatch.setattr(sys, "stdin", Interrupted())
    code, _, err = apply(capsys)
    assert code == 130
    assert err == "error: interrupted\n"
    assert dump() == before


# --- 7. saved plans ----------------------------------------------------------------------------


def save_plan(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, _, err = run(capsys, "plan", "examples", "--env", "dev", "--out", "p.json", *args)
    assert (code, err) == (0, "")
    return json.loads(Path("p.json").read_text())


def apply_saved(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run(capsys, "apply", "--plan", "p.json", "--no-color", *args)


def test_a_saved_plan_is_applied_exactly(project, capsys):
    saved = save_plan(capsys)
    edit(project / "queues.yaml", "priority: 1 ", "priority: 2 ")  # after the plan: not applied
    code, out, err = apply_saved(capsys, "--yes")
    assert (code, err) == (0, "")
    assert summary(out) == ("complete", STEPS, 0, 0, 0)
    assert {address for _, address in step_keys(out)} == {c["address"] for c in saved["changes"]}
    queue = row(k.QUEUE, "Queue/vip-support")
    assert queue is not None
    assert queue["msdyn_priority"] == 1  # the plan's value, not the manifest's
    _, plan = plan_json(capsys)
    assert list(changed(plan)) == ["Queue/vip-support"]
    edit(project / "queues.yaml", "priority: 2 ", "priority: 1 ")
    code, _, _ = run(capsys, "plan", "examples", "--env", "dev", "--detailed-exitcode")
    assert code == 0


def test_a_tampered_saved_plan_is_refused(project, capsys):
    saved = save_plan(capsys)
    change = next(c for c in saved["changes"] if c["address"] == "Queue/vip-support")
    change["desired"]["priority"] = 9
    Path("p.json").write_text(json.dumps(saved, indent=2))
    before = dump()
    code, out, err = apply_saved(capsys, "--yes")
    assert code == 3
    assert "checksum mismatch" in err
    assert "Applying" not in out
    assert dump() == before


@pytest.mark.parametrize("how", ["--target", "RECONCILER_TARGET"])
def test_a_saved_plan_is_refused_for_another_target(project, capsys, monkeypatch, how):
    save_plan(capsys)
    before = dump()
    if how == "--target":
        code, out, err = apply_saved(capsys, "--yes", "--target", "local:other.db")
    else:
        monkeypatch.setenv("RECONCILER_TARGET", "local:other.db")
        code, out, err = apply_saved(capsys, "--yes")
    assert code == 3
    assert "Applying" not in out
    assert err == (
        "error: the plan was made for local:examples/.reconciler/dev.db, not local:other.db; "
        "plan against that target instead\n"
    )
    assert not Path("other.db").exists()
    assert dump() == before


def test_a_saved_plan_names_its_target_in_any_spelling(project, capsys):
    save_plan(capsys)
    code, out, err = apply_saved(capsys, "--yes", "--target", "local:./examples/.reconciler/dev.db")
    assert (code, err) == (0, "")
    assert summary(out)[0] == "complete"


def test_a_saved_plan_is_refused_for_another_organization(project, capsys):
    saved = save_plan(capsys)
    Path("examples/.reconciler/dev.db").unlink()
    make_target(capsys)  # the same path, a new org
    _, fresh = plan_json(capsys)
    assert fresh["target"]["organization_id"] != saved["target"]["organization_id"]
    before = dump()
    code, out, err = apply_saved(capsys, "--yes")
    assert code == 3
    assert err.startswith(
        f"error: the plan was made for organization {saved['target']['organization_id']}"
    )
    assert "Applying" not in out
    assert dump() == before


@pytest.mark.parametrize("where", ["env", "file"])
def test_a_secret_changed_since_the_plan_is_refused(project, capsys, monkeypatch, where):
    save_plan(capsys)
    if where == "env":
        monkeypatch.setenv("FB_PAGE_TOKEN_DEALS", "MARKER-new-deals-token-1d1d")
        named = (
            "FacebookAccount/contoso-facebook/Contoso Deals accessToken (env:FB_PAGE_TOKEN_DEALS)"
        )
    else:
        (project / "gbm-service-account.json").write_text(KEY_FILE.replace("5e5e", "6f6f"))
        named = "(file:examples/gbm-service-account.json)"
    before = dump()
    code, out, err = apply_saved(capsys, "--yes", "--debug")
    assert code == 3
    assert err.rstrip().splitlines()[-1].startswith("error: secrets changed since the plan")
    assert named in err
    for marker in [*MARKERS, "MARKER-new-deals-token-1d1d", "MARKER-private-key-6f6f"]:
        assert marker not in out + err
    assert dump() == before


def test_a_secret_gone_since_the_plan_is_an_error(project, capsys, monkeypatch):
    save_plan(capsys)
    monkeypatch.delenv("FB_APP_SECRET")
    before = dump()
    code, out, err = apply_saved(capsys, "--yes")
    assert code == 1
    assert err.startswith("error: cannot read the plan's secrets: ")
    assert "FB_APP_SECRET" in err
    assert "Applying" not in out
    assert dump() == before


def test_a_record_changed_since_the_saved_plan_is_stale_and_the_rest_applies(applied, capsys):
    queues = applied / "queues.yaml"
    edit(queues, "priority: 1 ", "priority: 2 ")
    edit(queues, "priority: 5\n", "priority: 6\n")  # dutch-support
    save_plan(capsys)

    async def touch() -> None:  # someone edits VIP support in the meantime
        async with connect(parse_target(DB), {}) as client:
            await client.update("queues", rid("Queue/vip-support"), {"msdyn_priority": 7})

    asyncio.run(touch())
    code, out, _ = apply_saved(capsys, "--yes")
    assert code == 1
    assert summary(out) == ("incomplete", 1, 1, 0, 0)
    assert "! Queue/vip-support: update stale: " in out
    assert value(k.QUEUE, "Queue/vip-support", "msdyn_priority") == 7
    assert value(k.QUEUE, "Queue/dutch-support", "msdyn_priority") == 6


def test_steps_needing_a_stale_step_are_skipped_and_a_new_apply_finishes(applied, capsys):
    edit(applied / "facebook.yaml", "mode: push", "mode: pick")
    edit(applied / "facebook.yaml", "agentAffinity: true", "agentAffinity: false")
    edit(applied / "queues.yaml", "priority: 1 ", "priority: 2 ")
    save_plan(capsys)

    async def touch() -> None:
        async with connect(parse_target(DB), {}) as client:
            await client.update(
                "msdyn_liveworkstreams",
                rid("Workstream/facebook-support"),
                {"msdyn_maxconcurrentconnection": 5},
            )

    asyncio.run(touch())
    code, out, err = apply_saved(capsys, "--yes")
    assert code == 1, out + err
    # The page would let go of the workstream first: it finds the workstream changed, so
    # nothing of the replace runs (the page stays linked, the workstream as it is).
    assert summary(out) == ("incomplete", 1, 1, 0, 6)
    assert (
        f"! {SUPPORT_PAGE}: update stale: Workstream/facebook-support changed in the target "
        "since the plan"
    ) in out
    assert (f"! Workstream/facebook-support: skipped: needs unlink {SUPPORT_PAGE} (stale)") in out
    assert value(k.QUEUE, "Queue/vip-support", "msdyn_priority") == 2
    stream = row(k.WORKSTREAM, "Workstream/facebook-support")
    assert stream is not None  # not deleted: nothing half-replaced
    assert stream["msdyn_workdistributionmode"] != PICK
    linked = value(k.FACEBOOK_PAGE, SUPPORT_PAGE, "_msdyn_liveworkstreamid_value")
    assert linked == rid("Workstream/facebook-support")

    code, out, _ = apply(capsys, "--yes")  # plan again and apply: done
    assert code == 0
    assert summary(out)[0] == "complete"
    code, _, _ = run(capsys, "plan", "examples", "--env", "dev", "--detailed-exitcode")
    assert code == 0


def test_after_a_failed_step_the_same_saved_plan_finishes_the_job(project, capsys, monkeypatch):
    save_plan(capsys)
    create = writer.Writer.create

    async def failing(self: writer.Writer, step: Any, *args: Any) -> str:
        if step.address == "Workstream/facebook-support":
            raise writer.StepFailed("simulated failure")
        return await create(self, step, *args)

    monkeypatch.setattr(writer.Writer, "create", failing)
    code, out, err = apply_saved(capsys, "--yes", "-v", "--debug")
    assert code == 1
    assert summary(out) == ("incomplete", 31, 0, 1, 6)
    assert "! Workstream/facebook-support: create failed: simulated failure" in out
    assert "Applying again finishes the job" in out
    for marker in MARKERS:
        assert marker not in out + err
    assert row(k.WORKSTREAM, "Workstream/facebook-support") is None
    page = row(k.FACEBOOK_PAGE, "FacebookAccount/contoso-facebook/Contoso Support")
    assert page is not None
    assert page["_msdyn_liveworkstreamid_value"] is None

    monkeypatch.setattr(writer.Writer, "create", create)
    code, out, _ = apply_saved(capsys, "--yes")
    assert code == 0
    assert summary(out) == ("complete", STEPS, 0, 0, 0)
    assert "+ Workstream/facebook-support: created (" in out
    assert "+ Queue/vip-support: already there; updated (" in out
    linked = value(k.FACEBOOK_PAGE, SUPPORT_PAGE, "_msdyn_liveworkstreamid_value")
    assert linked == rid("Workstream/facebook-support")
    code, _, _ = run(capsys, "plan", "examples", "--env", "dev", "--detailed-exitcode")
    assert code == 0


@pytest.mark.parametrize("parallelism", ["1", "52"])
def test_any_parallelism_applies_the_same(project, capsys, parallelism):
    code, out, _ = apply(capsys, "--yes", "--parallelism", parallelism)
    assert code == 0
    assert summary(out) == ("complete", STEPS, 0, 0, 0)
    code, _, _ = run(capsys, "plan", "examples", "--env", "dev", "--detailed-exitcode")
    assert code == 0


def test_on_a_terminal_each_step_is_a_line_above_a_bar_with_rate_and_eta(
    project, capsys, monkeypatch
):
    screen = Tty()
    monkeypatch.setattr(sys, "stdout", screen)
    code = main(["apply", "examples", "--env", "dev", "--yes", "--no-color"])
    assert code == 0
    out = screen.getvalue()
    assert "\r\033[K+ Queue/vip-support: created (" in out  # the bar cleared, the line written
    bars = re.findall(rf"\] +(\d+)/{STEPS}  applied \d+  [\d.]+ steps/s, ETA \d+ (?:s|min)", out)
    assert [int(n) for n in bars] == list(range(1, STEPS))  # no bar is left after the last step
    assert f"Apply complete: {STEPS} applied" in out
    for marker in MARKERS:
        assert marker not in out


@pytest.mark.parametrize(
    "args",
    [
        ["apply", "--plan", "p.json", "examples"],
        ["apply", "--plan", "p.json", "--prune"],
        ["apply", "--plan", "p.json", "--env", "dev"],
        ["apply", "--plan", "p.json", "--var", "A=b"],
        ["apply", "examples", "--env", "dev", "--parallelism", "0"],
        ["apply", "examples", "--env", "dev", "--parallelism", "53"],
        ["apply", "--plan", "missing.json"],
    ],
)
def test_usage_errors_exit_1_before_anything_is_read(project, capsys, args):
    Path("p.json").write_text("{}")
    code, out, err = run(capsys, *args, "--yes")
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert not Path("examples/.reconciler/dev.db").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "p.json is not a plan: "),
        ("[1, 2]", "p.json is not a plan written by `reconciler plan --out`"),
        ('{"format_version": "2"}', "p.json has plan format '2'"),
        ('{"format_version": "1"}', "p.json is not a valid plan: "),
    ],
)
def test_a_file_that_is_not_a_plan_is_an_error(project, capsys, text, message):
    Path("p.json").write_text(text)
    code, out, err = apply_saved(capsys, "--yes")
    assert code == 1
    assert out == ""
    assert err.startswith(f"error: {message}")


def test_a_saved_plan_with_an_unknown_kind_is_not_a_valid_plan(project, capsys):
    saved = save_plan(capsys)
    saved["changes"][0]["kind"] = "Bogus"
    saved["checksum"] = compute_checksum(saved)
    Path("p.json").write_text(json.dumps(saved))
    before = dump()
    code, _, err = apply_saved(capsys, "--yes")
    assert dump() == before
    assert code == 1
    assert err.startswith("error: p.json is not a valid plan: "), err


# --- 8. secret hygiene -------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["-v"], ["--debug"], ["-vv", "--debug"]])
def test_no_secret_appears_in_apply_output(project, capsys, extra):
    code, out, err = apply(capsys, "--yes", *extra)
    assert code == 0
    for marker in MARKERS:
        assert marker not in out + err


def test_no_secret_appears_when_apply_fails(applied, capsys, monkeypatch):
    """A rotated secret and a stale record: the secret is written, the apply fails."""
    rotated = "MARKER-rotated-secret-3c3c"
    monkeypatch.setenv("FB_APP_SECRET", rotated)
    edit(applied / "queues.yaml", "priority: 1 ", "priority: 2 ")
    saved = save_plan(capsys, "-v")

    async def touch() -> None:
        async with connect(parse_target(DB), {}) as client:
            await client.update("queues", rid("Queue/vip-support"), {"msdyn_priority": 7})

    asyncio.run(touch())
    code, out, err = apply_saved(capsys, "--yes", "-vv", "--debug")
    assert code == 1
    assert summary(out) == ("incomplete", 1, 1, 0, 0)
    assert "~ FacebookAccount/contoso-facebook: updated" in out
    app = "FacebookAccount/contoso-facebook"
    assert value(k.FACEBOOK_ACCOUNT, app, "msdyn_fbapplicationsecret") == rotated
    written = Path("p.json").read_text()
    for marker in [*MARKERS, rotated]:
        assert marker not in out + err + written
    assert '"sensitive": true' in json.dumps(saved)


# --- 9. the explainer --------------------------------------------------------------------------


CALL = re.compile(
    r"^    (PATCH|DELETE|POST) +(\w+)\(([0-9a-f-]{36})\)  (?:(If-(?:None-)?Match: \S+)  )?"
    r"# (create|update|link|delete) (.+)$",
    re.M,
)


def explained(out: str) -> tuple[int, list[tuple[str, ...]]]:
    head = re.search(r"Apply would make these API calls \((\d+) steps? in (\d+) levels?", out)
    assert head, out
    calls = CALL.findall(out[head.end() :])
    return int(head[1]), calls


def test_plan_v_lists_exactly_the_calls_apply_makes_on_an_empty_target(project, capsys):
    code, out, _ = run(capsys, "plan", "examples", "--env", "dev", "-v", "--no-color")
    assert code == 0
    count, calls = explained(out)
    assert count == len(calls) == STEPS
    for method, entity_set, record_id, condition, op, address in calls:
        assert record_id == rid(address)
        assert entity_set in {kind.table.entity_set for kind in k.KINDS}
        if op == "create":
            assert (method, condition) == ("PATCH", "If-None-Match: *")
    code, out, _ = apply(capsys, "--yes")
    assert code == 0
    assert summary(out)[1] == count
    assert step_keys(out) == Counter((SYMBOL[c[4]], c[5]) for c in calls)


def test_plan_v_lists_exactly_the_calls_apply_makes_for_mixed_changes(applied, capsys):
    edit(applied / "facebook.yaml", "mode: push", "mode: pick")
    edit(applied / "facebook.yaml", "agentAffinity: true", "agentAffinity: false")
    edit(applied / "queues.yaml", "priority: 1 ", "priority: 2 ")
    remove_callback_line(applied)
    vip = row(k.QUEUE, "Queue/vip-support")
    assert vip is not None
    code, out, _ = run(capsys, "plan", "examples", "--env", "dev", "-v", "--prune", "--no-color")
    assert code == 0
    count, calls = explained(out)
    assert count == len(calls)
    # deletes: the pruned queue, the replaced workstream; creates: the workstream again; the
    # queue's priority is an update
    # the page lets go of it (an update), the routing configuration and the context variables
    # are linked again (updates), the page is linked again
    assert Counter(c[4] for c in calls) == {"delete": 2, "create": 1, "update": 5, "link": 1}
    (update,) = [c for c in calls if c[5] == "Queue/vip-support"]
    assert update[:4] == (
        "PATCH",
        "queues",
        rid("Queue/vip-support"),
        f"If-Match: {vip['@odata.etag']}",
    )
    code, out, _ = apply(capsys, "--prune", "--yes")
    assert code == 0
    assert summary(out) == ("complete", count, 0, 0, 0)
    assert step_keys(out) == Counter((SYMBOL[c[4]], c[5]) for c in calls)


def test_an_old_saved_plan_never_undoes_a_later_change(project, capsys):
    save_plan(capsys)  # against the empty target: every record a create
    assert apply(capsys, "--yes")[0] == 0  # the same changes, but not that saved plan
    edit(project / "queues.yaml", "priority: 1 ", "priority: 2 ")
    assert apply(capsys, "--yes")[0] == 0
    assert value(k.QUEUE, "Queue/vip-support", "msdyn_priority") == 2

    code, out, _ = apply_saved(capsys, "--yes")
    assert code == 1
    assert (
        "! Queue/vip-support: create stale: Queue/vip-support was created in the target since "
        "the plan" in out
    )
    assert "+ Queue/general-support: already there; updated (" in out  # unchanged since: fine
    assert value(k.QUEUE, "Queue/vip-support", "msdyn_priority") == 2


GBM_ROUTING = "Workstream/gbm-stores/routing"


def test_a_replaced_gbm_workstream_has_its_agent_and_routing_linked_again(applied, capsys):
    edit(applied / "google-business-messages.yaml", "mode: pick", "mode: push")
    _, plan = plan_json(capsys)
    changes = changed(plan)
    assert changes["Workstream/gbm-stores"]["action"] == "replace"
    # An agent's and a routing configuration's link to the workstream are remove-link: the
    # delete clears them (no unlink first), they are set again once the workstream is back.
    assert changes["Workstream/gbm-stores"]["depends_on"] == []
    for address in ("GoogleBusinessMessagesAccount/contoso-gbm/Contoso Stores", GBM_ROUTING):
        relink = changes[address]
        assert (relink["action"], relink["reason"], relink["etag"]) == (
            "update",
            "link to a deleted record cleared; set again",
            None,
        )

    code, out, _ = apply(capsys, "--yes")
    assert code == 0, out
    lines = step_lines(out)
    created = next(i for i, line in enumerate(lines) if line.startswith("+ Workstream/gbm-stores"))
    linked = next(i for i, line in enumerate(lines) if line.startswith("~ Google"))
    assert created < linked
    stores = rid("Workstream/gbm-stores")
    agent = "GoogleBusinessMessagesAccount/contoso-gbm/Contoso Stores"
    assert value(k.GBM_AGENT, agent, "_msdyn_liveworkstreamid_value") == stores
    assert value(k.ROUTING_CONFIGURATION, GBM_ROUTING, "_msdyn_liveworkstreamid_value") == stores
    assert plan_json(capsys)[1]["summary"]["noop"] == len(plan["changes"])


def test_a_replace_that_a_page_of_someone_else_blocks_is_warned_about_and_refused(applied, capsys):
    async def hand_made_page() -> None:
        async with connect(parse_target(DB), {}) as client:
            await client.create(
                k.FACEBOOK_PAGE.table.entity_set,
                {
                    "msdyn_fbpagename": "Made by hand",
                    "msdyn_fbpageid": "990000000000001",
                    "msdyn_liveworkstreamid@odata.bind": (
                        f"/msdyn_liveworkstreams({rid('Workstream/facebook-support')})"
                    ),
                },
            )

    asyncio.run(hand_made_page())
    edit(applied / "facebook.yaml", "mode: push", "mode: pick")
    edit(applied / "facebook.yaml", "agentAffinity: true", "agentAffinity: false")
    _, plan = plan_json(capsys)
    assert changed(plan)["Workstream/facebook-support"]["action"] == "replace"
    blocked = [w["message"] for w in plan["warnings"] if w["code"] == "delete-blocked"]
    assert all("Workstream/facebook-support cannot be replaced while" in m for m in blocked)
    assert len([m for m in blocked if "'Made by hand'" in m]) == 1

    # Dataverse refuses the delete (405, CannotDeleteDueToAssociation): nothing is replaced.
    code, out, _ = apply(capsys, "--yes")
    assert code == 1
    assert "! Workstream/facebook-support: delete failed: " in out
    assert "405 0x80040227" in out
    stream = row(k.WORKSTREAM, "Workstream/facebook-support")
    assert stream is not None
    assert stream["msdyn_workdistributionmode"] != PICK
    # The project's own page was not unlinked for a replace that could not run.
    linked = value(k.FACEBOOK_PAGE, SUPPORT_PAGE, "_msdyn_liveworkstreamid_value")
    assert linked == rid("Workstream/facebook-support")


def test_the_delete_limit_counts_every_record_of_the_project_in_the_target(applied, capsys):
    """Records no manifest describes any more still count as managed: the ledger lists every
    record the project wrote, so dropping most files and deleting three queues is 3 of 36
    records (the GBM account, displayed 'Contoso Business Messages', and its agent included,
    which no id could prove ours), over a 5 % limit."""
    for manifest in (
        "facebook.yaml",
        "facebook-routing.yaml",
        "google-business-messages.yaml",
        "chat.yaml",
    ):
        (applied / manifest).unlink()
    edit(applied / "reconciler.yaml", "maxDeletePercent: 30", "maxDeletePercent: 5")
    for name in ("callback-line", "case-escalations", "dutch-support"):
        edit(applied / "queues.yaml", f"  name: {name}\n", f"  name: {name}\n  ensure: absent\n")
    _, plan = plan_json(capsys)
    assert (plan["summary"]["delete"], plan["managed"]) == (3, 36)
    before = dump()
    code, _, err = apply(capsys, "--yes")
    assert code == 3
    assert "3 of 36 managed records (8.3%)" in err
    assert dump() == before


def test_a_failed_follow_up_read_never_hides_what_apply_did(project, capsys, monkeypatch):
    from reconciler.apply import applier
    from reconciler.dataverse import ServerError

    async def unreadable(*_args: Any) -> list[Any]:
        raise ServerError(503, "Service Unavailable", method="GET", url="msdyn_ocfbapplications")

    monkeypatch.setattr(applier, "checklist", unreadable)
    code, out, _ = apply(capsys, "--yes")
    assert code == 0
    assert summary(out) == ("complete", STEPS, 0, 0, 0)
    assert "[ ] could not read the follow-up values back from the target: " in out


def test_a_saved_plan_applied_again_says_so_and_writes_nothing(project, capsys):
    save_plan(capsys)
    assert apply_saved(capsys, "--yes")[0] == 0
    before = dump()
    code, out, err = apply_saved(capsys, "--yes")
    assert (code, err) == (0, "")
    assert re.fullmatch(
        r"This plan was already applied to local:examples/\.reconciler/dev\.db at "
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: nothing to do\.\n",
        out,
    ), out
    assert dump() == before


def test_apply_format_json_is_json_lines_with_a_step_each_and_the_counts(project, capsys):
    code, out, err = apply(capsys, "--yes", "--format", "json")
    assert (code, err) == (0, "")
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events[:2]] == ["plan", "apply_start"]
    assert events[0]["summary"]["create"] == CREATES
    assert {w["code"] for w in events[0]["warnings"]} >= {"retired-channel"}
    steps = [e for e in events if e["type"] == "step"]
    assert len(steps) == events[1]["steps"] == STEPS
    assert {(e["outcome"], e["op"]) for e in steps} >= {("applied", "create"), ("applied", "link")}
    assert {"address", "kind", "detail", "seconds"} <= set(steps[0])
    assert any(e["type"] == "follow_up" for e in events)
    last = events[-1]
    assert last["type"] == "summary"
    assert (last["complete"], last["applied"], last["stale"], last["failed"]) == (
        True,
        STEPS,
        0,
        0,
    )
    for marker in MARKERS:
        assert marker not in out


def test_apply_format_json_needs_yes(project, capsys):
    code, out, err = apply(capsys, "--format", "json")
    assert (code, out) == (1, "")
    assert "--format json cannot ask for confirmation: pass --yes too" in err


def test_the_apply_time_leaves_out_the_time_at_the_prompt(project, capsys, monkeypatch):
    import time as clock

    ticks = iter(range(0, 10_000, 1))
    monkeypatch.setattr(clock, "perf_counter", lambda: float(next(ticks)))
    answer = Tty("yes\n")

    def slow_reader() -> str:
        for _ in range(5000):  # a person reading the plan: 5,000 "seconds" pass
            clock.perf_counter()
        return "yes\n"

    answer.readline = slow_reader  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", answer)
    code, out, _ = apply(capsys)
    assert code == 0
    seconds = float(re.search(r"requests in ([\d.]+) s\)", out).group(1))
    assert seconds < 1000, out
