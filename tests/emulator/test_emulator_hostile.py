"""Hostile or odd requests get Dataverse-shaped 4xx answers, never a crash or a 500."""

from __future__ import annotations

import base64
import json
import sqlite3

import pytest

from reconciler.emulator import EmulatorApp
from reconciler.emulator.store import Store

SECRET = "EAAB-SECRET-VALUE"


@pytest.mark.parametrize(
    "params",
    [
        {"$filter": "msdyn_priority eq 99999999999999999999"},
        {"$top": "99999999999999999999"},
        {"$top": "5001"},
        {"$filter": "(" * 3000 + "name eq 'x'" + ")" * 3000},
        {"$filter": "not " * 3000 + "name eq 'x'"},
        {"$orderby": "name", "$skiptoken": base64.urlsafe_b64encode(b'{"offset":1e30}').decode()},
        {"$orderby": "name", "$skiptoken": base64.urlsafe_b64encode(b'{"offset":-1}').decode()},
    ],
)
def test_out_of_range_and_deeply_nested_queries_are_400(org, params):
    assert org.error_of(org.get("queues", params=params)) == (400, "0x80060888")


def test_a_deeply_nested_json_body_is_400(org):
    response = org.request(
        "POST",
        "queues",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"Content-Type": "application/json"},
    )
    assert org.error_of(response) == (400, "0x80048d19")


@pytest.mark.parametrize(
    "text",
    [
        f"msdyn_fbpageaccesstoken eq '{SECRET}' and",
        f"msdyn_fbpageaccesstoken eq '{SECRET}' '{SECRET}'",
        f"msdyn_fbpageaccesstoken '{SECRET}'",
        f"msdyn_localeid eq '{SECRET}'",
    ],
)
def test_filter_errors_never_echo_string_literals(org, text):
    entity_set = "msdyn_oclanguages" if "localeid" in text else "msdyn_ocfbpages"
    response = org.get(entity_set, params={"$filter": text})
    assert response.status_code == 400
    assert SECRET not in response.text


@pytest.mark.parametrize(
    "params", [{"$select": "msdyn_defaultqueue"}, {"$orderby": "msdyn_defaultqueue"}]
)
def test_a_lookup_is_queried_by_its_value_property_only(org, params):
    status, code = org.error_of(org.get("msdyn_liveworkstreams", params=params))
    assert (status, code) == (400, "0x0")  # an unknown property, as the Web API answers it
    ok = org.get("msdyn_liveworkstreams", params={"$select": "_msdyn_defaultqueue_value"})
    assert ok.status_code == 200


def test_the_emulator_answers_a_crash_inside_a_batch_part_with_a_500_part(org, monkeypatch):
    original = org.app.service.handle

    def handle(request):
        if request.path == "msdyn_oclanguages":
            raise RuntimeError("boom")
        return original(request)

    monkeypatch.setattr(org.app.service, "handle", handle)
    body = (
        "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "GET http://org.local/api/data/v9.2/WhoAmI HTTP/1.1\r\n\r\n\r\n"
        "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "GET http://org.local/api/data/v9.2/msdyn_oclanguages HTTP/1.1\r\n\r\n\r\n"
        "--b--\r\n"
    )
    response = org.request(
        "POST",
        "$batch",
        content=body.encode(),
        headers={"Content-Type": "multipart/mixed;boundary=b"},
    )
    assert response.status_code == 200
    statuses = [line.split()[1] for line in response.text.splitlines() if line.startswith("HTTP/")]
    assert statuses == ["200", "500"]
    assert '"0x80040216"' in response.text


def test_a_database_held_by_another_process_is_a_retryable_503(tmp_path, wrap):
    path = tmp_path / "org.db"
    org = wrap(EmulatorApp(Store(path, busy_timeout_ms=50)))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = org.post("queues", {"name": "blocked"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert org.error_of(response) == (503, "0x80040216")
    assert response.headers["Retry-After"] == "1"
    assert org.post("queues", {"name": "free"}).status_code == 204


def test_repeated_content_ids_in_a_change_set_are_400(org):
    part = (
        "--c\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        "Content-ID: 1\r\n\r\nPOST http://org.local/api/data/v9.2/queues HTTP/1.1\r\n"
        "Content-Type: application/json\r\n\r\n" + json.dumps({"name": "dup"}) + "\r\n"
    )
    body = (
        "--b\r\nContent-Type: multipart/mixed;boundary=c\r\n\r\n"
        + part
        + part
        + "--c--\r\n--b--\r\n"
    )
    response = org.request(
        "POST",
        "$batch",
        content=body.encode(),
        headers={"Content-Type": "multipart/mixed;boundary=b"},
    )
    assert org.error_of(response) == (400, "0x80048d19")
    assert "unique" in response.json()["error"]["message"]
