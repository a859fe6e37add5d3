"""DataverseClient reads and writes against httpx.MockTransport: URLs, headers, answers, errors."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconciler import __version__
from reconciler.dataverse import (
    AlreadyExists,
    BadRequest,
    DataverseClient,
    DataverseError,
    NotFound,
    PreconditionFailed,
    ProtocolError,
    RetryPolicy,
    ServerError,
    StaleRecord,
    StaticToken,
    Unauthorized,
    WhoAmI,
)
from reconciler.errors import ReconcilerError

BASE = "https://contoso.crm4.dynamics.com/api/data/v9.2/"
QUEUE_ID = "5c2a36a1-0d3b-4c1e-9a52-1f0e0e5b7a11"
Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, **kwargs: Any) -> DataverseClient:
    kwargs.setdefault("auth", StaticToken("tok-123"))
    kwargs.setdefault("retry", RetryPolicy.none())
    return DataverseClient(BASE, transport=httpx.MockTransport(handler), **kwargs)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class Recorder:
    """A handler answering from a list, recording each request."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def call(handler: Handler, op: Callable[[DataverseClient], Any], **kwargs: Any) -> Any:
    async def scenario() -> Any:
        async with make_client(handler, **kwargs) as client:
            return await op(client)

    return asyncio.run(scenario())


def raises(handler: Handler, op: Callable[[DataverseClient], Any], **kwargs: Any) -> Exception:
    with pytest.raises(DataverseError) as info:
        call(handler, op, **kwargs)
    return info.value


def test_read_sends_odata_headers_token_and_page_size():
    rec = Recorder(httpx.Response(200, json={"value": []}))
    assert call(rec, lambda c: c.list("queues")) == []
    headers = rec.last.headers
    assert rec.last.method == "GET"
    assert str(rec.last.url) == BASE + "queues"
    assert headers["accept"] == "application/json"
    assert headers["odata-maxversion"] == "4.0"
    assert headers["odata-version"] == "4.0"
    assert headers["authorization"] == "Bearer tok-123"
    assert headers["prefer"] == "odata.maxpagesize=5000"
    assert headers["user-agent"] == f"reconciler/{__version__}"
    assert "content-type" not in headers


def test_write_sends_json_body_with_content_type():
    rec = Recorder(httpx.Response(204))
    call(rec, lambda c: c.upsert("queues", QUEUE_ID, {"name": "Support", "msdyn_priority": 1}))
    assert rec.last.method == "PATCH"
    assert str(rec.last.url) == f"{BASE}queues({QUEUE_ID})"
    assert rec.last.headers["content-type"] == "application/json"
    assert rec.last.headers["authorization"] == "Bearer tok-123"
    assert rec.last.headers["odata-version"] == "4.0"
    assert json.loads(rec.last.content) == {"name": "Support", "msdyn_priority": 1}
    assert "if-match" not in rec.last.headers
    assert "if-none-match" not in rec.last.headers


def test_base_url_without_trailing_slash_and_custom_user_agent():
    rec = Recorder(httpx.Response(200, json={"value": []}))

    async def scenario() -> None:
        client = DataverseClient(
            BASE.rstrip("/"),
            auth=StaticToken("t"),
            transport=httpx.MockTransport(rec),
            user_agent="custom/1",
            page_size=10,
        )
        await client.list("queues")
        await client.aclose()

    asyncio.run(scenario())
    assert str(rec.last.url) == BASE + "queues"
    assert rec.last.headers["user-agent"] == "custom/1"
    assert rec.last.headers["prefer"] == "odata.maxpagesize=10"


def test_list_follows_next_link_verbatim_over_three_pages():
    link2 = (
        f"{BASE}queues?$select=name&$skiptoken=%3Ccookie%20pagenumber=%222%22%20"
        "pagingcookie=%22%253ccookie%2520page%253d%25221%2522%253e%22%20/%3E"
    )
    link3 = f"{BASE}queues?$select=name&$skiptoken=%3Ccookie%20pagenumber=%223%22%20/%3E"
    rows = [{"@odata.etag": f'W/"{n}"', "queueid": str(n), "name": f"q{n}"} for n in range(5)]
    rec = Recorder(
        httpx.Response(200, json={"value": rows[:2], "@odata.nextLink": link2}),
        httpx.Response(200, json={"value": rows[2:4], "@odata.nextLink": link3}),
        httpx.Response(200, json={"value": rows[4:]}),
    )
    result = call(rec, lambda c: c.list("queues", select=["name"], page_size=2))
    assert result == rows  # as the server gave them, etags included
    assert [str(r.url) for r in rec.requests] == [BASE + "queues?$select=name", link2, link3]
    assert [r.headers["prefer"] for r in rec.requests] == ["odata.maxpagesize=2"] * 3
    assert all(r.headers["authorization"] == "Bearer tok-123" for r in rec.requests)


