"""Apply's checks and the apply itself (docs/spec.md §2, §4, §5): what refuses before the first
write (conflicts, the delete threshold, a saved plan for another target or org, changed
secrets), reading a saved plan, and the follow-up checklist read back from the target.

Plans are built from plain models; ``apply_plan`` runs against the in-process emulator on a
temporary SQLite file, and the checklist against an ``httpx.MockTransport``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.apply.applier import (
    ApplyError,
    ApplyOptions,
    ApplyRefused,
    apply_plan,
    check_safety,
    load_plan,
    resolve_secrets,
    saved_plan_target,
)
from reconciler.apply.followup import checklist
from reconciler.dataverse import DataverseClient, RetryPolicy, StaticToken
from reconciler.errors import UsageError
from reconciler.mapping.values import fingerprint
from reconciler.plan.definition import (
    Action,
    Change,
    FieldChange,
    Plan,
    PlanTarget,
    Summary,
    Warning,
    summarise,
)
from reconciler.plan.evaluator import Outcome, Result
from reconciler.plan.planner import PlanOptions, make_plan_async
from reconciler.plan.stages import Op, Step
from reconciler.targets import connect, parse_target

ACCOUNT = "FacebookAccount/contoso-facebook"
PAGE = f"{ACCOUNT}/Contoso Support"
GBM = "GoogleBusinessMessagesAccount/contoso-gbm"
APP_ID = "a0000000-0000-0000-0000-0000000000a1"
GBM_ID = "b0000000-0000-0000-0000-0000000000b1"
APP_SECRET = "MARKER-app-secret-11"
TOKEN = "MARKER-page-token-22"


# --- plan factories ---------------------------------------------------------------------------


def make_plan(*changes: Change, **extra: Any) -> Plan:
    extra.setdefault("target", PlanTarget(url="local:.reconciler/dev.db", organization_id="org"))
    extra.setdefault("summary", summarise(changes))
    return Plan(tool_version="0.1.0", created_at="2024-06-01T12:00:00Z", changes=changes, **extra)


def secret(path: str, value: str | None, source: str | None) -> FieldChange:
    return FieldChange(
        path=path,
        sensitive=True,
        fingerprint=None if value is None else fingerprint(value),
        source=source,
    )


def change(address: str, action: Action = Action.CREATE, *fields: FieldChange, **kw: Any):
    kind = kw.pop("kind", address.split("/", 1)[0])
    return Change(
        address=address,
        kind=kind,
        name=address.split("/", 1)[1],
        action=action,
        reason="test",
        id=kw.pop("id", f"id-{address}"),
        fields=fields,
        desired=kw.pop("desired", {} if action is not Action.DELETE else None),
        **kw,
    )


def account_with_secret(value: str | None, source: str | None = "env:FB_APP_SECRET") -> Change:
    return change(ACCOUNT, Action.UPDATE, secret("applicationSecret", value, source))


# --- check_safety -----------------------------------------------------------------------------


def safety_plan(*, delete: int = 0, conflict: int = 0, managed: int = 0, limit: int = 30) -> Plan:
    return make_plan(
        summary=Summary(delete=delete, conflict=conflict), managed=managed, max_delete_percent=limit
    )


@pytest.mark.parametrize(
    ("delete", "managed", "limit"),
    [
        (3, 10, 30),  # exactly at the limit
        (5, 20, 25),
        (0, 10, 0),
        (9, 9, 30),  # fewer than 10 managed records: never refused
        (1, 1, 0),
        (10, 10, 100),
    ],
)
def test_deletes_up_to_the_limit_are_allowed(delete, managed, limit):
    check_safety(safety_plan(delete=delete, managed=managed, limit=limit), force=False)


@pytest.mark.parametrize(
    ("delete", "managed", "limit", "share"),
    [(4, 10, 30, "40.0"), (6, 20, 25, "30.0"), (1, 10, 0, "10.0"), (4, 12, 30, "33.3")],
)
def test_deletes_over_the_limit_are_refused_unless_forced(delete, managed, limit, share):
    plan = safety_plan(delete=delete, managed=managed, limit=limit)
    with pytest.raises(ApplyRefused) as info:
        check_safety(plan, force=False)

    assert str(info.value) == (
        f"the plan deletes {delete} of {managed} managed records ({share}%), more than "
        f"safety.maxDeletePercent ({limit}%) allows; check the plan, then apply with --force "
        "if it is right"
    )
    assert info.value.exit_code == 3
    check_safety(plan, force=True)


@pytest.mark.parametrize(("count", "word"), [(1, "1 conflict"), (2, "2 conflicts")])
def test_conflicts_are_refused_even_when_forced(count, word):
    with pytest.raises(ApplyRefused, match=f"^the plan has {word} \\(records that exist") as info:
        check_safety(safety_plan(conflict=count), force=True)
    assert "adopt or rename them first" in str(info.value)


# --- resolve_secrets --------------------------------------------------------------------------


def test_secrets_are_read_from_the_environment_by_address_and_path():
    plan = make_plan(
        account_with_secret(APP_SECRET),
        change(
            PAGE, Action.CREATE, secret("accessToken", TOKEN, "env:FB_TOKEN"), kind="FacebookPage"
        ),
    )
    found = resolve_secrets(plan, {"FB_APP_SECRET": APP_SECRET, "FB_TOKEN": TOKEN})

    assert set(found) == {(ACCOUNT, "applicationSecret"), (PAGE, "accessToken")}
    assert found[(ACCOUNT, "applicationSecret")].reveal() == APP_SECRET
    assert found[(PAGE, "accessToken")].source == "env:FB_TOKEN"


def test_secrets_are_read_from_files_as_the_planner_read_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # apply reads a plan's files inside the folder it runs in
    (tmp_path / "token.txt").write_text(TOKEN + "\n", encoding="utf-8")
    key = b'{"type": "service_account"}\n'
    (tmp_path / "key.json").write_bytes(key)
    encoded = base64.b64encode(key).decode()
    plan = make_plan(
        change(
            GBM,
            Action.CREATE,
            secret("clientToken", TOKEN, f"file:{tmp_path / 'token.txt'}"),
            secret("serviceAccountKey", encoded, f"file:{tmp_path / 'key.json'}"),
        )
    )
    found = resolve_secrets(plan, {})

    assert found[(GBM, "clientToken")].reveal() == TOKEN  # the editor's newline dropped
    assert found[(GBM, "serviceAccountKey")].reveal() == encoded


def test_a_secret_that_cannot_be_read_stops_apply_naming_where_it_was_looked_for(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # apply reads a plan's files inside the folder it runs in
    plan = make_plan(
        account_with_secret(APP_SECRET),
        change(PAGE, Action.CREATE, secret("accessToken", TOKEN, f"file:{tmp_path}/gone")),
    )
    with pytest.raises(ApplyError) as info:
        resolve_secrets(plan, {})

    message = str(info.value)
    assert message.startswith("cannot read the plan's secrets: ")
    assert f"{ACCOUNT} applicationSecret: environment variable FB_APP_SECRET is not set" in message
    assert f"{PAGE} accessToken: cannot read secret file {tmp_path}/gone" in message


def test_a_secret_without_a_source_cannot_be_read():
    with pytest.raises(ApplyError, match="the plan does not say where the secret comes from"):
        resolve_secrets(make_plan(account_with_secret(APP_SECRET, source=None)), {})


def test_a_secret_changed_since_the_plan_refuses_without_showing_it():
    plan = make_plan(account_with_secret(APP_SECRET))
    with pytest.raises(ApplyRefused) as info:
        resolve_secrets(plan, {"FB_APP_SECRET": "MARKER-rotated-33"})

    assert str(info.value) == (
        f"secrets changed since the plan was made: {ACCOUNT} applicationSecret "
        "(env:FB_APP_SECRET); plan again to apply the new values"
    )
    assert "MARKER" not in str(info.value)


def test_an_unreadable_secret_is_reported_before_a_changed_one():
    plan = make_plan(
        account_with_secret(APP_SECRET),
        change(PAGE, Action.CREATE, secret("accessToken", TOKEN, "env:FB_TOKEN")),
    )
    with pytest.raises(ApplyError):
        resolve_secrets(plan, {"FB_APP_SECRET": "rotated"})


def test_secrets_a_plan_clears_or_does_not_write_are_not_read():
    plan = make_plan(
        account_with_secret(None),  # cleared: nothing to read
        change(PAGE, Action.NOOP, secret("accessToken", TOKEN, "env:MISSING")),
        change(GBM, Action.DELETE, secret("clientToken", TOKEN, "env:MISSING")),
        change("Queue/q", Action.UPDATE, FieldChange(path="priority", before=1, after=2)),
    )
    assert resolve_secrets(plan, {}) == {}


# --- load_plan --------------------------------------------------------------------------------


def saved(tmp_path: Path, data: Any | None = None, text: str | None = None) -> Path:
    path = tmp_path / "plan.json"
    if text is None:
        text = json.dumps(data)
    path.write_text(text, encoding="utf-8")
    return path


def good_plan() -> Plan:
    return make_plan(
        change(
            "Queue/vip",
            Action.CREATE,
            FieldChange(path="priority", after=1),
            desired={"priority": 1},
        ),
        account_with_secret(APP_SECRET),
        warnings=(Warning(code="token-age", message="old", address=PAGE),),
        managed=4,
    ).with_checksum()


def test_a_saved_plan_reads_back_as_it_was_written(tmp_path):
    plan = good_plan()
    path = saved(tmp_path, text=plan.to_json())
    assert load_plan(path) == plan
    assert load_plan(str(path)) == plan


def test_when_and_how_a_plan_was_made_are_not_checksummed(tmp_path):
    data = good_plan().data() | {"created_at": "2030-01-01T00:00:00Z", "requests": 99}
    assert load_plan(saved(tmp_path, data)).created_at == "2030-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["changes"][0]["desired"].update(priority=9),
        lambda d: d["changes"][1]["fields"][0].update(source="env:ELSEWHERE"),
        lambda d: d["target"].update(url="https://contoso.crm4.dynamics.com"),
        lambda d: d.update(max_delete_percent=100),
        lambda d: d["changes"].pop(),
        lambda d: d.update(checksum=""),
    ],
)
def test_a_plan_changed_after_it_was_written_is_refused(tmp_path, edit):
    data = good_plan().data()
    edit(data)
    with pytest.raises(
        ApplyRefused, match=r"plan.json was changed after it was written \(checksum"
    ):
        load_plan(saved(tmp_path, data))


def test_a_missing_plan_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match=r"^cannot read the plan .*gone.json: No such file"):
        load_plan(tmp_path / "gone.json")


def test_a_binary_file_is_not_a_plan(tmp_path):
    path = tmp_path / "plan.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ApplyError, match=r"plan.json is not a plan \(not UTF-8 text\)"):
        load_plan(path)


def test_a_file_that_is_not_json_is_not_a_plan(tmp_path):
    with pytest.raises(ApplyError, match=r"plan.json is not a plan: Expecting value at line 2"):
        load_plan(saved(tmp_path, text="\nPlan: 1 to create.\n"))


@pytest.mark.parametrize("data", [[], "plan", {"changes": []}, None])
def test_json_that_is_not_a_plan_says_so(tmp_path, data):
    with pytest.raises(ApplyError, match="is not a plan written by `reconciler plan --out`"):
        load_plan(saved(tmp_path, data))


def test_a_plan_of_another_format_asks_to_plan_again(tmp_path):
    data = good_plan().data() | {"format_version": "2"}
    with pytest.raises(ApplyError) as info:
        load_plan(saved(tmp_path, data))
    assert str(info.value).endswith("has plan format '2'; this reconciler reads '1': plan again")


def test_a_plan_that_does_not_fit_the_model_names_the_first_problem(tmp_path):
    data = good_plan().data()
    data["changes"][0]["action"] = "explode"
    with pytest.raises(
        ApplyError, match=r"is not a valid plan: changes\.0\.action: Input should be"
    ):
        load_plan(saved(tmp_path, data))


def test_a_plan_with_a_kind_apply_does_not_know_is_not_valid(tmp_path):
    plan = make_plan(change("Gadget/x", Action.CREATE)).with_checksum()
    with pytest.raises(ApplyError) as info:
        load_plan(saved(tmp_path, text=plan.to_json()))
    assert str(info.value).endswith("is not a valid plan: changes[0].kind: unknown kind 'Gadget'")


def test_a_plan_with_unknown_keys_is_not_valid(tmp_path):
    data = good_plan().data() | {"surprise": True}
    with pytest.raises(ApplyError, match="is not a valid plan: surprise: Extra inputs"):
        load_plan(saved(tmp_path, data))


# --- saved_plan_target ------------------------------------------------------------------------


def saved_for(url: str) -> Plan:
    return make_plan(target=PlanTarget(url=url))


def test_a_saved_plan_goes_to_the_target_it_was_made_for():
    target = saved_plan_target(saved_for("local:.reconciler/dev.db"), ApplyOptions())
    assert (target.kind, target.url) == ("local", "local:.reconciler/dev.db")


@pytest.mark.parametrize(
    "chosen", ["https://contoso.crm4.dynamics.com", "https://CONTOSO.crm4.dynamics.com/"]
)
def test_the_target_may_name_the_plans_own_target(chosen):
    plan = saved_for("https://contoso.crm4.dynamics.com")
    assert saved_plan_target(plan, ApplyOptions(target=chosen)).url == plan.target.url
    environ = {"RECONCILER_TARGET": chosen}
    assert saved_plan_target(plan, ApplyOptions(environ=environ)).url == plan.target.url


def test_another_target_is_refused():
    plan = saved_for("local:.reconciler/dev.db")
    with pytest.raises(ApplyRefused) as info:
        saved_plan_target(plan, ApplyOptions(target="https://contoso.crm4.dynamics.com"))
    assert str(info.value) == (
        "the plan was made for local:.reconciler/dev.db, not https://contoso.crm4.dynamics.com; "
        "plan against that target instead"
    )


def test_the_target_option_wins_over_the_environment():
    plan = saved_for("local:a.db")
    options = ApplyOptions(target="local:a.db", environ={"RECONCILER_TARGET": "local:b.db"})
    assert saved_plan_target(plan, options).url == "local:a.db"
    with pytest.raises(ApplyRefused, match=r"not local:b\.db"):
        saved_plan_target(plan, ApplyOptions(environ={"RECONCILER_TARGET": "local:b.db"}))


def test_a_malformed_target_is_a_usage_error():
    with pytest.raises(UsageError):
        saved_plan_target(saved_for("local:a.db"), ApplyOptions(target="ftp://nowhere"))


# --- the follow-up checklist ------------------------------------------------------------------

BASE = "https://contoso.crm4.dynamics.com/api/data/v9.2/"
APPS = "msdyn_ocfbapplications"
PARTNERS = "msdyn_ocgooglebusinessmessagespartneraccounts"
WEBHOOK = "msdyn_googlebusinessmessagescallbackurl"


def run_checklist(plan: Plan, results: list[Result], rows: dict[str, list[dict]]):
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        table = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json={"value": rows[table]})

    async def go():
        transport = httpx.MockTransport(handler)
        async with DataverseClient(
            BASE, auth=StaticToken("t"), transport=transport, retry=RetryPolicy.none()
        ) as client:
            return await checklist(client, plan, results)

    return asyncio.run(go()), requests


def facebook(page_action: Action = Action.CREATE, **page: Any) -> tuple[Change, Change]:
    return (
        change(ACCOUNT, Action.NOOP, id=APP_ID, etag='W/"1"'),
        change(PAGE, page_action, kind="FacebookPage", id="p-1", **page),
    )


def result(item: Change, outcome: Outcome = Outcome.APPLIED, op: Op = Op.CREATE) -> Result:
    step = Step(f"{op} {item.address}", op, item, (), None, ())
    return Result(step, outcome, "done")


APP_ROW = {
    "msdyn_ocfbapplicationid": APP_ID.upper(),
    "msdyn_fbcallbackuri": "https://oc.example/facebook/webhook",
    "msdyn_fbverifytoken": "verify-0001",
}


def test_a_new_page_lists_its_apps_callback_url_and_verify_token():
    account, page = facebook()
    items, requests = run_checklist(make_plan(account, page), [result(page)], {APPS: [APP_ROW]})

    (item,) = items
    assert item.address == PAGE
    assert item.new is True
    assert "webhook settings" in item.message
    assert item.values == (
        ("callback URL", "https://oc.example/facebook/webhook"),
        ("verify token", "verify-0001"),
    )
    assert [(r.method, r.url.params["$select"]) for r in requests] == [
        ("GET", "msdyn_ocfbapplicationid,msdyn_fbcallbackuri,msdyn_fbverifytoken")
    ]


def test_a_page_already_in_place_is_listed_as_not_new():
    account, page = facebook(Action.NOOP, etag='W/"3"', desired=None)
    items, _ = run_checklist(make_plan(account, page), [], {APPS: [APP_ROW]})
    assert [(i.address, i.new) for i in items] == [(PAGE, False)]


def test_pages_not_in_the_target_after_apply_are_not_listed():
    account, page = facebook()
    absent = change(f"{ACCOUNT}/Gone", Action.NOOP, kind="FacebookPage", desired=None)
    half = [result(page), result(page, Outcome.FAILED, Op.LINK)]
    items, requests = run_checklist(make_plan(account, page, absent), half, {APPS: [APP_ROW]})
    assert items == []
    assert requests == []


def test_a_page_whose_app_has_no_callback_yet_says_so():
    account, page = facebook()
    row = {**APP_ROW, "msdyn_fbverifytoken": None}
    items, _ = run_checklist(make_plan(account, page), [result(page)], {APPS: [row]})
    assert [(i.message, i.values) for i in items] == [
        ("no callback URL yet: the target has not generated it", ())
    ]


def test_a_gbm_account_lists_its_webhook_url_and_token_warnings_follow():
    partner = change(GBM, Action.CREATE, kind="GoogleBusinessMessagesAccount", id=GBM_ID)
    warnings = (
        Warning(code="token-expiring", message="refresh the token", address=PAGE),
        Warning(code="token-age", message="written long ago", location="fb.yaml:3:5"),
        Warning(code="retired-channel", message="retired"),
    )
    row = {"msdyn_ocgooglebusinessmessagespartneraccountid": GBM_ID, WEBHOOK: "https://g/hook"}
    items, _ = run_checklist(
        make_plan(partner, warnings=warnings), [result(partner)], {PARTNERS: [row]}
    )

    assert [(i.address, i.message, i.values, i.new) for i in items] == [
        (
            GBM,
            "in the Business Messages console: set and verify the webhook URL",
            (("webhook URL", "https://g/hook"),),
            True,
        ),
        (PAGE, "refresh the token", (), False),
        ("fb.yaml:3:5", "written long ago", (), False),
    ]


def test_a_failed_read_back_is_an_item_of_the_checklist_not_an_error():
    account, page = facebook(Action.NOOP, etag='W/"3"', desired=None)
    plan = make_plan(account, page)
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(503, json={"error": {"code": "0x0", "message": "busy"}})

    async def go():
        transport = httpx.MockTransport(handler)
        async with DataverseClient(
            BASE, auth=StaticToken("t"), transport=transport, retry=RetryPolicy.none()
        ) as client:
            return await apply_plan(client, plan, ApplyOptions(), Ui())

    applied = asyncio.run(go())

    (item,) = applied.checklist
    assert item.address == ""
    assert item.message.startswith(
        "could not read the follow-up values back from the target: GET msdyn_ocfbapplications"
    )
    assert "503" in item.message
    assert applied.results == ()
    assert applied.requests == len(requests) == 1


# --- apply_plan against the emulator ----------------------------------------------------------

PROJECT = """\
apiVersion: reconciler.omnichannel/v1
kind: Queue
metadata: {name: general-support}
spec: {priority: 10}
---
apiVersion: reconciler.omnichannel/v1
kind: FacebookAccount
metadata: {name: fb}
spec:
  applicationId: "100000000000001"
  applicationSecret: {fromEnv: FB_APP_SECRET}
  pages:
    - {name: Support, pageId: "104857600000001", accessToken: {fromEnv: FB_TOKEN}}
