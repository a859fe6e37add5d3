"""Writes: create, ETags, PATCH (upsert and conditional), DELETE with referential integrity,
@odata.bind, and the outputs the service generates on save."""

from __future__ import annotations

import re

import pytest

from reconciler.dataverse.tables import TABLES
from reconciler.emulator.faults import (
    DUPLICATE_RECORD,
    INVALID_ARGUMENT,
    LENGTH_EXCEEDED,
    NOT_FOUND,
    OUT_OF_RANGE,
    PAYLOAD_ERROR,
    RESTRICTED_DELETE,
    VALIDATION,
    VERSION_MISMATCH,
)

MESSAGING, RECORD, VOICE = 192350000, 192350001, 192350002
FACEBOOK, GBM, PUSH, PICK = 192330000, 192450001, 192350000, 192350001
ETAG = re.compile(r'^W/"(\d+)"$')
BASE = "http://org.local/api/data/v9.2/"
MISSING = "00000000-0000-0000-0000-00000000abcd"


def version(etag: str) -> int:
    match = ETAG.match(etag)
    assert match is not None, etag
    return int(match[1])


# -- create --------------------------------------------------------------------------------
def test_create_answers_204_with_the_entity_id(org):
    response = org.post("queues", {"name": "Support", "msdyn_queuetype": MESSAGING})

    assert response.status_code == 204
    assert response.content == b""
    entity_set, record_id = org.entity_id(response)
    assert entity_set == "queues"
    row = org.read("queues", record_id)
    assert row["name"] == "Support"
    assert row["statecode"] == 0
    assert row["statuscode"] == 1
    assert row["queueviewtype"] == 0  # the column default
    assert row["createdon"] == row["modifiedon"]


@pytest.mark.parametrize(
    "given", ["6f9619ff-8b86-d011-b42d-00c04fc964ff", "6F9619FF-8B86-D011-B42D-00C04FC964FF"]
)
def test_create_honours_a_client_chosen_key(org, given):
    response = org.post("queues", {"queueid": given, "name": "Chosen"})

    assert response.status_code == 204
    assert org.entity_id(response) == ("queues", given.lower())
    assert org.read("queues", given.lower())["name"] == "Chosen"


def test_create_with_return_representation_answers_201_with_the_row(org):
    response = org.post(
        "queues",
        {"name": "Shown", "msdyn_priority": 2},
        headers={"Prefer": "return=representation"},
    )

    assert response.status_code == 201
    body = response.json()
    _, record_id = org.entity_id(response)
    assert body["queueid"] == record_id
    assert body["name"] == "Shown"
    assert body["msdyn_priority"] == 2
    assert body["@odata.context"] == f"{BASE}$metadata#queues/$entity"
    assert response.headers["ETag"] == body["@odata.etag"]
    assert response.headers["Preference-Applied"] == "return=representation"
    assert org.read("queues", record_id)["@odata.etag"] == body["@odata.etag"]


def test_create_with_return_representation_honours_select(org):
    response = org.post(
        "queues?$select=name",
        {"name": "Shown"},
        headers={"Prefer": "return=representation"},
    )

    assert response.status_code == 201
    assert set(response.json()) == {"@odata.context", "@odata.etag", "queueid", "name"}


def test_create_with_an_existing_key_is_412_duplicate(org):
    queue = org.queue("Original")

    response = org.post("queues", {"queueid": queue, "name": "Copy"})

    assert org.error_of(response) == (412, DUPLICATE_RECORD)
    assert org.read("queues", queue)["name"] == "Original"


