"""The emulator as an ASGI application: HTTP plumbing, auth, service protection and faults.

Order per request: the ``Host`` (421, served only), authenticate (401), the URL's length (414)
and the declared body size (413), all from the request's head before a byte of its body is
received; then the body (413 as soon as it grows past the cap), service-protection limits
(429), ``--latency-ms``, ``--fault-rate`` (a fault of ``--fault-kinds``, see ``injected``: 429
and 503 come before anything is written), then the operation itself (``service.Service``) or a
``$batch`` of them. A request refused before its body was received in full is answered with
``Connection: close``: uvicorn then closes the connection instead of reading the rest.

A dropped connection is a real one: served by uvicorn (``server.make_server``), the app closes
the request's socket without an answer (FIN or RST, at random), so the client sees the server
disconnect or reset the connection. In-process (``httpx.ASGITransport``) there is no socket:
the app raises ``httpx.RemoteProtocolError``, which is what the client would have seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import random
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

import httpx

from reconciler.dataverse.tables import TABLES
from reconciler.emulator import batch, injected
from reconciler.emulator.faults import (
    MISDIRECTED,
    QUERY_ERROR,
    THROTTLED_CONCURRENCY,
    THROTTLED_REQUESTS,
    THROTTLED_TIME,
    TOO_LARGE,
    UNAUTHORIZED,
    UNAVAILABLE,
    EmulatorError,
)
from reconciler.emulator.metadata_document import metadata_xml
from reconciler.emulator.service import API_PREFIX, Request, Response, Service
from reconciler.emulator.store import Store

log = logging.getLogger("reconciler.emulator")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Peer = tuple[str, int]

MAX_BODY_BYTES = 128 * 1024 * 1024
"""The default cap on a request body. Microsoft documents one request-size limit for the Web
API: "The size limit to send a single request is 128 MB" (file columns, which must be uploaded
in chunks above it: https://learn.microsoft.com/power-apps/developer/data-platform/file-attributes),
and a 413 "when the request length is too large"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors).
Whether every other request has the same ceiling is not documented; here it is the emulator's
protection of its memory, set lower with ``EmulatorConfig.max_body_bytes``."""
# After a 413, how much more of the refused body is read and thrown away (and for how long)
# before the connection is closed: enough for a client's buffers, bounded for a large upload.
LINGER_BYTES = 16 * 1024 * 1024
LINGER_SECONDS = 1.0

MAX_URL_CHARS = 32_768
""""The length of a URL in a GET request is limited to 32 KB (32,768 characters)"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/overview#url-length-limitations;
inside a ``$batch`` the limit is 64 KB: ``batch.MAX_URL_CHARS``). What Dataverse answers past it
is not documented: the emulator answers HTTP's 414 URI Too Long, for any method."""

LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")
"""The host names a served emulator answers (with any port): the loopback names (the
in-process org's ``local.emulator``, ``reconciler.targets.LOCAL_HOST``, is for the in-process
transport only: a name some resolver might answer). Any other ``Host`` is refused, so that a
web page whose name was rebound to 127.0.0.1 (DNS rebinding) cannot drive the org from a
browser; the emulator listens on loopback only (``server.HOST``)."""


class Closable(Protocol):
    """What the app needs of a connection's transport (``asyncio.Transport``) to drop it."""

    def close(self) -> None: ...

    def abort(self) -> None: ...


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulated org behaves; the defaults are Dataverse's own limits."""

    token: str | None = None  # when set, only "Bearer <token>" is accepted
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    seed: int | None = None
    fault_retry_after: int = 1  # seconds, for injected 429s
    fault_kinds: tuple[str, ...] = injected.DEFAULT_KINDS
    fault_on: str = "all"  # which requests faults go to: all, reads (GETs) or writes
    slow_ms: float = 2000.0  # how late a "slow" fault answers
    max_requests: int = 6000  # per window
    max_execution_seconds: float = 1200.0  # combined execution time per window
    window_seconds: float = 300.0
    max_concurrent: int = 52
    max_body_bytes: int = MAX_BODY_BYTES  # larger bodies are 413, see MAX_BODY_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "fault_kinds", injected.parse_kinds(self.fault_kinds))
        if self.fault_on not in injected.TARGETS:
            raise ValueError(f"fault_on must be one of {', '.join(injected.TARGETS)}")

    def __repr__(self) -> str:
        token = "set" if self.token else "none"
        return (
            f"EmulatorConfig(token={token}, latency_ms={self.latency_ms}, "
            f"fault_rate={self.fault_rate}, seed={self.seed}, "
            f"fault_kinds={','.join(self.fault_kinds)}, fault_on={self.fault_on}, "
            f"slow_ms={self.slow_ms})"
        )


