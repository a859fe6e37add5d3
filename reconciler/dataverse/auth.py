"""Bearer tokens for the Dataverse Web API.

A ``TokenProvider`` hands out the token for the ``Authorization`` header. ``StaticToken`` holds
one given token (``DATAVERSE_TOKEN``, or the emulator's ``--token``), which ``checked_audience``
lets go only to the org it was issued for; ``ClientCredentials`` gets tokens from Microsoft
Entra ID with the OAuth2 client-credentials grant (a secret or a certificate) through MSAL and
caches them until shortly before they expire; ``AzureIdentity``
(``reconciler.dataverse.azure_auth``, the optional ``azure`` extra) gets them from
azure-identity, cached the same way (``CachedToken``). ``RECONCILER_AUTH`` chooses among them
(``auth_from_environment``). Tokens and secrets stay out of every repr, message and log line.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import binascii
import copy
import importlib.util
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import SplitResult, urlsplit

import httpx

from reconciler.dataverse.clouds import GLOBAL_AUTHORITY, authority_for, is_loopback
from reconciler.dataverse.errors import AuthError, describe_foreign_body, redact

__all__ = [
    "Certificate",
    "ClientCredentials",
    "Invalidatable",
    "StaticToken",
    "TokenProvider",
    "auth_from_environment",
    "checked_audience",
]

log = logging.getLogger("reconciler.dataverse")

DEFAULT_AUTHORITY = GLOBAL_AUTHORITY
AUTH_VARIABLE = "RECONCILER_AUTH"
TOKEN_VARIABLE = "DATAVERSE_TOKEN"
AUTH_METHODS = ("auto", "token", "client-secret", "client-certificate", "azure-identity")
AUTHORITY_VARIABLE = "AZURE_AUTHORITY_HOST"
CERTIFICATE_VARIABLE = "AZURE_CLIENT_CERTIFICATE_PATH"
# The Azure SDKs' EnvironmentCredential names (azure-identity's README, "Environment variables").
CLIENT_VARIABLES = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    CERTIFICATE_VARIABLE,
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
)
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
    """Client-credentials tokens from Microsoft Entra ID through MSAL, cached.

    ``credential`` is the app registration's client secret, or a certificate (``Certificate``).
    MSAL (Microsoft's own library) builds the token request, signs the certificate assertion
    and knows the authorities of the national clouds; the token is fetched in a worker thread
    (MSAL is synchronous) on first use and again once it is within ``refresh_margin`` seconds of
    expiring (or after :meth:`invalidate`); concurrent callers wait for one shared fetch.
    ``transport`` (an httpx transport) and ``clock`` are seams for tests: MSAL's requests go
    through httpx either way.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        credential: str | Certificate,
        scope: str,
        *,
        authority: str = DEFAULT_AUTHORITY,
        transport: httpx.BaseTransport | None = None,
        refresh_margin: float = 300,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (tenant_id and client_id and credential):
            raise AuthError(
                "client credentials need a tenant id, a client id and a client secret or "
                "certificate"
            )
        super().__init__(refresh_margin=refresh_margin, clock=clock)
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._credential = credential
        self.scope = scope
        self.authority = authority.rstrip("/")
        self._app: Any = None  # msal.ConfidentialClientApplication, built on first fetch
        self._http = _HttpClient(transport, timeout)

    @property
    def token_url(self) -> str:
        return f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def _secrets(self) -> list[str]:
        if isinstance(self._credential, Certificate):
            return [self._credential.password] if self._credential.password else []
        return [self._credential]

    def __repr__(self) -> str:
        kind = "certificate" if isinstance(self._credential, Certificate) else "client_secret"
        return (
            f"ClientCredentials(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
            f"scope={self.scope!r}, authority={self.authority!r}, {kind}=<redacted>)"
        )

    async def _fetch(self) -> str:
        import msal  # imported when a token is first needed, not at start-up

        requested_at = self._clock()
        path = urlsplit(self.token_url).path
        failure: AuthError | None = None
        self._http.last = None  # an answer of this fetch's, or none (MSAL's throttle answered)
        try:
            result = await asyncio.to_thread(self._acquire)
        except (
            httpx.HTTPError,
            ValueError,
            OSError,
            RecursionError,  # an answer nested too deeply for the JSON reader
            msal.exceptions.MsalError,
        ) as exc:
            # MSAL raises ValueError when the authority's OpenID configuration or the token
            # answer is not JSON, and MsalServiceError for a 5xx token answer.
            failure = AuthError(
                self._describe(exc), method="POST", url=path, retryable=_transient(exc)
            )
        if failure is not None:
            # Raised outside the except block: the httpx error holds the request and its form.
            raise failure
        log.debug("POST %s -> %s (token endpoint, through MSAL)", path, _outcome(result))
        access_token = result.get("access_token")
        if "error" in result or not isinstance(access_token, str) or not access_token:
            status = self._http.last.status_code if self._http.last is not None else None
            raise AuthError(
                self._refusal(result, status),
                method="POST",
                url=path,
                retryable=status in _TOKEN_ENDPOINT_RETRYABLE,
            )
        try:
            lifetime = float(result.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return self._keep(access_token, requested_at, lifetime)

    def _acquire(self) -> dict[str, Any]:
        import msal

        if self._app is None:
            credential: str | dict[str, str] = (
                self._credential.for_msal()
                if isinstance(self._credential, Certificate)
                else self._credential
            )
            self._app = msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=credential,
                authority=f"{self.authority}/{self.tenant_id}",
                http_client=self._http,
                # The authority comes from the target's cloud or AZURE_AUTHORITY_HOST, both
                # set by whoever runs the reconciler: no look-up at login.microsoftonline.com.
                instance_discovery=False,
            )
            # MSAL's messages may carry a token endpoint's answer; ours say what matters.
            logging.getLogger("msal").setLevel(logging.CRITICAL)
        # A fetch is for a new token (``CachedToken`` keeps it, and drops it after a 401): an
        # empty cache, so MSAL does not hand back the token just dropped.
        self._app.token_cache = msal.TokenCache()
        result = self._app.acquire_token_for_client(scopes=[self.scope])
        return result if isinstance(result, dict) else {}

    def _describe(self, exc: BaseException) -> str:
        """What went wrong getting a token, in a sentence that holds no secret."""
        import msal

        response = self._http.last
        if isinstance(exc, msal.exceptions.MsalServiceError) and response is not None:
            found = describe_foreign_body(
                response.headers.get("content-type", ""), response.text, secrets=self._secrets
            )
            return f"the token endpoint answered HTTP {response.status_code} ({found})"
        first = _first_line(redact(str(exc), self._secrets))
        failure = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        if isinstance(exc, (httpx.TransportError, OSError)):
            return f"cannot reach the token endpoint {self.authority} ({failure})"
        return f"cannot get a token from {self.authority} ({failure})"

    def _refusal(self, result: dict[str, Any], status: int | None) -> str:
        code = result.get("error")
        if not isinstance(code, str):
            return "the token endpoint answered 200 without an access_token"
        shown = f"HTTP {status} {code}" if status else code
        text = f"the token endpoint refused the client credentials: {shown}"
        description = result.get("error_description")
        if isinstance(description, str) and description.strip():
            text = f"{text}: {_first_line(redact(description, self._secrets))}"
        return redact(text, self._secrets)


def _first_line(text: str) -> str:
    """The first line of a message quoted from elsewhere, at most ``_DESCRIPTION`` long."""
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    return first if len(first) <= _DESCRIPTION else first[: _DESCRIPTION - 1] + "…"


def _outcome(result: dict[str, Any]) -> str:
    return "token" if "access_token" in result else str(result.get("error", "no token"))


def _transient(exc: BaseException) -> bool:
    """Whether trying again may get a token: the endpoint was unreachable or answered 5xx
    (MSAL then answers from its throttle for the answer's Retry-After, or 5 s)."""
    import msal

    return isinstance(exc, (httpx.TransportError, OSError, msal.exceptions.MsalServiceError))


@dataclass(frozen=True)
class Certificate:
    """A client certificate: a PEM file (private key and certificate) or a PKCS#12 file
    (``.pfx``/``.p12``), as ``AZURE_CLIENT_CERTIFICATE_PATH`` names it for the Azure SDKs."""

    path: str
    password: str = field(default="", repr=False)

    def _secrets(self) -> list[str]:
        return [self.password] if self.password else []

    def for_msal(self) -> dict[str, str]:
        """The ``client_credential`` MSAL takes for this file (msal-python's
        ``ClientApplication`` documentation: ``private_key_pfx_path`` from 1.29, a PEM
        ``private_key`` with its ``public_certificate``, whose SHA-256 thumbprint MSAL computes,
        from 1.35)."""
        # cryptography comes with MSAL; imported when a certificate is first used.
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12

        try:
            with open(self.path, "rb") as file:
                content = file.read()
        except OSError as exc:
            raise AuthError(
                f"cannot read the client certificate {self.path}: {exc.strerror}"
            ) from None
        password = self.password.encode() if self.password else None
        pfx = self.path.lower().endswith((".pfx", ".p12"))
        pem = "" if pfx else content.decode("ascii", "replace")
        certificates = re.findall(
            r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S
        )
        if not pfx and ("PRIVATE KEY-----" not in pem or not certificates):
            raise AuthError(
                f"the client certificate {self.path} must hold the private key and the "
                "certificate in PEM form (or be a .pfx file)"
            )
        try:  # opened here first, so a wrong passphrase is said as such (MSAL would crash)
            if pfx:
                pkcs12.load_key_and_certificates(content, password)
            else:
                serialization.load_pem_private_key(content, password)
        except (TypeError, ValueError) as exc:
            reason = redact(str(exc), self._secrets()).strip().splitlines()
            raise AuthError(
                f"the client certificate {self.path} cannot be opened: "
                f"{reason[0] if reason else type(exc).__name__} (check "
                "AZURE_CLIENT_CERTIFICATE_PASSWORD)"
            ) from None
        found = (
            {"private_key_pfx_path": self.path}
            if pfx
            else {"private_key": pem, "public_certificate": certificates[0]}
        )
        if self.password:
            found["passphrase"] = self.password
        return found


class _HttpClient:
    """The ``http_client`` MSAL calls (``get``/``post`` answering ``status_code``, ``text``,
    ``headers``), on httpx: the same proxies and certificate settings as the Web API's client."""

    def __init__(self, transport: httpx.BaseTransport | None, timeout: float) -> None:
        self._client = httpx.Client(transport=transport, timeout=timeout)
        self.last: httpx.Response | None = None

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        self.last = self._client.get(url, **_httpx_arguments(kwargs))
        return self.last

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        # MSAL hands a refusal back as the body's ``error`` without the status, which says
        # whether trying again can help (429, 5xx): ``last`` keeps it.
        self.last = self._client.post(url, **_httpx_arguments(kwargs))
        return self.last

    def close(self) -> None:  # pragma: no cover - MSAL closes nothing; kept for its protocol
        self._client.close()


def _httpx_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments of MSAL's requests-style call that httpx takes. A form value may be bytes
    (MSAL's signed client assertion): requests sends bytes as they are, httpx would send
    their ``repr``, so they are decoded first."""
    allowed = {"params", "headers", "data", "timeout"}
    found = {key: value for key, value in kwargs.items() if key in allowed and value is not None}
    if isinstance(found.get("data"), dict):
        found["data"] = {
            name: value.decode("utf-8") if isinstance(value, bytes) else value
            for name, value in found["data"].items()
        }
    return found


def jwt_audiences(token: str) -> tuple[str, ...] | None:
    """The ``aud`` claim of ``token`` if it is a JWT (RFC 7519 §4.1.3: one string or an array
    of them), ``()`` for a JWT without one; ``None`` for a token that is not a JWT. Read, not
    verified: the signature is Dataverse's to check; this only decides where not to send it."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, payload = (json.loads(_base64url(part)) for part in parts[:2])
    except (ValueError, RecursionError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    audience = payload.get("aud")
    if isinstance(audience, str):
        return (audience,)
    if isinstance(audience, list):
        return tuple(item for item in audience if isinstance(item, str))
    return ()


def _base64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def checked_audience(token: str, url: str) -> str:
    """``token`` if it may be sent to the org at ``url``: a JWT only to the host its audience
    names (a Dataverse token's ``aud`` is the org's URL), a token that is not a JWT only to an
    emulator on loopback. Otherwise ``AuthError``, naming the hosts, never the token."""
    token = checked_token(token)
    target = urlsplit(url)
    audiences = jwt_audiences(token)
    if audiences is None:
        if target.scheme == "http" and is_loopback(target.hostname or ""):
            return token
        raise AuthError(
            f"{TOKEN_VARIABLE} is not a JWT, so it names no org it was issued for; it is only "
            f"sent to an emulator on loopback, not to {url}"
        )
    named = [urlsplit(audience) for audience in audiences if "://" in audience]
    if any(_same_origin(audience, target) for audience in named):
        return token
    hosts = sorted({f"{a.scheme}://{a.netloc}" for a in named if a.hostname})
    issued = f"was issued for {', '.join(hosts)}" if hosts else "names no org in its audience"
    raise AuthError(
        f"{TOKEN_VARIABLE} {issued}; it is only sent there, not to {url}: get a token for "
        f"{url} (e.g. az account get-access-token --resource {url})"
    )


def _same_origin(audience: SplitResult, target: SplitResult) -> bool:
    defaults = {"https": 443, "http": 80}
    try:
        ports = (audience.port, target.port)
    except ValueError:
        return False
    return (
        audience.scheme.lower() == target.scheme.lower()
        and (audience.hostname or "") == (target.hostname or "")
        and (ports[0] or defaults.get(audience.scheme.lower()))
        == (ports[1] or defaults.get(target.scheme.lower()))
    )


def auth_from_environment(org_url: str, env: Mapping[str, str]) -> TokenProvider:
    """The token provider the environment configures for the org at ``org_url``.

    ``RECONCILER_AUTH`` says which (``auto`` when unset):

    - ``token``: ``DATAVERSE_TOKEN``, a bearer token, sent only to the org its audience names
      (``checked_audience``);
    - ``client-secret``: ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID`` and ``AZURE_CLIENT_SECRET``
      (or ``AZURE_CLIENT_CERTIFICATE_PATH``) give client credentials, through MSAL, from the
      authority of the org's cloud (``AZURE_AUTHORITY_HOST`` overrides it, as in the Azure
      SDKs); ``client-certificate`` insists on the certificate;
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
            f"{AUTH_VARIABLE} must be auto, token, client-secret, client-certificate or "
            f"azure-identity, not {shown}"
        )
    token = env.get(TOKEN_VARIABLE, "").strip()
    if method == "token" or (method == "auto" and token):
        if not token:
            raise AuthError(
                f"{AUTH_VARIABLE}=token, but DATAVERSE_TOKEN is not set: set it to a bearer "
                f"token for {org_url}"
            )
        return StaticToken(checked_audience(token, org_url))
    if method == "azure-identity":
        from reconciler.dataverse.azure_auth import AzureIdentity  # azure.identity only now

        return AzureIdentity(_scope(org_url), secrets=[token])
    present = {name: env.get(name, "").strip() for name in CLIENT_VARIABLES}
    secret, certificate = present["AZURE_CLIENT_SECRET"], present[CERTIFICATE_VARIABLE]
    credential: str | Certificate | None = None
    if secret and method != "client-certificate":
        credential = secret
    elif certificate:
        credential = Certificate(certificate, present["AZURE_CLIENT_CERTIFICATE_PASSWORD"])
    missing = [name for name in CLIENT_VARIABLES[:2] if not present[name]]
    if credential is None:
        missing.append(
            CERTIFICATE_VARIABLE
            if method == "client-certificate"
            else f"AZURE_CLIENT_SECRET (or {CERTIFICATE_VARIABLE})"
        )
    if not missing and credential is not None:
        return ClientCredentials(
            present["AZURE_TENANT_ID"],
            present["AZURE_CLIENT_ID"],
            credential,
            _scope(org_url),
            authority=_authority(org_url, env),
        )
    if method in ("client-secret", "client-certificate"):
        raise AuthError(
            f"{AUTH_VARIABLE}={method}, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set: client credentials for {org_url} "
            f"need AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or "
            f"{CERTIFICATE_VARIABLE}"
        )
    alternatives = f"{AUTH_VARIABLE}=azure-identity {_AZURE_IDENTITY_USE}{_install_hint()}"
    if any(present[name] for name in CLIENT_VARIABLES):
        raise AuthError(
            f"incomplete client credentials for {org_url}: set {', '.join(missing)} as well "
            f"(or set DATAVERSE_TOKEN, or {alternatives})"
        )
    raise AuthError(
        f"no credentials for {org_url}: set DATAVERSE_TOKEN to a bearer token, or "
        "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or "
        f"{CERTIFICATE_VARIABLE}) for an app registration that has a Dataverse application "
        f"user, or {alternatives}"
    )


def _authority(org_url: str, env: Mapping[str, str]) -> str:
    """The Entra ID authority for the org's cloud, or ``AZURE_AUTHORITY_HOST`` (as the Azure
    SDKs name it), which must be https: the client secret goes there."""
    given = env.get(AUTHORITY_VARIABLE, "").strip()
    if not given:
        return authority_for(urlsplit(org_url).hostname or "")
    authority = given if "://" in given else f"https://{given}"
    parts = urlsplit(authority)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.query:
        raise AuthError(f"{AUTHORITY_VARIABLE} must be an https URL such as {DEFAULT_AUTHORITY}")
    return f"https://{parts.netloc}{parts.path.rstrip('/')}"


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