def test_pages_yields_one_list_per_page():
    rec = Recorder(
        httpx.Response(200, json={"value": [{"a": 1}], "@odata.nextLink": BASE + "x?p=2"}),
        httpx.Response(200, json={"value": [{"a": 2}, {"a": 3}]}),
    )

    async def op(client: DataverseClient) -> list[Any]:
        return [page async for page in client.pages("x")]

    assert call(rec, op) == [[{"a": 1}], [{"a": 2}, {"a": 3}]]


def test_query_options_are_encoded():
    rec = Recorder(httpx.Response(200, json={"value": []}))
    flt = "name eq 'Tier 1 & 2' and msdyn_priority ge 10"
    call(
        rec,
        lambda c: c.list(
            "queues",
            select=["name", "queueid"],
            filter=flt,
            orderby="name desc",
            top=3,
        ),
    )
    url = rec.last.url
    raw = url.query.decode()
    assert raw.startswith("$select=name,queueid&$filter=name%20eq%20%27Tier%201%20%26%202%27")
    assert " " not in raw
    assert "'" not in raw
    assert url.params["$select"] == "name,queueid"
    assert url.params["$filter"] == flt
    assert url.params["$orderby"] == "name desc"
    assert url.params["$top"] == "3"
    assert "$skip" not in url.params


def test_page_size_must_be_within_dataverse_limit():
    with pytest.raises(ValueError, match="page_size"):
        make_client(Recorder(), page_size=5001)

    async def scenario() -> None:
        async with make_client(Recorder()) as client:
            await client.list("queues", page_size=0)

    with pytest.raises(ValueError, match="between 1 and 5000"):
        asyncio.run(scenario())


def test_get_returns_the_row_with_select():
    row = {"@odata.etag": 'W/"7"', "queueid": QUEUE_ID, "name": "Support"}
    rec = Recorder(httpx.Response(200, json=row))
    assert call(rec, lambda c: c.get("queues", QUEUE_ID, select=["name"])) == row
    assert str(rec.last.url) == f"{BASE}queues({QUEUE_ID})?$select=name"


def test_get_missing_row_is_not_found_with_code():
    rec = Recorder(
        httpx.Response(404, json=error_body("0x80040217", "queue With Id = 5c Does Not Exist"))
    )
    err = raises(rec, lambda c: c.get("queues", QUEUE_ID))
    assert isinstance(err, NotFound)
    assert isinstance(err, ReconcilerError)
    assert err.exit_code == 1
    assert (err.status, err.code, err.method) == (404, "0x80040217", "GET")
    assert err.url == f"queues({QUEUE_ID})"
    assert err.message == "queue With Id = 5c Does Not Exist"
    assert not err.retryable
    assert str(err) == f"GET queues({QUEUE_ID}): 404 0x80040217 queue With Id = 5c Does Not Exist"


def test_create_returns_id_from_odata_entity_id():
    rec = Recorder(httpx.Response(204, headers={"OData-EntityId": f"{BASE}queues({QUEUE_ID})"}))
    body = {"queueid": QUEUE_ID, "name": "Support"}
    assert call(rec, lambda c: c.create("queues", body)) == QUEUE_ID
    assert rec.last.method == "POST"
    assert str(rec.last.url) == BASE + "queues"
    assert json.loads(rec.last.content) == body
    assert "prefer" not in rec.last.headers


def test_create_with_representation_returns_the_row():
    row = {"queueid": QUEUE_ID, "name": "Support", "@odata.etag": 'W/"1"'}
    rec = Recorder(httpx.Response(201, json=row))
    assert call(rec, lambda c: c.create("queues", {"name": "Support"}, return_representation=True))
    assert rec.last.headers["prefer"] == "return=representation"


