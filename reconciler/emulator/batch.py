"""``POST $batch``: OData multipart/mixed batches with atomic change sets.

Each top-level part is one request, or a change set (a nested multipart) whose requests
succeed or fail together. A change set may not hold GETs; inside it, ``$n`` stands for the
record created by the request with ``Content-ID: n`` (in a URL or an ``@odata.bind`` value).
Without ``Prefer: odata.continue-on-error`` the batch stops at the first failure.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from reconciler.emulator.faults import (
    PAYLOAD_ERROR,
    QUERY_ERROR,
    UNAVAILABLE,
    EmulatorError,
    bad_request,
)
from reconciler.emulator.service import API_PREFIX, Request, Response

MAX_REQUESTS = 1000
MAX_URL_CHARS = 65_536
"""A GET inside a batch may have "a longer URL, up to 64 KB (65,536 characters)"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api)."""
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_REFERENCE = re.compile(r"^\$(\d+)")


@dataclass
class _Part:
    headers: dict[str, str]
    request: Request | None = None
    changeset: list[_Part] = field(default_factory=list)

    @property
    def content_id(self) -> str | None:
        return self.headers.get("content-id")


def _malformed(detail: str) -> EmulatorError:
    return bad_request(PAYLOAD_ERROR, f"The batch request is malformed: {detail}.")


def _boundary(content_type: str) -> str:
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/mixed") or match is None:
        raise _malformed("Content-Type must be multipart/mixed with a boundary")
    return match.group(1)


def _split(text: str, boundary: str) -> list[str]:
    parts: list[str] = []
    current: list[str] | None = None
    for line in text.split("\n"):
        marker = line.rstrip("\r")
        if marker == f"--{boundary}--":
            if current is not None:
                parts.append("\n".join(current))
            return parts
        if marker == f"--{boundary}":
            if current is not None:
                parts.append("\n".join(current))
            current = []
        elif current is not None:
            current.append(marker)
    raise _malformed(f"the closing delimiter --{boundary}-- is missing")


def _head(text: str) -> tuple[dict[str, str], str]:
    head, _, rest = text.partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        if line.strip():
            name, sep, value = line.partition(":")
            if not sep:
                raise _malformed(f"bad header line {line[:60]!r}")
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _inner_request(text: str, base_url: str) -> Request:
    text = text.lstrip("\n")
    request_line, _, rest = text.partition("\n")
    words = request_line.split()
    if len(words) != 3 or not words[2].startswith("HTTP/"):
        raise _malformed(f"bad request line {request_line[:80]!r}")
    headers, body = _head(rest)
    target = words[1]
    if len(target) > MAX_URL_CHARS:
        raise EmulatorError(
            414,
            QUERY_ERROR,  # UNCONFIRMED, as for a URL too long outside a batch (app.MAX_URL_CHARS)
            f"A URL in the batch is {len(target)} characters long; the maximum is {MAX_URL_CHARS}.",
        )
    if not _REFERENCE.match(target):
        split = urlsplit(target)
        path = split.path
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        target = path.lstrip("/") + (f"?{split.query}" if split.query else "")
    path, _, query = target.partition("?")
    return Request(words[0].upper(), path, query, headers, body.strip().encode(), base_url)


def parse(request: Request) -> list[_Part]:
    boundary = _boundary(request.headers.get("content-type", ""))
    try:
        text = request.body.decode()
    except UnicodeDecodeError:
        raise _malformed("the body is not UTF-8") from None
    parts: list[_Part] = []
    for chunk in _split(text, boundary):
        headers, content = _head(chunk)
        content_type = headers.get("content-type", "")
        if content_type.lower().startswith("multipart/mixed"):
            inner = []
            for sub in _split(content, _boundary(content_type)):
                sub_headers, sub_content = _head(sub)
                inner.append(_Part(sub_headers, _inner_request(sub_content, request.base_url)))
            if any(p.request is not None and p.request.method == "GET" for p in inner):
                raise _malformed("a change set may not contain GET requests")
            ids = [p.content_id for p in inner if p.content_id is not None]
            if len(ids) != len(set(ids)):
                raise _malformed("the Content-IDs of a change set must be unique")
            parts.append(_Part(headers, changeset=inner))
        elif content_type.lower().startswith("application/http"):
            parts.append(_Part(headers, _inner_request(content, request.base_url)))
        else:
            raise _malformed("each part must be application/http or a multipart/mixed change set")
    total = sum(len(p.changeset) or 1 for p in parts)
    if total > MAX_REQUESTS:
        raise bad_request(
            PAYLOAD_ERROR, f"The batch holds {total} requests; the maximum is {MAX_REQUESTS}."
        )
    return parts


def _resolve(request: Request, created: dict[str, str]) -> Request:
    """Replace ``$n`` references with the URLs of records created earlier in the change set."""

    def lookup(reference: str) -> str:
        if reference not in created:
            raise _malformed(f"${reference} does not name an earlier request of the change set")
        return created[reference]

    match = _REFERENCE.match(request.path)
    if match:
        url = lookup(match.group(1))
        request.path = url.split(API_PREFIX, 1)[-1] + request.path[match.end() :]
    if request.body:
        try:
            body = json.loads(request.body)
        except ValueError:
            return request
        if isinstance(body, dict):
            for key, value in body.items():
                if key.endswith("@odata.bind") and isinstance(value, str):
                    ref = _REFERENCE.fullmatch(value)
                    if ref:
                        body[key] = lookup(ref.group(1))
            request.body = json.dumps(body).encode()
    return request


def execute(request: Request, call: Callable[[Request], Response], transaction: Any) -> Response:
    """Run a batch; ``call`` answers one request, ``transaction`` makes change sets atomic."""
    parts = parse(request)
    keep_going = request.prefers("odata.continue-on-error")
    out: list[str] = []
    boundary = f"batchresponse_{uuid.uuid4()}"
    for part in parts:
        failed = False
        if part.changeset:
            created: dict[str, str] = {}
            answers: list[tuple[_Part, Response]] = []
            try:
                with transaction():
                    for sub in part.changeset:
                        assert sub.request is not None
                        answer = call(_resolve(sub.request, created))
                        if answer.status >= 400:
                            raise _Failed(sub, answer)
                        if sub.content_id and "OData-EntityId" in answer.headers:
                            created[sub.content_id] = answer.headers["OData-EntityId"]
                        answers.append((sub, answer))
            except _Failed as failure:
                out.append(_http_part(failure.response, failure.part.content_id))
                failed = True
            except EmulatorError as error:
                out.append(_http_part(as_response(error), None))
                failed = True
            except Exception:  # rolled back like any failed change set
                unexpected = EmulatorError(500, UNAVAILABLE, "An unexpected error occurred.")
                out.append(_http_part(as_response(unexpected), None))
                failed = True
            else:
                inner = f"changesetresponse_{uuid.uuid4()}"
                body = "".join(f"--{inner}\r\n{_http_part(a, s.content_id)}" for s, a in answers)
                out.append(
                    f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n{body}--{inner}--\r\n"
                )
        else:
            assert part.request is not None
            try:
                answer = call(part.request)
            except Exception:  # answered as one part; parts before it keep their answers
                answer = as_response(
                    EmulatorError(500, UNAVAILABLE, "An unexpected error occurred.")
                )
            out.append(_http_part(answer, part.content_id))
            failed = answer.status >= 400
        if failed and not keep_going:
            break
    text = "".join(f"--{boundary}\r\n{p}" for p in out) + f"--{boundary}--\r\n"
    return Response(200, text.encode(), {"Content-Type": f"multipart/mixed; boundary={boundary}"})


class _Failed(Exception):
    def __init__(self, part: _Part, response: Response) -> None:
        super().__init__(response.status)
        self.part = part
        self.response = response


def as_response(error: EmulatorError) -> Response:
    return Response(error.status, error.body(), dict(error.headers))


def _http_part(response: Response, content_id: str | None) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}"]
    headers = {"OData-Version": "4.0", **response.headers}
    body = ""
    if response.body is not None:
        headers["Content-Type"] = "application/json; odata.metadata=minimal"
        body = json.dumps(response.body)
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n" + body + "\r\n"
