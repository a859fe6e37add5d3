"""The trust boundary: the token is checked before a byte of the body is read, bodies and
filters are capped, and a served emulator answers only requests addressed to a loopback name.

Over the wire (``Served``, the ``reconciler emulator serve`` subprocess, or ``in_thread`` for an
app with a small body cap), and in-process where what matters is what the app receives.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from served import API, Served, in_thread

from reconciler.dataverse import DataverseClient, StaticToken
from reconciler.emulator import EmulatorApp, EmulatorConfig
from reconciler.emulator.app import LOOPBACK_HOSTS, MAX_BODY_BYTES, MAX_URL_CHARS
from reconciler.emulator.batch import MAX_URL_CHARS as BATCH_URL_CHARS
from reconciler.emulator.odata import MAX_CONDITIONS
from reconciler.emulator.store import Store
from reconciler.state.ledger import CHECKED_AT_ONCE, TITLE

TOKEN = "boundary-token"
HUGE = 200 * 1024 * 1024  # 200 MB, the body the review timed at 81 s before its 401
QUERY_ERROR, TOO_LARGE = "0x80060888", "0x80048d19"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with Served(tmp_path_factory.mktemp("org") / "org.db", "--token", TOKEN, token=TOKEN) as org:
        yield org


@pytest.fixture
def small_cap(tmp_path: Path) -> Iterator[str]:
    """A served app (uvicorn in a thread) whose bodies are capped at 64 KiB; its org URL."""
    app = EmulatorApp(Store(tmp_path / "org.db"), EmulatorConfig(max_body_bytes=64 * 1024))
    with in_thread(app) as url:
        yield url


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    """(status, code, message) of a Dataverse-shaped error answer."""
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    return response.status_code, body["error"]["code"], body["error"]["message"]


# -- raw HTTP/1.1 over a socket -----------------------------------------------------------------


@dataclass
class Streamed:
    """What a client streaming a body saw: the answer's head, when it came, and the body bytes
    the server let it send before the connection ended."""

    head: bytes
    seconds: float
    sent: int
    pump_ended: bool
    body: bytes = field(default=b"")

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    def header(self, name: str) -> str | None:
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def stream(url: str, head: str, body_chunks: Iterator[bytes]) -> Streamed:
    """Send ``head``, then ``body_chunks`` from a second thread until the server stops taking
    them; return once the answer's head is in (timed from the first byte sent)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    sent = 0
    stop = threading.Event()

    def pump() -> None:
        nonlocal sent
        try:
            for chunk in body_chunks:
                if stop.is_set():
                    return
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server closed (or reset) the connection: what we expect
            return

    started = time.monotonic()
    sock.sendall(head.encode("latin-1"))
    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            got = sock.recv(65536)
            assert got, f"the connection ended without an answer: {received!r}"
            received += got
        seconds = time.monotonic() - started
        head_bytes, _, rest = received.partition(b"\r\n\r\n")
        try:  # the rest of the answer, up to the server's close (a reset may cut it short)
            while got := sock.recv(65536):
                rest += got
        except OSError:
            pass
        sender.join(timeout=10)
        ended = not sender.is_alive()
    finally:
        stop.set()
        sock.close()
        sender.join(timeout=10)
    return Streamed(head_bytes, seconds, sent, ended, rest)


def body_of(answer: Streamed) -> dict[str, Any]:
    """The JSON error document of a chunked answer (as uvicorn sends the app's answers)."""
    assert answer.header("transfer-encoding") == "chunked"
    size, _, rest = answer.body.partition(b"\r\n")
    document: dict[str, Any] = json.loads(rest[: int(size, 16)])
    return document