def count_queues(org) -> int:
    return len(org.rows("queues", **{"$select": "name"}))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"name": "q", "nosuch": 1}, VALIDATION, id="unknown-column"),
        pytest.param({"name": "q", "Name": "q"}, VALIDATION, id="column-names-are-case-sensitive"),
        pytest.param({"name": 5}, PAYLOAD_ERROR, id="number-for-string"),
        pytest.param({"msdyn_priority": "1"}, PAYLOAD_ERROR, id="string-for-int"),
        pytest.param({"msdyn_priority": 1.5}, PAYLOAD_ERROR, id="decimal-for-int"),
        pytest.param({"msdyn_priority": True}, PAYLOAD_ERROR, id="boolean-for-int"),
        pytest.param({"msdyn_isomnichannelqueue": "true"}, PAYLOAD_ERROR, id="string-for-boolean"),
        pytest.param({"msdyn_isomnichannelqueue": 1}, PAYLOAD_ERROR, id="number-for-boolean"),
        pytest.param({"msdyn_queuetype": "192350000"}, PAYLOAD_ERROR, id="string-for-choice"),
        pytest.param({"name": ["q"]}, PAYLOAD_ERROR, id="array-for-string"),
        pytest.param({"name": {"value": "q"}}, PAYLOAD_ERROR, id="object-for-string"),
        pytest.param({"queueid": "not-a-guid"}, PAYLOAD_ERROR, id="bad-key"),
        pytest.param({"queueid": 12}, PAYLOAD_ERROR, id="number-key"),
        pytest.param({"msdyn_queuetype": 123}, OUT_OF_RANGE, id="unknown-option"),
        pytest.param({"queueviewtype": 2}, OUT_OF_RANGE, id="unknown-option-2"),
        pytest.param({"msdyn_priority": 0}, OUT_OF_RANGE, id="below-minimum"),
        pytest.param({"statecode": 0}, INVALID_ARGUMENT, id="statecode-on-create"),
        pytest.param(
            {"statecode": 1, "statuscode": 2}, INVALID_ARGUMENT, id="state-pair-on-create"
        ),
        pytest.param({"statuscode": 2}, OUT_OF_RANGE, id="inactive-status-on-create"),
        pytest.param({"msdyn_isdefaultqueue": False}, PAYLOAD_ERROR, id="output-isdefaultqueue"),
        pytest.param({"versionnumber": 1}, PAYLOAD_ERROR, id="output-versionnumber"),
        pytest.param({"createdon": "2024-01-01T00:00:00Z"}, PAYLOAD_ERROR, id="output-createdon"),
    ],
)
def test_create_refuses_a_bad_body_and_writes_nothing(org, body, code):
    before = count_queues(org)

    response = org.post("queues", body)

    assert org.error_of(response) == (400, code)
    assert count_queues(org) == before


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"_msdyn_defaultqueue_value": MISSING}, id="underscore-value"),
        pytest.param({"msdyn_defaultqueue": MISSING}, id="lookup-column-name"),
    ],
)
def test_a_lookup_must_be_written_with_odata_bind(org, body):
    response = org.post("msdyn_liveworkstreams", {"msdyn_name": "WS", **body})

    assert org.error_of(response) == (400, VALIDATION)
    assert org.rows("msdyn_liveworkstreams") == []


def test_an_unknown_property_in_a_body_is_answered_as_the_web_api_does(org):
    queue = org.queue()

    created = org.post("queues", {"name": "q", "Name": "q"})
    updated = org.patch(f"queues({queue})", {"nosuch": 1})

    # Microsoft's Web API troubleshooting page: 400, code 0x0, "An error occurred while
    # validating input parameters: Microsoft.Crm.CrmException: Invalid property 'Name' was
    # found in entity 'Microsoft.Dynamics.CRM.account'. ---> …"
    for response, name in ((created, "Name"), (updated, "nosuch")):
        assert org.error_of(response) == (400, VALIDATION)
        assert response.json()["error"]["message"].startswith(
            "An error occurred while validating input parameters: Microsoft.Crm.CrmException: "
            f"Invalid property '{name}' was found in entity 'Microsoft.Dynamics.CRM.queue'."
        )


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", "application/json"),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"text"', "application/json"),
        (b"\xff\xfe", "application/json"),
    ],
)
def test_create_refuses_a_body_that_is_not_a_json_object(org, content, content_type):
    response = org.request(
        "POST", "queues", content=content, headers={"Content-Type": content_type}
    )

    assert org.error_of(response) == (400, PAYLOAD_ERROR)


@pytest.mark.parametrize(
    ("entity_set", "column", "extra"),
    [
        ("queues", "name", {}),
        ("queues", "description", {}),
        ("msdyn_ocfbapplications", "msdyn_name", {}),
        ("msdyn_ocfbpages", "msdyn_fbpageaccesstoken", {}),
        ("msdyn_liveworkstreams", "msdyn_name", {}),
    ],
)
def test_a_string_longer_than_the_column_is_refused(org, entity_set, column, extra):
    table = next(t for t in TABLES.values() if t.entity_set == entity_set)
    limit = table.columns[column].max_length
    assert limit is not None

    too_long = org.post(entity_set, {**extra, column: "x" * (limit + 1)})
    exact = org.post(entity_set, {**extra, column: "é" * limit})

    assert org.error_of(too_long) == (400, LENGTH_EXCEEDED)
    assert str(limit) in too_long.json()["error"]["message"]
    assert exact.status_code == 204
    _, record_id = org.entity_id(exact)
    assert org.read(entity_set, record_id)[column] == "é" * limit


