"""Which Dataverse a command talks to (spec §3), and the client wired for it.

    local[:PATH]            the embedded emulator on a SQLite file, in-process (no sockets)
    http://HOST:PORT        a served emulator (``reconciler emulator serve``), loopback only
    https://ORG.crmN...     a real org; token from DATAVERSE_TOKEN or client credentials

An https target must be a host of one of Dataverse's clouds (``reconciler.dataverse.clouds``)
or one the environment lists in ``RECONCILER_ALLOWED_HOSTS``: the target decides where the
org's token and the manifests' secrets are sent, and a look-alike host must not receive them.
``--target`` and ``RECONCILER_TARGET`` pin the target; they win over ``reconciler.yaml``, which
a pull request can change (docs/security.md).

The same ``DataverseClient`` serves all three: only its transport and token differ. This is
the one module that may import the emulator, and only when the target is local.
"""

from __future__ import annotations

import math
import os
import re
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
    checked_audience,
)
from reconciler.dataverse.clouds import DOMAINS_SHOWN, is_dataverse_host, is_loopback
from reconciler.errors import UsageError

API_PATH = "/api/data/v9.2/"
DEFAULT_LOCAL_DB = Path(".reconciler/local.db")
LOCAL_HOST = "http://local.emulator"
TARGET_VARIABLE = "RECONCILER_TARGET"
ALLOWED_HOSTS_VARIABLE = "RECONCILER_ALLOWED_HOSTS"
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


_FORMS = "use local, local:PATH, http://127.0.0.1:PORT or https://ORG.crmN.dynamics.com"


def _bad(text: str, why: str) -> UsageError:
    return UsageError(f"target {text!r} {why}; {_FORMS}")


def allowed_hosts(environ: Mapping[str, str]) -> frozenset[str]:
    """The extra https hosts ``RECONCILER_ALLOWED_HOSTS`` lists (commas or spaces between)."""
    raw = environ.get(ALLOWED_HOSTS_VARIABLE, "")
    return frozenset(part.strip().lower().rstrip(".") for part in re.split(r"[,\s]+", raw) if part)


def parse_target(text: str, environ: Mapping[str, str] | None = None) -> Target:
    """The target ``text`` names; ``environ`` gives ``RECONCILER_ALLOWED_HOSTS``."""
    text = text.strip()
    if text == "local" or text.startswith("local:"):
        path = Path(text[len("local:") :]) if text.startswith("local:") else DEFAULT_LOCAL_DB
        if not str(path) or str(path) == ".":
            raise _bad(text, "names no database file")
        return Target("local", f"local:{path}", path)
    parts = urlsplit(text)
    # What messages show: never a password (userinfo) or a query (``?access_token=...``).
    shown = f"{parts.scheme}://{parts.hostname}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        if "@" in text or "?" in text:  # it may hold a password or a token: not echoed
            raise UsageError(f"the target is not a target; {_FORMS}")
        raise _bad(text, "is not a target")
    if parts.username or parts.password:
        raise _bad(
            f"{parts.scheme}://***@{parts.hostname}",
            "must not carry credentials (use DATAVERSE_TOKEN or AZURE_* variables)",
        )
    if parts.query or parts.fragment:
        raise _bad(shown, "must not carry a query or a fragment")
    if parts.path.rstrip("/") not in ("", API_PATH.rstrip("/")):
        raise _bad(text, "must be the org's root URL")
    hostname = parts.hostname.rstrip(".")  # a fully qualified name's dot: the same host
    if parts.scheme == "http" and not is_loopback(hostname):
        raise _bad(text, "uses plain http, which is only allowed for an emulator on loopback")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise _bad(text, "has an invalid port")
    if parts.scheme == "https" and not (
        is_dataverse_host(hostname) or hostname in allowed_hosts(environ or {})
    ):
        raise UsageError(
            f"target {text!r} is not a Dataverse host ({DOMAINS_SHOWN}); "
            f"list other hosts in {ALLOWED_HOSTS_VARIABLE} if you trust them"
        )
    if port == {"https": 443, "http": 80}[parts.scheme]:
        port = None  # the same origin as without it
    host = f"[{hostname}]" if ":" in hostname else hostname
    netloc = host if port is None else f"{host}:{port}"
    return Target(parts.scheme, f"{parts.scheme}://{netloc.lower()}")  # type: ignore[arg-type]


def choose_target(
    option: str | None,
    environ: Mapping[str, str],
    environment_target: str | None = None,
    project_folder: str | None = None,
) -> Target:
    """``--target``, else ``RECONCILER_TARGET``, else the environment's target, else local.

    A ``local:PATH`` the project file names is relative to the project file's folder, and
    plain ``local`` is that folder's ``.reconciler/local.db``: the same database whichever
    folder a command runs from. A path given on the command line or in ``RECONCILER_TARGET``
    is relative to the working folder, like every other path there."""
    for candidate in (option, environ.get(TARGET_VARIABLE)):
        if candidate:
            return parse_target(candidate, environ)
    target = parse_target(environment_target or "local", environ)
    path = target.path
    if target.kind == "local" and path is not None and project_folder and not path.is_absolute():
        path = Path(os.path.normpath(Path(project_folder) / path))
        return Target("local", f"local:{path.as_posix()}", path)
    return target


def pinned_target(option: str | None, environ: Mapping[str, str]) -> Target | None:
    """The target ``--target`` or ``RECONCILER_TARGET`` pins, if either is given."""
    chosen = option or environ.get(TARGET_VARIABLE, "").strip()
    return parse_target(chosen, environ) if chosen else None


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
        token = environ.get("DATAVERSE_TOKEN", "").strip()
        auth = StaticToken(checked_audience(token, target.url) if token else EMULATOR_TOKEN)
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