def test_create_without_entity_id_is_a_protocol_error():
    err = raises(Recorder(httpx.Response(204)), lambda c: c.create("queues", {"name": "x"}))
    assert isinstance(err, ProtocolError)
    assert err.status == 204
    assert "OData-EntityId" in str(err)
    assert str(err).startswith("POST queues: ")


def test_create_duplicate_key_is_already_exists():
    rec = Recorder(
        httpx.Response(412, json=error_body("0x80040237", "Cannot insert duplicate key"))
    )
    err = raises(rec, lambda c: c.create("queues", {"queueid": QUEUE_ID}))
    assert type(err) is AlreadyExists
    assert err.status == 412


def test_create_only_sends_if_none_match_and_maps_412():
    rec = Recorder(
        httpx.Response(204),
        httpx.Response(412, json=error_body("0x80040237", "A record with this id exists")),
        httpx.Response(412, json=error_body("0x80060883", "precondition failed")),
    )

    async def op(client: DataverseClient) -> list[Exception]:
        await client.create_only("queues", QUEUE_ID, {"name": "a"})
        errors = []
        for _ in range(2):
            with pytest.raises(AlreadyExists) as info:
                await client.create_only("queues", QUEUE_ID, {"name": "a"})
            errors.append(info.value)
        return errors

    errors = call(rec, op)
    assert all(r.headers["if-none-match"] == "*" for r in rec.requests)
    assert all("if-match" not in r.headers for r in rec.requests)
    assert [e.code for e in errors] == ["0x80040237", "0x80060883"]


def test_update_sends_if_match_etag_or_star():
    rec = Recorder(httpx.Response(204), httpx.Response(204))

    async def op(client: DataverseClient) -> None:
        await client.update("queues", QUEUE_ID, {"name": "b"}, etag='W/"42"')
        await client.update("queues", QUEUE_ID, {"name": "b"})

    call(rec, op)
    assert [r.headers["if-match"] for r in rec.requests] == ['W/"42"', "*"]
    assert all(r.method == "PATCH" for r in rec.requests)


def test_update_stale_etag_is_stale_record():
    message = "The version of the existing record doesn't match the RowVersion property provided."
    rec = Recorder(httpx.Response(412, json=error_body("0x80060882", message)))
    err = raises(rec, lambda c: c.update("queues", QUEUE_ID, {"name": "b"}, etag='W/"1"'))
    assert type(err) is StaleRecord
    assert isinstance(err, PreconditionFailed)
    assert str(err) == f"PATCH queues({QUEUE_ID}): 412 0x80060882 {message}"


def test_update_other_412_is_precondition_failed_and_missing_row_not_found():
    rec = Recorder(
        httpx.Response(412, json=error_body("0x80000000", "other")),
        httpx.Response(404, json=error_body("0x80040217", "Does Not Exist")),
    )

    async def op(client: DataverseClient) -> None:
        with pytest.raises(PreconditionFailed) as info:
            await client.update("queues", QUEUE_ID, {})
        assert type(info.value) is PreconditionFailed
        with pytest.raises(NotFound):
            await client.update("queues", QUEUE_ID, {})

    call(rec, op)
    assert len(rec.requests) == 2


def test_delete_with_and_without_etag():
    rec = Recorder(
        httpx.Response(204),
        httpx.Response(204),
        httpx.Response(404, json=error_body("0x80040217", "gone")),
    )

    async def op(client: DataverseClient) -> None:
        await client.delete("queues", QUEUE_ID)
        await client.delete("queues", QUEUE_ID, etag='W/"9"')
        with pytest.raises(NotFound):
            await client.delete("queues", QUEUE_ID)

    call(rec, op)
    assert [r.method for r in rec.requests] == ["DELETE"] * 3
    assert "if-match" not in rec.requests[0].headers
    assert rec.requests[1].headers["if-match"] == 'W/"9"'
    assert rec.requests[0].content == b""


def test_who_am_i():
    body = {
        "@odata.context": BASE + "$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
        "UserId": "u-1",
        "BusinessUnitId": "bu-1",
        "OrganizationId": "org-1",
    }
    rec = Recorder(httpx.Response(200, json=body))
    assert call(rec, lambda c: c.who_am_i()) == WhoAmI("u-1", "bu-1", "org-1")
    assert str(rec.last.url) == BASE + "WhoAmI"


