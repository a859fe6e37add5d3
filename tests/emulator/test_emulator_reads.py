"""Reads: pre-existing rows, WhoAmI, persistence, $select/$filter/$top/$orderby/$count,
single-record GETs, $metadata and the service document, and URL errors."""

from __future__ import annotations

import re
import sqlite3
import uuid
import xml.etree.ElementTree as ET

import pytest

from reconciler.dataverse.tables import BY_ENTITY_SET, TABLES
from reconciler.emulator import EmulatorConfig, create_app
from reconciler.emulator.faults import (
    INVALID_ARGUMENT,
    NOT_FOUND,
    QUERY_ERROR,
    RESOURCE_NOT_FOUND,
    VALIDATION,
)
from reconciler.emulator.store import StoreError

MESSAGING, RECORD, VOICE = 192350000, 192350001, 192350002
ETAG = re.compile(r'^W/"(\d+)"$')
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
OUTPUT_CONTRACT = "msdyn_demandqueueidentificationoutput"
DEFAULT_QUEUES = {"Default messaging queue", "Default entity queue", "Default voice queue"}


def is_guid(value: object) -> bool:
    return isinstance(value, str) and str(uuid.UUID(value)) == value


# -- pre-existing rows ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "locale_id"),
    [("en-US", 1033), ("nl-NL", 1043), ("de-DE", 1031), ("fr-FR", 1036), ("es-ES", 3082)],
)
def test_language_rows_exist_with_their_locale_ids(org, code, locale_id):
    rows = org.rows(
        "msdyn_oclanguages",
        **{"$filter": f"msdyn_localecode eq '{code}'", "$select": "msdyn_localeid"},
    )

    assert len(rows) == 1
    assert rows[0]["msdyn_localeid"] == locale_id
    assert is_guid(rows[0]["msdyn_oclanguageid"])


def test_default_queues_exist_one_per_queue_type(org):
    rows = org.rows("queues", **{"$filter": "msdyn_isdefaultqueue eq true"})

    assert sorted(r["msdyn_queuetype"] for r in rows) == [MESSAGING, RECORD, VOICE]
    assert {r["name"] for r in rows} == DEFAULT_QUEUES
    assert all(r["msdyn_isomnichannelqueue"] is True for r in rows)
    assert all(r["msdyn_isdefaultqueue"] is True for r in rows)
    assert all(r["statecode"] == 0 and r["statuscode"] == 1 for r in rows)


def test_route_to_queue_output_contract_exists_once(org):
    rows = org.rows(
        "msdyn_decisioncontracts", **{"$filter": f"msdyn_uniquename eq '{OUTPUT_CONTRACT}'"}
    )

    assert len(rows) == 1
    definition = ET.fromstring(rows[0]["msdyn_contractdefinition"])
    # The envelope real contracts have; its content no public export shows (seed.py).
    assert (definition.tag, definition.attrib) == ("contract", {"version": "1"})


def test_pre_existing_row_ids_differ_per_org(make_org):
    def ids(org):
        contract = org.rows("msdyn_decisioncontracts", **{"$select": "msdyn_uniquename"})
        languages = org.rows("msdyn_oclanguages", **{"$select": "msdyn_localecode"})
        return {r["msdyn_decisioncontractid"] for r in contract} | {
            r["msdyn_oclanguageid"] for r in languages
        }

    first, second = ids(make_org()), ids(make_org())

    assert len(first) == len(second) == 11
    assert first.isdisjoint(second)


@pytest.mark.parametrize(
    ("entity_set", "filter_"),
    [
        ("msdyn_oclanguages", "msdyn_localecode eq 'en-US'"),
        ("queues", "name eq 'Default messaging queue'"),
        ("msdyn_decisioncontracts", f"msdyn_uniquename eq '{OUTPUT_CONTRACT}'"),
    ],
)
def test_system_rows_cannot_be_deleted(org, entity_set, filter_):
    table = BY_ENTITY_SET[entity_set]
    (row,) = org.rows(entity_set, **{"$filter": filter_})
    record_id = row[table.primary_key]

    response = org.delete(f"{entity_set}({record_id})")

    assert org.error_of(response) == (400, INVALID_ARGUMENT)
    assert org.read(entity_set, record_id)["@odata.etag"] == row["@odata.etag"]