def test_multi_select_choices_are_checked_per_value(org):
    good = org.post("msdyn_liveworkstreams", {"msdyn_allowedpresences": "192360000,192360003"})
    bad = org.post("msdyn_liveworkstreams", {"msdyn_allowedpresences": "192360000,7"})
    junk = org.post("msdyn_liveworkstreams", {"msdyn_allowedpresences": "available"})
    number = org.post("msdyn_liveworkstreams", {"msdyn_allowedpresences": 192360000})

    assert good.status_code == 204
    _, record_id = org.entity_id(good)
    assert org.read("msdyn_liveworkstreams", record_id)["msdyn_allowedpresences"] == (
        "192360000,192360003"
    )
    assert org.error_of(bad) == (400, OUT_OF_RANGE)
    assert org.error_of(junk) == (400, OUT_OF_RANGE)
    assert org.error_of(number) == (400, PAYLOAD_ERROR)


@pytest.mark.parametrize("value", [2**31, 10**20])
def test_an_integer_outside_int32_is_refused(org, value):
    response = org.post("queues", {"name": "Big", "msdyn_priority": value})

    assert org.error_of(response) == (400, PAYLOAD_ERROR)


@pytest.mark.parametrize(
    ("entity_set", "column"),
    [
        ("msdyn_ocfbapplications", "msdyn_fbcallbackuri"),
        ("msdyn_ocfbapplications", "msdyn_fbverifytoken"),
        (
            "msdyn_ocgooglebusinessmessagespartneraccounts",
            "msdyn_googlebusinessmessagescallbackurl",
        ),
    ],
)
def test_output_columns_are_refused_on_create_and_update(org, entity_set, column):
    created = org.post(entity_set, {"msdyn_name": "Acct", column: "https://example.invalid/x"})
    record_id = org.create(entity_set, {"msdyn_name": "Acct"})
    before = org.read(entity_set, record_id)

    updated = org.patch(f"{entity_set}({record_id})", {column: "https://example.invalid/x"})

    assert org.error_of(created) == (400, PAYLOAD_ERROR)
    assert org.error_of(updated) == (400, PAYLOAD_ERROR)
    assert org.read(entity_set, record_id) == before
    assert len(org.rows(entity_set)) == 1


def test_instance_annotations_in_a_body_are_ignored(org):
    queue = org.create("queues", {"@odata.type": "Microsoft.Dynamics.CRM.queue", "name": "Typed"})

    assert org.read("queues", queue)["name"] == "Typed"


# -- ETags ---------------------------------------------------------------------------------
def test_etag_changes_on_every_write_even_with_the_same_values(org):
    queue = org.queue("Etag", msdyn_priority=1)
    first = org.read("queues", queue)["@odata.etag"]

    assert org.patch(f"queues({queue})", {"msdyn_priority": 1}).status_code == 204
    second = org.read("queues", queue)["@odata.etag"]
    assert org.patch(f"queues({queue})", {}).status_code == 204
    third = org.read("queues", queue)["@odata.etag"]
    assert org.patch(f"queues({queue})", {"msdyn_priority": 2}).status_code == 204
    fourth = org.read("queues", queue)["@odata.etag"]

    assert version(first) < version(second) < version(third) < version(fourth)


def test_get_with_the_current_etag_in_if_none_match_is_304(org):
    queue = org.queue()
    etag = org.get(f"queues({queue})").headers["ETag"]

    unchanged = org.get(f"queues({queue})", headers={"If-None-Match": etag})
    org.patch(f"queues({queue})", {"msdyn_priority": 3})
    changed = org.get(f"queues({queue})", headers={"If-None-Match": etag})

    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["ETag"] == etag
    assert changed.status_code == 200
    assert changed.json()["msdyn_priority"] == 3
    assert version(changed.headers["ETag"]) > version(etag)


# -- PATCH ---------------------------------------------------------------------------------
def test_patch_without_conditions_is_an_upsert(org):
    record_id = org.new_id()

    created = org.patch(f"queues({record_id})", {"name": "Upserted", "msdyn_queuetype": VOICE})
    first = org.read("queues", record_id)
    updated = org.patch(f"queues({record_id})", {"name": "Renamed"})
    second = org.read("queues", record_id)

    assert created.status_code == 204
    assert org.entity_id(created) == ("queues", record_id)
    assert first["name"] == "Upserted"
    assert first["msdyn_queuetype"] == VOICE
    assert updated.status_code == 204
    assert org.entity_id(updated) == ("queues", record_id)
    assert second["name"] == "Renamed"
    assert second["msdyn_queuetype"] == VOICE
    assert second["createdon"] == first["createdon"]


