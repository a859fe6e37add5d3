"""The faults ``--fault-rate`` injects, and the bad answers some of them make.

    429           service protection: 429 with Retry-After (--fault-retry-after), nothing written
    503           503 Service Unavailable, nothing written
    drop          the connection is closed with no answer, before anything is written
    drop-after    the operation is carried out (and committed), then the connection is closed
                  with no answer: the client cannot tell whether a write landed
    slow          the operation is carried out; its answer comes --slow-ms later
    truncated     200 with a JSON body cut in the middle
    html          a gateway's or web server's HTML error page, on 500 or 502
    content-type  a JSON body labelled text/plain or text/html
    odd-500       500 with an empty body, plain text, JSON without "error", or a huge body

For the bad answers (the last four), a write is carried out or not at random (the same seeded
generator): a garbled answer says nothing about whether the write landed. A read is always
carried out, and its real answer is the one garbled.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable

from reconciler.emulator.service import Response

KINDS = (
    "429",
    "503",
    "drop",
    "drop-after",
    "slow",
    "truncated",
    "html",
    "content-type",
    "odd-500",
)
DEFAULT_KINDS = ("429", "503")
BAD_ANSWERS = frozenset({"truncated", "html", "content-type", "odd-500"})
TARGETS = ("all", "reads", "writes")
"""Which requests faults are injected into (``--fault-on``): reads are GETs."""

JSON_TYPE = "application/json; odata.metadata=minimal"
HUGE_BODY = 2 * 1024 * 1024


class Dropped(Exception):
    """The connection of this request is to be closed without an answer."""


def parse_kinds(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"429,drop"`` → ``("429", "drop")``; ``ValueError`` naming an unknown kind."""
    items = text.split(",") if isinstance(text, str) else list(text)
    kinds: list[str] = []
    for item in (i.strip().lower() for i in items):
        if item not in KINDS:
            raise ValueError(f"unknown fault kind {item!r}; choose from {', '.join(KINDS)}")
        if item not in kinds:
            kinds.append(item)
    if not kinds:
        raise ValueError("name at least one fault kind")
    return tuple(kinds)


def bad_answer(kind: str, real: Response | None, rng: random.Random, base_url: str) -> Response:
    """The garbled answer of ``kind`` in place of ``real`` (``None``: the write was not run)."""
    if kind == "truncated":
        return _truncated(real, base_url)
    if kind == "html":
        return _html_page(rng)
    if kind == "content-type":
        return _mislabelled(real, rng)
    if kind == "odd-500":
        return _odd_500(rng)
    raise ValueError(f"{kind!r} is not a bad answer")


def _json_of(real: Response | None, base_url: str) -> tuple[int, bytes]:
    """The status and JSON body of ``real``; an empty-bodied or missing answer becomes a 200
    with a small document (what a proxy that garbles might have sent)."""
    if real is not None and isinstance(real.body, dict | list):
        return real.status, json.dumps(real.body).encode()
    document = {"@odata.context": f"{base_url}$metadata", "value": []}
    return 200, json.dumps(document).encode()


def _truncated(real: Response | None, base_url: str) -> Response:
    _, body = _json_of(real, base_url)
    cut = body[: max(1, len(body) // 2)]
    return Response(200, cut, {"Content-Type": JSON_TYPE})


def _mislabelled(real: Response | None, rng: random.Random) -> Response:
    if real is not None and isinstance(real.body, dict | list):
        status, body = real.status, json.dumps(real.body).encode()
        headers = {k: v for k, v in real.headers.items() if k.lower() != "content-type"}
    else:
        status, body, headers = 200, b"{}", {}
    label = rng.choice(("text/plain; charset=utf-8", "text/html; charset=utf-8"))
    return Response(status, body, {**headers, "Content-Type": label})


_GATEWAY_PAGE = """<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>Microsoft-Azure-Application-Gateway/v2</center>
</body>
</html>
"""

_SERVER_PAGE = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN">
<html xmlns="http://www.w3.org/1999/xhtml">
<head><title>500 - Internal server error.</title></head>
<body><div id="header"><h1>Server Error</h1></div>
<div id="content"><fieldset><h2>500 - Internal server error.</h2>
<h3>There is a problem with the resource you are looking for, and it cannot be displayed.</h3>
</fieldset></div></body></html>
"""


def _html_page(rng: random.Random) -> Response:
    status, page = rng.choice(((502, _GATEWAY_PAGE), (500, _SERVER_PAGE)))
    return Response(status, page.encode(), {"Content-Type": "text/html; charset=utf-8"})


def _odd_500(rng: random.Random) -> Response:
    variant = rng.choice(("empty", "text", "json", "huge"))
    body: bytes
    headers: dict[str, str]
    if variant == "empty":
        body, headers = b"", {}
    elif variant == "text":
        # a stack trace, with a terminal escape and a byte that is not UTF-8 on the way
        body = (
            b"Unhandled exception: System.NullReferenceException\r\n"
            b"   at Microsoft.Crm.Extensibility.\x1b[31mPipeline\x1b[0m.Execute() \xff\r\n"
        )
        headers = {"Content-Type": "text/plain"}
    elif variant == "json":
        body, headers = b'{"Message":"An error has occurred."}', {"Content-Type": JSON_TYPE}
    else:
        filler = b"<p>" + b"Internal error. " * (HUGE_BODY // 16) + b"</p>"
        body = b"<html><body>" + filler + b"</body></html>"
        headers = {"Content-Type": "text/html"}
    return Response(500, body, headers)