---
apiVersion: reconciler.omnichannel/v1
kind: Workstream
metadata: {name: ws}
spec:
  channel: facebook
  fallbackQueue: general-support
  facebook: {account: fb, page: Support, language: en-US}
"""
ENV = {"FB_APP_SECRET": APP_SECRET, "FB_TOKEN": TOKEN}


class Ui:
    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.calls: list[str] = []
        self.finished_keys: list[str] = []

    def show(self, plan: Plan) -> None:
        self.calls.append("show")

    def confirm(self, plan: Plan) -> bool:
        self.calls.append("confirm")
        return self.answer

    def started(self, steps: Any) -> None:
        self.calls.append(f"started {len(steps)}")

    def finished(self, result: Result) -> None:
        self.finished_keys.append(result.step.key)


@pytest.fixture
def project(tmp_path: Path) -> PlanOptions:
    (tmp_path / "reconciler.yaml").write_text(
        "namespace: 3b7c1e62-5d0a-4c8e-9f21-6a4d2b8e7c10\n", encoding="utf-8"
    )
    (tmp_path / "manifests.yaml").write_text(PROJECT, encoding="utf-8")
    return PlanOptions(paths=[str(tmp_path)], target=f"local:{tmp_path / 'org.db'}", environ=ENV)


def plan_and_apply(options: PlanOptions, ui: Ui, edit=None, **apply: Any):
    """Plan, optionally edit the plan, apply it; then plan again. (applied or error, again)"""

    async def go():
        target = parse_target(str(options.target))
        plan = await make_plan_async(options)
        if edit is not None:
            plan = edit(plan)
        outcome: Any
        async with connect(target, {}) as client:
            try:
                outcome = await apply_plan(client, plan, ApplyOptions(environ=ENV, **apply), ui)
            except ApplyRefused as refused:
                outcome = refused
        return outcome, await make_plan_async(options)

    return asyncio.run(go())


def test_apply_writes_the_plan_and_a_second_plan_is_empty(project):
    ui = Ui()
    applied, again = plan_and_apply(project, ui, parallelism=2)

    assert ui.calls == ["show", "confirm", "started 7"]
    assert applied.complete
    assert applied.count(Outcome.APPLIED) == 7
    assert sorted(ui.finished_keys) == sorted(r.step.key for r in applied.results)
    assert applied.requests >= 7 + 3  # the writes, the context reads, the checklist
    (item,) = applied.checklist
    assert (item.address, item.new) == ("FacebookAccount/fb/Support", True)
    assert [label for label, _ in item.values] == ["callback URL", "verify token"]
    assert not again.has_changes


def test_a_plan_without_changes_only_reads_the_checklist(project):
    plan_and_apply(project, Ui())
    ui = Ui()
    applied, _ = plan_and_apply(project, ui)

    assert ui.calls == ["show"]
    assert applied.results == ()
    assert applied.complete
    assert [i.new for i in applied.checklist] == [False]


def test_declining_writes_nothing(project):
    refused, again = plan_and_apply(project, Ui(answer=False))
    assert str(refused) == "apply cancelled; nothing was written"
    assert again.summary.create == 6


def test_a_plan_for_another_organization_is_refused_before_asking(project):
    def elsewhere(plan: Plan) -> Plan:
        return plan.model_copy(
            update={"target": PlanTarget(url=plan.target.url, organization_id="x")}
        )

    ui = Ui()
    refused, again = plan_and_apply(project, ui, elsewhere)

    assert "the plan was made for organization x, but local:" in str(refused)
    assert ui.calls == ["show"]
    assert again.summary.create == 6


def test_an_unsafe_plan_is_refused_before_asking(project):
    def conflicting(plan: Plan) -> Plan:
        return plan.model_copy(update={"summary": Summary(create=6, conflict=1)})

    ui = Ui()
    refused, again = plan_and_apply(project, ui, conflicting)
    assert "1 conflict" in str(refused)
    assert ui.calls == ["show"]
    assert again.summary.create == 6


def test_a_secret_changed_since_the_plan_is_refused_before_asking(project):
    ui = Ui()
    changed = dataclasses.replace(project, environ={**ENV, "FB_TOKEN": "MARKER-new-token"})

    async def go():
        plan = await make_plan_async(changed)
        async with connect(parse_target(str(project.target)), {}) as client:
            await apply_plan(client, plan, ApplyOptions(environ=ENV), ui)

    with pytest.raises(ApplyRefused, match="secrets changed since the plan was made"):
        asyncio.run(go())
    assert ui.calls == ["show"]
