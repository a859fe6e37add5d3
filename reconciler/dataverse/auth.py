"""Bearer tokens for the Dataverse Web API.

A ``TokenProvider`` hands out the token for the ``Authorization`` header. ``StaticToken`` holds
one given token (``DATAVERSE_TOKEN``, or the emulator's ``--token``); ``ClientCredentials`` gets
tokens from Microsoft Entra ID with the OAuth2 client-credentials grant and caches them until
shortly before they expire; ``AzureIdentity`` (``reconciler.dataverse.azure_auth``, the optional
``azure`` extra) gets them from azure-identity, cached the same way (``CachedToken``).
``RECONCILER_AUTH`` chooses among them (``auth_from_environment``). Tokens and secrets stay out
of every repr, message and log line.
"""

from __future__ import annotations

import abc
import asyncio
import copy
import importlib.util
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from reconciler.dataverse.errors import AuthError, describe_foreign_body, redact

__all__ = [
    "ClientCredentials",
    "Invalidatable",
    "StaticToken",
    "TokenProvider",
    "auth_from_environment",
]

log = logging.getLogger("reconciler.dataverse")

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
AUTH_VARIABLE = "RECONCILER_AUTH"
AUTH_METHODS = ("auto", "token", "client-secret", "azure-identity")
CLIENT_SECRET_VARIABLES = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
INSTALL_COMMAND = "pip install 'reconciler[azure]'"
_AZURE_IDENTITY_USE = "for a managed identity, workload identity federation or an Azure CLI login"
_TOKEN_ENDPOINT_RETRYABLE = frozenset({429, 500, 502, 503, 504})
_DESCRIPTION = 300


class TokenProvider(Protocol):
    """Something that hands out bearer tokens."""

    async def token(self) -> str: ...


@runtime_checkable
class Invalidatable(Protocol):
    """A provider whose cached token can be dropped (after Dataverse answered 401)."""

    def invalidate(self) -> None: ...


_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def checked_token(token: str) -> str:
    """``token`` if a header can carry it; the error never echoes it."""
    if not token:
        raise AuthError("the bearer token is empty")
    if not _HEADER_SAFE.fullmatch(token):
        raise AuthError(
            "the bearer token contains spaces, line breaks or other characters a header cannot "
            "carry; check how it was copied into the environment"
        )
    return token


