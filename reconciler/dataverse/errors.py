"""The errors the Dataverse client raises.

    DataverseError                  root: .method, .url (path and query, never headers), .retryable,
    │                               .attempts (how many times the request was sent)
    ├── AuthError                   no credentials configured, or the token endpoint refused
    ├── TransportError              connection refused or reset, timeout (retryable)
    │   └── OutcomeUnknown          a write was sent but its answer was lost: it may have been
    │                               applied, so it is not resent; re-read and decide
    ├── ApiError                    an HTTP error answer: .status, .code ("0x80040217" or None),
    │   │                           .message, .retry_after
    │   ├── Unauthorized            401 / 403
    │   ├── NotFound                404
    │   ├── PreconditionFailed      412
    │   │   ├── StaleRecord         412 with 0x80060882: the If-Match etag no longer matches
    │   │   └── AlreadyExists       412 on If-None-Match: *, or a duplicate key (0x80040237 and
    │   │                           0x80060892, whatever the status)
    │   ├── Throttled               429 (retryable; .retry_after from the Retry-After header)
    │   ├── ServerError             5xx; retryable for 502, 503 and 504
    │   └── BadRequest              any other 4xx: validation errors (400, code 0x0 for an
    │                               unknown property), a delete a restrict relationship
    │                               refuses (405, 0x80040227)
    └── ProtocolError               the answer is not what the Web API sends: an HTML page,
                                    truncated JSON, a missing OData-EntityId, malformed multipart
                                    (retryable when a read's JSON was cut short; on a write the
                                    client raises OutcomeUnknown instead)

Messages read like ``PATCH queues(5c…): 412 0x80060882 The version of the existing record…``.
They are built from the method, the URL path and the server's answer only: never from request
headers (the bearer token), request bodies (which may hold channel secrets) or credentials.
Wrapped ``httpx`` exceptions are not chained either, because they hold the request and its
``Authorization`` header. What the server sent is shown only as far as it is safe: its status,
content type and size, and the title or first words of a body that is not JSON, with control
characters escaped; a JSON body is never quoted (it may hold record values).

An error status whose body is not a Dataverse error document means something other than the Web
API answered (a wrong URL, a proxy's HTML page), so it is a ``ProtocolError``, except for the
statuses whose meaning does not depend on the body: 401/403, 429 and 502/503/504 (gateways answer
those with their own pages, and they must stay retryable).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from reconciler.errors import ReconcilerError

__all__ = [
    "AlreadyExists",
    "ApiError",
    "AuthError",
    "BadRequest",
    "DataverseError",
    "NotFound",
    "PreconditionFailed",
    "ProtocolError",
    "ServerError",
    "StaleRecord",
    "Throttled",
    "TransportError",
    "Unauthorized",
    "api_error",
    "error_from_response",
    "parse_retry_after",
    "redact",
]

CODE_NOT_FOUND = "0x80040217"
CODE_DUPLICATE_RECORD = "0x80040237"
CODE_DUPLICATE_KEY = "0x80060892"
CODE_STALE_RECORD = "0x80060882"
DUPLICATE_CODES = frozenset({CODE_DUPLICATE_RECORD, CODE_DUPLICATE_KEY})
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

_SNIPPET = 200
_MESSAGE = 1000  # characters of a server's error message shown at most
_LOOKED_AT = 4096  # characters of a foreign body read to describe it
_LARGE_BODY = 10_000  # bytes: the size of a larger body is part of its description
_URL_IN_MESSAGE = 160


class DataverseError(ReconcilerError):
    """Root of every error the Dataverse client raises."""

    retryable_by_default = False

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        retryable: bool | None = None,
        attempts: int = 1,
    ) -> None:
        self.message = message
        self.method = method
        self.url = url
        self.retryable = self.retryable_by_default if retryable is None else retryable
        self.attempts = attempts
        super().__init__(message)

    def describe(self) -> str:
        """The message without the request prefix."""
        return self.message

    def __str__(self) -> str:
        text = self.describe()
        if self.url is not None:
            url = self.url
            if len(url) > _URL_IN_MESSAGE:
                url = url[: _URL_IN_MESSAGE - 1] + "…"
            prefix = f"{self.method} {url}" if self.method else url
            text = f"{prefix}: {text}"
        if self.attempts > 1:
            text = f"{text} (after {self.attempts} attempts)"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class AuthError(DataverseError):
    """No credentials are configured, or the token endpoint did not hand out a token."""


class TransportError(DataverseError):
    """The request did not get an answer: connection refused or reset, timeout."""

    retryable_by_default = True


class OutcomeUnknown(TransportError):
    """A write (POST/PATCH/DELETE/$batch) went out and no answer came back.

    Sending it again could report the caller's own write as a conflict (412) or create a second
    row, so it is final: the caller re-reads the record and reconciles.
    """

    retryable_by_default = False


class ProtocolError(DataverseError):
    """The answer is not what the Dataverse Web API sends."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        retryable: bool | None = None,
        attempts: int = 1,
    ) -> None:
        self.status = status
        super().__init__(message, method=method, url=url, retryable=retryable, attempts=attempts)


