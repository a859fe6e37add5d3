"""The emulator as an ASGI application: HTTP plumbing, auth, service protection and faults.

Order per request: authenticate (401), service-protection limits (429), ``--latency-ms``,
``--fault-rate`` (429 with ``Retry-After`` or 503, before anything is written), then the
operation itself (``service.Service``) or a ``$batch`` of them.
"""

from __future__ import annotations

import asyncio
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
from typing import Any
from urllib.parse import unquote

from reconciler.dataverse.tables import TABLES
from reconciler.emulator import batch
from reconciler.emulator.faults import (
    QUERY_ERROR,
    THROTTLED_CONCURRENCY,
    THROTTLED_REQUESTS,
    THROTTLED_TIME,
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


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulated org behaves; the defaults are Dataverse's own limits."""

    token: str | None = None  # when set, only "Bearer <token>" is accepted
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    seed: int | None = None
    fault_retry_after: int = 1  # seconds, for injected 429s
    max_requests: int = 6000  # per window
    max_execution_seconds: float = 1200.0  # combined execution time per window
    window_seconds: float = 300.0
    max_concurrent: int = 52

    def __repr__(self) -> str:
        token = "set" if self.token else "none"
        return (
            f"EmulatorConfig(token={token}, latency_ms={self.latency_ms}, "
            f"fault_rate={self.fault_rate}, seed={self.seed})"
        )


class _Protection:
    """Dataverse's service-protection limits over a sliding window."""

    def __init__(self, config: EmulatorConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.requests: deque[float] = deque()
        self.execution: deque[tuple[float, float]] = deque()
        self.in_flight = 0

    def _trim(self, now: float) -> None:
        horizon = now - self.config.window_seconds
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        while self.execution and self.execution[0][0] <= horizon:
            self.execution.popleft()

    def admit(self) -> None:
        now = self.clock()
        self._trim(now)
        window = self.config.window_seconds
        if len(self.requests) >= self.config.max_requests:
            wait = self.requests[0] + window - now
            raise _throttled(THROTTLED_REQUESTS, "Number of requests exceeded the limit", wait)
        if sum(d for _, d in self.execution) >= self.config.max_execution_seconds:
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # pragma: no cover - websockets are never routed here
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        response = await self.respond(scope, body)
        payload, headers = _encode(response)
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

    async def respond(self, scope: Scope, body: bytes) -> Response:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"].upper()
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        started = time.perf_counter()
        try:
            self._authenticate(headers)
            self.protection.admit()
        except EmulatorError as error:
            return self._log(method, path, batch.as_response(error), started)
        begun = self.clock()
        try:
            response = await self._serve(scope, method, path, headers, body)
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

    async def _serve(
        self, scope: Scope, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Response:
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000)
        if self.config.fault_rate > 0 and self.fault_rng.random() < self.config.fault_rate:
            return self._fault()
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
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            return batch.as_response(  # another process holds the database: come back soon
                EmulatorError(
                    503, UNAVAILABLE, "The database is busy; retry shortly.", {"Retry-After": "1"}
                )
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

    def _fault(self) -> Response:
        if self.fault_rng.random() < 0.5:
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