def test_patch_create_refuses_statecode_like_post(org):
    record_id = org.new_id()

    response = org.patch(f"queues({record_id})", {"name": "x", "statecode": 1})

    assert org.error_of(response) == (400, INVALID_ARGUMENT)
    assert org.missing("queues", record_id)


def test_patch_with_return_representation_answers_200_with_the_row(org):
    queue = org.queue()

    response = org.patch(
        f"queues({queue})", {"msdyn_priority": 9}, headers={"Prefer": "return=representation"}
    )

    assert response.status_code == 200
    assert response.json()["msdyn_priority"] == 9
    assert response.headers["ETag"] == org.read("queues", queue)["@odata.etag"]


def test_if_match_star_updates_only_an_existing_record(org):
    queue = org.queue("Exists")
    record_id = org.new_id()

    missing = org.patch(f"queues({record_id})", {"name": "New"}, headers={"If-Match": "*"})
    present = org.patch(f"queues({queue})", {"name": "Updated"}, headers={"If-Match": "*"})

    assert org.error_of(missing) == (404, NOT_FOUND)
    assert org.missing("queues", record_id)
    assert present.status_code == 204
    assert org.read("queues", queue)["name"] == "Updated"


def test_if_none_match_star_creates_only_a_missing_record(org):
    queue = org.queue("Exists")
    before = org.read("queues", queue)
    record_id = org.new_id()

    present = org.patch(f"queues({queue})", {"name": "Overwritten"}, headers={"If-None-Match": "*"})
    missing = org.patch(f"queues({record_id})", {"name": "New"}, headers={"If-None-Match": "*"})

    assert org.error_of(present) == (412, DUPLICATE_RECORD)
    assert org.read("queues", queue) == before
    assert missing.status_code == 204
    assert org.read("queues", record_id)["name"] == "New"


def test_if_match_with_a_stale_etag_is_412_and_writes_nothing(org):
    queue = org.queue("Original")
    stale = org.read("queues", queue)["@odata.etag"]
    org.patch(f"queues({queue})", {"msdyn_priority": 1})
    current = org.read("queues", queue)

    refused = org.patch(f"queues({queue})", {"name": "Lost"}, headers={"If-Match": stale})

    assert org.error_of(refused) == (412, VERSION_MISMATCH)
    assert org.read("queues", queue) == current

    accepted = org.patch(
        f"queues({queue})", {"name": "Won"}, headers={"If-Match": current["@odata.etag"]}
    )

    assert accepted.status_code == 204
    after = org.read("queues", queue)
    assert after["name"] == "Won"
    assert version(after["@odata.etag"]) > version(current["@odata.etag"])


def test_if_match_with_an_etag_on_a_missing_record_is_404(org):
    record_id = org.new_id()

    response = org.patch(f"queues({record_id})", {"name": "x"}, headers={"If-Match": 'W/"1"'})

    assert org.error_of(response) == (404, NOT_FOUND)
    assert org.missing("queues", record_id)


@pytest.mark.parametrize(
    ("entity_set", "body", "column", "changed"),
    [
        ("queues", {"name": "Q", "msdyn_queuetype": MESSAGING}, "msdyn_queuetype", RECORD),
        (
            "msdyn_liveworkstreams",
            {"msdyn_name": "W", "msdyn_streamsource": FACEBOOK, "msdyn_workdistributionmode": PUSH},
            "msdyn_workdistributionmode",
            PICK,
        ),
        (
            "msdyn_liveworkstreams",
            {"msdyn_name": "W", "msdyn_streamsource": FACEBOOK, "msdyn_workdistributionmode": PUSH},
            "msdyn_streamsource",
            GBM,
        ),
    ],
)
def test_create_only_columns_refuse_a_change_and_accept_the_same_value(
    org, entity_set, body, column, changed
):
    record_id = org.create(entity_set, body)
    before = org.read(entity_set, record_id)

    refused = org.patch(f"{entity_set}({record_id})", {column: changed})
    assert org.error_of(refused) == (400, INVALID_ARGUMENT)
    assert org.read(entity_set, record_id) == before

    same = org.patch(f"{entity_set}({record_id})", {column: body[column], "statecode": 0})
    assert same.status_code == 204
    assert org.read(entity_set, record_id)[column] == body[column]


