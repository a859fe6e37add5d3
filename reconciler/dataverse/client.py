"""An async client for the Dataverse Web API (real orgs and the emulator alike).

One ``httpx.AsyncClient`` per ``DataverseClient``; the transport is the seam (a real socket, the
emulator's ASGI app, or ``httpx.MockTransport`` in tests). Every request carries the OData headers
and a bearer token, is retried under the ``RetryPolicy``, and is counted in ``stats``. Debug log
lines (logger ``reconciler.dataverse``) name the method, path, status, time and attempt only.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, NamedTuple, overload
from urllib.parse import quote, unquote

import httpx

from reconciler import __version__
from reconciler.dataverse import tables as t
from reconciler.dataverse.auth import Invalidatable, TokenProvider
from reconciler.dataverse.batch import (
    BatchRequest,
    BatchResponse,
    ChangeSet,
    encode_batch,
    parse_batch_response,
)
from reconciler.dataverse.errors import (
    DataverseError,
    OutcomeUnknown,
    ProtocolError,
    Throttled,
    TransportError,
    Unauthorized,
    body_text,
    describe_foreign_body,
    error_from_response,
    redact,
    safe_text,
)
from reconciler.dataverse.retry import RetryPolicy

__all__ = ["MAX_PAGE_SIZE", "DataverseClient", "RequestStats", "WhoAmI"]

log = logging.getLogger("reconciler.dataverse")

MAX_PAGE_SIZE = 5000
Row = dict[str, Any]
Rows = list[Row]
_ENTITY_ID = re.compile(r"\(([^()]*)\)\s*$")
_SECRET_COLUMNS = frozenset(
    column.name for table in t.TABLES.values() for column in table.columns.values() if column.secret
)
_QUERY_SAFE = "$,()/:@"  # readable in logs; spaces, quotes, & + = # % stay encoded
# Failures of our own making, not of the network: not worth a retry.
_FINAL_TRANSPORT_ERRORS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
# Failures that happen before a request reaches the server: safe to resend even a write.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Errors whose text is the operating system's (errno, "Connection refused") or says what the
# server did ("Server disconnected without sending a response."): safe to show. Others may quote
# what was being sent (a header with the token).
_OS_DETAIL = (
    httpx.ConnectError,
    httpx.TimeoutException,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
# Gateway answers after which a write may or may not have been applied.
_WRITE_AMBIGUOUS_STATUSES = (502, 504)
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
THROTTLE_NOTICE_SECONDS = 3.0
"""A wait on a 429 at least this long is announced (a warning on ``reconciler.dataverse``)."""
# What a request expects of a 2xx answer: a JSON object, nothing (or JSON), or anything ($batch).
Expect = Literal["json", "none", "raw"]


class _Answer(NamedTuple):
    response: httpx.Response
    body: dict[str, Any] | None  # the JSON object, when one was expected


class RequestStats:
    """Counts of the HTTP requests actually sent, retries included, per method and table."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self.retries = 0

    def record(self, method: str, table: str) -> None:
        self._counts[(method, table)] += 1

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def by_method(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for (method, _), n in self._counts.items():
            counts[method] += n
        return dict(counts)

    def by_table(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for (_, table), n in self._counts.items():
            counts[table] += n
        return dict(counts)

    def snapshot(self) -> dict[str, int]:
        """``{"GET queues": 3, ...}``, sorted."""
        return {f"{m} {t}": n for (m, t), n in sorted(self._counts.items())}

    def reset(self) -> None:
        self._counts.clear()
        self.retries = 0

    def __repr__(self) -> str:
        return f"RequestStats(total={self.total}, retries={self.retries})"


@dataclass(frozen=True)
class WhoAmI:
    """The caller as Dataverse sees it."""

    user_id: str
    business_unit_id: str
    organization_id: str


class DataverseClient:
    """The Dataverse Web API at ``base_url`` (e.g. ``https://org.crm4.dynamics.com/api/data/v9.2/``).

    Closing the client closes its transport.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: TokenProvider,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        page_size: int = MAX_PAGE_SIZE,
        user_agent: str = f"reconciler/{__version__}",
        max_in_flight: int | None = None,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._base = httpx.URL(self.base_url)
        self._auth = auth
        self.retry = retry if retry is not None else RetryPolicy()
        self.page_size = _check_page_size(page_size)
        self.stats = RequestStats()
        self._throttled_until = float("-inf")  # the end of the throttle wait last announced
        # At most this many requests on the wire at once.
        self._slots: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Semaphore(max_in_flight) if max_in_flight else contextlib.nullcontext()
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            headers={
                "Accept": "application/json",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
                "User-Agent": user_agent,
            },
        )

    def __repr__(self) -> str:
        return f"DataverseClient({self.base_url!r})"

    async def __aenter__(self) -> DataverseClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- reads ---------------------------------------------------------------------------------

    async def list(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        orderby: str | None = None,
        top: int | None = None,
        page_size: int | None = None,
        expand: Sequence[str] | None = None,
    ) -> Rows:
        """Every row of ``entity_set`` that matches, following ``@odata.nextLink``."""
        rows: Rows = []
        pages = self.pages(
            entity_set,
            select=select,
            filter=filter,
            orderby=orderby,
            top=top,
            page_size=page_size,
            expand=expand,
        )
        async for page in pages:
            rows.extend(page)
        return rows

    async def pages(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        orderby: str | None = None,
        top: int | None = None,
        page_size: int | None = None,
        expand: Sequence[str] | None = None,
    ) -> AsyncIterator[Rows]:
        """The matching rows of ``entity_set``, one list per page.

        ``expand`` items are ``$expand`` items as sent, e.g.
        ``queuemembership_association($select=systemuserid)``; the page size applies to the
        rows of ``entity_set`` only (an expanded collection is not paged).
        """
        size = _check_page_size(page_size if page_size is not None else self.page_size)
        headers = {"Prefer": f"odata.maxpagesize={size}"}
        options: list[tuple[str, str]] = []
        if select:
            options.append(("$select", ",".join(select)))
        if expand:
            options.append(("$expand", ",".join(expand)))
            # JOIN (powerapps-docs/developer/data-platform/webapi/query/join-tables.md
            # @7df03445645ac234de3415d58a20e40d4e31be1d): "Queries which expand collection-
            # valued navigation properties might return cached data for those properties that
            # doesn't reflect recent changes. It's recommended to use If-None-Match header with
            # value null".
            headers["If-None-Match"] = "null"
        if filter:
            options.append(("$filter", filter))
        if orderby:
            options.append(("$orderby", orderby))
        if top is not None:
            options.append(("$top", str(top)))
        url: str | None = _with_query(entity_set, options)
        while url is not None:
            response, body = await self._request("GET", url, headers=headers, expect="json")
            assert body is not None
            value = body.get("value")
            if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
                raise ProtocolError(
                    "the answer has no 'value' list of rows",
                    method="GET",
                    url=self._path(response.request.url),
                )
            yield value
            next_link = body.get("@odata.nextLink")
            url = next_link if isinstance(next_link, str) and next_link else None
            if url is not None and not self._same_origin(url):
                # the bearer token goes with every request: never to another origin
                raise ProtocolError(
                    "the @odata.nextLink points away from the org",
                    method="GET",
                    url=self._path(response.request.url),
                )

    async def get(self, entity_set: str, id: str, *, select: Sequence[str] | None = None) -> Row:
        """One row by primary key; ``NotFound`` if it does not exist."""
        options = [("$select", ",".join(select))] if select else []
        _, body = await self._request(
            "GET", _with_query(f"{entity_set}({id})", options), expect="json"
        )
        assert body is not None
        return body

    async def who_am_i(self) -> WhoAmI:
        _, body = await self._request("GET", "WhoAmI", expect="json")
        assert body is not None
        ids = [body.get(k) for k in ("UserId", "BusinessUnitId", "OrganizationId")]
        if not all(isinstance(v, str) and v for v in ids):
            raise ProtocolError(
                "WhoAmI answered without UserId, BusinessUnitId and OrganizationId",
                method="GET",
                url="WhoAmI",
            )
        return WhoAmI(*(str(v) for v in ids))

    # -- writes --------------------------------------------------------------------------------

    @overload
    async def create(
        self,
        entity_set: str,
        body: Mapping[str, Any],
        *,
        return_representation: Literal[False] = False,
    ) -> str: ...

    @overload
    async def create(
        self, entity_set: str, body: Mapping[str, Any], *, return_representation: Literal[True]
    ) -> Row: ...

    @overload
    async def create(
        self, entity_set: str, body: Mapping[str, Any], *, return_representation: bool
    ) -> str | Row: ...

    async def create(
        self, entity_set: str, body: Mapping[str, Any], *, return_representation: bool = False
    ) -> str | Row:
        """POST a new row: its id (from ``OData-EntityId``), or the row as created.

        The body may carry the primary key (a client-chosen id); a duplicate raises
        ``AlreadyExists``.
        """
        headers = {"Prefer": "return=representation"} if return_representation else {}
        response, row = await self._request(
            "POST",
            entity_set,
            body=body,
            headers=headers,
            expect="json" if return_representation else "none",
        )
        if row is not None:
            return row
        entity_id = response.headers.get("OData-EntityId", "")
        match = _ENTITY_ID.search(entity_id)
        if match is None or not match.group(1):
            raise ProtocolError(
                f"{response.status_code} answer without an OData-EntityId header naming the row",
                status=response.status_code,
                method="POST",
                url=entity_set,
            )
        return match.group(1)

    async def create_only(self, entity_set: str, id: str, body: Mapping[str, Any]) -> None:
        """PATCH with ``If-None-Match: *``: create the row, ``AlreadyExists`` if it exists."""
        await self._request(
            "PATCH", f"{entity_set}({id})", body=body, headers={"If-None-Match": "*"}
        )

    async def update(
        self, entity_set: str, id: str, body: Mapping[str, Any], *, etag: str | None = None
    ) -> None:
        """PATCH an existing row: ``NotFound`` if missing, ``StaleRecord`` if ``etag`` is stale."""
        headers = {"If-Match": etag if etag is not None else "*"}
        await self._request("PATCH", f"{entity_set}({id})", body=body, headers=headers)

    async def upsert(self, entity_set: str, id: str, body: Mapping[str, Any]) -> None:
        """PATCH without conditions: update the row, or create it with this id."""
        await self._request("PATCH", f"{entity_set}({id})", body=body)

    async def delete(self, entity_set: str, id: str, *, etag: str | None = None) -> None:
        """DELETE a row (``If-Match: etag`` when given); ``NotFound`` if missing."""
        headers = {"If-Match": etag} if etag is not None else {}
        await self._request("DELETE", f"{entity_set}({id})", headers=headers)

    async def associate(
        self, entity_set: str, id: str, navigation: str, other_set: str, other_id: str
    ) -> None:
        """Associate two rows through the many-to-many relationship ``navigation``: POST
        ``<entity_set>(<id>)/<navigation>/$ref`` with the other row's absolute URL
        (associate-disassociate-entities-using-web-api.md in MicrosoftDocs/powerapps-docs
        @2b58bc64fdb8b36936dbb011fef37751d25902b4). ``NotFound`` if either row is missing;
        ``AlreadyExists`` (412, 0x80040237 DuplicateRecord) if the pair is already associated.
        """
        await self._request(
            "POST",
            f"{entity_set}({id})/{navigation}/$ref",
            body={"@odata.id": f"{self.base_url}{other_set}({other_id})"},
        )

    async def disassociate(self, entity_set: str, id: str, navigation: str, other_id: str) -> None:
        """Remove the association of two rows: DELETE
        ``<entity_set>(<id>)/<navigation>(<other_id>)/$ref`` (the same page as ``associate``);
        ``NotFound`` if either row is missing."""
        await self._request("DELETE", f"{entity_set}({id})/{navigation}({other_id})/$ref")

    async def batch(
        self, items: Sequence[BatchRequest | ChangeSet], *, continue_on_error: bool = False
    ) -> builtins.list[BatchResponse]:
        """Send ``items`` as one ``$batch`` request (retried as a whole).

        The answers come back flattened in order; there are fewer of them than requests when the
        batch stopped at a failure, and a failed change set answers once for all its requests.
        """
        if not items:
            return []
        content_type, content = encode_batch(items, self.base_url)
        headers = {"Content-Type": content_type}
        if continue_on_error:
            headers["Prefer"] = "odata.continue-on-error"
        response, _ = await self._request(
            "POST", "$batch", content=content, headers=headers, expect="raw"
        )
        try:
            return parse_batch_response(
                response.headers.get("content-type", ""), response.content, items
            )
        except ProtocolError as error:
            error.method, error.url, error.status = "POST", "$batch", response.status_code
            raise

    # -- plumbing ------------------------------------------------------------------------------

    def _path(self, url: httpx.URL) -> str:
        """``url`` as shown in messages and logs: relative to the Web API root, with its query,
        string literals masked (a ``$filter`` may compare a secret column)."""
        path = url.raw_path.decode("ascii", "replace")
        base = self._base.raw_path.decode("ascii", "replace")
        if url.host == self._base.host and path.startswith(base):
            path = path[len(base) :]
        return _STRING_LITERAL.sub("'…'", unquote(path))

    def _same_origin(self, link: str) -> bool:
        try:
            url = httpx.URL(link)
        except httpx.InvalidURL:
            return False
        if url.is_relative_url:
            return True
        return (url.scheme, url.host, url.port) == (
            self._base.scheme,
            self._base.host,
            self._base.port,
        )

    def _table(self, url: httpx.URL) -> str:
        path = self._path(url).partition("?")[0]
        if path.startswith("/"):
            path = path.rstrip("/").rpartition("/")[2]
        return path.partition("/")[0].partition("(")[0] or "/"

    async def _request(
        self,
        method: str,
        url: str,
        *,
        body: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        expect: Expect = "none",
    ) -> _Answer:
        """Send with retries; return a 2xx answer that holds what ``expect`` says, or raise the
        error for the last answer."""
        request_headers = dict(headers or {})
        if body is not None:
            content = json.dumps(
                dict(body), ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
            request_headers["Content-Type"] = "application/json"
        reauthenticated = False
        secrets = _secret_values(body)

        async def attempt(number: int) -> _Answer:
            async with self._slots:  # waits between retries hold no slot
                try:
                    return await send(number)
                except DataverseError as error:
                    if secrets:  # a server's message may quote the payload
                        error.message = redact(error.message, secrets)
                    raise

        async def send(number: int) -> _Answer:
            nonlocal reauthenticated
            try:
                return await self._send(
                    method, url, content, request_headers, number, expect, secrets
                )
            except Unauthorized as error:
                if (
                    error.status != 401
                    or reauthenticated
                    or not isinstance(self._auth, Invalidatable)
                ):
                    raise
                reauthenticated = True
            log.debug("401 from %s %s: fetching a new token and trying once more", method, url)
            self._auth.invalidate()
            self.stats.retries += 1
            return await self._send(method, url, content, request_headers, number, expect, secrets)

        def on_retry(error: DataverseError, wait: float) -> None:
            self.stats.retries += 1
            log.debug("retrying %s %s in %.2fs: %s", method, url, wait, error.describe())
            if isinstance(error, Throttled) and wait >= THROTTLE_NOTICE_SECONDS:
                self._announce_throttle(wait)

        return await self.retry.run(attempt, on_retry=on_retry)

    async def _send(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        attempt: int,
        expect: Expect = "none",
        secrets: Sequence[str] = (),
    ) -> _Answer:
        token = await self._auth.token()
        request = self._http.build_request(
            method, url, content=content, headers={**headers, "Authorization": f"Bearer {token}"}
        )
        path = self._path(request.url)
        self.stats.record(method, self._table(request.url))
        started = time.monotonic()
        failure: DataverseError | None = None
        try:
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            failure = _transport_error(exc, method, path, request.url.host)
            if method != "GET" and not isinstance(exc, _NOT_SENT + _FINAL_TRANSPORT_ERRORS):
                failure = OutcomeUnknown(
                    f"{failure.describe()}; the write may have been applied, so it was not "
                    "sent again",
                    method=method,
                    url=path,
                )
        except httpx.DecodingError as exc:
            failure = ProtocolError(
                f"cannot decode the answer ({type(exc).__name__})", method=method, url=path
            )
        if failure is not None:  # raised here, unchained: httpx errors hold the request headers
            log.debug("%s %s -> %s (attempt %d)", method, path, type(failure).__name__, attempt)
            raise failure
        elapsed = time.monotonic() - started
        log.debug(
            "%s %s -> %d in %.3fs (attempt %d)",
            method,
            path,
            response.status_code,
            elapsed,
            attempt,
        )
        if response.status_code >= 400:
            error = error_from_response(response, method=method, url=path, secrets=secrets)
            if method != "GET" and response.status_code in _WRITE_AMBIGUOUS_STATUSES:
                # The gateway may have passed the write on: settled by the caller, not resent.
                raise OutcomeUnknown(
                    f"{error.describe()}; the write may have been applied, so it was not sent "
                    "again",
                    method=method,
                    url=path,
                ) from None
            raise error
        if response.status_code >= 300:
            raise ProtocolError(
                f"unexpected redirect {response.status_code} to "
                f"{response.headers.get('location', '?')}",
                status=response.status_code,
                method=method,
                url=path,
            )
        return _Answer(response, _check_answer(response, method, path, expect))

    def _announce_throttle(self, wait: float) -> None:
        """Say once per throttled stretch that the service is throttling, and for how long."""
        now = self.retry.clock()
        if now < self._throttled_until:  # already said; later waits only lengthen the stretch
            self._throttled_until = max(self._throttled_until, now + wait)
            return
        self._throttled_until = now + wait
        log.warning(
            "the service is throttling requests (429, service protection limits): waiting %s "
            "before going on",
            _duration(wait),
        )


def _duration(seconds: float) -> str:
    """``45 s``, ``5 min``, ``4 min 30 s``."""
    whole = max(1, round(seconds))
    minutes, rest = divmod(whole, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def _check_answer(
    response: httpx.Response, method: str, path: str, expect: Expect
) -> dict[str, Any] | None:
    """What a 2xx answer holds, checked. A read whose answer is garbled raises
    ``ProtocolError`` (retryable when the JSON is cut short); a write's answer that is garbled
    raises ``OutcomeUnknown``: the write may or may not have been applied."""
    if expect == "raw":
        return None
    if method == "GET":
        return _json_object(response, path) if expect == "json" else None
    if expect == "none" and not response.content.strip():
        return None
    try:
        return _json_object(response, path)
    except ProtocolError as garbled:
        raise OutcomeUnknown(
            f"{response.status_code} answer that is not the Web API's ({garbled.describe()}); "
            "the write may have been applied, so it was not sent again",
            method=method,
            url=path,
        ) from None


def _check_page_size(size: int) -> int:
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {size}")
    return size


def _with_query(path: str, options: Sequence[tuple[str, str]]) -> str:
    if not options:
        return path
    query = "&".join(f"{name}={quote(value, safe=_QUERY_SAFE)}" for name, value in options)
    return f"{path}?{query}"


def _secret_values(body: Mapping[str, Any] | None) -> list[str]:
    """The values ``body`` writes into secret (field-secured) columns."""
    return [
        value
        for name, value in (body or {}).items()
        if name in _SECRET_COLUMNS and isinstance(value, str) and value
    ]


def _transport_error(
    exc: httpx.TransportError, method: str, path: str, host: str
) -> TransportError:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
    # Other httpx errors may quote what was being sent (a header with the token): name only.
    shown = safe_text(str(exc)) if isinstance(exc, _OS_DETAIL) else ""
    detail = f"{type(exc).__name__}: {shown}" if shown else type(exc).__name__
    return TransportError(
        f"{kind} talking to {host} ({detail})",
        method=method,
        url=path,
        retryable=not isinstance(exc, _FINAL_TRANSPORT_ERRORS),
    )


def _json_object(response: httpx.Response, url: str) -> Row:
    """The answer's JSON object, or ``ProtocolError`` when it is something else (retryable
    when it is JSON cut short or garbled: the next answer may come through whole)."""
    content_type = response.headers.get("content-type", "")
    method = response.request.method
    size = len(response.content)
    if content_type and "json" not in content_type.lower():
        found = describe_foreign_body(content_type, body_text(response), size)
        raise ProtocolError(
            f"expected JSON, got {found}",
            status=response.status_code,
            method=method,
            url=url,
        )
    try:
        body = json.loads(response.content)
    except (ValueError, RecursionError) as exc:  # ValueError includes UnicodeDecodeError
        why = safe_text(str(exc), 120) if isinstance(exc, ValueError) else "nested too deeply"
        raise ProtocolError(
            f"invalid JSON in a {response.status_code} answer ({size} bytes; cut short or "
            f"garbled): {why}",
            status=response.status_code,
            method=method,
            url=url,
            retryable=True,
        ) from None
    if not isinstance(body, dict):
        raise ProtocolError(
            f"expected a JSON object, got {type(body).__name__}",
            status=response.status_code,
            method=method,
            url=url,
        )
    return body