class StaticToken:
    """A fixed bearer token."""

    def __init__(self, token: str) -> None:
        self._token = checked_token(token)

    async def token(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


class CachedToken(abc.ABC):
    """The token cache every fetching provider shares.

    The token is fetched (by the subclass's ``_fetch``) on first use and again once it is within
    ``refresh_margin`` seconds of expiring, or half its lifetime for a short-lived one (or after
    :meth:`invalidate`); concurrent callers wait for one shared fetch, and share its error if
    it fails (a later call fetches again). ``clock`` is a seam for tests; ``fetches`` counts
    the fetches.
    """

    def __init__(self, *, refresh_margin: float, clock: Callable[[], float]) -> None:
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self._failure: AuthError | None = None  # the last fetch's error, if it failed
        self._done = 0  # fetches finished
        self.fetches = 0

    def invalidate(self) -> None:
        """Forget the cached token, so the next :meth:`token` fetches a new one."""
        self._token = None

    def _fresh(self) -> str | None:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    async def token(self) -> str:
        token = self._fresh()
        if token is not None:
            return token
        done = self._done
        async with self._lock:
            token = self._fresh()  # another caller may have refreshed while we waited
            if token is not None:
                return token
            if self._done != done and self._failure is not None:
                # The fetch this call waited for failed: its error, not another fetch at once
                # (a copy: each caller's traceback and retry count are its own).
                raise copy.copy(self._failure)
            self.fetches += 1
            self._failure = None
            try:
                return await self._fetch()
            except AuthError as exc:
                self._failure = exc
                raise
            finally:
                self._done += 1

    @abc.abstractmethod
    async def _fetch(self) -> str:
        """A new token from the source, kept with ``_keep``; ``AuthError`` when it fails."""

    def _keep(self, token: str, requested_at: float, lifetime: float) -> str:
        """Cache ``token``, fetched at ``requested_at`` (by ``clock``) and valid ``lifetime``
        seconds from then; return it."""
        lifetime = max(lifetime, 0.0)
        margin = min(self.refresh_margin, lifetime / 2)
        self._token = checked_token(token)
        self._refresh_at = requested_at + lifetime - margin
        return token


class ClientCredentials(CachedToken):
    """OAuth2 client-credentials tokens from Microsoft Entra ID (Azure AD), cached.

    The token is fetched on first use and again once it is within ``refresh_margin`` seconds of
    expiring (or after :meth:`invalidate`); concurrent callers wait for one shared fetch.
    ``transport`` and ``clock`` are seams for tests.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        scope: str,
        *,
        authority: str = DEFAULT_AUTHORITY,
        transport: httpx.AsyncBaseTransport | None = None,
        refresh_margin: float = 300,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (tenant_id and client_id and client_secret):
            raise AuthError("client credentials need a tenant id, a client id and a client secret")
        super().__init__(refresh_margin=refresh_margin, clock=clock)
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.authority = authority.rstrip("/")
        self._transport = transport
        self._timeout = timeout

    @property
    def token_url(self) -> str:
        return f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token"

    def __repr__(self) -> str:
        return (
            f"ClientCredentials(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
            f"scope={self.scope!r}, authority={self.authority!r}, client_secret=<redacted>)"
        )

    async def _fetch(self) -> str:
        path = urlsplit(self.token_url).path
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "scope": self.scope,
        }
        requested_at = self._clock()
        failure: str | None = None
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as http:
                response = await http.post(
                    self.token_url, data=form, headers={"Accept": "application/json"}
                )
        except httpx.HTTPError as exc:
            failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if failure is not None:
            # Raised outside the except block: the httpx error holds the request and its form.
            raise AuthError(
                f"cannot reach the token endpoint {self.authority} ({failure})",
                method="POST",
                url=path,
                retryable=True,
            )
        log.debug("POST %s -> %s (token endpoint)", path, response.status_code)
        try:
            body = json.loads(response.content)
        except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
            body = None
        if response.status_code != 200:
            raise AuthError(
                self._refusal(response, body),
                method="POST",
                url=path,
                retryable=response.status_code in _TOKEN_ENDPOINT_RETRYABLE,
            )
        access_token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(access_token, str) or not access_token:
            raise AuthError(
                "the token endpoint answered 200 without an access_token",
                method="POST",
                url=path,
            )
        try:
            lifetime = float(body.get("expires_in", 3600)) if isinstance(body, dict) else 3600.0
        except (TypeError, ValueError):
            lifetime = 3600.0
        return self._keep(access_token, requested_at, lifetime)

    def _refusal(self, response: httpx.Response, body: object) -> str:
        status = f"HTTP {response.status_code}"
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            code = body["error"]
            description = body.get("error_description")
            text = f"the token endpoint refused the client credentials: {status} {code}"
            if isinstance(description, str) and description.strip():
                description = redact(description, [self._client_secret])
                first = description.strip().splitlines()[0]
                if len(first) > _DESCRIPTION:
                    first = first[: _DESCRIPTION - 1] + "…"
                text = f"{text}: {first}"
        else:
            content_type = response.headers.get("content-type", "")
            found = describe_foreign_body(
                content_type, response.text, secrets=[self._client_secret]
            )
            text = f"the token endpoint answered {status} ({found})"
        return redact(text, [self._client_secret])


def auth_from_environment(org_url: str, env: Mapping[str, str]) -> TokenProvider:
    """The token provider the environment configures for the org at ``org_url``.

    ``RECONCILER_AUTH`` says which (``auto`` when unset):

    - ``token``: ``DATAVERSE_TOKEN``, a bearer token;
    - ``client-secret``: ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID`` and ``AZURE_CLIENT_SECRET``
      give client credentials (``AZURE_AUTHORITY_HOST`` overrides the authority, as in the
      Azure SDKs);
    - ``azure-identity``: azure-identity's ``DefaultAzureCredential`` (the ``azure`` extra):
      workload identity federation, a managed identity, an Azure CLI login;
    - ``auto``: ``DATAVERSE_TOKEN`` if set, else the client secret if set; else an error that
      says what to set. It never turns to azure-identity by itself: that would take whatever
      identity the machine has (a developer's ``az login``, a VM's managed identity) for an org
      nobody configured credentials for.

    Tokens are asked for the scope ``https://<org host>/.default``.
    """
    method = env.get(AUTH_VARIABLE, "").strip().lower() or "auto"
    if method not in AUTH_METHODS:
        raw = env.get(AUTH_VARIABLE, "").strip()
        shown = repr(raw) if re.fullmatch(r"[A-Za-z_-]{1,32}", raw) else "what it is set to"
        raise AuthError(
            f"{AUTH_VARIABLE} must be auto, token, client-secret or azure-identity, not {shown}"
        )
    token = env.get("DATAVERSE_TOKEN", "").strip()
    if method == "token" or (method == "auto" and token):
        if not token:
            raise AuthError(
                f"{AUTH_VARIABLE}=token, but DATAVERSE_TOKEN is not set: set it to a bearer "
                f"token for {org_url}"
            )
        return StaticToken(token)
    if method == "azure-identity":
        from reconciler.dataverse.azure_auth import AzureIdentity  # azure.identity only now

        return AzureIdentity(_scope(org_url), secrets=[token])
    present = {name: env.get(name, "").strip() for name in CLIENT_SECRET_VARIABLES}
    missing = [name for name in CLIENT_SECRET_VARIABLES if not present[name]]
    if not missing:
        authority = env.get("AZURE_AUTHORITY_HOST", "").strip() or DEFAULT_AUTHORITY
        if "://" not in authority:
            authority = f"https://{authority}"
        return ClientCredentials(
            present["AZURE_TENANT_ID"],
            present["AZURE_CLIENT_ID"],
            present["AZURE_CLIENT_SECRET"],
            _scope(org_url),
            authority=authority,
        )
    if method == "client-secret":
        raise AuthError(
            f"{AUTH_VARIABLE}=client-secret, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set: client credentials for {org_url} "
            "need AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
        )
    alternatives = f"{AUTH_VARIABLE}=azure-identity {_AZURE_IDENTITY_USE}{_install_hint()}"
    if len(missing) < len(CLIENT_SECRET_VARIABLES):
        raise AuthError(
            f"incomplete client credentials for {org_url}: set {', '.join(missing)} as well "
            f"(or set DATAVERSE_TOKEN, or {alternatives})"
        )
    raise AuthError(
        f"no credentials for {org_url}: set DATAVERSE_TOKEN to a bearer token, or "
        "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for an app registration "
        f"that has a Dataverse application user, or {alternatives}"
    )


def _scope(org_url: str) -> str:
    """The token scope for the org at ``org_url``: ``https://<org host>/.default``."""
    parts = urlsplit(org_url)
    if not parts.scheme or not parts.hostname:
        raise AuthError(f"cannot derive a token scope from {org_url!r}: expected https://HOST")
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/.default"


def _install_hint() -> str:
    """How to install azure-identity, if it cannot be imported here."""
    try:
        found = importlib.util.find_spec("azure.identity") is not None
    except (ImportError, ValueError):  # a broken azure package, or a half-imported one
        found = False
    return "" if found else f" (after {INSTALL_COMMAND})"