def test_who_am_i_without_ids_is_a_protocol_error():
    err = raises(Recorder(httpx.Response(200, json={"UserId": "u"})), lambda c: c.who_am_i())
    assert isinstance(err, ProtocolError)
    assert "BusinessUnitId" in str(err)


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, BadRequest, False),
        (401, Unauthorized, False),
        (403, Unauthorized, False),
        (409, BadRequest, False),
        (500, ServerError, False),
        (502, ServerError, True),
        (503, ServerError, True),
        (504, ServerError, True),
    ],
)
def test_status_maps_to_error_class(status, cls, retryable):
    rec = Recorder(httpx.Response(status, json=error_body("0x80048d19", "details")))
    err = raises(rec, lambda c: c.get("queues", QUEUE_ID))
    assert type(err) is cls
    assert err.retryable is retryable
    assert err.status == status
    assert err.code == "0x80048d19"


def test_html_500_page_is_a_protocol_error_with_its_title():
    html = "<html><head><title>Runtime Error</title></head><body>" + "x" * 5000 + "</body></html>"
    rec = Recorder(httpx.Response(500, text=html, headers={"content-type": "text/html"}))
    err = raises(rec, lambda c: c.list("queues"))
    assert isinstance(err, ProtocolError)
    assert err.status == 500
    assert "500" in str(err)
    assert "text/html: Runtime Error" in str(err)
    assert "xxxx" not in str(err)


def test_plain_text_error_body_is_truncated():
    rec = Recorder(httpx.Response(404, text="nope " * 100, headers={"content-type": "text/plain"}))
    err = raises(rec, lambda c: c.get("queues", QUEUE_ID))
    assert isinstance(err, ProtocolError)  # a 404 that is not a Dataverse answer: a wrong URL
    assert "text/plain: nope nope" in str(err)
    assert len(str(err)) < 350


def test_json_error_body_of_another_shape_is_not_echoed():
    rec = Recorder(httpx.Response(400, json={"detail": "SECRET-ish payload echo"}))
    err = raises(rec, lambda c: c.upsert("queues", QUEUE_ID, {}))
    assert isinstance(err, ProtocolError)
    assert "not a Dataverse error document" in str(err)
    assert "payload echo" not in str(err)


def test_gateway_html_503_stays_a_retryable_server_error():
    rec = Recorder(
        httpx.Response(
            503, text="<h1>Service Unavailable</h1>", headers={"content-type": "text/html"}
        )
    )
    err = raises(rec, lambda c: c.list("queues"))
    assert type(err) is ServerError
    assert err.retryable
    assert err.code is None
    assert "Service Unavailable" in str(err)


def test_empty_401_is_unauthorized():
    err = raises(Recorder(httpx.Response(401)), lambda c: c.who_am_i())
    assert type(err) is Unauthorized
    assert "401" in str(err)
    assert "empty body" in str(err)


HTML = {"content-type": "text/html"}
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("response", "fragment"),
    [
        (
            httpx.Response(200, text="<html>login</html>", headers=HTML),
            "expected JSON, got text/html",
        ),
        (httpx.Response(200, content=b'{"value": [{"a": 1}', headers=JSON), "invalid JSON"),
        (httpx.Response(200, json=[1, 2]), "expected a JSON object, got list"),
        (httpx.Response(200, json={"rows": []}), "no 'value' list"),
        (httpx.Response(200, json={"value": [1]}), "no 'value' list"),
        (httpx.Response(302, headers={"location": "https://login/"}), "unexpected redirect 302"),
    ],
)
def test_unexpected_answers_are_protocol_errors(response, fragment):
    err = raises(Recorder(response), lambda c: c.list("queues"))
    assert isinstance(err, ProtocolError)
    assert fragment in str(err)
    assert str(err).startswith("GET queues: ")


def test_undecodable_content_encoding_is_a_protocol_error():
    rec = Recorder(
        httpx.Response(
            200, stream=httpx.ByteStream(b"not gzip"), headers={"content-encoding": "gzip"}
        ),
    )
    err = raises(rec, lambda c: c.list("queues"))
    assert isinstance(err, ProtocolError)
    assert "cannot decode" in str(err)