def zeros(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    block = b"0" * chunk
    for _ in range(total // chunk):
        yield block


def chunked(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"


def post_head(url: str, *headers: str) -> str:
    lines = [f"POST {API}queues HTTP/1.1", f"Host: {url.removeprefix('http://')}", *headers]
    return "\r\n".join([*lines, "Content-Type: application/json", "", ""])


# -- 1. authenticate before reading the body -------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token"])
def test_an_unauthenticated_200_mb_body_is_refused_within_a_second_unread(
    served: Served, authorization: str | None
) -> None:
    auth = [f"Authorization: {authorization}"] if authorization else []
    head = post_head(served.url, *auth, f"Content-Length: {HUGE}")
    answer = stream(served.url, head, zeros(HUGE))
    assert answer.status == 401
    assert answer.seconds < 1.0, answer.seconds
    assert answer.header("connection") == "close"  # uvicorn closes instead of reading on
    assert answer.pump_ended  # the server stopped taking the body ...
    assert answer.sent < HUGE // 4  # ... long before the end of it (socket buffers aside)
    if answer.body:  # the close may reset the connection before the body is read
        assert body_of(answer)["error"]["code"] == "0x80072560"
    assert TOKEN not in answer.body.decode("latin-1")
    assert served.get("WhoAmI").status_code == 200  # and keeps serving


def test_an_unauthenticated_request_never_reaches_the_body(make_org, wrap) -> None:
    org, calls = counting(make_org(token=TOKEN), wrap)
    response = org.post("queues", {"name": "x"}, authorization="Bearer nope")
    assert org.error_of(response) == (401, "0x80072560")
    assert calls == []
    assert response.headers["Connection"] == "close"


def counting(org: Any, wrap: Any) -> tuple[Any, list[str]]:
    """``org`` behind an ASGI wrapper noting every ``receive()`` the app makes (the body it
    reads): the wrapped org and the notes."""
    calls: list[str] = []
    app = org.app

    async def noting(scope: Any, receive: Any, send: Any) -> None:
        async def noted() -> Any:
            message = await receive()
            calls.append(message["type"])
            return message

        await app(scope, noted, send)

    return wrap(noting), calls


def test_an_answer_to_a_request_without_a_body_keeps_the_connection(make_org) -> None:
    org = make_org(token=TOKEN)
    response = org.get("WhoAmI", authorization="Bearer nope")
    assert response.status_code == 401
    assert "Connection" not in response.headers


# -- 2. the body cap -----------------------------------------------------------------------------


def test_the_default_cap_is_dataverse_single_request_limit() -> None:
    assert EmulatorConfig().max_body_bytes == MAX_BODY_BYTES == 128 * 1024 * 1024


def assert_refused_unread(answer: Streamed) -> None:
    """A 413 within a second, the connection closed, most of the body never sent."""
    assert answer.status == 413
    assert answer.seconds < 1.0, answer.seconds
    assert answer.header("connection") == "close"
    assert answer.pump_ended
    assert answer.sent < HUGE // 4
    if answer.body:
        assert body_of(answer)["error"]["code"] == TOO_LARGE


def test_a_declared_body_over_the_cap_is_413_before_it_is_read(served: Served) -> None:
    head = post_head(served.url, f"Authorization: Bearer {TOKEN}", f"Content-Length: {HUGE}")
    assert_refused_unread(stream(served.url, head, zeros(HUGE)))


def test_a_chunked_body_growing_past_the_cap_is_413_and_no_more_is_read(small_cap: str) -> None:
    head = post_head(small_cap, "Authorization: Bearer t", "Transfer-Encoding: chunked")
    assert_refused_unread(stream(small_cap, head, chunked(zeros(HUGE, 16 * 1024))))


def test_an_http_client_sending_too_much_reads_the_413(small_cap: str) -> None:
    """httpx (what the reconciler and most tools use) sees the answer, not a broken pipe."""

    def pieces() -> Iterator[bytes]:
        yield from zeros(4 * 1024 * 1024, 16 * 1024)

    headers = {"Authorization": "Bearer t", "Content-Type": "application/json"}
    url = f"{small_cap}{API}queues"
    for content in (b"[" + b" " * (2 * 1024 * 1024) + b"]", pieces()):
        response = httpx.post(url, content=content, headers=headers, trust_env=False, timeout=10)
        status, code, message = error_of(response)
        assert (status, code) == (413, TOO_LARGE)
        assert str(64 * 1024) in message
    assert httpx.get(f"{small_cap}{API}WhoAmI", headers=headers, trust_env=False).is_success


def test_in_process_a_declared_body_over_the_cap_is_never_received(make_org, wrap) -> None:
    org, calls = counting(make_org(max_body_bytes=100), wrap)
    response = org.request("POST", "queues", content=b"{" + b" " * 200 + b"}")
    assert org.error_of(response) == (413, TOO_LARGE)
    assert calls == []
    created = org.post("queues", {"name": "fits"})  # a body within the cap is served
    assert created.status_code == 204
    assert calls
    assert set(calls) == {"http.request"}


def test_in_process_a_chunked_body_stops_being_read_at_the_cap(make_org) -> None:
    org = make_org(max_body_bytes=100)
    pulled: list[int] = []

    async def pieces() -> AsyncIterator[bytes]:
        for n in range(1000):
            pulled.append(n)
            yield b" " * 40

    response = org.request("POST", "queues", content=pieces())
    assert org.error_of(response) == (413, TOO_LARGE)
    assert len(pulled) <= 4  # 3 chunks (120 bytes) pass the cap; nothing after is asked for


def test_a_body_of_exactly_the_cap_is_accepted(make_org) -> None:
    body = json.dumps({"name": "exact"}).encode()
    org = make_org(max_body_bytes=len(body))
    response = org.request(
        "POST", "queues", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 204, response.text


# -- 3. the $filter cap and the URL length ------------------------------------------------------


def ors(count: int, column: str = "queueid") -> str:
    return " or ".join(f"{column} eq {uuid.UUID(int=n + 1)}" for n in range(count))


def test_a_filter_with_too_many_conditions_is_a_query_error(served: Served) -> None:
    response = served.get("queues", **{"$filter": ors(MAX_CONDITIONS + 1), "$select": "name"})
    status, code, message = error_of(response)
    assert (status, code) == (400, QUERY_ERROR)
    assert f"more than {MAX_CONDITIONS} conditions" in message
    # the most it accepts, in a URL (about 25,600 characters) uvicorn's default would refuse
    most = served.get("queues", **{"$filter": ors(MAX_CONDITIONS), "$select": "name"})
    assert most.status_code == 200, most.text
    assert len(str(most.request.url)) > 16 * 1024


def test_the_cap_admits_ten_times_the_reconciler_s_largest_filter() -> None:
    assert MAX_CONDITIONS >= 10 * CHECKED_AT_ONCE


def test_the_reconciler_s_own_largest_queries_are_answered(served: Served) -> None:
    """The ledger's presence check (``CHECKED_AT_ONCE`` ids joined with ``or``) and its page
    query, sent by the reconciler's client over HTTP."""
    ids = [str(uuid.uuid4()) for _ in range(CHECKED_AT_ONCE)]
    for record_id in ids[:3]:
        created = served.post("queues", {"queueid": record_id, "name": f"q-{record_id}"})
        assert created.status_code == 204, created.text

    async def read() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with DataverseClient(f"{served.url}{API}", auth=StaticToken(TOKEN)) as client:
            present = await client.list(
                "queues",
                select=["queueid"],
                filter=" or ".join(f"queueid eq {i}" for i in sorted(ids)),
            )
            pages = await client.list(
                "annotations", select=["subject"], filter=f"startswith(subject,'{TITLE} ')"
            )
            return present, pages

    present, pages = asyncio.run(read())
    assert {row["queueid"] for row in present} == set(ids[:3])
    assert pages == []


def test_a_deeply_nested_filter_is_a_400_not_a_crash(org) -> None:
    nested = "".join("(name eq 'a' or " for _ in range(60)) + "name eq 'b'" + ")" * 60
    response = org.get("queues", params={"$filter": nested})
    assert org.error_of(response) == (400, QUERY_ERROR)


def test_a_url_longer_than_dataverse_allows_is_414(served: Served) -> None:
    def get(length: int) -> httpx.Response:
        prefix = f"{API}queues?$select=name&$filter=name%20eq%20'"
        target = prefix + "a" * (length - len(prefix) - 1) + "'"
        response = httpx.get(f"{served.url}{target}", headers=served.headers(), trust_env=False)
        assert len(response.request.url.raw_path) == length  # sent as written
        return response

    assert get(MAX_URL_CHARS).status_code == 200  # the longest URL Dataverse takes
    status, code, message = error_of(get(MAX_URL_CHARS + 1))
    assert (status, code) == (414, QUERY_ERROR)
    assert str(MAX_URL_CHARS) in message


def test_a_url_in_a_batch_may_be_twice_as_long_but_no_longer(org) -> None:
    def batch(length: int) -> httpx.Response:
        prefix = f"http://org.local{API}queues?$filter=name%20eq%20'"
        target = prefix + "a" * (length - len(prefix) - 1) + "'"
        assert len(target) == length
        body = (
            "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            f"GET {target} HTTP/1.1\r\n\r\n\r\n--b--\r\n"
        )
        headers = {"Content-Type": "multipart/mixed;boundary=b"}
        return org.request("POST", "$batch", content=body.encode(), headers=headers)

    answer = batch(BATCH_URL_CHARS)  # twice what a URL outside a batch may be
    assert answer.status_code == 200
    assert " 200 OK" in answer.text, answer.text[:300]
    assert org.error_of(batch(BATCH_URL_CHARS + 1)) == (414, QUERY_ERROR)


# -- 4. Host ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:{port}", "localhost:{port}", "LocalHost", "[::1]:{port}"],
)
def test_loopback_names_are_served(served: Served, host: str) -> None:
    port = served.url.rsplit(":", 1)[1]
    headers = {**served.headers(), "Host": host.format(port=port)}
    response = httpx.get(f"{served.url}{API}WhoAmI", headers=headers, trust_env=False)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example:{port}",
        "127.0.0.1.attacker.example",
        "localhost.:{port}",
        "::1",
        "localhost:{port}@attacker.example",
        "127.0.0.2:{port}",
        "local.emulator",  # the in-process org's name: a resolver might answer it
    ],
)
def test_any_other_host_is_refused(served: Served, host: str) -> None:
    port = served.url.rsplit(":", 1)[1]
    headers = {**served.headers(), "Host": host.format(port=port)}
    response = httpx.get(f"{served.url}{API}WhoAmI", headers=headers, trust_env=False)
    status, _, message = error_of(response)
    assert status == 421
    for name in LOOPBACK_HOSTS:
        assert name in message


def test_a_refused_host_is_echoed_bounded_and_printable(served: Served) -> None:
    host = "evil-" + "x" * 10_000 + ".example"
    headers = {**served.headers(), "Host": host}
    response = httpx.get(f"{served.url}{API}WhoAmI", headers=headers, trust_env=False)
    status, _, message = error_of(response)
    assert status == 421
    assert len(message) < 300
    assert "evil-xxx" in message


def test_a_request_without_a_host_is_refused(served: Served) -> None:
    head = f"GET {API}WhoAmI HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    answer = stream(served.url, head, iter(()))
    assert answer.status == 421


def test_a_wrong_host_is_refused_before_the_token_is_looked_at(served: Served) -> None:
    headers = {"Host": "attacker.example"}  # no token at all: still 421, not 401
    response = httpx.get(f"{served.url}{API}WhoAmI", headers=headers, trust_env=False)
    assert response.status_code == 421


def test_in_process_any_host_is_served(org) -> None:
    """No socket, no browser: the in-process transport's made-up host names are fine."""
    assert org.app.served_hosts is None
    assert org.get("WhoAmI").status_code == 200  # as http://org.local