# -- WhoAmI and persistence ----------------------------------------------------------------
def test_who_am_i_returns_three_guids(org):
    response = org.get("WhoAmI")

    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse")
    ids = [body["UserId"], body["BusinessUnitId"], body["OrganizationId"]]
    assert all(is_guid(i) for i in ids)
    assert len(set(ids)) == 3


def test_state_and_identity_survive_a_restart_on_the_same_file(make_org, tmp_path):
    path = tmp_path / "org.db"
    first = make_org(path)
    who = first.get("WhoAmI").json()
    queue = first.queue("Kept")
    before = first.read("queues", queue)
    first.app.store.close()

    second = make_org(path)

    assert second.get("WhoAmI").json() == who
    assert second.read("queues", queue) == before
    assert len(second.rows("msdyn_oclanguages", **{"$select": "msdyn_localecode"})) == 10
    second.patch(f"queues({queue})", {"msdyn_priority": 3})
    after = ETAG.match(second.read("queues", queue)["@odata.etag"])
    assert after is not None
    assert int(after[1]) > int(ETAG.match(before["@odata.etag"])[1])


def test_create_app_opens_a_file_and_applies_the_config(tmp_path, wrap):
    app = create_app(tmp_path / "created.db", EmulatorConfig(token="s3cr3t-token"))
    try:
        org = wrap(app)
        assert org.get("WhoAmI", authorization="Bearer s3cr3t-token").status_code == 200
        assert org.get("WhoAmI", authorization="Bearer t").status_code == 401
        assert (tmp_path / "created.db").exists()
        assert "s3cr3t" not in repr(app.config)
        assert "token=set" in repr(app.config)
    finally:
        app.store.close()


def test_a_file_that_is_not_an_emulator_database_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not a database, just text\n" * 100)

    with pytest.raises(StoreError, match="is not an emulator database"):
        create_app(path)


def test_a_database_of_another_schema_version_is_refused(tmp_path):
    path = tmp_path / "old.db"
    create_app(path).store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE _meta SET value = '999' WHERE key = 'schema'")
    db.close()

    with pytest.raises(StoreError, match="schema 999"):
        create_app(path)


def test_a_new_file_is_a_new_org(make_org, tmp_path):
    first = make_org(tmp_path / "a.db").get("WhoAmI").json()
    second = make_org(tmp_path / "b.db").get("WhoAmI").json()

    for key in ("UserId", "BusinessUnitId", "OrganizationId"):
        assert first[key] != second[key]


# -- $select -------------------------------------------------------------------------------
def test_select_returns_only_the_selected_columns_the_key_and_the_etag(org):
    org.queue("Selected", msdyn_priority=4)

    (row,) = org.rows(
        "queues", **{"$select": "name,msdyn_priority", "$filter": "name eq 'Selected'"}
    )

    assert set(row) == {"@odata.etag", "queueid", "name", "msdyn_priority"}
    assert row["name"] == "Selected"
    assert row["msdyn_priority"] == 4
    assert ETAG.match(row["@odata.etag"])


def test_select_names_lookups_as_underscore_value(org):
    queue = org.queue()
    workstream = org.workstream(queue=queue)

    (row,) = org.rows(
        "msdyn_liveworkstreams", **{"$select": "msdyn_name,_msdyn_defaultqueue_value"}
    )

    assert row == {
        "@odata.etag": row["@odata.etag"],
        "msdyn_liveworkstreamid": workstream,
        "msdyn_name": "Facebook support",
        "_msdyn_defaultqueue_value": queue,
    }


