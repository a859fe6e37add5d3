"""OData v4 ``$batch`` in the multipart form Dataverse documents.

A batch is a list of ``BatchRequest`` and ``ChangeSet`` items. A change set runs atomically and
holds no GETs; its requests may refer to earlier ones by Content-ID (``$1``). On the wire::

    --batch_B
    Content-Type: application/http
    Content-Transfer-Encoding: binary

    GET https://org.crm.dynamics.com/api/data/v9.2/queues HTTP/1.1

    --batch_B
    Content-Type: multipart/mixed; boundary=changeset_C

    --changeset_C
    Content-Type: application/http
    Content-Transfer-Encoding: binary
    Content-ID: 1

    POST https://org.crm.dynamics.com/api/data/v9.2/queues HTTP/1.1
    Content-Type: application/json

    {"name":"q"}
    --changeset_C--
    --batch_B--

with CRLF line ends. The answer mirrors it (``batchresponse_``/``changesetresponse_`` boundaries,
``HTTP/1.1 204 No Content`` status lines) and is flattened into one ``BatchResponse`` per answered
request, in order. A change set that fails answers with one response for the whole set.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from reconciler.dataverse.errors import (
    ApiError,
    ProtocolError,
    api_error,
    describe_foreign_body,
    parse_error_body,
    parse_retry_after,
)

__all__ = [
    "MAX_BATCH_REQUESTS",
    "BatchRequest",
    "BatchResponse",
    "ChangeSet",
    "encode_batch",
    "parse_batch_response",
]

MAX_BATCH_REQUESTS = 1000
CRLF = "\r\n"
_ENTITY_ID = re.compile(r"\(([^()]*)\)\s*$")
_STATUS_LINE = re.compile(r"HTTP/\d(?:\.\d)?\s+(\d{3})(?:\s.*)?$")


@dataclass(frozen=True)
class BatchRequest:
    """One request of a batch; ``url`` is relative to the Web API root, or a ``$n`` reference."""

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_id: str | None = None

    def __post_init__(self) -> None:
        if not self.url or any(c.isspace() or ord(c) < 0x20 for c in self.url):
            raise ValueError("a batch request URL must be percent-encoded (no spaces)")
        if self.content_id is not None and not self.content_id.isdigit():
            raise ValueError("a Content-ID must be a number, so that $n can refer to it")

    def __repr__(self) -> str:  # the body may hold channel secrets
        return f"BatchRequest({self.method} {self.url}, content_id={self.content_id!r})"


@dataclass(frozen=True)
class ChangeSet:
    """Requests that succeed or fail together; no GETs."""

    requests: Sequence[BatchRequest]

    def __post_init__(self) -> None:
        if not self.requests:
            raise ValueError("a change set needs at least one request")
        for request in self.requests:
            if request.method.upper() == "GET":
                raise ValueError(f"a change set cannot hold a GET ({request.url})")
        ids = [r.content_id for r in self.requests if r.content_id is not None]
        if len(ids) != len(set(ids)):
            raise ValueError("the Content-IDs of a change set must be unique")


@dataclass(frozen=True)
class BatchResponse:
    """One answered request of a batch. ``request`` is the request it answers, when known."""

    status: int
    headers: dict[str, str]
    body: Any | None
    content_id: str | None
    request: BatchRequest | None = field(default=None, compare=False)

    def __repr__(self) -> str:  # the body may echo channel secrets (return=representation)
        return (
            f"BatchResponse({self.status}, content_id={self.content_id!r}, "
            f"headers={sorted(self.headers)})"
        )

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    @property
    def entity_id(self) -> str | None:
        """The id in the ``OData-EntityId`` header of a create, if any."""
        value = self.header("OData-EntityId")
        match = _ENTITY_ID.search(value) if value else None
        return match.group(1) if match else None

    def error(self) -> ApiError | None:
        """The error this response stands for, or ``None`` when it succeeded."""
        if self.ok:
            return None
        parsed = parse_error_body(self.body)
        if parsed is not None:
            code, message = parsed
        elif isinstance(self.body, str):
            code, message = (
                None,
                describe_foreign_body(self.header("Content-Type") or "", self.body),
            )
        else:
            code, message = None, "no error document in the batch response"
        request = self.request
        if request is None and self.content_id is not None:
            message = f"{message} (batch Content-ID {self.content_id})"
        return api_error(
            self.status,
            code=code,
            message=message,
            retry_after=parse_retry_after(self.header("Retry-After")),
            create_only=bool(
                request
                and any(
                    k.lower() == "if-none-match" and v.strip() == "*"
                    for k, v in request.headers.items()
                )
            ),
            method=request.method.upper() if request else None,
            url=request.url if request else None,
        )


def count_requests(items: Sequence[BatchRequest | ChangeSet]) -> int:
    return sum(len(item.requests) if isinstance(item, ChangeSet) else 1 for item in items)


def encode_batch(
    items: Sequence[BatchRequest | ChangeSet], base_url: str, *, boundary: str | None = None
) -> tuple[str, bytes]:
    """``(content type, body)`` of the ``$batch`` request for ``items``."""
    if count_requests(items) > MAX_BATCH_REQUESTS:
        raise ValueError(f"a batch holds at most {MAX_BATCH_REQUESTS} requests")
    boundary = boundary or f"batch_{uuid.uuid4()}"
    out: list[str] = []
    for item in items:
        out.append(f"--{boundary}{CRLF}")
        if isinstance(item, ChangeSet):
            inner = f"changeset_{uuid.uuid4()}"
            out.append(f"Content-Type: multipart/mixed; boundary={inner}{CRLF}{CRLF}")
            for request, content_id in zip(item.requests, _content_ids(item), strict=True):
                out.append(f"--{inner}{CRLF}")
                out.append(_encode_request(request, base_url, content_id))
            out.append(f"--{inner}--{CRLF}")
        else:
            out.append(_encode_request(item, base_url, item.content_id))
    out.append(f"--{boundary}--{CRLF}")
    return f"multipart/mixed; boundary={boundary}", "".join(out).encode("utf-8")


def _content_ids(change_set: ChangeSet) -> list[str]:
    """The Content-IDs of a change set: the given ones, numbers after them for the rest."""
    given = [r.content_id for r in change_set.requests]
    numbers = [int(c) for c in given if c is not None and c.isdigit()]
    following = iter(range(max(numbers, default=0) + 1, 1 << 62))
    return [c if c is not None else str(next(following)) for c in given]


def _encode_request(request: BatchRequest, base_url: str, content_id: str | None) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    url = request.url if request.url.startswith("$") else urljoin(base_url, request.url)
    lines += ["", f"{request.method.upper()} {url} HTTP/1.1"]
    headers = dict(request.headers)
    payload = ""
    if request.body is not None:
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        payload = json.dumps(dict(request.body), ensure_ascii=False, separators=(",", ":"))
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["", payload]
    return CRLF.join(lines) + CRLF


def parse_batch_response(
    content_type: str, body: bytes, items: Sequence[BatchRequest | ChangeSet] = ()
) -> list[BatchResponse]:
    """The responses of a ``$batch`` answer, flattened in order and paired with ``items``."""
    groups = [_parse_top_part(part) for part in _split(body, _boundary(content_type))]
    responses: list[BatchResponse] = []
    for index, group in enumerate(groups):
        item = items[index] if index < len(items) else None
        by_id: dict[str, BatchRequest] = {}
        if isinstance(item, ChangeSet):
            by_id = dict(zip(_content_ids(item), item.requests, strict=True))
        for position, response in enumerate(group):
            request: BatchRequest | None = None
            if isinstance(item, BatchRequest):
                request = item
            elif isinstance(item, ChangeSet):
                if response.content_id is not None:
                    request = by_id.get(response.content_id)
                elif len(group) == len(item.requests):
                    request = item.requests[position]
            responses.append(_with_request(response, request))
    return responses


def _with_request(response: BatchResponse, request: BatchRequest | None) -> BatchResponse:
    if request is None:
        return response
    return BatchResponse(
        response.status, response.headers, response.body, response.content_id, request
    )


def _boundary(content_type: str) -> str:
    media_type, _, params = content_type.partition(";")
    if media_type.strip().lower() != "multipart/mixed":
        raise ProtocolError(f"expected a multipart/mixed batch answer, got {content_type!r}")
    match = re.search(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', params, re.IGNORECASE)
    if match is None:
        raise ProtocolError(f"multipart answer without a boundary: {content_type!r}")
    return match.group(1) or match.group(2)


def _split(body: bytes, boundary: str) -> list[bytes]:
    """The parts between ``--boundary`` delimiters; the preamble and epilogue are dropped."""
    delimiter = b"--" + boundary.encode("ascii", "replace")
    position = body.find(delimiter)
    while position > 0 and body[position - 1 : position] != b"\n":
        position = body.find(delimiter, position + 1)
    if position < 0:
        raise ProtocolError(f"malformed multipart: no delimiter for boundary {boundary!r}")
    parts: list[bytes] = []
    while True:
        after = position + len(delimiter)
        if body.startswith(b"--", after):
            return parts
        line_end = body.find(b"\n", after)
        if line_end < 0:
            raise ProtocolError(f"malformed multipart: the {boundary!r} part is not closed")
        if body[after:line_end].strip():
            raise ProtocolError(f"malformed multipart: bad delimiter line for {boundary!r}")
        start = line_end + 1
        if body.startswith(delimiter, start):
            parts.append(b"")
            position = start
            continue
        following = body.find(b"\n" + delimiter, start)
        if following < 0:
            raise ProtocolError(f"malformed multipart: the {boundary!r} part is not closed")
        end = following - 1 if body[following - 1 : following] == b"\r" else following
        parts.append(body[start:end])
        position = following + 1


def _split_head(block: bytes, what: str) -> tuple[list[str], bytes]:
    """The header lines (first line included) and the rest, split at the first blank line."""
    match = re.search(rb"\r?\n\r?\n", block)
    if match is None:
        head, rest = block, b""
    else:
        head, rest = block[: match.start()], block[match.end() :]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"malformed {what}: headers are not UTF-8") from None
    return text.splitlines(), rest


def _headers(lines: list[str], what: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ProtocolError(f"malformed {what}: header line {line[:80]!r}")
        headers[name.strip()] = value.strip()
    return headers


def _get(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _parse_top_part(part: bytes) -> list[BatchResponse]:
    lines, rest = _split_head(part, "batch part")
    mime = _headers(lines, "batch part")
    content_type = _get(mime, "content-type") or ""
    if content_type.lower().startswith("multipart/mixed"):
        return [_parse_http_part(p) for p in _split(rest, _boundary(content_type))]
    return [_parse_http(mime, rest)]


def _parse_http_part(part: bytes) -> BatchResponse:
    lines, rest = _split_head(part, "change set part")
    return _parse_http(_headers(lines, "change set part"), rest)


def _parse_http(mime: Mapping[str, str], message: bytes) -> BatchResponse:
    content_type = (_get(mime, "content-type") or "").lower()
    if not content_type.startswith("application/http"):
        raise ProtocolError(f"batch part of type {content_type!r}, expected application/http")
    lines, payload = _split_head(message, "batch response")
    status = _STATUS_LINE.match(lines[0].strip()) if lines else None
    if status is None:
        first = lines[0][:80] if lines else ""
        raise ProtocolError(f"malformed batch response: status line {first!r}")
    headers = _headers(lines[1:], "batch response")
    return BatchResponse(
        status=int(status.group(1)),
        headers=headers,
        body=_payload(headers, payload),
        content_id=_get(mime, "content-id") or _get(headers, "content-id"),
    )


def _payload(headers: Mapping[str, str], payload: bytes) -> Any | None:
    if not payload.strip():
        return None
    content_type = _get(headers, "content-type") or ""
    if "json" in content_type.lower():
        try:
            return json.loads(payload)
        except (ValueError, RecursionError) as exc:  # ValueError includes UnicodeDecodeError
            why = exc if isinstance(exc, ValueError) else "nested too deeply"
            raise ProtocolError(
                f"invalid JSON in a batch response ({len(payload)} bytes): {why}"
            ) from None
    return payload.decode("utf-8", "replace")
