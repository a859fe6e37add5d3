"""Tokens from ``azure-identity`` (the optional extra: ``pip install 'reconciler[azure]'``).

``AzureIdentity`` asks azure-identity's ``DefaultAzureCredential`` for a token for the org
(scope ``https://ORG.crmN.dynamics.com/.default``): a service principal from the environment,
workload identity federation (``AZURE_FEDERATED_TOKEN_FILE``), a managed identity, an Azure CLI
login (``az login``, ``azure/login``, the ``AzureCLI@2`` task), and the other sources that class
tries. ``AZURE_TOKEN_CREDENTIALS`` narrows them, as azure-identity documents.

azure-identity is synchronous: ``get_token`` runs in a worker thread. The token is cached like
``ClientCredentials`` caches its tokens. azure.identity is imported only when this provider is
built, never by the command-line start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from reconciler.dataverse.auth import AUTH_VARIABLE, INSTALL_COMMAND, CachedToken
from reconciler.dataverse.errors import AuthError, redact, safe_text

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken

__all__ = ["AzureIdentity", "load_default_credential"]

# Environment variables whose values a message from azure-identity must never show.
SECRET_VARIABLES = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_PASSWORD",
    "IDENTITY_HEADER",
    "MSI_SECRET",
    "DATAVERSE_TOKEN",
)
_ATTEMPT = 300  # characters of each credential's account of its failure
_MESSAGE = 900  # characters of azure-identity's message in ours, at most
_TRIED = "Attempted credentials:"
_MITIGATE = "To mitigate this issue"


class Credential(Protocol):
    """What ``AzureIdentity`` uses of an azure-identity credential."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken: ...

    def close(self) -> None: ...


def load_default_credential() -> Callable[[], Credential]:
    """A factory of ``DefaultAzureCredential``; an ``AuthError`` with the install command if
    azure-identity cannot be imported."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:
        reason = safe_text(str(exc), 120) or type(exc).__name__
        raise AuthError(
            f"{AUTH_VARIABLE}=azure-identity needs the azure-identity package, which cannot be "
            f"imported ({reason}): install it with {INSTALL_COMMAND}"
        ) from None
    # azure-identity logs each failed attempt as a warning; without a handler Python would
    # print them on stderr, next to (and longer than) the one error line the command shows.
    for name in ("azure", "msal"):
        logger = logging.getLogger(name)
        if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
            logger.addHandler(logging.NullHandler())

    def factory() -> Credential:
        credential: Credential = DefaultAzureCredential()  # azure-core retries 5xx answers
        return credential

    return factory


class AzureIdentity(CachedToken):
    """Tokens for ``scope`` from an azure-identity credential (``DefaultAzureCredential``
    unless ``credential_factory`` makes another), cached until shortly before they expire.

    Each fetch asks a new credential, closed after: its own cache could only hand back the
    token this provider just dropped (after Dataverse answered 401, :meth:`invalidate`), and a
    new one holds no connections between fetches. ``secrets``, the values of
    ``SECRET_VARIABLES`` in this process's environment and the last token are redacted from
    azure-identity's messages. ``clock`` and ``wall_clock`` are seams for tests.
    """

    def __init__(
        self,
        scope: str,
        *,
        credential_factory: Callable[[], Credential] | None = None,
        secrets: Iterable[str] = (),
        refresh_margin: float = 300,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(refresh_margin=refresh_margin, clock=clock)
        self.scope = scope
        self._factory = credential_factory or load_default_credential()
        found = [os.environ.get(name, "") for name in SECRET_VARIABLES]
        self._secrets = [secret for secret in [*secrets, *found] if secret.strip()]
        self._wall_clock = wall_clock

    def __repr__(self) -> str:
        return f"AzureIdentity(scope={self.scope!r})"

    async def _fetch(self) -> str:
        requested_at = self._clock()
        try:
            token, expires_on = await asyncio.to_thread(self._get_token)
        except Exception as exc:  # azure-identity's errors, and whatever its sources raise
            message = self._describe(exc)
        else:
            return self._keep(token, requested_at, expires_on - self._wall_clock())
        # Raised outside the except block, unchained: nothing azure-identity held is shown.
        raise AuthError(message)

    def _get_token(self) -> tuple[str, float]:
        """In a worker thread: a new credential's token, and when it expires (epoch)."""
        credential = self._factory()
        try:
            access = credential.get_token(self.scope)
        finally:
            with contextlib.suppress(Exception):  # best effort: it only holds idle connections
                credential.close()
        if not isinstance(access.token, str) or not access.token:
            raise ValueError("the credential returned an empty token")
        return access.token, float(access.expires_on)

    def _describe(self, exc: BaseException) -> str:
        text = getattr(exc, "message", None)
        if not isinstance(text, str) or not text.strip():
            text = str(exc) or type(exc).__name__
        secrets = [*self._secrets, *([self._token] if self._token else [])]
        summary = summarise(redact(text, secrets))
        return f"azure-identity could not get a token for {self.scope}: {summary}"


def summarise(text: str) -> str:
    """azure-identity's message on one line: what each credential it tried said (the first
    line of each), or else its first line; at most ``_MESSAGE`` characters."""
    before, found, after = text.partition(_TRIED)
    if not found:
        lines = [line for line in text.splitlines() if line.strip()]
        return safe_text(lines[0] if lines else text, _MESSAGE)
    attempts = []
    for line in after.split(_MITIGATE)[0].splitlines():
        if line.startswith("\t") and line.strip():
            attempts.append(safe_text(line, _ATTEMPT))
    return safe_text("; ".join(attempts) or before, _MESSAGE)