def test_rows_without_select_carry_every_column_and_lookups_as_underscore_value(org):
    org.workstream(queue=org.queue())

    (row,) = org.rows("msdyn_liveworkstreams")

    table = TABLES["msdyn_liveworkstream"]
    assert set(row) == {"@odata.etag"} | {c.read_name for c in table.columns.values()}
    assert "msdyn_defaultqueue" not in row
    assert row["_msdyn_routingcontractid_value"] is None
    assert row["msdyn_enableautomatedmessages"] is True  # the column default


@pytest.mark.parametrize("select", ["nosuch", "name,nosuch", "_name_value", "Name", ""])
def test_select_of_an_unknown_property_is_refused(org, select):
    response = org.get("queues", params={"$select": select})

    # Microsoft's Web API troubleshooting page: 400, code 0x0, this message.
    assert org.error_of(response) == (400, VALIDATION)
    name = select.split(",")[-1]
    assert response.json()["error"]["message"] == (
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.queue'."
    )


def test_select_on_a_single_record(org):
    queue = org.queue("One", msdyn_priority=2)

    response = org.get(f"queues({queue})", params={"$select": "msdyn_priority"})

    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == "http://org.local/api/data/v9.2/$metadata#queues/$entity"
    assert set(body) == {"@odata.context", "@odata.etag", "queueid", "msdyn_priority"}
    assert body["queueid"] == queue
    assert response.headers["ETag"] == body["@odata.etag"]


def test_single_record_refuses_unknown_properties_and_other_options(org):
    queue = org.queue()

    assert org.error_of(org.get(f"queues({queue})", params={"$select": "x"})) == (
        400,
        VALIDATION,
    )
    assert org.error_of(org.get(f"queues({queue})", params={"$filter": "name eq 'a'"})) == (
        400,
        QUERY_ERROR,
    )


# -- $filter -------------------------------------------------------------------------------
QUEUES = [
    # name, priority, type, description, omnichannel
    ("Alpha", 1, MESSAGING, "50% off_sale", True),
    ("beta", 2, RECORD, "under_score", True),
    ("Gamma", 3, VOICE, None, False),
    ("O'Brien", 4, MESSAGING, "percent sign 50", True),
    ("delta", 5, MESSAGING, "ALPHA beta", True),
]
MINE = {q[0] for q in QUEUES}
ALL = MINE | DEFAULT_QUEUES


@pytest.fixture
def queues(org):
    ids = {}
    for name, priority, queue_type, description, omnichannel in QUEUES:
        ids[name] = org.queue(
            name,
            msdyn_priority=priority,
            msdyn_queuetype=queue_type,
            description=description,
            msdyn_isomnichannelqueue=omnichannel,
        )
    return ids