@pytest.mark.parametrize(
    ("change", "state", "status"),
    [
        ({"statecode": 1}, 1, 2),
        ({"statecode": 1, "statuscode": 2}, 1, 2),
        ({"statuscode": 2}, 1, 2),
    ],
)
def test_statecode_update_sets_the_matching_statuscode(org, change, state, status):
    queue = org.queue()

    response = org.patch(f"queues({queue})", change)

    assert response.status_code == 204
    row = org.read("queues", queue)
    assert (row["statecode"], row["statuscode"]) == (state, status)
    assert org.patch(f"queues({queue})", {"statecode": 0}).status_code == 204
    row = org.read("queues", queue)
    assert (row["statecode"], row["statuscode"]) == (0, 1)


@pytest.mark.parametrize(
    "change",
    [{"statecode": 1, "statuscode": 1}, {"statecode": 0, "statuscode": 2}, {"statecode": 2}],
)
def test_a_mismatched_state_and_status_is_refused(org, change):
    queue = org.queue()
    before = org.read("queues", queue)

    response = org.patch(f"queues({queue})", change)

    assert org.error_of(response) == (400, OUT_OF_RANGE)
    assert org.read("queues", queue) == before


def test_a_body_key_that_differs_from_the_url_is_refused(org):
    queue, other = org.queue("One"), org.queue("Two")
    record_id = org.new_id()

    update = org.patch(f"queues({queue})", {"queueid": other, "name": "Hijack"})
    create = org.patch(f"queues({record_id})", {"queueid": other, "name": "Hijack"})
    not_a_guid = org.patch(f"queues({queue})", {"queueid": 12, "name": "Hijack"})
    same = org.patch(f"queues({queue})", {"queueid": queue.upper(), "name": "Same"})

    assert org.error_of(update) == (400, INVALID_ARGUMENT)
    assert org.error_of(create) == (400, INVALID_ARGUMENT)
    assert org.error_of(not_a_guid) == (400, PAYLOAD_ERROR)
    assert org.read("queues", other)["name"] == "Two"
    assert org.missing("queues", record_id)
    assert same.status_code == 204
    assert org.read("queues", queue)["name"] == "Same"


# -- DELETE --------------------------------------------------------------------------------
def test_delete_answers_204_then_404(org):
    queue = org.queue()

    first = org.delete(f"queues({queue})")
    second = org.delete(f"queues({queue})")

    assert first.status_code == 204
    assert first.content == b""
    assert org.missing("queues", queue)
    assert org.error_of(second) == (404, NOT_FOUND)


def test_delete_with_a_stale_if_match_is_412_and_deletes_nothing(org):
    queue = org.queue()
    stale = org.read("queues", queue)["@odata.etag"]
    org.patch(f"queues({queue})", {"msdyn_priority": 1})
    current = org.read("queues", queue)["@odata.etag"]

    refused = org.delete(f"queues({queue})", headers={"If-Match": stale})
    assert org.error_of(refused) == (412, VERSION_MISMATCH)
    assert not org.missing("queues", queue)

    accepted = org.delete(f"queues({queue})", headers={"If-Match": current})
    assert accepted.status_code == 204
    assert org.missing("queues", queue)


def facebook_page(org, application: str | None, page_id: str, **extra) -> str:
    body = {"msdyn_fbpagename": f"Page {page_id}", "msdyn_fbpageid": page_id, **extra}
    if application is not None:
        body["msdyn_ocfbapplicationid@odata.bind"] = f"/msdyn_ocfbapplications({application})"
    return org.create("msdyn_ocfbpages", body)


def test_deleting_a_facebook_application_cascades_to_its_pages(org):
    application = org.create("msdyn_ocfbapplications", {"msdyn_name": "App"})
    other = org.create("msdyn_ocfbapplications", {"msdyn_name": "Other"})
    pages = [facebook_page(org, application, "1"), facebook_page(org, application, "2")]
    kept = facebook_page(org, other, "3")

    assert org.delete(f"msdyn_ocfbapplications({application})").status_code == 204

    assert all(org.missing("msdyn_ocfbpages", p) for p in pages)
    assert not org.missing("msdyn_ocfbpages", kept)
    assert not org.missing("msdyn_ocfbapplications", other)


