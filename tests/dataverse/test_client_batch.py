"""$batch: the multipart request we write, the multipart answer we read, and their failures."""

import asyncio
import email
import email.policy
import json
import re
from email.message import Message
from typing import Any

import httpx
import pytest

from reconciler.dataverse import (
    AlreadyExists,
    BadRequest,
    BatchRequest,
    BatchResponse,
    ChangeSet,
    DataverseClient,
    NotFound,
    ProtocolError,
    RetryPolicy,
    StaleRecord,
    StaticToken,
    Throttled,
)
from reconciler.dataverse.batch import encode_batch, parse_batch_response

BASE = "https://contoso.crm4.dynamics.com/api/data/v9.2/"
Q1 = "a59c24d6-0000-4000-8000-000000000001"


def parse_mime(content_type: str, body: bytes) -> Message:
    """Our request, read back by the standard library's MIME parser."""
    message = email.message_from_bytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body, policy=email.policy.HTTP
    )
    assert not message.defects
    return message


def http_message(part: Message) -> tuple[str, dict[str, str], str]:
    payload = part.get_payload(decode=True).decode("utf-8")
    head, _, body = payload.partition("\r\n\r\n")
    request_line, *header_lines = head.split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return request_line, headers, body.removesuffix("\r\n")


def test_encoding_reads_back_as_odata_multipart():
    items = [
        BatchRequest("GET", "queues?$select=name"),
        ChangeSet(
            [
                BatchRequest("POST", "queues", {"queueid": Q1, "name": "Kö 1 €"}, content_id="1"),
                BatchRequest(
                    "PATCH",
                    "$1",
                    {"description": "d"},
                    headers={"If-Match": 'W/"5"'},
                    content_id="2",
                ),
                BatchRequest("delete", f"/api/data/v9.2/queues({Q1})"),
            ]
        ),
        BatchRequest("PATCH", f"queues({Q1})", {"name": "x"}, headers={"If-None-Match": "*"}),
    ]
    content_type, body = encode_batch(items, BASE)
    boundary = content_type.removeprefix("multipart/mixed; boundary=")
    assert re.fullmatch(r"batch_[0-9a-f-]{36}", boundary)
    assert b"\n" not in body.replace(b"\r\n", b"")  # CRLF line ends only
    assert body.startswith(f"--{boundary}\r\n".encode())
    assert body.endswith(f"--{boundary}--\r\n".encode())

    message = parse_mime(content_type, body)
    get, change_set, patch = message.get_payload()
    assert get["Content-Type"] == "application/http"
    assert get["Content-Transfer-Encoding"] == "binary"
    assert http_message(get) == (f"GET {BASE}queues?$select=name HTTP/1.1", {}, "")

    assert change_set.get_content_type() == "multipart/mixed"
    assert change_set.get_boundary().startswith("changeset_")
    post, reference, delete = change_set.get_payload()
    assert [p["Content-ID"] for p in (post, reference, delete)] == ["1", "2", "3"]
    line, headers, content = http_message(post)
    assert line == f"POST {BASE}queues HTTP/1.1"
    assert headers == {"Content-Type": "application/json"}
    assert json.loads(content) == {"queueid": Q1, "name": "Kö 1 €"}
    line, headers, content = http_message(reference)
    assert line == "PATCH $1 HTTP/1.1"
    assert headers == {"If-Match": 'W/"5"', "Content-Type": "application/json"}
    assert json.loads(content) == {"description": "d"}
    assert http_message(delete) == (
        f"DELETE https://contoso.crm4.dynamics.com/api/data/v9.2/queues({Q1}) HTTP/1.1",
        {},
        "",
    )

    assert "Content-ID" not in patch
    line, headers, content = http_message(patch)
    assert line == f"PATCH {BASE}queues({Q1}) HTTP/1.1"
    assert headers["If-None-Match"] == "*"
    assert "€".encode() in body  # binary transfer: UTF-8 as is


ENTRY = "application/json;type=entry"


def test_encoding_keeps_a_given_content_type_and_numbers_after_given_ids():
    items = [
        ChangeSet(
            [
                BatchRequest("POST", "notes", {"a": 1}, headers={"content-type": ENTRY}),
                BatchRequest("POST", "notes", {"a": 2}, content_id="7"),
                BatchRequest("POST", "notes", {"a": 3}, content_id="3"),
            ]
        )
    ]
    content_type, body = encode_batch(items, BASE, boundary="batch_fixed")
    assert content_type == "multipart/mixed; boundary=batch_fixed"
    (change_set,) = parse_mime(content_type, body).get_payload()
    parts = change_set.get_payload()
    assert [p["Content-ID"] for p in parts] == ["8", "7", "3"]
    _, headers, _ = http_message(parts[0])
    assert headers == {"content-type": ENTRY}