def names(org, filter_: str) -> set[str]:
    return {r["name"] for r in org.rows("queues", **{"$filter": filter_, "$select": "name"})}


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        pytest.param("name eq 'Alpha'", {"Alpha"}, id="eq"),
        pytest.param("name eq 'ALPHA'", {"Alpha"}, id="eq-ignores-case"),
        pytest.param("name ne 'Alpha'", ALL - {"Alpha"}, id="ne"),
        pytest.param("msdyn_priority gt 3", {"O'Brien", "delta"}, id="gt"),
        pytest.param("msdyn_priority ge 3", {"Gamma", "O'Brien", "delta"}, id="ge"),
        pytest.param("msdyn_priority lt 2", {"Alpha"}, id="lt"),
        pytest.param("msdyn_priority le 2", {"Alpha", "beta"}, id="le"),
        pytest.param("msdyn_priority eq -1", set(), id="negative-number"),
        pytest.param(
            "msdyn_priority ge 4 and msdyn_queuetype eq 192350000", {"O'Brien", "delta"}, id="and"
        ),
        pytest.param("msdyn_priority eq 1 or msdyn_priority eq 5", {"Alpha", "delta"}, id="or"),
        pytest.param(
            "msdyn_isdefaultqueue eq false and not (msdyn_priority le 4)", {"delta"}, id="not"
        ),
        pytest.param("not contains(name,'a')", {"O'Brien"}, id="not-function"),
        pytest.param(
            "msdyn_priority eq 1 or msdyn_priority eq 2 and msdyn_queuetype eq 192350001",
            {"Alpha", "beta"},
            id="and-binds-tighter-than-or",
        ),
        pytest.param(
            "(msdyn_priority eq 1 or msdyn_priority eq 2) and msdyn_queuetype eq 192350001",
            {"beta"},
            id="parentheses",
        ),
        pytest.param("((name eq 'beta'))", {"beta"}, id="nested-parentheses"),
        pytest.param("contains(name,'ALP')", {"Alpha"}, id="contains-ignores-case"),
        pytest.param("contains(description,'alpha')", {"delta"}, id="contains-memo"),
        pytest.param("startswith(name,'default')", DEFAULT_QUEUES, id="startswith"),
        pytest.param("endswith(name,'TA')", {"beta", "delta"}, id="endswith"),
        pytest.param("contains(description,'50%')", {"Alpha"}, id="percent-is-literal"),
        pytest.param("contains(description,'_')", {"Alpha", "beta"}, id="underscore-is-literal"),
        pytest.param("startswith(description,'%')", set(), id="leading-percent-is-literal"),
        pytest.param("name eq 'O''Brien'", {"O'Brien"}, id="doubled-quote"),
        pytest.param("  name eq 'beta'  ", {"beta"}, id="surrounding-whitespace"),
        pytest.param("contains(name,'''')", {"O'Brien"}, id="doubled-quote-in-function"),
        pytest.param("msdyn_isomnichannelqueue eq false", {"Gamma"}, id="boolean-false"),
        pytest.param(
            "msdyn_isomnichannelqueue eq true and msdyn_isdefaultqueue eq false",
            MINE - {"Gamma"},
            id="boolean-true",
        ),
        pytest.param("description eq null", DEFAULT_QUEUES | {"Gamma"}, id="eq-null"),
        pytest.param("description ne null", MINE - {"Gamma"}, id="ne-null"),
        pytest.param("name ge 'delta' and name lt 'h'", {"delta", "Gamma"}, id="string-range"),
        pytest.param(
            "createdon ge 2000-01-01T00:00:00Z and msdyn_isdefaultqueue eq false",
            MINE,
            id="date-time",
        ),
    ],
)
def test_filter(org, queues, filter_, expected):
    assert names(org, filter_) == expected


@pytest.mark.parametrize("upper", [False, True])
def test_filter_on_the_key_with_a_guid(org, queues, upper):
    guid = queues["beta"].upper() if upper else queues["beta"]

    assert names(org, f"queueid eq {guid}") == {"beta"}
    assert names(org, f"queueid ne {guid} and msdyn_isdefaultqueue eq false") == MINE - {"beta"}


def test_filter_on_a_lookup_value(org):
    first, second = org.queue("First"), org.queue("Second")
    with_first = org.workstream("Uses first", first)
    org.workstream("Uses second", second)
    unset = org.workstream("Uses none")

    def found(filter_):
        rows = org.rows("msdyn_liveworkstreams", **{"$filter": filter_, "$select": "msdyn_name"})
        return {r["msdyn_liveworkstreamid"] for r in rows}

    assert found(f"_msdyn_defaultqueue_value eq {first}") == {with_first}
    assert found("_msdyn_defaultqueue_value eq null") == {unset}