def test_deleting_a_workstream_a_facebook_page_points_at_is_refused_with_405(org):
    workstream = org.workstream()
    page = facebook_page(
        org,
        None,
        "10",
        **{"msdyn_liveworkstreamid@odata.bind": f"/msdyn_liveworkstreams({workstream})"},
    )

    response = org.delete(f"msdyn_liveworkstreams({workstream})")

    # The page's relationship to its workstream is Delete: Restrict (msdyn_ocfbpage.md); a
    # delete refused for an association is 405 CannotDeleteDueToAssociation.
    assert org.error_of(response) == (405, RESTRICTED_DELETE)
    assert not org.missing("msdyn_liveworkstreams", workstream)
    assert org.read("msdyn_ocfbpages", page)["_msdyn_liveworkstreamid_value"] == workstream
    org.patch(f"msdyn_ocfbpages({page})", {"msdyn_liveworkstreamid@odata.bind": None})
    assert org.delete(f"msdyn_liveworkstreams({workstream})").status_code == 204


def test_deleting_a_workstream_clears_the_links_to_it_and_cascades_nowhere(org):
    workstream = org.workstream(queue=org.queue())
    other = org.workstream("Other")
    bind = {"msdyn_liveworkstreamid@odata.bind": f"/msdyn_liveworkstreams({workstream})"}
    agent = org.create("msdyn_ocgooglebusinessmessagesagentaccounts", {"msdyn_name": "A", **bind})
    agent_before = org.read("msdyn_ocgooglebusinessmessagesagentaccounts", agent)
    variable = org.create(
        "msdyn_ocliveworkstreamcontextvariables",
        {"msdyn_name": "Segment", "msdyn_datatype": 192350000, **bind},
    )
    configuration = org.create("msdyn_routingconfigurations", {"msdyn_name": "RC", **bind})
    other_configuration = org.create(
        "msdyn_routingconfigurations",
        {
            "msdyn_name": "RC2",
            "msdyn_liveworkstreamid@odata.bind": f"/msdyn_liveworkstreams({other})",
        },
    )
    step = org.create(
        "msdyn_routingconfigurationsteps",
        {
            "msdyn_name": "Step",
            "msdyn_routingconfigurationid@odata.bind": (
                f"/msdyn_routingconfigurations({configuration})"
            ),
        },
    )

    assert org.delete(f"msdyn_liveworkstreams({workstream})").status_code == 204

    # Every relationship to the workstream but the Facebook page's is Delete: RemoveLink.
    agent_after = org.read("msdyn_ocgooglebusinessmessagesagentaccounts", agent)
    assert agent_after["_msdyn_liveworkstreamid_value"] is None
    assert version(agent_after["@odata.etag"]) > version(agent_before["@odata.etag"])
    cleared = [
        ("msdyn_ocliveworkstreamcontextvariables", variable),
        ("msdyn_routingconfigurations", configuration),
    ]
    for entity_set, record in cleared:
        assert org.read(entity_set, record)["_msdyn_liveworkstreamid_value"] is None
    step_row = org.read("msdyn_routingconfigurationsteps", step)
    assert step_row["_msdyn_routingconfigurationid_value"] == configuration
    assert not org.missing("msdyn_routingconfigurations", other_configuration)
    assert not org.missing("msdyn_liveworkstreams", other)


def test_deleting_a_routing_configuration_or_rule_set_clears_its_steps_links(org):
    configuration = org.create("msdyn_routingconfigurations", {"msdyn_name": "RC"})
    ruleset = org.create("msdyn_decisionrulesets", {"msdyn_name": "R"})
    step = org.create(
        "msdyn_routingconfigurationsteps",
        {
            "msdyn_name": "Step",
            "msdyn_routingconfigurationid@odata.bind": (
                f"/msdyn_routingconfigurations({configuration})"
            ),
            "msdyn_rulesetid@odata.bind": f"/msdyn_decisionrulesets({ruleset})",
        },
    )

    assert org.delete(f"msdyn_routingconfigurations({configuration})").status_code == 204
    assert org.delete(f"msdyn_decisionrulesets({ruleset})").status_code == 204

    row = org.read("msdyn_routingconfigurationsteps", step)
    assert row["_msdyn_routingconfigurationid_value"] is None
    assert row["_msdyn_rulesetid_value"] is None


def test_deleting_a_queue_used_as_a_default_queue_clears_the_workstreams_link(org):
    queue = org.queue()
    workstream = org.workstream(queue=queue)

    assert org.delete(f"queues({queue})").status_code == 204

    assert org.missing("queues", queue)
    assert org.read("msdyn_liveworkstreams", workstream)["_msdyn_defaultqueue_value"] is None


