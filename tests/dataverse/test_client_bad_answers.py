"""Answers that are not the Web API's: each is a clear ``DataverseError``, retried when a read
may come through next time, and never taken for a write's success.

The answers are those ``reconciler emulator serve --fault-kinds`` injects (truncated JSON,
gateway HTML pages, a wrong content type, odd 500s), served by ``httpx.MockTransport``.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tokens import entra

from reconciler.dataverse import (
    AuthError,
    ClientCredentials,
    DataverseClient,
    DataverseError,
    OutcomeUnknown,
    ProtocolError,
    RetryPolicy,
    ServerError,
    StaticToken,
)
from reconciler.dataverse.batch import parse_batch_response

BASE = "https://contoso.crm4.dynamics.com/api/data/v9.2/"
ID = "5c2a36a1-0d3b-4c1e-9a52-1f0e0e5b7a11"
ROW = {"queueid": ID, "name": "q"}
JSON = {"content-type": "application/json; odata.metadata=minimal"}
SECRET_BODY = {"msdyn_fbpageaccesstoken": "SECRET-IN-BODY", "name": "x"}


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Script:
    """Answers from a list; the last one repeats."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def run(script: Script, op: Callable[[DataverseClient], Any], **policy: Any) -> Any:
    policy.setdefault("jitter", 0.0)
    policy.setdefault("sleep", Sleeps())
    retry = RetryPolicy(**policy)

    async def scenario() -> Any:
        async with DataverseClient(
            BASE, auth=StaticToken("t"), transport=httpx.MockTransport(script), retry=retry
        ) as client:
            return await op(client)

    return asyncio.run(scenario())


def fails(script: Script, op: Callable[[DataverseClient], Any], **policy: Any) -> DataverseError:
    with pytest.raises(DataverseError) as info:
        run(script, op, **policy)
    error = info.value
    assert error.__cause__ is None  # nothing chained: a traceback shows this error alone
    assert error.__context__ is None or error.__suppress_context__
    return info.value


def get(client: DataverseClient) -> Any:
    return client.get("queues", ID)


def update(client: DataverseClient) -> Any:
    return client.update("queues", ID, SECRET_BODY, etag='W/"5"')


def create_only(client: DataverseClient) -> Any:
    return client.create_only("queues", ID, SECRET_BODY)


def truncated() -> httpx.Response:
    return httpx.Response(200, content=b'{"@odata.context":"x","queueid":"5c2a3', headers=JSON)


def html(status: int) -> httpx.Response:
    page = (
        "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
        "</h1></center><hr><center>nginx</center></body></html>"
    )
    return httpx.Response(status, text=page, headers={"content-type": "text/html"})


# --- reads ------------------------------------------------------------------------------------


def test_a_truncated_read_is_retried_and_comes_through():
    script = Script(truncated(), httpx.Response(200, json=ROW))
    assert run(script, get) == ROW
    assert len(script.requests) == 2


def test_a_read_truncated_every_time_stops_after_max_bad_answers():
    sleeps = Sleeps()
    script = Script(truncated())
    err = fails(script, get, sleep=sleeps)
    assert isinstance(err, ProtocolError)
    assert err.retryable
    assert err.attempts == 3 == len(script.requests)
    assert sleeps.waits == [0.5, 1.0]
    text = str(err)
    assert text.startswith(f"GET queues({ID}): invalid JSON in a 200 answer (38 bytes; cut short")
    assert "Unterminated string" in text
    assert "(after 3 attempts)" in text
    assert "5c2a3'" not in text  # the body itself is not quoted


def test_bad_answers_and_other_failures_share_max_attempts():
    unavailable = httpx.Response(503, json={"error": {"code": "0x0", "message": "busy"}})
    script = Script(truncated(), unavailable, unavailable, truncated(), truncated())
    err = fails(script, get, max_attempts=4)
    assert isinstance(err, ProtocolError)
    assert err.attempts == 4


@pytest.mark.parametrize("content_type", ["text/plain; charset=utf-8", "text/html"])
def test_json_labelled_as_something_else_is_final_and_not_quoted(content_type):
    body = httpx.Response(200, json=SECRET_BODY).content
    script = Script(httpx.Response(200, content=body, headers={"content-type": content_type}))
    err = fails(script, get)
    assert isinstance(err, ProtocolError)
    assert not err.retryable
    assert len(script.requests) == 1
    assert str(err) == (
        f"GET queues({ID}): expected JSON, got {content_type}, {len(body)} bytes: JSON, not shown"
    )


def test_a_blank_body_of_another_type_says_so():
    answer = httpx.Response(200, content=b"  \r\n", headers={"content-type": "text/plain"})
    err = fails(Script(answer), get)
    assert str(err) == f"GET queues({ID}): expected JSON, got text/plain, 4 bytes: empty"


