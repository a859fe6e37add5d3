"""The writer: one step → the Web API requests that carry it out, safe to repeat.

The client runs against an ``httpx.MockTransport`` whose handler (``Server``) answers from a
script and records every request, so each test checks the exact method, URL, conditional
headers and JSON body. A lost answer is an ``httpx.ReadTimeout`` raised on a write, which the
client reports as ``OutcomeUnknown``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from reconciler.apply.writer import ATTEMPTS, Writer
from reconciler.dataverse import DataverseClient, RetryPolicy, StaticToken
from reconciler.dataverse.errors import BadRequest
from reconciler.errors import ReconcilerError
from reconciler.mapping.fields import Resolver
from reconciler.mapping.values import Sensitive
from reconciler.plan.definition import Action, Change, FieldChange, Plan, PlanTarget, summarise
from reconciler.plan.evaluator import Outcome, StaleStep, evaluate
from reconciler.plan.stages import Op, Step, build_steps

BASE = "https://contoso.crm4.dynamics.com/api/data/v9.2/"
ETAG = 'W/"100"'
NEWER = 'W/"101"'
NL = "0a000000-0000-0000-0000-000000000413"
TOKEN = "MARKER-page-token-77aa"
APP_SECRET = "MARKER-app-secret-3c3c"

QUEUE = "Queue/vip-support"
GENERAL = "Queue/general-support"
ACCOUNT = "FacebookAccount/contoso-facebook"
PAGE = f"{ACCOUNT}/Contoso Support"
WS = "Workstream/facebook-support"
CONTRACT = f"{WS}/contract"
ROUTING = f"{WS}/routing"

VIP = {
    "displayName": "VIP support",
    "type": "messaging",
    "priority": 1,
    "assignment": "round-robin",
    "visibility": "private",
    "maxSize": 50,
    "description": None,
}
PAGE_FIELDS = {
    "account": "contoso-facebook",
    "name": "Contoso Support",
    "pageId": "104857600000001",
    "accessToken": None,
    "workstream": "facebook-support",
    "facebook.language": "nl-NL",
    "facebook.fileAttachments.customer": True,
    "facebook.fileAttachments.agent": False,
    "facebook.humanAgentMessageTag": True,
}
KINDS = {
    QUEUE: "Queue",
    GENERAL: "Queue",
    ACCOUNT: "FacebookAccount",
    PAGE: "FacebookPage",
    WS: "Workstream",
    CONTRACT: "DecisionContract",
    ROUTING: "RoutingConfiguration",
}


def id_of(address: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, address))


# --- plans and steps --------------------------------------------------------------------------


def change(
    address: str,
    action: Action,
    desired: dict[str, Any] | None = None,
    *,
    changed: tuple[str, ...] = (),
    etag: str | None = ETAG,
    depends_on: tuple[str, ...] = (),
) -> Change:
    return Change(
        address=address,
        kind=KINDS[address],
        name=address.split("/", 1)[1],
        action=action,
        reason="test",
        id=id_of(address),
        etag=None if action is Action.CREATE else etag,
        fields=tuple(FieldChange(path=p, after="x") for p in changed),
        depends_on=depends_on,
        desired=desired,
    )


def steps_of(*changes: Change) -> list[Step]:
    return build_steps(
        Plan(
            tool_version="0",
            created_at="2024-06-01T00:00:00Z",
            target=PlanTarget(url="local:test.db"),
            summary=summarise(changes),
            changes=changes,
        )
    )


def only(*changes: Change) -> Step:
    (step,) = steps_of(*changes)
    return step


def create_queue() -> Step:
    return only(change(QUEUE, Action.CREATE, VIP))


def update_queue(*changed: str, etag: str | None = ETAG) -> Step:
    desired = {**VIP, "priority": 2, "description": None}
    return only(change(QUEUE, Action.UPDATE, desired, changed=changed, etag=etag))


def delete_queue(etag: str | None = ETAG) -> Step:
    return only(change(QUEUE, Action.DELETE, etag=etag))


def page_chain() -> list[Step]:
    """A new page whose workstream is created too: create (unlinked) … link."""
    return steps_of(
        change(CONTRACT, Action.CREATE, {"outputs": []}),
        change(
            WS,
            Action.CREATE,
            {"displayName": "Facebook support", "channel": "facebook", "fallbackQueue": None},
            depends_on=(CONTRACT,),
        ),
        change(ROUTING, Action.CREATE, {"workstream": "facebook-support"}, depends_on=(WS,)),
        change(PAGE, Action.CREATE, PAGE_FIELDS, depends_on=(ACCOUNT, WS)),
    )


def resolver() -> Resolver:
    found = Resolver(languages={"nl-NL": NL})
    for address in KINDS:
        found.add(address, id_of(address))
    return found


# --- the scripted server ----------------------------------------------------------------------

LOST = httpx.ReadTimeout


def ok() -> httpx.Response:
    return httpx.Response(204)


def error(status: int, code: str, message: str = "no") -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


def exists() -> httpx.Response:
    return error(412, "0x80040237", "A record with matching key values already exists.")


def stale() -> httpx.Response:
    return error(412, "0x80060882", "The version of the existing record doesn't match.")


def missing() -> httpx.Response:
    return error(404, "0x80040217", "Does Not Exist")


def row(etag: str = ETAG, **columns: Any) -> httpx.Response:
    return httpx.Response(200, json={"@odata.etag": etag, **columns})


class Server:
    """Answers each request with the next scripted answer (``LOST`` raises a read timeout)."""

    def __init__(self, *answers: httpx.Response | type[Exception]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.answers, f"unexpected {request.method} {request.url}"
        answer = self.answers.pop(0)
        if isinstance(answer, type):
            raise answer("no answer", request=request)
        return answer

    @property
    def sent(self) -> list[tuple[str, str, dict[str, str]]]:
        """(method, path and query, conditional headers) of each request."""
        return [
            (
                r.method,
                r.url.raw_path.decode()[len("/api/data/v9.2/") :],
                {
                    name: r.headers[name]
                    for name in ("If-Match", "If-None-Match")
                    if name in r.headers
                },
            )
            for r in self.requests
        ]

    def body(self, index: int = 0) -> dict[str, Any]:
        return json.loads(self.requests[index].content)


async def _client_run(server: Server, work: Any) -> Any:
    transport = httpx.MockTransport(server)
    async with DataverseClient(
        BASE, auth=StaticToken("t"), transport=transport, retry=RetryPolicy.none()
    ) as client:
        return await work(client)


def write(step: Step, server: Server, secrets: dict | None = None) -> str:
    async def work(client: DataverseClient) -> str:
        return await Writer(client, resolver(), secrets or {})(step)

    result = asyncio.run(_client_run(server, work))
    assert not server.answers, "answers left over"
    return result


def fails(step: Step, server: Server, error: type[Exception] = ReconcilerError) -> Exception:
    with pytest.raises(error) as info:
        write(step, server)
    return info.value


QUEUE_PATH = f"queues({id_of(QUEUE)})"
QUEUE_ROW = {
    "name": "VIP support",
    "msdyn_queuetype": 192350000,
    "msdyn_priority": 1,
    "msdyn_assignmentstrategy": 192350001,
    "queueviewtype": 1,
    "msdyn_maxqueuesize": 50,
    "msdyn_isomnichannelqueue": True,
}


# --- create -----------------------------------------------------------------------------------


def test_a_create_is_a_create_only_patch_of_every_set_column():
    server = Server(ok())
    assert write(create_queue(), server) == "created"

    assert server.sent == [("PATCH", QUEUE_PATH, {"If-None-Match": "*"})]
    # The id is in the URL, not the body; unset (None) fields are left out.
    assert server.body() == QUEUE_ROW
    assert server.requests[0].headers["Content-Type"] == "application/json"


QUEUE_SELECT = (
    f"{QUEUE_PATH}?$select=queueid,msdyn_isomnichannelqueue,name,msdyn_queuetype,"
    "msdyn_priority,msdyn_assignmentstrategy,queueviewtype,msdyn_maxqueuesize"
)


def as_planned(etag: str = NEWER) -> httpx.Response:
    """The queue as ``create_queue`` writes it (an earlier run made it)."""
    return row(etag, queueid=id_of(QUEUE), **QUEUE_ROW)


def test_a_create_of_a_record_already_holding_the_plan_finishes_it():
    server = Server(exists(), as_planned(NEWER), ok())
    assert write(create_queue(), server) == "already there; updated"

    assert server.sent == [
        ("PATCH", QUEUE_PATH, {"If-None-Match": "*"}),
        ("GET", QUEUE_SELECT, {}),
        # Written only if nobody changes it between the read and the write.
        ("PATCH", QUEUE_PATH, {"If-Match": NEWER}),
    ]
    assert server.body(2) == server.body(0) == QUEUE_ROW


def test_a_create_of_a_record_someone_else_made_differently_is_stale():
    found = row(NEWER, **{**QUEUE_ROW, "msdyn_priority": 9})
    server = Server(exists(), found)
    failure = fails(create_queue(), server, StaleStep)

    assert str(failure) == f"{QUEUE} was created in the target since the plan"
    assert [s[0] for s in server.sent] == ["PATCH", "GET"]


def test_a_create_that_clashes_with_another_record_fails():
    duplicate = error(412, "0x80060892", "A record with the same unique name exists.")
    server = Server(duplicate, missing())
    failure = fails(create_queue(), server)

    assert not isinstance(failure, StaleStep)
    assert str(failure).startswith(f"{QUEUE}: PATCH {QUEUE_PATH}: 412 0x80060892")


def test_a_create_finishing_a_record_changed_meanwhile_is_stale():
    server = Server(exists(), as_planned(), stale())
    failure = fails(create_queue(), server, StaleStep)
    assert str(failure) == f"{QUEUE} changed in the target just now"


def test_a_create_whose_answer_was_lost_is_sent_again():
    server = Server(LOST, ok())
    assert write(create_queue(), server) == "created"
    assert server.sent == [("PATCH", QUEUE_PATH, {"If-None-Match": "*"})] * 2


def test_a_lost_create_that_landed_is_found_on_the_next_attempt():
    server = Server(LOST, exists(), as_planned(), ok())
    assert write(create_queue(), server) == "already there; updated"
    assert [s[:1] + s[2:] for s in server.sent] == [
        ("PATCH", {"If-None-Match": "*"}),
        ("PATCH", {"If-None-Match": "*"}),
        ("GET", {}),
        ("PATCH", {"If-Match": NEWER}),
    ]


def test_a_lost_update_of_a_record_already_there_reads_it_again():
    server = Server(exists(), as_planned(NEWER), LOST, as_planned('W/"102"'), ok())
    assert write(create_queue(), server) == "already there; updated"
    assert [s[0] for s in server.sent] == ["PATCH", "GET", "PATCH", "GET", "PATCH"]
    assert server.sent[-1] == ("PATCH", QUEUE_PATH, {"If-Match": 'W/"102"'})


def test_a_record_already_there_whose_update_never_gets_an_answer_fails():
    server = Server(exists(), *[as_planned(NEWER), LOST] * ATTEMPTS)
    failure = fails(create_queue(), server)
    assert str(failure) == f"{QUEUE}: no answer to the update after {ATTEMPTS} attempts"


def test_a_create_answered_by_a_gateway_timeout_is_settled_like_a_lost_one():
    gateway = httpx.Response(504, text="<html><title>Gateway Timeout</title></html>")
    server = Server(gateway, exists(), as_planned(), ok())
    assert write(create_queue(), server) == "already there; updated"
    assert len(server.requests) == 4


def test_a_create_with_no_answer_every_time_fails():
    server = Server(*[LOST] * ATTEMPTS)
    failure = fails(create_queue(), server)

    assert str(failure) == f"{QUEUE}: no answer to the create after {ATTEMPTS} attempts"
    assert len(server.requests) == ATTEMPTS == 6


def test_a_create_binds_lookups_and_sets_the_columns_set_once():
    ws = change(
        WS,
        Action.CREATE,
        {
            "displayName": "Facebook support",
            "channel": "facebook",
            "fallbackQueue": "general-support",
            "distribution.mode": "push",
            "autoCloseAfterInactivity": "2d",
            "allowedPresences": ["busy", "available"],
            "routingContract": "facebook-support",
        },
    )
    server = Server(ok())
    write(only(ws), server)

    assert server.sent[0][:2] == ("PATCH", f"msdyn_liveworkstreams({id_of(WS)})")
    assert server.body() == {
        "msdyn_name": "Facebook support",
        "msdyn_streamsource": 192330000,
        "msdyn_defaultqueue@odata.bind": f"/queues({id_of(GENERAL)})",
        "msdyn_workdistributionmode": 192350000,
        "msdyn_autocloseafterinactivity": 2880,
        "msdyn_allowedpresences": "192360000,192360001",
        "msdyn_routingcontractid@odata.bind": f"/msdyn_decisioncontracts({id_of(CONTRACT)})",
        "msdyn_capacityformat": 192350000,
        "msdyn_direction": 0,
        "msdyn_mode": 717210001,
        "msdyn_conversationmode": 192350001,
    }


def test_a_value_that_cannot_be_written_fails_the_step_without_a_request():
    page = change(PAGE, Action.CREATE, {**PAGE_FIELDS, "facebook.language": "de-DE"})
    server = Server()
    failure = fails(only(page), server)

    assert str(failure).startswith(f"{PAGE}: language de-DE is not available in the target")
    assert server.requests == []


# --- a new page on a new workstream: created unlinked, then linked ---------------------------


def test_the_split_create_of_a_page_leaves_the_workstream_out():
    create = next(s for s in page_chain() if s.key == f"create {PAGE}")
    server = Server(ok())
    secrets = {(PAGE, "accessToken"): Sensitive(TOKEN, "env:FB_TOKEN")}
    assert write(create, server, secrets) == "created"

    assert server.sent == [("PATCH", f"msdyn_ocfbpages({id_of(PAGE)})", {"If-None-Match": "*"})]
    assert server.body() == {
        "msdyn_ocfbapplicationid@odata.bind": f"/msdyn_ocfbapplications({id_of(ACCOUNT)})",
        "msdyn_fbpagename": "Contoso Support",
        "msdyn_fbpageid": "104857600000001",
        "msdyn_fbpageaccesstoken": TOKEN,
        "msdyn_ocwidgetlanguage@odata.bind": f"/msdyn_oclanguages({NL})",
        "msdyn_enablefileattachmentsforcustomers": True,
        "msdyn_enablefileattachmentsforagents": False,
        "msdyn_enablehumanagenttag": True,
        "msdyn_postconversationsurveyenable": False,
    }


def test_the_link_writes_only_the_workstream_of_a_record_that_must_exist():
    link = page_chain()[-1]
    server = Server(ok())
    secrets = {(PAGE, "accessToken"): Sensitive(TOKEN, "env:FB_TOKEN")}
    assert write(link, server, secrets) == "linked"

    assert server.sent == [("PATCH", f"msdyn_ocfbpages({id_of(PAGE)})", {"If-Match": "*"})]
    assert server.body() == {
        "msdyn_liveworkstreamid@odata.bind": f"/msdyn_liveworkstreams({id_of(WS)})"
    }


def test_a_lost_link_without_an_etag_is_sent_again_without_reading():
    server = Server(LOST, ok())
    assert write(page_chain()[-1], server) == "linked"
    assert [s[0] for s in server.sent] == ["PATCH", "PATCH"]


def test_a_link_with_no_answer_every_time_fails():
    failure = fails(page_chain()[-1], Server(*[LOST] * ATTEMPTS))
    assert str(failure) == f"{PAGE}: no answer to the update after {ATTEMPTS} attempts"


def unlink_page() -> Step:
    """The page lets go of its workstream before the workstream is deleted and created again."""
    steps = steps_of(
        change(WS, Action.REPLACE, {"displayName": "Facebook support"}, depends_on=(PAGE,)),
        change(PAGE, Action.UPDATE, PAGE_FIELDS, changed=("workstream",), depends_on=(WS,)),
    )
    (unlink,) = [step for step in steps if step.clears]
    return unlink


def test_an_unlink_clears_only_the_link_of_the_page_as_read():
    server = Server(row(ETAG), ok())
    secrets = {(PAGE, "accessToken"): Sensitive(TOKEN, "env:FB_TOKEN")}
    assert write(unlink_page(), server, secrets) == "unlinked"

    # First: the workstream about to be replaced is still as read.
    assert server.sent[0][0] == "GET"
    assert server.sent[0][1].startswith(f"msdyn_liveworkstreams({id_of(WS)})?")
    assert server.sent[1] == ("PATCH", f"msdyn_ocfbpages({id_of(PAGE)})", {"If-Match": ETAG})
    assert server.body(1) == {"msdyn_liveworkstreamid@odata.bind": None}


def test_an_unlink_for_a_workstream_changed_since_the_plan_is_stale_and_writes_nothing():
    server = Server(row(NEWER), row(ETAG, _msdyn_liveworkstreamid_value=id_of(WS)))
    failure = fails(unlink_page(), server, StaleStep)

    assert str(failure) == f"{WS} changed in the target since the plan"
    assert [method for method, _, _ in server.sent] == ["GET", "GET"]


def test_an_unlink_an_earlier_run_of_the_plan_made_goes_on():
    # The workstream is gone (an earlier run went on to delete it) and the page let go of it.
    server = Server(
        missing(),
        row(NEWER, _msdyn_liveworkstreamid_value=None),
        stale(),
        row(NEWER, _msdyn_liveworkstreamid_value=None),
    )
    assert write(unlink_page(), server) == "already as planned"


def test_an_unlink_refused_for_a_page_already_unlinked_is_done():
    server = Server(row(ETAG), stale(), row(NEWER, _msdyn_liveworkstreamid_value=None))
    assert write(unlink_page(), server) == "already as planned"


def test_an_unlink_of_a_page_someone_changed_is_stale():
    server = Server(
        row(ETAG), stale(), row(NEWER, _msdyn_liveworkstreamid_value=id_of("Workstream/x"))
    )
    fails(unlink_page(), server, StaleStep)


# --- update -----------------------------------------------------------------------------------


def test_an_update_sends_only_the_changed_columns_with_the_plan_etag():
    server = Server(ok())
    assert write(update_queue("priority", "description"), server) == "updated"

    assert server.sent == [("PATCH", QUEUE_PATH, {"If-Match": ETAG})]
    # A cleared value is written as null on an update.
    assert server.body() == {"msdyn_priority": 2, "description": None}


def test_an_update_without_an_etag_only_requires_the_record():
    server = Server(ok())
    write(update_queue("priority", etag=None), server)
    assert server.sent == [("PATCH", QUEUE_PATH, {"If-Match": "*"})]


def test_an_update_of_a_changed_record_is_stale():
    server = Server(stale(), row(NEWER, msdyn_priority=7))
    failure = fails(update_queue("priority"), server, StaleStep)

    assert str(failure) == f"{QUEUE} changed in the target since the plan"
    assert server.sent[1] == ("GET", f"{QUEUE_PATH}?$select=queueid,msdyn_priority", {})


def test_an_update_refused_for_a_record_already_as_planned_is_done():
    # An earlier run of the same saved plan wrote it, then crashed.
    server = Server(stale(), row(NEWER, msdyn_priority=2))
    assert write(update_queue("priority"), server) == "already as planned"


def test_an_update_of_a_secret_refused_for_a_changed_record_is_stale_without_reading():
    update = only(change(PAGE, Action.UPDATE, PAGE_FIELDS, changed=("accessToken",)))
    server = Server(stale())
    with pytest.raises(StaleStep):
        write(update, server, {(PAGE, "accessToken"): Sensitive(TOKEN, "env:FB_TOKEN")})
    assert [s[0] for s in server.sent] == ["PATCH"]


def test_an_update_of_a_deleted_record_is_stale():
    failure = fails(update_queue("priority"), Server(missing()), StaleStep)
    assert str(failure) == f"{QUEUE} was deleted since the plan"


def test_an_update_the_target_refuses_fails_with_its_error():
    failure = fails(update_queue("priority"), Server(error(400, "0x80040203", "bad value")))
    assert isinstance(failure, BadRequest)
    assert not isinstance(failure, StaleStep)


def test_a_lost_update_that_never_landed_is_sent_again():
    server = Server(LOST, row(ETAG, msdyn_priority=1), ok())
    assert write(update_queue("priority"), server) == "updated"

    assert server.sent == [
        ("PATCH", QUEUE_PATH, {"If-Match": ETAG}),
        ("GET", f"{QUEUE_PATH}?$select=queueid,msdyn_priority", {}),
        ("PATCH", QUEUE_PATH, {"If-Match": ETAG}),
    ]
    assert server.body(2) == server.body(0)


def test_an_update_answered_by_a_bad_gateway_is_settled_by_reading_back():
    gateway = httpx.Response(502, text="Bad Gateway")
    server = Server(gateway, row(ETAG, msdyn_priority=1), ok())
    assert write(update_queue("priority"), server) == "updated"
    assert [s[0] for s in server.sent] == ["PATCH", "GET", "PATCH"]


def test_a_lost_update_that_landed_is_done():
    server = Server(LOST, row(NEWER, msdyn_priority=2))
    assert write(update_queue("priority"), server) == "updated"
    assert [s[0] for s in server.sent] == ["PATCH", "GET"]


def test_a_lost_update_of_a_record_someone_else_changed_is_stale():
    server = Server(LOST, row(NEWER, msdyn_priority=7))
    failure = fails(update_queue("priority"), server, StaleStep)
    assert str(failure) == f"{QUEUE} changed in the target since the plan"


def test_a_lost_update_of_a_record_deleted_since_is_stale():
    failure = fails(update_queue("priority"), Server(LOST, missing()), StaleStep)
    assert str(failure) == f"{QUEUE} was deleted since the plan"


def test_a_lost_update_that_never_lands_fails_after_every_attempt():
    server = Server(*[LOST, row()] * ATTEMPTS)
    failure = fails(update_queue("priority"), server)
    assert str(failure) == f"{QUEUE}: no answer to the update after {ATTEMPTS} attempts"


def test_a_lost_link_is_settled_comparing_ids_whatever_their_case():
    link = only(change(PAGE, Action.UPDATE, PAGE_FIELDS, changed=("workstream",)))
    assert link.op is Op.LINK
    found = row(NEWER, _msdyn_liveworkstreamid_value=id_of(WS).upper())
    server = Server(LOST, found)

    assert write(link, server) == "linked"
    assert server.sent[1] == (
        "GET",
        f"msdyn_ocfbpages({id_of(PAGE)})?$select=msdyn_ocfbpageid,_msdyn_liveworkstreamid_value",
        {},
    )


# --- secrets ----------------------------------------------------------------------------------


def test_an_update_of_a_secret_writes_it_and_a_lost_one_never_reads_it_back():
    update = only(change(PAGE, Action.UPDATE, PAGE_FIELDS, changed=("accessToken", "name")))
    secrets = {(PAGE, "accessToken"): Sensitive(TOKEN, "env:FB_TOKEN")}
    server = Server(LOST, row(NEWER, msdyn_fbpagename="Contoso Support"))
    assert write(update, server, secrets) == "updated"

    assert server.body(0) == {
        "msdyn_fbpagename": "Contoso Support",
        "msdyn_fbpageaccesstoken": TOKEN,
    }
    assert server.sent[1][1] == (
        f"msdyn_ocfbpages({id_of(PAGE)})?$select=msdyn_ocfbpageid,msdyn_fbpagename"
    )


def test_an_update_that_leaves_the_secret_alone_does_not_send_it():
    update = only(change(PAGE, Action.UPDATE, PAGE_FIELDS, changed=("name",)))
    secrets = {(PAGE, "accessToken"): Sensitive(TOKEN, "env:FB_TOKEN")}
    server = Server(ok())
    write(update, server, secrets)
    assert server.body() == {"msdyn_fbpagename": "Contoso Support"}


def test_a_secret_the_plan_clears_is_written_as_null():
    update = only(
        change(ACCOUNT, Action.UPDATE, {"applicationSecret": None}, changed=("applicationSecret",))
    )
    server = Server(ok())
    write(update, server, {})
    assert server.body() == {"msdyn_fbapplicationsecret": None}


def test_secrets_travel_only_in_the_body_of_the_writes_that_need_them():
    account = change(
        ACCOUNT,
        Action.UPDATE,
        {"displayName": "Contoso", "applicationId": "1", "applicationSecret": None},
        changed=("displayName",),
    )
    steps = [*steps_of(account), *page_chain()]
    secrets = {
        (PAGE, "accessToken"): Sensitive(TOKEN, "env:FB_TOKEN"),
        (ACCOUNT, "applicationSecret"): Sensitive(APP_SECRET, "env:FB_SECRET"),
    }
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return ok()

    async def work(client: DataverseClient):
        return await evaluate(steps, Writer(client, resolver(), secrets))

    results = asyncio.run(_client_run(handler, work))  # type: ignore[arg-type]

    assert [r.outcome for r in results] == [Outcome.APPLIED] * len(steps)
    carrying = [
        (r.method, r.url.path.rsplit("/", 1)[1])
        for r in requests
        if TOKEN.encode() in r.content or APP_SECRET.encode() in r.content
    ]
    assert carrying == [("PATCH", f"msdyn_ocfbpages({id_of(PAGE)})")]
    assert sum(1 for r in requests if "msdyn_ocfbpages" in str(r.url)) == 2  # create + link
    for request in requests:
        shown = [str(request.url), *request.headers.values()]
        assert not [text for text in shown if TOKEN in text or APP_SECRET in text]
        assert APP_SECRET.encode() not in request.content


# --- delete -----------------------------------------------------------------------------------


def test_a_delete_carries_the_plan_etag():
    server = Server(ok())
    assert write(delete_queue(), server) == "deleted"
    assert server.sent == [("DELETE", QUEUE_PATH, {"If-Match": ETAG})]
    assert server.requests[0].content == b""


def test_a_delete_without_an_etag_is_unconditional():
    server = Server(ok())
    write(delete_queue(etag=None), server)
    assert server.sent == [("DELETE", QUEUE_PATH, {})]


def test_a_delete_of_a_record_already_gone_is_done():
    assert write(delete_queue(), Server(missing())) == "already gone"


def test_a_delete_of_a_changed_record_is_stale():
    failure = fails(delete_queue(), Server(stale()), StaleStep)
    assert str(failure) == f"{QUEUE} changed in the target since the plan"


def test_a_lost_delete_of_a_record_now_gone_is_done():
    server = Server(LOST, missing())
    assert write(delete_queue(), server) == "deleted"
    assert server.sent[1] == ("GET", f"{QUEUE_PATH}?$select=queueid", {})


def test_a_lost_delete_of_a_record_changed_since_is_stale():
    fails(delete_queue(), Server(LOST, row(NEWER)), StaleStep)


def test_a_lost_delete_of_an_untouched_record_is_sent_again():
    server = Server(LOST, row(ETAG), ok())
    assert write(delete_queue(), server) == "deleted"
    assert [s[:2] for s in server.sent] == [
        ("DELETE", QUEUE_PATH),
        ("GET", f"{QUEUE_PATH}?$select=queueid"),
        ("DELETE", QUEUE_PATH),
    ]
    assert server.sent[2][2] == {"If-Match": ETAG}


def test_a_lost_unconditional_delete_of_a_record_still_there_is_sent_again():
    server = Server(LOST, row(NEWER), ok())
    assert write(delete_queue(etag=None), server) == "deleted"


def test_a_delete_that_never_gets_an_answer_fails_after_every_attempt():
    server = Server(*[LOST, row()] * ATTEMPTS)
    failure = fails(delete_queue(), server)
    assert str(failure) == f"{QUEUE}: no answer to the delete after {ATTEMPTS} attempts"