def test_long_urls_are_shortened_in_messages():
    rec = Recorder(httpx.Response(400, json=error_body("0x1", "bad filter")))
    long_filter = " or ".join(f"name eq 'queue {n}'" for n in range(40))
    err = raises(rec, lambda c: c.list("queues", filter=long_filter))
    assert err.url is not None
    assert len(err.url) > 500
    assert "…: 400 0x1 bad filter" in str(err)
    assert len(str(err)) < 250


def test_stats_count_per_method_and_table():
    rec = Recorder(
        httpx.Response(200, json={"value": [], "@odata.nextLink": BASE + "queues?p=2"}),
        httpx.Response(200, json={"value": []}),
        httpx.Response(200, json={"UserId": "u", "BusinessUnitId": "b", "OrganizationId": "o"}),
        httpx.Response(204),
        httpx.Response(204, headers={"OData-EntityId": f"{BASE}msdyn_liveworkstreams(1)"}),
        httpx.Response(404, json=error_body("0x80040217", "missing")),
    )

    async def op(client: DataverseClient) -> None:
        await client.list("queues")
        await client.who_am_i()
        await client.update("queues", QUEUE_ID, {})
        await client.create("msdyn_liveworkstreams", {})
        with pytest.raises(NotFound):
            await client.delete("queues", QUEUE_ID)
        stats = client.stats
        assert stats.total == 6
        assert stats.retries == 0
        assert stats.snapshot() == {
            "DELETE queues": 1,
            "GET WhoAmI": 1,
            "GET queues": 2,
            "PATCH queues": 1,
            "POST msdyn_liveworkstreams": 1,
        }
        assert stats.by_method() == {"GET": 3, "PATCH": 1, "POST": 1, "DELETE": 1}
        assert stats.by_table() == {"queues": 4, "WhoAmI": 1, "msdyn_liveworkstreams": 1}
        assert repr(stats) == "RequestStats(total=6, retries=0)"
        stats.reset()
        assert (stats.total, stats.snapshot(), stats.retries) == (0, {}, 0)

    call(rec, op)


def test_next_link_to_another_origin_is_refused_and_gets_no_token():
    rec = Recorder(
        httpx.Response(200, json={"value": [], "@odata.nextLink": "https://other.example/v1/rows"}),
        httpx.Response(200, json={"value": [{"a": 1}]}),
    )

    async def op(client: DataverseClient) -> None:
        with pytest.raises(ProtocolError, match="points away from the org"):
            await client.list("queues")

    call(rec, op)
    assert [r.url.host for r in rec.requests] == ["contoso.crm4.dynamics.com"]


def test_next_link_on_another_path_is_counted_by_its_last_segment():
    rec = Recorder(
        httpx.Response(
            200, json={"value": [], "@odata.nextLink": "https://contoso.crm4.dynamics.com/v1/rows"}
        ),
        httpx.Response(200, json={"value": [{"a": 1}]}),
    )

    async def op(client: DataverseClient) -> dict[str, int]:
        assert await client.list("queues") == [{"a": 1}]
        return client.stats.snapshot()

    assert call(rec, op) == {"GET queues": 1, "GET rows": 1}


def test_repr_and_close():
    async def scenario() -> None:
        client = make_client(Recorder(), auth=StaticToken("TOKEN-in-repr"))
        assert repr(client) == f"DataverseClient({BASE!r})"
        async with client as entered:
            assert entered is client
        assert client._http.is_closed

    asyncio.run(scenario())


def test_error_messages_without_code_or_message_and_without_request():
    from reconciler.dataverse.errors import ApiError, api_error

    bare = api_error(404, code=None, message="")
    assert type(bare) is NotFound
    assert str(bare) == "404"
    assert repr(bare) == "NotFound('404')"
    coded = ApiError(409, "", code="0x80040333", url="queues")
    assert str(coded) == "queues: 409 0x80040333"
    assert not coded.retryable


def test_error_from_a_response_without_its_request():
    from reconciler.dataverse.errors import error_from_response

    response = httpx.Response(
        412, json=error_body("0x80060883", "exists"), headers={"Retry-After": "2"}
    )
    error = error_from_response(response, method="PATCH", url="queues(1)")
    assert type(error) is PreconditionFailed
    assert error.retry_after == 2.0
    assert str(error) == "PATCH queues(1): 412 0x80060883 exists"