def test_an_unknown_charset_is_read_as_utf_8():
    headers = {"content-type": "text/html; charset=no-such-codec"}
    err = fails(
        Script(httpx.Response(500, content="<h1>Fehler ä</h1>".encode(), headers=headers)), get
    )
    assert str(err).endswith("(text/html; charset=no-such-codec: Fehler ä)")


def test_an_html_page_on_a_read_names_its_title():
    script = Script(
        httpx.Response(
            200, text="<html><title>Sign in</title></html>", headers={"content-type": "text/html"}
        )
    )
    err = fails(script, lambda c: c.list("queues"))
    assert str(err) == "GET queues: expected JSON, got text/html, 35 bytes: Sign in"


def test_a_gateway_page_on_a_read_is_retried_a_500_page_is_not():
    script = Script(html(502), httpx.Response(200, json=ROW))
    assert run(script, get) == ROW
    script = Script(html(500))
    err = fails(script, get)
    assert isinstance(err, ProtocolError)
    assert err.status == 500
    assert len(script.requests) == 1
    assert str(err) == f"GET queues({ID}): 500 Internal Server Error (text/html: 502 Bad Gateway)"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(500), "500 Internal Server Error (empty body)"),
        (
            httpx.Response(500, content=b"Unhandled \x1b[31mexception\xff\r\n   at Crm.Main()"),
            "500 Internal Server Error (untyped body: Unhandled \\x1b[31mexception\ufffd at "
            "Crm.Main())",
        ),
        (
            httpx.Response(500, json={"Message": "An error has occurred."}),
            "500 Internal Server Error (a JSON body that is not a Dataverse error document)",
        ),
        (
            httpx.Response(500, text="x" * 3_000_000, headers={"content-type": "text/plain"}),
            "500 Internal Server Error (text/plain, 3000000 bytes: " + "x" * 199 + "…)",
        ),
        (
            httpx.Response(500, content=b"[" * 100_000, headers=JSON),
            "500 Internal Server Error (application/json; odata.metadata=minimal, 100000 bytes: "
            "JSON, not shown)",
        ),
    ],
    ids=["empty", "control-characters", "json-without-error", "huge", "deep-json"],
)
def test_odd_500s_say_what_came_back_safely(answer, expected):
    err = fails(Script(answer), get)
    assert isinstance(err, ProtocolError)
    assert not err.retryable
    assert str(err) == f"GET queues({ID}): {expected}"
    assert "\x1b" not in str(err)


def test_deeply_nested_json_in_a_200_is_a_protocol_error_not_a_crash():
    err = fails(Script(httpx.Response(200, content=b"[" * 100_000, headers=JSON)), get)
    assert isinstance(err, ProtocolError)
    assert "nested too deeply" in str(err)


def test_a_next_link_that_is_no_url_is_a_protocol_error():
    page = {"value": [ROW], "@odata.nextLink": "http://[::1"}
    err = fails(Script(httpx.Response(200, json=page)), lambda c: c.list("queues"))
    assert isinstance(err, ProtocolError)
    assert "points away from the org" in str(err)


# --- writes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        truncated(),
        httpx.Response(200, json={}, headers={"content-type": "text/plain"}),
        httpx.Response(
            200, text="<html><title>Sign in</title></html>", headers={"content-type": "text/html"}
        ),
        httpx.Response(201, content=b"[" * 100_000, headers=JSON),
    ],
    ids=["truncated", "json-as-text", "html", "deep-json"],
)
@pytest.mark.parametrize("op", [update, create_only], ids=["update", "create-only"])
def test_a_garbled_answer_to_a_write_is_an_unknown_outcome(answer, op):
    script = Script(answer, httpx.Response(204))
    err = fails(script, op)
    assert isinstance(err, OutcomeUnknown)
    assert not err.retryable
    assert len(script.requests) == 1  # not sent again: the caller reads the record back
    text = str(err)
    assert text.startswith(f"PATCH queues({ID}): {answer.status_code} answer that is not")
    assert "the write may have been applied" in text
    assert "SECRET-IN-BODY" not in text


def test_a_write_answered_with_no_body_or_json_succeeds():
    script = Script(
        httpx.Response(204),
        httpx.Response(204, headers={"content-type": "text/html"}),
        httpx.Response(200, json=ROW),
    )

    async def three(client: DataverseClient) -> None:
        for _ in range(3):
            await update(client)

    run(script, three)
    assert len(script.requests) == 3


def test_a_create_whose_representation_is_garbled_is_an_unknown_outcome():
    err = fails(
        Script(truncated()),
        lambda c: c.create("queues", SECRET_BODY, return_representation=True),
    )
    assert isinstance(err, OutcomeUnknown)
    assert str(err).startswith("POST queues: 200 answer that is not the Web API's (invalid JSON")