def test_change_sets_reject_gets_and_emptiness_and_batches_have_a_limit():
    with pytest.raises(ValueError, match="cannot hold a GET"):
        ChangeSet([BatchRequest("POST", "queues", {}), BatchRequest("get", "queues")])
    with pytest.raises(ValueError, match="at least one"):
        ChangeSet([])
    with pytest.raises(ValueError, match="at most 1000"):
        encode_batch(
            [ChangeSet([BatchRequest("DELETE", f"queues({n})") for n in range(1001)])], BASE
        )


def test_batch_requests_refuse_unencoded_urls_odd_and_repeated_content_ids():
    with pytest.raises(ValueError, match="percent-encoded"):
        BatchRequest("GET", "queues?$filter=name eq 'x'")
    with pytest.raises(ValueError, match="must be a number"):
        BatchRequest("POST", "queues", {}, content_id="ref")
    with pytest.raises(ValueError, match="must be unique"):
        ChangeSet(
            [
                BatchRequest("POST", "queues", {}, content_id="1"),
                BatchRequest("POST", "queues", {}, content_id="1"),
            ]
        )


def test_batch_response_repr_hides_the_body():
    response = BatchResponse(201, {"ETag": 'W/"1"'}, {"secret": "SECRET-IN-BODY"}, "1")
    assert "SECRET-IN-BODY" not in repr(response)
    assert repr(response) == "BatchResponse(201, content_id='1', headers=['ETag'])"


def test_batch_request_repr_hides_the_body():
    request = BatchRequest("POST", "accounts", {"secret": "BODY-MARKER"}, content_id="1")
    assert repr(request) == "BatchRequest(POST accounts, content_id='1')"


def crlf(*lines: str) -> bytes:
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")


# A change set that succeeded, a GET, and a failed PATCH; shaped like Dataverse's own answers.
RESPONSE_TYPE = "multipart/mixed; boundary=batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f"
RESPONSE = crlf(
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f",
    "Content-Type: multipart/mixed; "
    "boundary=changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc",
    "",
    "--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "Content-ID: 1",
    "",
    "HTTP/1.1 204 No Content",
    "OData-Version: 4.0",
    f"Location: {BASE}queues({Q1})",
    f"OData-EntityId: {BASE}queues({Q1})",
    "",
    "",
    "--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "Content-ID: 2",
    "",
    "HTTP/1.1 201 Created",
    "Content-Type: application/json; odata.metadata=minimal",
    "OData-Version: 4.0",
    "",
    '{"queueid":"q2","name":"Tier 2"}',
    "--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abc--",
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "",
    "HTTP/1.1 200 OK",
    "Content-Type: application/json; odata.metadata=minimal",
    "OData-Version: 4.0",
    "",
    "{",
    '  "value": [{"name": "Tier 1"}]',
    "}",
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f",
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    "",
    "HTTP/1.1 412 Precondition Failed",
    "Content-Type: application/json; odata.metadata=minimal",
    "OData-Version: 4.0",
    "",
    '{"error":{"code":"0x80060882","message":"The version of the existing record doesn\'t match"}}',
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f--",
    "",
)
ITEMS = [
    ChangeSet(
        [
            BatchRequest("POST", "queues", {"queueid": Q1}, content_id="1"),
            BatchRequest("POST", "queues", {"name": "Tier 2"}, content_id="2"),
        ]
    ),
    BatchRequest("GET", "queues?$select=name"),
    BatchRequest("PATCH", f"queues({Q1})", {"name": "n"}, headers={"If-Match": 'W/"1"'}),
]


def test_response_parsing_flattens_change_sets_in_order():
    created, represented, listed, stale = parse_batch_response(RESPONSE_TYPE, RESPONSE, ITEMS)
    assert (created.status, created.content_id, created.body, created.ok) == (204, "1", None, True)
    assert created.headers["OData-Version"] == "4.0"
    assert created.header("odata-entityid") == f"{BASE}queues({Q1})"
    assert created.entity_id == Q1
    assert created.error() is None
    assert created.request is ITEMS[0].requests[0]
    assert (represented.status, represented.content_id) == (201, "2")
    assert represented.body == {"queueid": "q2", "name": "Tier 2"}
    assert represented.entity_id is None
    assert represented.request is ITEMS[0].requests[1]
    assert listed.body == {"value": [{"name": "Tier 1"}]}
    assert listed.content_id is None
    assert listed.request is ITEMS[1]
    assert not stale.ok
    error = stale.error()
    assert isinstance(error, StaleRecord)
    assert str(error) == (
        f"PATCH queues({Q1}): 412 0x80060882 The version of the existing record doesn't match"
    )