class ApiError(DataverseError):
    """The Web API answered with an error status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        method: str | None = None,
        url: str | None = None,
        retryable: bool | None = None,
        attempts: int = 1,
    ) -> None:
        self.status = status
        self.code = code
        self.retry_after = retry_after
        super().__init__(message, method=method, url=url, retryable=retryable, attempts=attempts)

    def describe(self) -> str:
        parts = [str(self.status)]
        if self.code:
            parts.append(self.code)
        if self.message:
            parts.append(self.message)
        return " ".join(parts)


class Unauthorized(ApiError):
    """401 or 403: the token is missing, expired or lacks a Dataverse application user."""


class NotFound(ApiError):
    """404: the record (or the entity set) does not exist."""


class PreconditionFailed(ApiError):
    """412: a conditional request's condition did not hold."""


class StaleRecord(PreconditionFailed):
    """412 with 0x80060882: the record changed since its etag was read."""


class AlreadyExists(PreconditionFailed):
    """The record exists: 412 on a create-only PATCH, or a duplicate key on create."""


class Throttled(ApiError):
    """429: a service-protection limit was hit; wait ``retry_after`` seconds."""

    retryable_by_default = True


class ServerError(ApiError):
    """5xx; 502, 503 and 504 are worth retrying."""


class BadRequest(ApiError):
    """Any other 4xx, typically a payload Dataverse rejects."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; an HTTP-date or garbage gives ``None``."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def api_error(
    status: int,
    *,
    code: str | None,
    message: str,
    retry_after: float | None = None,
    create_only: bool = False,
    method: str | None = None,
    url: str | None = None,
) -> ApiError:
    """The ``ApiError`` subclass for an error answer."""
    cls: type[ApiError]
    if code in DUPLICATE_CODES:
        cls = AlreadyExists
    elif status in (401, 403):
        cls = Unauthorized
    elif status == 404:
        cls = NotFound
    elif status == 412:
        if code == CODE_STALE_RECORD:
            cls = StaleRecord
        elif create_only:
            cls = AlreadyExists
        else:
            cls = PreconditionFailed
    elif status == 429:
        cls = Throttled
    elif status >= 500:
        cls = ServerError
    else:
        cls = BadRequest
    return cls(
        status,
        message,
        code=code,
        retry_after=retry_after,
        method=method,
        url=url,
        retryable=status in RETRYABLE_STATUSES,
    )


def parse_error_body(body: Any, secrets: Iterable[str] = ()) -> tuple[str | None, str] | None:
    """``(code, message)`` from a Dataverse error document, or ``None`` if ``body`` is not one.
    ``secrets`` are redacted from the message before it is shortened and made printable (after,
    a secret cut by the length limit or with its whitespace folded would no longer match)."""
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if not isinstance(error, Mapping):
        return None
    code = error.get("code")
    message = error.get("message")
    return (  # printable, on one line: a message may hold a stack trace, or terminal escapes
        safe_text(code, 40) if isinstance(code, str) and code.strip() else None,
        safe_text(redact(message, secrets), _MESSAGE) if isinstance(message, str) else "",
    )


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every spelling a request could carry ``secrets`` in (as they are, JSON-
    escaped, URL-encoded) replaced by ``<redacted>``: for a server's message quoting it."""
    for secret in secrets:
        spellings = {
            secret,
            json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1],
            quote(secret, safe=""),
            quote_plus(secret),
            html.escape(secret),  # an HTML error page quoting the request
            html.escape(secret, quote=False),
            _dotnet_json(secret),  # System.Text.Json's default escaping (\u002B for +)
        }
        for spelling in sorted(spellings, key=len, reverse=True):
            if spelling:
                text = text.replace(spelling, "<redacted>")
    return text