def test_deleting_a_contract_clears_the_links_of_rule_sets_and_workstreams(org):
    contract = org.create("msdyn_decisioncontracts", {"msdyn_name": "C"})
    bind = f"/msdyn_decisioncontracts({contract})"
    ruleset = org.create(
        "msdyn_decisionrulesets",
        {
            "msdyn_name": "R",
            "msdyn_inputcontractid@odata.bind": bind,
            "msdyn_outputcontractid@odata.bind": bind,
        },
    )
    workstream = org.workstream()
    org.patch(f"msdyn_liveworkstreams({workstream})", {"msdyn_routingcontractid@odata.bind": bind})

    assert org.delete(f"msdyn_decisioncontracts({contract})").status_code == 204

    row = org.read("msdyn_decisionrulesets", ruleset)
    assert (row["_msdyn_inputcontractid_value"], row["_msdyn_outputcontractid_value"]) == (
        None,
        None,
    )
    assert org.read("msdyn_liveworkstreams", workstream)["_msdyn_routingcontractid_value"] is None


# -- @odata.bind ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reference",
    ["/queues({id})", "queues({id})", f"{BASE}queues({{id}})", "/queues({upper})"],
)
def test_bind_sets_the_lookup(org, reference):
    queue = org.queue()
    value = reference.format(id=queue, upper=queue.upper())

    workstream = org.create(
        "msdyn_liveworkstreams", {"msdyn_name": "W", "msdyn_defaultqueue@odata.bind": value}
    )

    assert org.read("msdyn_liveworkstreams", workstream)["_msdyn_defaultqueue_value"] == queue


def test_bind_to_a_missing_record_is_404_and_writes_nothing(org):
    queue = org.queue()
    workstream = org.workstream(queue=queue)
    before = org.rows("msdyn_liveworkstreams")

    create = org.post(
        "msdyn_liveworkstreams",
        {"msdyn_name": "Dangling", "msdyn_defaultqueue@odata.bind": f"/queues({MISSING})"},
    )
    update = org.patch(
        f"msdyn_liveworkstreams({workstream})",
        {"msdyn_name": "Renamed", "msdyn_defaultqueue@odata.bind": f"/queues({MISSING})"},
    )

    assert org.error_of(create) == (404, NOT_FOUND)
    assert org.error_of(update) == (404, NOT_FOUND)
    assert org.rows("msdyn_liveworkstreams") == before
    assert before[0]["_msdyn_defaultqueue_value"] == queue


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param(
            "msdyn_defaultqueue@odata.bind", "/msdyn_liveworkstreams({id})", id="wrong-entity-set"
        ),
        pytest.param("msdyn_defaultqueue@odata.bind", "/queues(not-a-guid)", id="bad-guid"),
        pytest.param("msdyn_defaultqueue@odata.bind", "/queues(" + "-" * 36 + ")", id="dashes"),
        pytest.param("msdyn_defaultqueue@odata.bind", "{id}", id="bare-guid"),
        pytest.param("msdyn_defaultqueue@odata.bind", 42, id="not-a-string"),
        pytest.param("msdyn_DefaultQueue@odata.bind", "/queues({id})", id="navigation-case"),
        pytest.param("msdyn_nosuch@odata.bind", "/queues({id})", id="unknown-navigation"),
        pytest.param("_msdyn_defaultqueue_value@odata.bind", "/queues({id})", id="read-name"),
    ],
)
def test_a_bad_bind_is_400(org, key, value):
    queue = org.queue()
    body = {"msdyn_name": "W", key: value.format(id=queue) if isinstance(value, str) else value}

    response = org.post("msdyn_liveworkstreams", body)

    assert org.error_of(response) == (400, PAYLOAD_ERROR)
    assert org.rows("msdyn_liveworkstreams") == []


def test_a_null_bind_clears_the_lookup(org):
    queue = org.queue()
    workstream = org.workstream(queue=queue)

    response = org.patch(
        f"msdyn_liveworkstreams({workstream})", {"msdyn_defaultqueue@odata.bind": None}
    )

    assert response.status_code == 204
    assert org.read("msdyn_liveworkstreams", workstream)["_msdyn_defaultqueue_value"] is None
    assert org.delete(f"queues({queue})").status_code == 204  # no longer referenced


def test_bind_can_change_the_lookup(org):
    first, second = org.queue("First"), org.queue("Second")
    workstream = org.workstream(queue=first)

    org.patch(
        f"msdyn_liveworkstreams({workstream})",
        {"msdyn_defaultqueue@odata.bind": f"/queues({second})"},
    )

    assert org.read("msdyn_liveworkstreams", workstream)["_msdyn_defaultqueue_value"] == second