@pytest.mark.parametrize(
    "filter_",
    [
        pytest.param("msdyn_priority eq 'one'", id="string-for-int"),
        pytest.param("msdyn_priority eq 1.5", id="decimal-for-int"),
        pytest.param("name eq 5", id="number-for-string"),
        pytest.param("msdyn_isomnichannelqueue eq 1", id="number-for-boolean"),
        pytest.param("msdyn_isomnichannelqueue eq 'true'", id="string-for-boolean"),
        pytest.param("queueid eq 'not-a-guid'", id="string-for-guid"),
        pytest.param("queueid eq 12", id="number-for-guid"),
        pytest.param("createdon gt 'yesterday'", id="string-for-date"),
        pytest.param("contains(msdyn_priority,'1')", id="function-on-int"),
        pytest.param("contains(name,1)", id="function-with-number"),
        pytest.param("msdyn_priority gt null", id="null-with-gt"),
        pytest.param("nosuch eq 1", id="unknown-property"),
        pytest.param("Name eq 'x'", id="property-names-are-case-sensitive"),
        pytest.param("name eq", id="missing-literal"),
        pytest.param("name eq 'x' and", id="dangling-and"),
        pytest.param("(name eq 'x'", id="unclosed-parenthesis"),
        pytest.param("name eq 'x')", id="extra-parenthesis"),
        pytest.param("name eq 'unterminated", id="unterminated-string"),
        pytest.param("name like 'x'", id="unknown-operator"),
        pytest.param("name eq 'x' name", id="trailing-token"),
        pytest.param("name eq 'x' # 1", id="bad-character"),
        pytest.param("contains(name 'x')", id="function-without-comma"),
        pytest.param("eq 'x'", id="missing-property"),
        pytest.param("5 eq msdyn_priority", id="literal-first"),
        pytest.param("", id="empty"),
    ],
)
def test_bad_filter_is_refused(org, filter_):
    response = org.get("queues", params={"$filter": filter_})

    unknown = ("nosuch", "Name", "eq")  # names the type lacks: 0x0, like $select
    code = VALIDATION if filter_.split(" ")[0] in unknown else QUERY_ERROR
    assert org.error_of(response) == (400, code)


# -- $top, $orderby, $count, refused options ------------------------------------------------
def test_top_limits_the_rows_without_a_next_link(org, queues):
    response = org.get(
        "queues", params={"$top": "2", "$orderby": "msdyn_priority desc", "$select": "name"}
    )

    assert response.status_code == 200
    body = response.json()
    assert [r["name"] for r in body["value"]] == ["delta", "O'Brien"]
    assert "@odata.nextLink" not in body


def test_top_zero_returns_no_rows(org, queues):
    assert org.rows("queues", **{"$top": "0"}) == []


@pytest.mark.parametrize("top", ["-1", "two", "1.5", ""])
def test_bad_top_is_refused(org, top):
    assert org.error_of(org.get("queues", params={"$top": top})) == (400, QUERY_ERROR)


@pytest.mark.parametrize(
    ("orderby", "expected"),
    [
        ("msdyn_priority", ["Alpha", "beta", "Gamma", "O'Brien", "delta"]),
        ("msdyn_priority asc", ["Alpha", "beta", "Gamma", "O'Brien", "delta"]),
        ("msdyn_priority desc", ["delta", "O'Brien", "Gamma", "beta", "Alpha"]),
        ("name", ["Alpha", "beta", "delta", "Gamma", "O'Brien"]),
        ("msdyn_queuetype asc,name desc", ["O'Brien", "delta", "Alpha", "beta", "Gamma"]),
        (
            "msdyn_queuetype desc, msdyn_priority desc",
            ["Gamma", "beta", "delta", "O'Brien", "Alpha"],
        ),
    ],
)
def test_orderby(org, queues, orderby, expected):
    rows = org.rows(
        "queues",
        **{"$orderby": orderby, "$filter": "msdyn_isdefaultqueue eq false", "$select": "name"},
    )

    assert [r["name"] for r in rows] == expected


@pytest.mark.parametrize(
    ("orderby", "code"),
    [
        ("nosuch", VALIDATION),
        ("name sideways", QUERY_ERROR),
        ("name asc desc", QUERY_ERROR),
        ("name,", QUERY_ERROR),
        ("", QUERY_ERROR),
    ],
)
def test_bad_orderby_is_refused(org, orderby, code):
    assert org.error_of(org.get("queues", params={"$orderby": orderby})) == (400, code)


def test_skip_is_refused(org, queues):
    response = org.get("queues", params={"$skip": "1"})

    assert org.error_of(response) == (400, QUERY_ERROR)
    assert "$skip" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "query",
    [
        "$expand=queuemembership_association($top=1)",  # options inside an expand
        "$search=x",
        "$apply=groupby((name))",
        "foo=bar",
        "$top=1&$top=2",
    ],
)
def test_unknown_or_repeated_query_options_are_refused(org, query):
    assert org.error_of(org.get(f"queues?{query}")) == (400, QUERY_ERROR)