@pytest.mark.parametrize("status", [500, 502])
def test_an_html_page_on_a_write_is_never_success(status):
    script = Script(html(status), httpx.Response(204))
    err = fails(script, update)
    assert isinstance(err, OutcomeUnknown if status == 502 else ProtocolError)
    assert len(script.requests) == 1
    assert "502 Bad Gateway" in str(err)
    assert "SECRET-IN-BODY" not in str(err)


def test_a_dataverse_error_message_is_shown_on_one_printable_line():
    message = "Plugin failed:\r\n\tat Contoso.Plugin.Execute() \x1b]0;owned\x07\u202e" + "x" * 2000
    body = {"error": {"code": "0x80040265\n", "message": message}}
    err = fails(Script(httpx.Response(400, json=body)), get)
    assert err.code == "0x80040265"
    text = str(err)
    assert text.startswith(
        f"GET queues({ID}): 400 0x80040265 Plugin failed: at Contoso.Plugin.Execute() "
        "\\x1b]0;owned\\x07\\u202e"
    )
    assert len(text) < 1100
    assert all(char.isprintable() for char in text)


def test_a_500_with_a_dataverse_error_document_stays_a_server_error():
    body = {"error": {"code": "0x80040216", "message": "An unexpected error occurred."}}
    err = fails(Script(httpx.Response(500, json=body, headers={"content-type": "text/plain"})), get)
    assert type(err) is ServerError
    assert err.code == "0x80040216"


# --- the other parsers of answers -------------------------------------------------------------


def test_deeply_nested_json_in_a_batch_part_is_a_protocol_error():
    part = b"--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\n"
    part += b"Content-Type: application/json\r\n\r\n" + b"[" * 100_000 + b"\r\n--b--\r\n"
    with pytest.raises(ProtocolError, match=r"invalid JSON in a batch response .*nested too"):
        parse_batch_response("multipart/mixed; boundary=b", part)


def test_deeply_nested_json_from_the_token_endpoint_is_an_auth_error():
    def endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000, headers=JSON)

    credentials = ClientCredentials(
        "11111111-2222-3333-4444-555555555555",
        "app",
        "s3cret",
        "https://contoso.crm4.dynamics.com/.default",
        transport=entra(endpoint),
    )
    with pytest.raises(AuthError, match=r"cannot get a token from .*RecursionError"):
        asyncio.run(credentials.token())


def test_redact_removes_every_spelling_a_request_carries_a_secret_in() -> None:
    from reconciler.dataverse.errors import redact

    secret = 'p@ss wörd"&/+='
    import json
    from urllib.parse import quote, quote_plus

    spellings = [secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)]
    text = redact(" | ".join(spellings) + " " + json.dumps(secret, ensure_ascii=False), [secret])
    assert all(spelling not in text for spelling in spellings)
    assert text.count("<redacted>") == 5
    assert redact("nothing here", [secret, ""]) == "nothing here"


def _refused_write(secret: str, respond) -> str:
    """The message of the error a write of ``secret`` into a secret column ends in."""
    import asyncio
    import json

    async def go() -> str:
        client = DataverseClient(
            "https://org.example.com/api/data/v9.2/",
            auth=StaticToken("tok"),
            transport=httpx.MockTransport(lambda request: respond(json.loads(request.content))),
        )
        try:
            await client.update(
                "msdyn_ocgooglebusinessmessagespartneraccounts",
                "00000000-0000-0000-0000-000000000001",
                {"msdyn_base64credentialfilestring": secret},
            )
        except DataverseError as error:
            return str(error)
        finally:
            await client.aclose()
        raise AssertionError("the write was not refused")

    return asyncio.run(go())


def _quoting(sent: dict) -> httpx.Response:
    message = "Invalid value: " + sent["msdyn_base64credentialfilestring"]
    return httpx.Response(400, json={"error": {"code": "0x80040203", "message": message}})


@pytest.mark.parametrize(
    "secret",
    [
        "".join(chr(33 + i % 90) for i in range(4000)),  # past the 1,000 characters shown
        "part-one  part-two\tpart-three",  # whitespace the message folds
        "Tok+en/with=base64+chars",
    ],
    ids=["long", "whitespace", "base64"],
)
def test_a_secret_quoted_by_the_server_is_redacted_before_the_message_is_cut(secret) -> None:
    shown = _refused_write(secret, _quoting)
    assert "<redacted>" in shown
    for start in range(0, max(1, len(secret) - 12), 7):
        assert secret[start : start + 12] not in shown


def test_a_secret_html_escaped_in_a_proxy_page_is_redacted() -> None:
    import html

    secret = "Tok+en&more<stuff>=="

    def page(sent: dict) -> httpx.Response:
        value = html.escape(sent["msdyn_base64credentialfilestring"])
        return httpx.Response(
            400, headers={"content-type": "text/html"}, text=f"<title>Bad value {value}</title>"
        )

    shown = _refused_write(secret, page)
    assert "en&amp;more" not in shown
    assert "Tok+en" not in shown