def _dotnet_json(secret: str) -> str:
    """``secret`` as .NET's default JSON encoder writes it: HTML-sensitive characters, plus,
    backtick and everything outside printable ASCII as upper-case ``\\uXXXX`` escapes."""
    return "".join(
        f"\\u{ord(c):04X}" if c in "<>&'\"+`" or not (" " <= c <= "~") else c for c in secret
    )


def safe_text(text: str, limit: int = _SNIPPET) -> str:
    """``text`` fit for one line of a message: whitespace runs as one space, control and
    invisible characters escaped (``\\x1b``), at most ``limit`` characters."""
    text = " ".join(text[: limit * 4].split())
    shown = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def describe_foreign_body(
    content_type: str, text: str, size: int | None = None, secrets: Iterable[str] = ()
) -> str:
    """A short, readable account of a body that is not a Dataverse answer (an HTML page, plain
    text): its type, ``size`` in bytes when given, and its title or first words, made safe.

    Only the first few kilobytes are looked at. A body that looks like JSON is not quoted: it
    may hold record values (a channel secret)."""
    kind = safe_text(content_type, 80) if content_type.strip() else ""
    text = redact(text, secrets)[:_LOOKED_AT]  # before the cut: a secret across it stays whole
    if not text.strip() and size is None:
        return f"empty {kind}" if kind else "empty body"
    kind = kind or "untyped body"
    if size is not None:
        kind = f"{kind}, {size} bytes"
    if not text.strip():
        return f"{kind}: empty"
    if text.lstrip()[:1] in ("{", "["):
        return f"{kind}: JSON, not shown"
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title and title.group(1).strip():
        snippet = title.group(1)
    else:
        snippet = re.sub(r"<[^>]*>", " ", text) if "<" in text else text
    return f"{kind}: {safe_text(snippet)}"


def error_from_response(
    response: httpx.Response,
    *,
    method: str | None = None,
    url: str | None = None,
    secrets: Iterable[str] = (),
) -> DataverseError:
    """The error for an answer with a 4xx or 5xx status (the body must have been read)."""
    status = response.status_code
    content_type = response.headers.get("content-type", "")
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    try:
        create_only = response.request.headers.get("if-none-match", "").strip() == "*"
    except RuntimeError:  # a response built without its request
        create_only = False
    parsed: tuple[str | None, str] | None = None
    is_json = False
    if response.content:
        try:
            body = json.loads(response.content)
        except (ValueError, RecursionError):  # ValueError includes UnicodeDecodeError
            pass
        else:
            is_json = True
            parsed = parse_error_body(body, secrets)
    if parsed is not None:
        code, message = parsed
        return api_error(
            status,
            code=code,
            message=message,
            retry_after=retry_after,
            create_only=create_only,
            method=method,
            url=url,
        )
    reason = safe_text(response.reason_phrase, 60) or "error"
    if is_json:
        detail = f"{reason} (a JSON body that is not a Dataverse error document)"
    else:
        size = len(response.content)
        shown = size if size > _LARGE_BODY else None
        found = describe_foreign_body(content_type, body_text(response), shown, secrets)
        detail = f"{reason} ({found})"
    if status in (401, 403, 429) or status in RETRYABLE_STATUSES:
        return api_error(
            status, code=None, message=detail, retry_after=retry_after, method=method, url=url
        )
    # Something other than the Web API answered: a wrong URL (4xx), or a server or proxy that
    # failed without saying why in Dataverse's terms (5xx).
    hint = "; is this a Dataverse Web API URL?" if status < 500 else ""
    return ProtocolError(f"{status} {detail}{hint}", status=status, method=method, url=url)


def body_text(response: httpx.Response) -> str:
    """The start of the body as text (the rest is never shown)."""
    head = response.content[: _LOOKED_AT * 4]
    return head.decode(response.encoding or "utf-8", "replace")  # httpx names known codecs only
