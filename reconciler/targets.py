"""Which Dataverse a command talks to (spec §3), and the client wired for it.

    local[:PATH]            the embedded emulator on a SQLite file, in-process (no sockets)
    http://HOST:PORT        a served emulator (``reconciler emulator serve``), loopback only
    https://ORG.crmN...     a real org; token from DATAVERSE_TOKEN or client credentials

The same ``DataverseClient`` serves all three: only its transport and token differ. This is
the one module that may import the emulator, and only when the target is local.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx

from reconciler.dataverse import (
    DataverseClient,
    RetryPolicy,
    StaticToken,
    TokenProvider,
    auth_from_environment,
)
from reconciler.errors import UsageError

API_PATH = "/api/data/v9.2/"
DEFAULT_LOCAL_DB = Path(".reconciler/local.db")
LOCAL_HOST = "http://local.emulator"
TARGET_VARIABLE = "RECONCILER_TARGET"
# What a bearer token is when the emulator does not check it (its default).
EMULATOR_TOKEN = "emulator"


@dataclass(frozen=True)
class Target:
    kind: Literal["local", "http", "https"]
    url: str  # as a person reads it: local:PATH, http://127.0.0.1:8123, https://org...
    path: Path | None = None  # local only

    @property
    def base_url(self) -> str:
        """The Web API root the client uses."""
        return f"{LOCAL_HOST if self.kind == 'local' else self.url}{API_PATH}"

    def __str__(self) -> str:
        return self.url


def _bad(text: str, why: str) -> UsageError:
    return UsageError(
        f"target {text!r} {why}; use local, local:PATH, http://127.0.0.1:PORT "
        "or https://ORG.crmN.dynamics.com"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_target(text: str) -> Target:
    text = text.strip()
    if text == "local" or text.startswith("local:"):
        path = Path(text[len("local:") :]) if text.startswith("local:") else DEFAULT_LOCAL_DB
        if not str(path) or str(path) == ".":
            raise _bad(text, "names no database file")
        return Target("local", f"local:{path}", path)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad(text, "is not a target")
    if parts.username or parts.password:
        shown = f"{parts.scheme}://***@{parts.hostname}"  # never echo a password
        raise _bad(shown, "must not carry credentials (use DATAVERSE_TOKEN or AZURE_* variables)")
    if parts.query or parts.fragment:
        raise _bad(text, "must not carry a query or a fragment")
    if parts.path.rstrip("/") not in ("", API_PATH.rstrip("/")):
        raise _bad(text, "must be the org's root URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise _bad(text, "uses plain http, which is only allowed for an emulator on loopback")
    try:
        port = parts.port
    except ValueError:
        raise _bad(text, "has an invalid port") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host if port is None else f"{host}:{port}"
    return Target(parts.scheme, f"{parts.scheme}://{netloc.lower()}")  # type: ignore[arg-type]


def choose_target(
    option: str | None, environ: Mapping[str, str], environment_target: str | None = None
) -> Target:
    """``--target``, else ``RECONCILER_TARGET``, else the environment's target, else local."""
    for candidate in (option, environ.get(TARGET_VARIABLE), environment_target):
        if candidate:
            return parse_target(candidate)
    return parse_target("local")


@asynccontextmanager
async def connect(
    target: Target,
    environ: Mapping[str, str],
    *,
    retry: RetryPolicy | None = None,
    page_size: int = 5000,
    max_in_flight: int | None = None,
) -> AsyncIterator[DataverseClient]:
    """A client for ``target``; the in-process emulator is closed with it."""
    transport: httpx.AsyncBaseTransport | None = None
    closer = None
    auth: TokenProvider
    if target.kind == "local":
        from reconciler.emulator import EmulatorConfig, create_app  # the only emulator import

        assert target.path is not None
        # A sandbox on this machine: Dataverse's per-window request and execution-time limits
        # would only make a large apply wait minutes for nothing (a served emulator keeps them).
        unlimited = EmulatorConfig(max_requests=2**62, max_execution_seconds=math.inf)
        app = create_app(target.path, unlimited)
        transport = httpx.ASGITransport(app=app)
        closer = app.store.close
        auth = StaticToken(EMULATOR_TOKEN)
    elif target.kind == "http":
        auth = StaticToken(environ.get("DATAVERSE_TOKEN", "").strip() or EMULATOR_TOKEN)
    else:
        auth = auth_from_environment(target.url, environ)
    client = DataverseClient(
        target.base_url,
        auth=auth,
        transport=transport,
        retry=retry,
        page_size=page_size,
        max_in_flight=max_in_flight,
    )
    try:
        yield client
    finally:
        await client.aclose()
        if closer is not None:
            closer()