class _Protection:
    """Dataverse's service-protection limits over a sliding window."""

    def __init__(self, config: EmulatorConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.requests: deque[float] = deque()
        self.execution: deque[tuple[float, float]] = deque()
        self.executed = 0.0
        """Seconds of execution in ``execution``, kept as they come and go (not summed per
        request: a window of thousands of requests made that quadratic)."""
        self.in_flight = 0

    def _trim(self, now: float) -> None:
        horizon = now - self.config.window_seconds
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        while self.execution and self.execution[0][0] <= horizon:
            self.executed -= self.execution.popleft()[1]
        if not self.execution:
            self.executed = 0.0  # no float drift once the window empties

    def admit(self) -> None:
        now = self.clock()
        self._trim(now)
        window = self.config.window_seconds
        if len(self.requests) >= self.config.max_requests:
            wait = self.requests[0] + window - now
            raise _throttled(THROTTLED_REQUESTS, "Number of requests exceeded the limit", wait)
        if self.executed >= self.config.max_execution_seconds:
            wait = self.execution[0][0] + window - now
            raise _throttled(THROTTLED_TIME, "Combined execution time exceeded the limit", wait)
        if self.in_flight >= self.config.max_concurrent:
            raise _throttled(THROTTLED_CONCURRENCY, "Number of concurrent requests exceeded", 1)
        self.requests.append(now)
        self.in_flight += 1

    def done(self, started: float) -> None:
        self.in_flight -= 1
        now = self.clock()
        self.execution.append((now, now - started))
        self.executed += now - started


def _throttled(code: str, what: str, wait: float) -> EmulatorError:
    seconds = max(1, math.ceil(wait))
    return EmulatorError(
        429,
        code,
        f"{what} of the service protection API limits; retry after {seconds} seconds.",
        {"Retry-After": str(seconds)},
    )


class EmulatorApp:
    """ASGI entry point. ``store`` is opened by the caller and owned by the app."""

    def __init__(
        self,
        store: Store,
        config: EmulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.store = store
        self.fault_rng = random.Random(self.config.seed)
        self.service = Service(store)
        self.protection = _Protection(self.config, clock)
        self.clock = clock
        self.requests_served = 0
        self.connections: dict[Peer, Closable] = {}
        """Open connections by client address, kept by the server (``server.make_server``)
        so that a fault can drop one."""
        self.served_hosts: frozenset[str] | None = None
        """The ``Host`` names (any port) a request must name, lower-case, IPv6 in brackets;
        ``server.make_server`` sets ``LOOPBACK_HOSTS``. None, in-process
        (``httpx.ASGITransport``), accepts any: no browser can reach an app without a socket."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # pragma: no cover - websockets are never routed here
            return
        body = _Body(receive, scope)
        try:
            response = await self.respond(scope, body)
        except injected.Dropped:
            await self._drop(scope)
            return
        payload, headers = _encode(response)
        if body.pending and response.status == 413 and self.served_hosts is not None:
            # Served, an authenticated client still sending what is refused: read on a little
            # (and throw it away), so that closing does not reset the connection before the
            # client reads the 413 (a "lingering close", as web servers do). Never for a 401.
            await body.drain(LINGER_BYTES, LINGER_SECONDS)
        if body.pending:  # the client may still be sending it: end the connection instead
            headers["Connection"] = "close"
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def respond(self, scope: Scope, body: _Body) -> Response:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"].upper()
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        started = time.perf_counter()
        try:
            self._check_host(headers)
            self._authenticate(headers)
            _check_url(scope)
            content = await body.read(self.config.max_body_bytes)
            self.protection.admit()
        except EmulatorError as error:
            return self._log(method, path, batch.as_response(error), started)
        begun = self.clock()
        try:
            response = await self._serve(scope, method, path, headers, content)
        except injected.Dropped:
            self._log_drop(method, path, started)
            raise
        except Exception:  # a bug of the emulator: answer as Dataverse does, keep serving
            # (inside a $batch, parts already answered keep their answers: see batch.execute)
            log.exception("%s %s failed inside the emulator", method, path)
            response = batch.as_response(
                EmulatorError(500, UNAVAILABLE, "An unexpected error occurred.")
            )
        finally:
            self.protection.done(begun)
        return self._log(method, path, response, started)

    def _log(self, method: str, path: str, response: Response, started: float) -> Response:
        self.requests_served += 1
        elapsed = (time.perf_counter() - started) * 1000
        log.info("%s %s -> %d (%.1f ms)", method, path, response.status, elapsed)
        return response

    def _log_drop(self, method: str, path: str, started: float) -> None:
        self.requests_served += 1
        elapsed = (time.perf_counter() - started) * 1000
        log.info("%s %s -> dropped (%.1f ms)", method, path, elapsed)

    async def _drop(self, scope: Scope) -> None:
        """Close the request's connection without an answer."""
        client = scope.get("client")
        transport = self.connections.get((client[0], client[1])) if client else None
        if transport is None:  # in-process: no socket to close
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        if self.fault_rng.random() < 0.5:
            transport.close()  # FIN: "server disconnected without sending a response"
        else:
            transport.abort()  # RST: "connection reset by peer"
        for _ in range(3):  # let the server see the connection go before the app returns
            await asyncio.sleep(0)

    def _draw_fault(self, method: str) -> str | None:
        """The fault this request gets, if any (the same draws as before kinds existed)."""
        config = self.config
        if config.fault_rate <= 0 or self.fault_rng.random() >= config.fault_rate:
            return None
        kinds = config.fault_kinds
        kind = kinds[min(len(kinds) - 1, int(self.fault_rng.random() * len(kinds)))]
        target = "reads" if method == "GET" else "writes"
        return kind if config.fault_on in ("all", target) else None

    async def _serve(
        self, scope: Scope, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Response:
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000)
        fault = self._draw_fault(method)
        if fault in ("429", "503"):
            return self._fault(fault)
        if fault == "drop":
            raise injected.Dropped
        carry_out = True
        if fault in injected.BAD_ANSWERS and method != "GET":
            carry_out = self.fault_rng.random() < 0.5  # landed or not: the answer cannot tell
        response = await self._operate(scope, method, path, headers, body) if carry_out else None
        if fault == "drop-after":
            raise injected.Dropped
        if fault == "slow":
            await asyncio.sleep(self.config.slow_ms / 1000)
        if fault in injected.BAD_ANSWERS:
            assert fault is not None
            return injected.bad_answer(fault, response, self.fault_rng, _base_url(scope, headers))
        assert response is not None
        return response

    async def _operate(
        self, scope: Scope, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Response:
        host = headers.get("host", "localhost")
        base_url = f"{scope.get('scheme', 'http')}://{host}{API_PREFIX}"
        if path == API_PREFIX.rstrip("/") or path == API_PREFIX:
            return Response(200, _service_document(base_url))
        if not path.startswith(API_PREFIX):
            return batch.as_response(
                EmulatorError(
                    404, QUERY_ERROR, f"No Web API endpoint at '{path}'; use {API_PREFIX}."
                )
            )
        relative = unquote(path[len(API_PREFIX) :])
        query = scope.get("query_string", b"").decode("latin-1")
        request = Request(method, relative, query, headers, body, base_url)
        if relative == "$metadata" and method == "GET":
            return Response(200, metadata_xml().encode(), {"Content-Type": "application/xml"})
        if relative == "$batch" and method == "POST":
            try:
                return batch.execute(request, self.call, self.store.transaction)
            except EmulatorError as error:
                return batch.as_response(error)
        return self.call(request)

    def call(self, request: Request) -> Response:
        """One operation, always answered Dataverse's way (also inside a ``$batch``)."""
        try:
            return self.service.handle(request)
        except EmulatorError as error:
            return batch.as_response(error)
        except sqlite3.OperationalError as error:
            if any(limit in str(error) for limit in _SQLITE_LIMITS):
                return batch.as_response(  # a query beyond what SQLite compiles: the client's
                    EmulatorError(
                        400,
                        QUERY_ERROR,
                        "The query is too complex for this emulator (too deeply nested, or too "
                        "long a pattern); simplify or split it.",
                    )
                )
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            return batch.as_response(  # another process holds the database: come back soon
                EmulatorError(
                    503, UNAVAILABLE, "The database is busy; retry shortly.", {"Retry-After": "1"}
                )
            )

    def _check_host(self, headers: dict[str, str]) -> None:
        allowed = self.served_hosts
        if allowed is None:
            return
        value = headers.get("host")
        if value is not None and _host_name(value) in allowed:
            return
        named = "no host" if value is None else f"host '{_shown(value)}'"
        raise EmulatorError(
            421,
            MISDIRECTED,
            f"This emulator answers only requests addressed to {', '.join(sorted(allowed))} "
            f"(with any port); this request names {named}.",
        )

    def _authenticate(self, headers: dict[str, str]) -> None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        expected = self.config.token
        ok = scheme.lower() == "bearer" and bool(token.strip())
        if ok and expected is not None:
            ok = hmac.compare_digest(token.strip().encode(), expected.encode())
        if not ok:
            raise EmulatorError(
                401,
                UNAUTHORIZED,
                "The request is not authorized: send 'Authorization: Bearer <token>'.",
                {"WWW-Authenticate": 'Bearer authorization_uri="emulator"'},
            )

    def _fault(self, kind: str) -> Response:
        if kind == "429":
            seconds = self.config.fault_retry_after
            error = EmulatorError(
                429,
                THROTTLED_REQUESTS,
                f"Number of requests exceeded the limit (injected fault); retry after {seconds} "
                "seconds.",
                {"Retry-After": str(seconds)},
            )
        else:
            error = EmulatorError(503, UNAVAILABLE, "The service is unavailable (injected fault).")
        return batch.as_response(error)


_SQLITE_LIMITS = (
    "parser stack overflow",  # about 30 levels of and/or nested in parentheses
    "Expression tree is too large",  # SQLITE_MAX_EXPR_DEPTH (odata.MAX_CONDITIONS keeps under)
    "too many SQL variables",
    "LIKE or GLOB pattern too complex",  # SQLITE_MAX_LIKE_PATTERN_LENGTH, 50,000 bytes
)
"""SQLite's refusals of a query too big for it to compile (https://www.sqlite.org/limits.html):
a 400 for the query, not a 500 of the emulator; the emulator's own caps, not Dataverse's."""


class _Body:
    """A request's body, received only once the request's head has been let in."""

    def __init__(self, receive: Receive, scope: Scope) -> None:
        self.receive = receive
        headers = {name.lower(): value for name, value in scope.get("headers", ())}
        length = headers.get(b"content-length", b"").strip()
        self.declared = (int(length) if len(length) <= 18 else 10**18) if length.isdigit() else 0
        """The body's ``Content-Length`` (0 without a valid one)."""
        self.pending = self.declared > 0 or b"transfer-encoding" in headers
        """Whether the client may still be sending body bytes this app has not received."""

    async def drain(self, limit: int, seconds: float) -> None:
        """Receive and discard up to ``limit`` more bytes of the body, for ``seconds`` at most."""
        received = 0

        async def discard() -> None:
            nonlocal received
            while self.pending and received < limit:
                message = await self.receive()
                received += len(message.get("body", b""))
                if message["type"] == "http.disconnect" or not message.get("more_body"):
                    self.pending = False

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(discard(), seconds)

    async def read(self, cap: int) -> bytes:
        """The whole body; 413 before receiving any of it if ``Content-Length`` is over
        ``cap``, or as soon as a body without one (chunked) grows past it."""
        if self.declared > cap:
            raise _too_large(cap)
        chunks: list[bytes] = []  # joined once at the end: no quadratic copying
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                # The body was cut short: a server acts on no half-received request (the
                # client sees no answer, as when the connection is dropped).
                self.pending = False
                raise injected.Dropped()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise _too_large(cap)
            chunks.append(chunk)
            if not message.get("more_body"):
                self.pending = False
                return b"".join(chunks)


def _too_large(cap: int) -> EmulatorError:
    return EmulatorError(
        413, TOO_LARGE, f"The request body is larger than this org accepts ({cap} bytes)."
    )


def _check_url(scope: Scope) -> None:
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    length = len(raw.split(b"?", 1)[0]) + (len(query) + 1 if query else 0)
    if length > MAX_URL_CHARS:
        raise EmulatorError(
            414,
            QUERY_ERROR,  # UNCONFIRMED: what Dataverse answers past the limit is not documented
            f"The request URL is {length} characters long; the maximum is {MAX_URL_CHARS}. "
            "Send a long query as a GET inside a $batch.",
        )


def _host_name(value: str) -> str | None:
    """The name a ``Host`` header value names (lower-case, IPv6 in brackets), without its
    port; None if it is not a host with an optional numeric port."""
    value = value.strip().lower()
    if value.startswith("["):
        inside, bracket, rest = value[1:].partition("]")
        name = f"[{inside}]"
        if not bracket:
            return None
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    port = rest[1:]
    if rest and not (rest.startswith(":") and (port == "" or (port.isascii() and port.isdigit()))):
        return None
    return name


def _shown(text: str, limit: int = 64) -> str:
    """Client text for an error message: printable ASCII only, and at most ``limit`` of it."""
    kept = "".join(c if " " <= c <= "~" and c != "'" else "?" for c in text[:limit])
    return kept + ("..." if len(text) > limit else "")


def _base_url(scope: Scope, headers: dict[str, str]) -> str:
    return f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}{API_PREFIX}"


def _encode(response: Response) -> tuple[bytes, dict[str, str]]:
    headers = {"OData-Version": "4.0", **response.headers}
    if isinstance(response.body, bytes):
        return response.body, headers
    if response.body is None:
        return b"", headers
    headers["Content-Type"] = "application/json; odata.metadata=minimal"
    return json.dumps(response.body).encode(), headers


def _service_document(base_url: str) -> dict[str, Any]:
    return {
        "@odata.context": f"{base_url}$metadata",
        "value": [
            {"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set}
            for t in TABLES.values()
        ],
    }


def create_app(path: str | Path = ":memory:", config: EmulatorConfig | None = None) -> EmulatorApp:
    """An emulator on the SQLite file at ``path`` (created with a new org's rows if new)."""
    return EmulatorApp(Store(path), config)