def test_response_parsing_without_items_and_with_lf_line_ends():
    lf = RESPONSE.replace(b"\r\n", b"\n")
    responses = parse_batch_response(RESPONSE_TYPE, lf)
    assert [r.status for r in responses] == [204, 201, 200, 412]
    assert all(r.request is None for r in responses)
    assert responses[1].body == {"queueid": "q2", "name": "Tier 2"}


def test_change_set_answers_without_content_ids_pair_by_position():
    without_ids = re.sub(rb"Content-ID: \d\r\n", b"", RESPONSE)
    assert without_ids != RESPONSE
    created, represented, *_ = parse_batch_response(RESPONSE_TYPE, without_ids, ITEMS)
    assert created.content_id is None
    assert created.request is ITEMS[0].requests[0]
    assert represented.request is ITEMS[0].requests[1]


def test_quoted_boundary_preamble_and_failed_change_set():
    body = crlf(
        "This is a preamble.",
        "--b1",
        "Content-Type: application/http",
        "Content-ID: 4",
        "",
        "HTTP/1.1 412 Precondition Failed",
        "Content-Type: application/json",
        "",
        '{"error":{"code":"0x80040237","message":"Cannot insert duplicate key."}}',
        "--b1",
        "Content-Type: application/http",
        "",
        "HTTP/1.1 404 Not Found",
        "Content-Type: text/plain",
        "",
        "no such thing",
        "--b1",
        "Content-Type: application/http",
        "",
        "HTTP/1.1 500 Internal Server Error",
        "",
        "--b1--",
        "epilogue",
    )
    items = [ChangeSet([BatchRequest("POST", "queues", {}), BatchRequest("POST", "queues", {})])]
    dup, missing, crashed = parse_batch_response('multipart/mixed; boundary="b1"', body, items)
    error = dup.error()
    assert isinstance(error, AlreadyExists)
    assert dup.request is None  # one answer for the failed change set, naming no request of it
    assert str(error) == "412 0x80040237 Cannot insert duplicate key. (batch Content-ID 4)"
    error = missing.error()
    assert isinstance(error, NotFound)
    assert "text/plain: no such thing" in str(error)
    error = crashed.error()
    assert error is not None
    assert error.status == 500
    assert "no error document" in str(error)


def test_a_failed_change_set_answer_is_paired_by_content_id():
    body = crlf(
        "--b",
        "Content-Type: application/http",
        "Content-ID: 2",
        "",
        "HTTP/1.1 412 Precondition Failed",
        "Content-Type: application/json",
        "",
        '{"error":{"code":"0x80060882","message":"stale"}}',
        "--b--",
    )
    second = BatchRequest("PATCH", "queues(2)", {"name": "n"}, headers={"If-Match": 'W/"1"'})
    items = [ChangeSet([BatchRequest("PATCH", "queues(1)", {}, content_id="1"), second])]
    (stale,) = parse_batch_response("multipart/mixed; boundary=b", body, items)
    assert stale.request is second  # Content-ID 2 was assigned to it on the way out
    assert str(stale.error()) == "PATCH queues(2): 412 0x80060882 stale"
    anonymous = body.replace(b"Content-ID: 2\r\n", b"")
    (stale,) = parse_batch_response("multipart/mixed; boundary=b", anonymous, items)
    assert stale.request is None
    assert str(stale.error()) == "412 0x80060882 stale"


def test_batch_response_error_knows_create_only_requests():
    response = BatchResponse(
        412,
        {"Content-Type": "application/json", "Retry-After": "3"},
        {"error": {"code": "0x80060883", "message": "exists"}},
        None,
        BatchRequest("PATCH", "queues(1)", {}, headers={"If-None-Match": "*"}),
    )
    error = response.error()
    assert isinstance(error, AlreadyExists)
    assert error.retry_after == 3.0
    assert str(error).startswith("PATCH queues(1): 412")


MIXED_B = "multipart/mixed; boundary=b"
HTTP_PART = ("--b", "Content-Type: application/http", "")