def test_count_true_adds_the_count_of_matching_rows(org, queues):
    response = org.get(
        "queues",
        params={"$count": "true", "$filter": "msdyn_priority ge 2", "$top": "1", "$select": "name"},
    )

    body = response.json()
    assert body["@odata.count"] == 4
    assert len(body["value"]) == 1
    assert "@odata.count" not in org.get("queues").json()


# -- service document, $metadata, URL errors -----------------------------------------------
def test_metadata_is_xml_naming_every_entity_set(org):
    response = org.get("$metadata")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/xml"
    root = ET.fromstring(response.content)
    sets = {e.get("Name") for e in root.iter(f"{EDM}EntitySet")}
    assert sets == set(BY_ENTITY_SET)
    types = {e.get("Name"): e for e in root.iter(f"{EDM}EntityType")}
    queue_name = types["queue"].find(f"{EDM}Property[@Name='name']")
    assert queue_name is not None
    assert queue_name.get("MaxLength") == "200"
    navigation = {
        e.get("Name") for e in types["msdyn_liveworkstream"].iter(f"{EDM}NavigationProperty")
    }
    assert {"msdyn_defaultqueue", "msdyn_routingcontractid"} <= navigation


def test_service_document_lists_the_entity_sets(org):
    response = org.get("")

    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == "http://org.local/api/data/v9.2/$metadata"
    assert {e["name"] for e in body["value"]} == set(BY_ENTITY_SET)
    assert all(e["kind"] == "EntitySet" and e["url"] == e["name"] for e in body["value"])


@pytest.mark.parametrize(
    "url",
    ["nosuchthings", "nosuchthings(00000000-0000-0000-0000-000000000001)", "Queues", "queues/x"],
)
def test_unknown_entity_set_is_404(org, url):
    response = org.get(url)

    # Microsoft's Web API troubleshooting page: 404, 0x8006088a, "Resource not found for the
    # segment 'Account'." (entity set names are case-sensitive).
    assert org.error_of(response) == (404, RESOURCE_NOT_FOUND)
    assert response.json()["error"]["message"].startswith("Resource not found for the segment '")


def test_a_path_outside_the_web_api_is_404(org):
    response = org.get("http://org.local/api/data/v9.0/queues")

    assert org.error_of(response) == (404, QUERY_ERROR)


@pytest.mark.parametrize("key", ["abc", "1", "'x'", "", "name='Support'"])
def test_a_non_guid_key_is_400(org, key):
    assert org.error_of(org.get(f"queues({key})")) == (400, QUERY_ERROR)


def test_a_missing_record_is_404_not_found(org):
    response = org.get("queues(00000000-0000-0000-0000-000000000001)")

    assert org.error_of(response) == (404, NOT_FOUND)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("PUT", "queues(00000000-0000-0000-0000-000000000001)"),
        ("POST", "queues(00000000-0000-0000-0000-000000000001)"),
        ("DELETE", "queues"),
        ("PATCH", "queues"),
    ],
)
def test_a_method_the_resource_does_not_allow_is_405(org, method, url):
    response = org.request(method, url, json={})

    assert org.error_of(response) == (405, INVALID_ARGUMENT)


def test_every_answer_carries_odata_version(org):
    for response in (
        org.get("WhoAmI"),
        org.get("$metadata"),
        org.get("nosuch"),
        org.post("queues", {"name": "q"}),
    ):
        assert response.headers["OData-Version"] == "4.0"


@pytest.mark.parametrize(
    "filter_",
    [
        "name eq 'école überweisung'",
        "contains(name,'école')",
        "startswith(name,'éc')",
        "endswith(name,'überweisung')",
    ],
)
def test_string_comparisons_ignore_case_beyond_ascii(org, filter_):
    org.queue("École Überweisung")

    assert names(org, filter_) == {"École Überweisung"}
