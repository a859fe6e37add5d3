"""Many-to-many relationships (queue membership): associate and disassociate with $ref, read
with $expand, in $batch change sets and on delete; and the systemuser table they link to."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from reconciler.dataverse.tables import QUEUE_MEMBERSHIP, TABLES
from reconciler.emulator.faults import (
    DUPLICATE_RECORD,
    INVALID_ARGUMENT,
    NOT_FOUND,
    PAYLOAD_ERROR,
    QUERY_ERROR,
    RESOURCE_NOT_FOUND,
    VALIDATION,
)

BASE = "http://org.local/api/data/v9.2/"
NAV = "queuemembership_association"
MISSING = "00000000-0000-0000-0000-00000000abcd"
CRLF = "\r\n"


def user(org, login: str, first: str | None = "Ada", last: str | None = "Lovelace") -> str:
    body: dict[str, Any] = {"domainname": login}
    if first is not None:
        body["firstname"] = first
    if last is not None:
        body["lastname"] = last
    return org.create("systemusers", body)


def associate(org, entity_set: str, record_id: str, url: str):
    return org.post(f"{entity_set}({record_id})/{NAV}/$ref", {"@odata.id": url})


def members(org, queue: str, select: str = "systemuserid") -> list[str]:
    row = org.get(f"queues({queue})", params={"$expand": f"{NAV}($select={select})"}).json()
    return [m["systemuserid"] for m in row[NAV]]


def queues_of(org, user_id: str) -> list[str]:
    row = org.get(f"systemusers({user_id})", params={"$expand": f"{NAV}($select=name)"}).json()
    return [q["queueid"] for q in row[NAV]]


@pytest.fixture
def team(org) -> tuple[str, str, str]:
    """A queue and two users, not yet associated."""
    return org.queue("Support"), user(org, "ada@contoso.example"), user(org, "alan@contoso.example")


# -- systemuser ----------------------------------------------------------------------------
def test_users_are_created_with_post_and_get_a_full_name(org):
    user_id = user(org, "ada@contoso.example", "Ada", "Lovelace")

    row = org.read("systemusers", user_id)
    assert row["domainname"] == "ada@contoso.example"
    assert row["fullname"] == "Ada Lovelace"
    assert row["isdisabled"] is False


def test_full_name_follows_first_and_last_name_on_update(org):
    user_id = user(org, "ada@contoso.example", "Ada", "Lovelace")

    assert org.patch(f"systemusers({user_id})", {"lastname": "Byron"}).status_code == 204
    assert org.read("systemusers", user_id)["fullname"] == "Ada Byron"
    assert org.patch(f"systemusers({user_id})", {"firstname": None}).status_code == 204
    assert org.read("systemusers", user_id)["fullname"] == "Byron"


def test_full_name_of_a_user_with_one_name(org):
    assert org.read("systemusers", user(org, "mono@x.example", None, "Mono"))["fullname"] == "Mono"
    assert org.read("systemusers", user(org, "none@x.example", None, None))["fullname"] is None


def test_full_name_is_read_only(org):
    response = org.post("systemusers", {"domainname": "a@x.example", "fullname": "Someone"})

    assert org.error_of(response) == (400, PAYLOAD_ERROR)
    assert "fullname" in response.json()["error"]["message"]


@pytest.mark.parametrize("body", [{"firstname": "Ada"}, {"domainname": None}, {"domainname": ""}])
def test_domain_name_is_required_on_create(org, body):
    response = org.post("systemusers", body)

    assert org.error_of(response) == (400, INVALID_ARGUMENT)
    assert "'domainname'" in response.json()["error"]["message"]
    assert org.rows("systemusers", **{"$filter": "firstname eq 'Ada'"}) == []


def test_domain_name_is_required_on_upsert_and_cannot_be_cleared(org):
    new = org.new_id()
    assert org.error_of(org.patch(f"systemusers({new})", {"firstname": "Ada"}))[0] == 400
    assert org.missing("systemusers", new)

    user_id = user(org, "ada@contoso.example")
    response = org.patch(f"systemusers({user_id})", {"domainname": None})
    assert org.error_of(response) == (400, INVALID_ARGUMENT)
    assert org.read("systemusers", user_id)["domainname"] == "ada@contoso.example"


def test_the_signed_in_user_is_a_system_user_row(org):
    user_id = org.get("WhoAmI").json()["UserId"]

    row = org.read("systemusers", user_id)
    assert row["domainname"] == "reconciler@emulator.invalid"
    assert row["fullname"] == "Reconciler Emulator"
    assert org.error_of(org.delete(f"systemusers({user_id})")) == (400, INVALID_ARGUMENT)


# -- associate -----------------------------------------------------------------------------
def test_associate_from_the_queue_with_an_absolute_url(org, team):
    queue, ada, alan = team

    response = associate(org, "queues", queue, f"{BASE}systemusers({ada})")

    assert response.status_code == 204
    assert response.content == b""
    assert members(org, queue) == [ada]
    assert queues_of(org, ada) == [queue]
    assert queues_of(org, alan) == []


@pytest.mark.parametrize("prefix", ["", "/", "/api/data/v9.2/"])
def test_associate_from_the_user_with_a_relative_url(org, team, prefix):
    queue, ada, alan = team

    assert associate(org, "systemusers", ada, f"{prefix}queues({queue})").status_code == 204
    assert associate(org, "systemusers", alan, f"{prefix}queues({queue})").status_code == 204

    assert members(org, queue) == sorted([ada, alan])
    assert queues_of(org, alan) == [queue]


def test_associating_an_associated_pair_again_is_a_duplicate(org, team):
    queue, ada, _ = team
    assert associate(org, "queues", queue, f"{BASE}systemusers({ada})").status_code == 204

    again = associate(org, "queues", queue, f"{BASE}systemusers({ada})")
    other_side = associate(org, "systemusers", ada, f"queues({queue})")

    for response in (again, other_side):
        assert org.error_of(response) == (412, DUPLICATE_RECORD)
        assert response.json()["error"]["message"] == "Cannot insert duplicate key."
    assert members(org, queue) == [ada]


def test_associate_with_a_missing_record_is_not_found(org, team):
    queue, ada, _ = team

    missing_user = associate(org, "queues", queue, f"{BASE}systemusers({MISSING})")
    missing_queue = associate(org, "queues", MISSING, f"{BASE}systemusers({ada})")

    assert org.error_of(missing_user) == (404, NOT_FOUND)
    assert "systemuser" in missing_user.json()["error"]["message"]
    assert org.error_of(missing_queue) == (404, NOT_FOUND)
    assert "queue" in missing_queue.json()["error"]["message"]
    assert members(org, queue) == []


@pytest.mark.parametrize(
    "body",
    [
        {"@odata.id": f"{BASE}queues({MISSING})"},  # the same side, not the other one
        {"@odata.id": f"{BASE}msdyn_liveworkstreams({MISSING})"},
        {"@odata.id": "systemusers(not-a-guid)"},
        {"@odata.id": 7},
        {"id": f"{BASE}systemusers({MISSING})"},
        ["systemusers"],
    ],
)
def test_associate_needs_the_url_of_a_record_of_the_other_table(org, team, body):
    queue = team[0]

    response = org.post(f"queues({queue})/{NAV}/$ref", body)

    assert org.error_of(response) == (400, PAYLOAD_ERROR)


def test_ref_of_an_unknown_or_single_valued_navigation_property(org, team):
    queue, ada, _ = team
    workstream = org.workstream()

    unknown = org.post(f"queues({queue})/nothing/$ref", {"@odata.id": f"systemusers({ada})"})
    lookup = org.post(
        f"msdyn_liveworkstreams({workstream})/msdyn_defaultqueue/$ref",
        {"@odata.id": f"queues({queue})"},
    )
    other_table = org.post(
        f"msdyn_liveworkstreams({workstream})/{NAV}/$ref", {"@odata.id": f"systemusers({ada})"}
    )

    assert org.error_of(unknown) == (404, RESOURCE_NOT_FOUND)
    assert org.error_of(lookup) == (400, QUERY_ERROR)
    assert org.error_of(other_table) == (404, RESOURCE_NOT_FOUND)
    assert org.error_of(org.post(f"nothings({queue})/{NAV}/$ref", {}))[0] == 404
    assert org.error_of(org.post(f"queues(x)/{NAV}/$ref", {}))[0] == 400


def test_methods_a_ref_does_not_take(org, team):
    queue, ada, _ = team
    body = {"@odata.id": f"systemusers({ada})"}

    assert org.error_of(org.post(f"queues({queue})/{NAV}({ada})/$ref", body))[0] == 405
    assert org.error_of(org.get(f"queues({queue})/{NAV}/$ref"))[0] == 405
    assert org.error_of(org.patch(f"queues({queue})/{NAV}/$ref", body))[0] == 405


# -- disassociate --------------------------------------------------------------------------
@pytest.fixture
def both(org, team) -> tuple[str, str, str]:
    queue, ada, alan = team
    for person in (ada, alan):
        assert associate(org, "queues", queue, f"{BASE}systemusers({person})").status_code == 204
    return team


def test_disassociate_with_the_other_key_in_the_url(org, both):
    queue, ada, alan = both

    response = org.delete(f"queues({queue})/{NAV}({ada})/$ref")

    assert response.status_code == 204
    assert response.content == b""
    assert members(org, queue) == [alan]
    assert queues_of(org, ada) == []


def test_disassociate_with_id_from_the_other_side(org, both):
    queue, ada, alan = both

    absolute = org.delete(
        f"systemusers({alan})/{NAV}/$ref", params={"$id": f"{BASE}queues({queue})"}
    )
    relative = org.delete(f"queues({queue})/{NAV}/$ref", params={"$id": f"systemusers({ada})"})

    assert (absolute.status_code, relative.status_code) == (204, 204)
    assert members(org, queue) == []


def test_disassociating_a_pair_that_is_not_associated_answers_204(org, team):
    queue, ada, _ = team

    assert org.delete(f"queues({queue})/{NAV}({ada})/$ref").status_code == 204


def test_disassociate_with_a_missing_record_is_not_found(org, both):
    queue, ada, _ = both

    assert org.error_of(org.delete(f"queues({queue})/{NAV}({MISSING})/$ref")) == (404, NOT_FOUND)
    assert org.error_of(org.delete(f"queues({MISSING})/{NAV}({ada})/$ref")) == (404, NOT_FOUND)
    missing_id = org.delete(
        f"queues({queue})/{NAV}/$ref", params={"$id": f"systemusers({MISSING})"}
    )
    assert org.error_of(missing_id) == (404, NOT_FOUND)
    assert len(members(org, queue)) == 2


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (f"queues({{queue}})/{NAV}/$ref", {}),
        (f"queues({{queue}})/{NAV}/$ref", {"$id": f"queues({MISSING})"}),
        (f"queues({{queue}})/{NAV}({MISSING})/$ref", {"$id": f"systemusers({MISSING})"}),
        (f"queues({{queue}})/{NAV}/$ref", {"$select": "name"}),
        (f"queues({{queue}})/{NAV}(bad)/$ref", {}),
    ],
)
def test_disassociate_needs_exactly_one_other_record(org, both, url, params):
    queue = both[0]

    response = org.delete(url.format(queue=queue), params=params)

    assert org.error_of(response) == (400, QUERY_ERROR)
    assert len(members(org, queue)) == 2


# -- deleting a record ---------------------------------------------------------------------
def test_deleting_a_queue_removes_its_pairs(org, both):
    queue, ada, alan = both
    other = org.queue("Sales")
    assert associate(org, "systemusers", ada, f"queues({other})").status_code == 204

    assert org.delete(f"queues({queue})").status_code == 204

    assert queues_of(org, ada) == [other]
    assert queues_of(org, alan) == []
    org.create("queues", {"queueid": queue, "name": "Support again"})  # the same id, anew
    assert members(org, queue) == []


def test_deleting_a_user_removes_its_pairs(org, both):
    queue, ada, alan = both

    assert org.delete(f"systemusers({ada})").status_code == 204

    assert members(org, queue) == [alan]


# -- $expand -------------------------------------------------------------------------------
def test_expand_a_collection_with_select(org, both):
    queue, ada, alan = both
    empty = org.queue("Empty")

    rows = org.rows(
        "queues",
        **{
            "$select": "name",
            "$filter": f"queueid eq {queue} or queueid eq {empty}",
            "$orderby": "name",
            "$expand": f"{NAV}($select=domainname,fullname)",
        },
    )

    assert [r["name"] for r in rows] == ["Empty", "Support"]
    assert rows[0][NAV] == []
    expanded = rows[1][NAV]
    assert [m["systemuserid"] for m in expanded] == sorted([ada, alan])
    for member in expanded:
        assert set(member) == {"@odata.etag", "systemuserid", "domainname", "fullname"}
        assert (
            member["@odata.etag"] == org.read("systemusers", member["systemuserid"])["@odata.etag"]
        )
    assert {m["domainname"] for m in expanded} == {"ada@contoso.example", "alan@contoso.example"}


def test_expand_without_select_gives_whole_rows(org, both):
    queue, ada, _ = both

    row = org.get(f"queues({queue})", params={"$select": "name", "$expand": NAV}).json()

    read = org.read("systemusers", ada)
    del read["@odata.context"]
    assert set(row) == {"@odata.context", "@odata.etag", "queueid", "name", NAV}
    assert read in row[NAV]
    assert row["@odata.context"] == f"{BASE}$metadata#queues/$entity"


def test_expand_from_the_user_side(org, both):
    queue, ada, _ = both
    other = org.queue("Sales")
    assert associate(org, "systemusers", ada, f"queues({other})").status_code == 204

    rows = org.rows(
        "systemusers",
        **{"$filter": f"systemuserid eq {ada}", "$expand": f"{NAV}($select=name)"},
    )

    assert [q["queueid"] for q in rows[0][NAV]] == sorted([queue, other])
    assert {q["name"] for q in rows[0][NAV]} == {"Support", "Sales"}


def test_paging_applies_to_the_top_level_rows_and_the_next_link_keeps_the_expand(org, team):
    _, ada, alan = team
    queues = [org.queue(f"Paged {n}") for n in range(3)]
    for queue in queues:
        for person in (ada, alan):
            associate(org, "queues", queue, f"{BASE}systemusers({person})")
    expand = f"{NAV}($select=domainname)"

    seen: dict[str, list[str]] = {}
    url: str | None = "queues"
    params: dict[str, str] | None = {
        "$select": "name",
        "$filter": "startswith(name,'Paged')",
        "$expand": expand,
    }
    while url is not None:
        response = org.get(url, params=params, headers={"Prefer": "odata.maxpagesize=1"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["value"]) == 1
        for row in body["value"]:
            seen[row["queueid"]] = [m["systemuserid"] for m in row[NAV]]  # both: not paged
        url, params = body.get("@odata.nextLink"), None
        if url is not None:
            assert parse_qs(urlsplit(url).query)["$expand"] == [expand]

    assert seen == {queue: sorted([ada, alan]) for queue in queues}


@pytest.mark.parametrize(
    ("expand", "status", "code", "message"),
    [
        (
            f"{NAV}($select=fullname;$expand=createdby)",
            400,
            QUERY_ERROR,
            f"The navigation property '{NAV}' cannot be expanded. Only many-to-one "
            "relationships are supported for nested expansion.",
        ),
        (
            f"{NAV}/$ref",
            400,
            QUERY_ERROR,
            "Expand with $ref is only supported on lookup type navigation property.",
        ),
        (
            "nothing",
            400,
            VALIDATION,
            "Could not find a property named 'nothing' on type 'Microsoft.Dynamics.CRM.queue'.",
        ),
        (
            f"{NAV}($select=nothing)",
            400,
            VALIDATION,
            "Could not find a property named 'nothing' on type "
            "'Microsoft.Dynamics.CRM.systemuser'.",
        ),
        (f"{NAV}($filter=isdisabled eq false)", 400, QUERY_ERROR, None),
        (f"{NAV}($top=1)", 400, QUERY_ERROR, None),
        (f"{NAV}($select=fullname;$select=domainname)", 400, QUERY_ERROR, None),
        (f"{NAV}(select=fullname)", 400, QUERY_ERROR, None),
        (f"{NAV},{NAV}($select=fullname)", 400, QUERY_ERROR, None),
        (f"{NAV}($select=fullname", 400, QUERY_ERROR, None),
        (f"{NAV})", 400, QUERY_ERROR, None),
        ("", 400, QUERY_ERROR, None),
        (f"{NAV}/x", 400, QUERY_ERROR, None),
    ],
)
def test_expands_the_emulator_refuses(org, team, expand, status, code, message):
    queue = team[0]

    for response in (
        org.get("queues", params={"$expand": expand}),
        org.get(f"queues({queue})", params={"$expand": expand}),
    ):
        assert org.error_of(response) == (status, code)
        if message is not None:
            assert response.json()["error"]["message"] == message


def test_separators_inside_string_literals_do_not_split_an_expand(org):
    quoted = org.get("queues", params={"$expand": f"{NAV}($filter=fullname eq 'a;b,(')"})
    unclosed = org.get("queues", params={"$expand": f"{NAV}($filter=fullname eq 'a)"})

    assert org.error_of(quoted) == (400, QUERY_ERROR)
    assert "$filter inside $expand" in quoted.json()["error"]["message"]
    assert org.error_of(unclosed) == (400, QUERY_ERROR)
    assert "unbalanced" in unclosed.json()["error"]["message"]


def test_an_expanded_collection_holds_at_most_the_limit_of_rows(org, both):
    queue, ada, alan = both
    store = org.app.store
    table = TABLES["queue"]

    related = store.related(QUEUE_MEMBERSHIP, "queueid", TABLES["systemuser"], [queue], limit=1)

    assert [r["systemuserid"] for r in related[queue]] == [min(ada, alan)]
    assert store.related(QUEUE_MEMBERSHIP, "systemuserid", table, [ada], limit=5) == {
        ada: [store.get(table, queue)]
    }


def test_expanding_a_single_valued_navigation_property_is_refused(org):
    response = org.get("msdyn_liveworkstreams", params={"$expand": "msdyn_defaultqueue"})

    assert org.error_of(response) == (400, QUERY_ERROR)
    assert "_msdyn_defaultqueue_value" in response.json()["error"]["message"]


def test_metadata_names_the_navigation_property_on_both_tables(org):
    text = org.get("$metadata").text

    assert f'<NavigationProperty Name="{NAV}" Type="Collection(mscrm.systemuser)"/>' in text
    assert f'<NavigationProperty Name="{NAV}" Type="Collection(mscrm.queue)"/>' in text


# -- $batch --------------------------------------------------------------------------------
def _part(method: str, url: str, body: str | None = None) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary", ""]
    lines.append(f"{method} {BASE}{url} HTTP/1.1")
    lines += ["Content-Type: application/json", "", body] if body else ["", ""]
    return CRLF.join(lines)


def _batch(org, parts: list[str]) -> list[int]:
    """Send ``parts`` as one change set; the statuses of the answers."""
    inner = "".join(f"--changeset_C{CRLF}{p}{CRLF}" for p in parts) + f"--changeset_C--{CRLF}"
    content = (
        f"--batch_B{CRLF}Content-Type: multipart/mixed; boundary=changeset_C{CRLF}{CRLF}"
        f"{inner}--batch_B--{CRLF}"
    )
    response = org.request(
        "POST",
        "$batch",
        content=content.encode(),
        headers={"Content-Type": "multipart/mixed; boundary=batch_B"},
    )
    assert response.status_code == 200, response.text
    return [int(s) for s in re.findall(r"^HTTP/1\.1 (\d{3}) ", response.text, re.MULTILINE)]


def test_associate_and_disassociate_in_a_change_set(org, team):
    queue, ada, alan = team

    statuses = _batch(
        org,
        [
            _part(
                "POST",
                f"queues({queue})/{NAV}/$ref",
                f'{{"@odata.id": "{BASE}systemusers({ada})"}}',
            ),
            _part("POST", f"systemusers({alan})/{NAV}/$ref", f'{{"@odata.id": "queues({queue})"}}'),
        ],
    )
    assert statuses == [204, 204]
    assert members(org, queue) == sorted([ada, alan])

    statuses = _batch(
        org,
        [
            _part("DELETE", f"queues({queue})/{NAV}({ada})/$ref"),
            _part("DELETE", f"queues({queue})/{NAV}/$ref?$id={BASE}systemusers({alan})"),
        ],
    )
    assert statuses == [204, 204]
    assert members(org, queue) == []


def test_a_failed_change_set_associates_nothing(org, team):
    queue, ada, _ = team

    statuses = _batch(
        org,
        [
            _part("POST", f"queues({queue})/{NAV}/$ref", f'{{"@odata.id": "systemusers({ada})"}}'),
            _part("POST", f"queues({queue})/{NAV}/$ref", f'{{"@odata.id": "systemusers({ada})"}}'),
        ],
    )

    assert statuses == [412]
    assert members(org, queue) == []
