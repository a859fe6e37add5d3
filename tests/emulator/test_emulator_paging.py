"""Paging over more than 5000 rows: Prefer: odata.maxpagesize, @odata.nextLink, $skiptoken."""

from __future__ import annotations

import base64
import datetime
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from reconciler.dataverse.tables import TABLES
from reconciler.emulator import EmulatorApp
from reconciler.emulator.faults import QUERY_ERROR
from reconciler.emulator.records import new_row
from reconciler.emulator.store import Store

BULK = 12_000
NOT_DEFAULT = "msdyn_isdefaultqueue eq false"


@pytest.fixture(scope="module")
def bulk():
    """An org holding 12,000 extra queues, inserted through the Store in one transaction."""
    store = Store(":memory:")
    app = EmulatorApp(store)
    table = TABLES["queue"]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = {}
    with store.transaction():
        for number in range(BULK):
            record_id = str(uuid.uuid4())
            values = {"name": f"Bulk {number:05d}", "msdyn_priority": number % 7}
            row = new_row(table, record_id, {**values, "msdyn_queuetype": 192350000})
            row.update(versionnumber=store.next_version(), createdon=now, modifiedon=now)
            store.insert(table, row)
            rows[record_id] = values
    yield app, rows
    store.close()


@pytest.fixture
def org(bulk, wrap):
    return wrap(bulk[0])


def follow(org, url, params=None, prefer="odata.maxpagesize=5000"):
    """Every page of a query, following @odata.nextLink verbatim; (pages, answers)."""
    pages, answers = [], []
    headers = {"Prefer": prefer} if prefer else {}
    response = org.get(url, params=params, headers=headers)
    while True:
        assert response.status_code == 200, response.text
        answers.append(response)
        body = response.json()
        pages.append(body["value"])
        link = body.get("@odata.nextLink")
        if link is None:
            return pages, answers
        response = org.get(link, headers=headers)


def test_pages_of_5000_5000_2000_with_no_gap_or_duplicate(org, bulk):
    pages, answers = follow(org, "queues", {"$select": "name", "$filter": NOT_DEFAULT})

    assert [len(p) for p in pages] == [5000, 5000, 2000]
    ids = [r["queueid"] for p in pages for r in p]
    assert len(ids) == len(set(ids)) == BULK
    assert set(ids) == set(bulk[1])
    assert all(set(r) == {"@odata.etag", "queueid", "name"} for p in pages for r in p)
    assert all(bulk[1][r["queueid"]]["name"] == r["name"] for p in pages for r in p)
    assert [a.headers["Preference-Applied"] for a in answers] == ["odata.maxpagesize=5000"] * 3


def test_next_link_is_absolute_keeps_the_query_and_adds_an_opaque_skiptoken(org):
    params = {"$select": "name,msdyn_priority", "$filter": NOT_DEFAULT}
    _, answers = follow(org, "queues", params)

    links = [a.json().get("@odata.nextLink") for a in answers]
    assert links[-1] is None
    for link in links[:-1]:
        parts = urlsplit(link)
        assert (parts.scheme, parts.netloc, parts.path) == (
            "http",
            "org.local",
            "/api/data/v9.2/queues",
        )
        query = parse_qs(parts.query)
        assert query["$select"] == ["name,msdyn_priority"]
        assert query["$filter"] == [NOT_DEFAULT]
        (token,) = query["$skiptoken"]
        assert token
        assert "queueid" not in token
    assert links[0] != links[1]


@pytest.mark.parametrize("size", [1, 2, 7])
def test_small_pages(org, size):
    params = {"$select": "name", "$filter": "msdyn_priority eq 3 and name lt 'Bulk 00100'"}
    pages, answers = follow(org, "queues", params, prefer=f"odata.maxpagesize={size}")

    expected = {f"Bulk {n:05d}" for n in range(100) if n % 7 == 3}
    assert {r["name"] for p in pages for r in p} == expected
    assert sum(len(p) for p in pages) == len(expected)
    assert all(len(p) == size for p in pages[:-1])
    assert answers[0].headers["Preference-Applied"] == f"odata.maxpagesize={size}"


@pytest.mark.parametrize("prefer", ["odata.maxpagesize=20000", None])
def test_page_size_is_capped_at_5000(org, prefer):
    headers = {"Prefer": prefer} if prefer else {}
    response = org.get("queues", params={"$select": "name"}, headers=headers)

    body = response.json()
    assert len(body["value"]) == 5000
    assert "@odata.nextLink" in body
    if not prefer:
        assert "Preference-Applied" not in response.headers


def test_paging_with_orderby_keeps_the_order_across_pages(org, bulk):
    params = {
        "$select": "name,msdyn_priority",
        "$filter": NOT_DEFAULT,
        "$orderby": "msdyn_priority desc,name asc",
    }
    pages, _ = follow(org, "queues", params)

    assert [len(p) for p in pages] == [5000, 5000, 2000]
    got = [(r["msdyn_priority"], r["name"]) for p in pages for r in p]
    expected = sorted(
        ((v["msdyn_priority"], v["name"]) for v in bulk[1].values()),
        key=lambda pair: (-pair[0], pair[1]),
    )
    assert got == expected


def test_count_is_the_whole_result_not_the_page(org, bulk):
    response = org.get(
        "queues",
        params={"$count": "true", "$filter": "msdyn_priority eq 3", "$select": "name"},
        headers={"Prefer": "odata.maxpagesize=10"},
    )

    body = response.json()
    assert body["@odata.count"] == sum(1 for v in bulk[1].values() if v["msdyn_priority"] == 3)
    assert body["@odata.count"] == 1714
    assert len(body["value"]) == 10
    assert "@odata.nextLink" in body


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'{"after": 5}').decode(),
        base64.urlsafe_b64encode(b'["after"]').decode(),
        base64.urlsafe_b64encode(b'{"offset": "x"}').decode(),
    ],
)
def test_a_tampered_skiptoken_is_refused(org, token):
    response = org.get("queues", params={"$select": "name", "$skiptoken": token})

    assert org.error_of(response) == (400, QUERY_ERROR)


def test_count_stops_at_5000_as_dataverse_does(org, bulk):
    body = org.get("queues", params={"$count": "true", "$select": "name"}).json()

    assert body["@odata.count"] == 5000
    assert len(body["value"]) == 5000


def test_count_accepts_only_true_or_false(org):
    assert org.error_of(org.get("queues", params={"$count": "yes"})) == (400, "0x80060888")