@pytest.mark.parametrize(
    ("content_type", "body", "fragment"),
    [
        ("application/json", b"{}", "expected a multipart/mixed"),
        ("multipart/mixed", b"--x--", "without a boundary"),
        (RESPONSE_TYPE, b"<html>oops</html>", "no delimiter"),
        (MIXED_B, b"not at a line start--b\r\nrest", "no delimiter"),
        (RESPONSE_TYPE, RESPONSE[: len(RESPONSE) // 2], "is not closed"),
        (RESPONSE_TYPE, RESPONSE[: RESPONSE.index(b'"value"')], "is not closed"),
        (MIXED_B, crlf("--b junk", "--b--"), "bad delimiter line"),
        (MIXED_B, crlf("--b", "Content-Type: text/plain", "", "hi", "--b--"), "application/http"),
        (MIXED_B, crlf("--b", "Content-Type application/http", "", "--b--"), "header line"),
        (MIXED_B, crlf(*HTTP_PART, "HTTP/1.1 OK", "", "--b--"), "status line"),
        (MIXED_B, crlf(*HTTP_PART, "--b--"), "status line"),
        (
            MIXED_B,
            crlf(*HTTP_PART, "HTTP/1.1 200 OK", "Content-Type: application/json", "", "[", "--b--"),
            "invalid JSON",
        ),
        (MIXED_B, crlf(*HTTP_PART, "HTTP/1.1 200 OK", "X: \udcff", "", "--b--"), "not UTF-8"),
        (
            MIXED_B,
            crlf("--b", "Content-Type: multipart/mixed; boundary=c", "", "--c", "--b--"),
            "'c' part is not closed",
        ),
    ],
)
def test_malformed_answers_are_protocol_errors(content_type, body, fragment):
    with pytest.raises(ProtocolError) as info:
        parse_batch_response(content_type, body)
    assert fragment in str(info.value)


def test_an_empty_part_is_a_protocol_error_not_a_crash():
    with pytest.raises(ProtocolError, match="expected application/http"):
        parse_batch_response("multipart/mixed; boundary=b", crlf("--b", "--b", "--b--"))


class BatchServer:
    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def run_batch(server: BatchServer, items: Any, **kwargs: Any) -> tuple[Any, DataverseClient]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = DataverseClient(
        BASE,
        auth=StaticToken("t"),
        transport=httpx.MockTransport(server),
        retry=RetryPolicy(sleep=sleep),
    )

    async def scenario() -> Any:
        async with client:
            return await client.batch(items, **kwargs)

    return asyncio.run(scenario()), client


def test_client_batch_posts_multipart_and_parses_the_answer():
    server = BatchServer(
        httpx.Response(200, content=RESPONSE, headers={"Content-Type": RESPONSE_TYPE})
    )
    responses, client = run_batch(server, ITEMS, continue_on_error=True)
    (request,) = server.requests
    assert request.method == "POST"
    assert str(request.url) == BASE + "$batch"
    assert request.headers["content-type"].startswith("multipart/mixed; boundary=batch_")
    assert request.headers["prefer"] == "odata.continue-on-error"
    assert request.headers["authorization"] == "Bearer t"
    assert request.headers["odata-version"] == "4.0"
    message = parse_mime(request.headers["content-type"], request.content)
    assert len(message.get_payload()) == 3
    assert [r.status for r in responses] == [204, 201, 200, 412]
    assert responses[3].request is ITEMS[2]
    assert client.stats.snapshot() == {"POST $batch": 1}


def test_batch_without_continue_on_error_and_empty_batch():
    server = BatchServer(
        httpx.Response(200, content=RESPONSE, headers={"Content-Type": RESPONSE_TYPE})
    )
    run_batch(server, ITEMS)
    assert "prefer" not in server.requests[0].headers
    empty, client = run_batch(BatchServer(), [])
    assert empty == []
    assert client.stats.total == 0


def test_throttled_batch_is_retried_as_a_whole():
    throttled = httpx.Response(
        429,
        json={"error": {"code": "0x80072321", "message": "Combined execution time exceeded"}},
        headers={"Retry-After": "4"},
    )
    server = BatchServer(
        throttled, httpx.Response(200, content=RESPONSE, headers={"Content-Type": RESPONSE_TYPE})
    )
    responses, client = run_batch(server, ITEMS)
    assert len(responses) == 4
    assert server.requests[0].content == server.requests[1].content
    assert client.stats.snapshot() == {"POST $batch": 2}
    assert client.stats.retries == 1

    server = BatchServer(throttled)
    with pytest.raises(Throttled):
        run_batch(server, ITEMS)  # Retry-After 4 s each time, but the policy runs out of attempts


def test_rejected_batch_and_malformed_batch_answer():
    rejected = httpx.Response(
        400, json={"error": {"code": "0x0", "message": "The batch request must have ..."}}
    )
    with pytest.raises(BadRequest, match=r"^POST \$batch: 400 0x0 The batch request"):
        run_batch(BatchServer(rejected), ITEMS)
    html = httpx.Response(200, text="<html>Sign in</html>", headers={"content-type": "text/html"})
    with pytest.raises(ProtocolError) as info:
        run_batch(BatchServer(html), ITEMS)
    assert info.value.status == 200
    assert str(info.value).startswith("POST $batch: expected a multipart/mixed batch answer")