# -- outputs generated on save -------------------------------------------------------------
def test_an_application_with_a_page_of_its_own_gets_callback_uri_and_verify_token(org):
    application = org.create(
        "msdyn_ocfbapplications", {"msdyn_name": "App", "msdyn_fbapplicationid": "42"}
    )
    before = org.read("msdyn_ocfbapplications", application)

    facebook_page(org, application, "1001")

    after = org.read("msdyn_ocfbapplications", application)
    assert before["msdyn_fbcallbackuri"] is None
    assert before["msdyn_fbverifytoken"] is None
    assert after["msdyn_fbcallbackuri"].startswith("https://")
    assert application in after["msdyn_fbcallbackuri"]
    assert re.fullmatch(r"[0-9a-f]{32}", after["msdyn_fbverifytoken"])
    assert version(after["@odata.etag"]) > version(before["@odata.etag"])


def test_an_application_whose_only_page_reuses_a_page_id_gets_no_outputs(org):
    first = org.create("msdyn_ocfbapplications", {"msdyn_name": "First"})
    facebook_page(org, first, "2002")
    second = org.create("msdyn_ocfbapplications", {"msdyn_name": "Second"})

    facebook_page(org, second, "2002")
    org.patch(f"msdyn_ocfbapplications({second})", {"msdyn_name": "Second, saved again"})

    row = org.read("msdyn_ocfbapplications", second)
    assert row["msdyn_fbcallbackuri"] is None
    assert row["msdyn_fbverifytoken"] is None
    assert org.read("msdyn_ocfbapplications", first)["msdyn_fbcallbackuri"] is not None


def test_facebook_outputs_are_not_regenerated_on_later_saves(org):
    application = org.create("msdyn_ocfbapplications", {"msdyn_name": "App"})
    page = facebook_page(org, application, "3003")
    generated = org.read("msdyn_ocfbapplications", application)

    org.patch(f"msdyn_ocfbapplications({application})", {"msdyn_name": "Renamed"})
    org.patch(f"msdyn_ocfbpages({page})", {"msdyn_fbpagename": "Renamed page"})
    facebook_page(org, application, "3004")

    later = org.read("msdyn_ocfbapplications", application)
    assert later["msdyn_name"] == "Renamed"
    assert later["msdyn_fbcallbackuri"] == generated["msdyn_fbcallbackuri"]
    assert later["msdyn_fbverifytoken"] == generated["msdyn_fbverifytoken"]


def test_a_page_linked_later_to_the_application_generates_the_outputs(org):
    application = org.create("msdyn_ocfbapplications", {"msdyn_name": "App"})
    page = facebook_page(org, None, "4004")
    assert org.read("msdyn_ocfbapplications", application)["msdyn_fbcallbackuri"] is None

    org.patch(
        f"msdyn_ocfbpages({page})",
        {"msdyn_ocfbapplicationid@odata.bind": f"/msdyn_ocfbapplications({application})"},
    )

    assert org.read("msdyn_ocfbapplications", application)["msdyn_fbcallbackuri"] is not None


def test_gbm_partner_account_gets_its_callback_url_on_create_only(org):
    entity_set = "msdyn_ocgooglebusinessmessagespartneraccounts"
    response = org.post(
        entity_set, {"msdyn_name": "Partner"}, headers={"Prefer": "return=representation"}
    )
    assert response.status_code == 201
    _, partner = org.entity_id(response)
    url = response.json()["msdyn_googlebusinessmessagescallbackurl"]

    org.patch(f"{entity_set}({partner})", {"msdyn_name": "Renamed"})

    assert url.startswith("https://")
    assert partner in url
    assert org.read(entity_set, partner)["msdyn_googlebusinessmessagescallbackurl"] == url


def test_a_null_statecode_is_refused(org):
    queue = org.queue()

    response = org.patch(f"queues({queue})", {"statecode": None})

    assert response.status_code == 400
    assert org.read("queues", queue)["statecode"] == 0


def test_generated_ids_never_collide_after_a_restart_with_a_seed(make_org, tmp_path):
    path = tmp_path / "seeded.db"
    first = make_org(path, seed=42)
    first.queue("Before restart")
    first.app.store.close()
    second = make_org(path, seed=42)

    statuses = [second.post("queues", {"name": f"After {n}"}).status_code for n in range(20)]

    assert statuses == [204] * 20


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_415_and_nothing_is_written(org, content_type):
    before = len(org.rows("queues"))
    response = org.request(
        "POST", "queues", content=b'{"name": "x"}', headers={"Content-Type": content_type}
    )

    assert org.error_of(response) == (415, "0x80048d19")
    assert len(org.rows("queues")) == before
