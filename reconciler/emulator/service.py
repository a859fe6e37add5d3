"""The Web API operations of the emulated org, independent of HTTP plumbing.

``Service.handle`` takes one request (a whole HTTP request, or one part of a ``$batch``) and
returns a response or raises ``EmulatorError``. Each call is one SQLite transaction.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from reconciler.dataverse.tables import (
    BY_ENTITY_SET,
    CHAT_WIDGET,
    FB_APPLICATION,
    FB_PAGE,
    GBM_PARTNER,
    REFERENCED_BY,
    TABLES,
    OnDelete,
    Table,
)
from reconciler.emulator import seed
from reconciler.emulator.faults import (
    DUPLICATE_RECORD,
    INVALID_ARGUMENT,
    PAYLOAD_ERROR,
    QUERY_ERROR,
    VERSION_MISMATCH,
    EmulatorError,
    bad_request,
    not_found,
    resource_not_found,
    restricted_delete,
)
from reconciler.emulator.odata import (
    PageCursor,
    compile_filter,
    compile_orderby,
    parse_select,
    query_error,
)
from reconciler.emulator.records import check_write, etag, new_row, normalise_guid, shape
from reconciler.emulator.store import Row, Store

API_PREFIX = "/api/data/v9.2/"
MAX_PAGE_SIZE = 5000
_SEGMENT = re.compile(r"^(?P<name>[A-Za-z_$][A-Za-z0-9_.$]*)(?:\((?P<key>[^)]*)\))?$")
_SUPPORTED_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$skiptoken", "$count"}
_MAX_PAGE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)")
CALLBACK_HOST = "https://oc-emulator.invalid"  # .invalid: never resolvable, never a real endpoint


@dataclass
class Request:
    method: str
    path: str  # after API_PREFIX, without the query string
    query: str  # the raw query string
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    base_url: str  # scheme://host/api/data/v9.2/

    def json(self) -> Any:
        content_type = self.headers.get("content-type", "application/json")
        if not content_type.lower().startswith("application/json"):
            raise EmulatorError(
                415,
                PAYLOAD_ERROR,
                "The request body must be sent as Content-Type: application/json.",
            )
        if not self.body.strip():
            raise bad_request(PAYLOAD_ERROR, "The request body is empty.")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise bad_request(PAYLOAD_ERROR, "The request body is not valid JSON.") from None

    def prefers(self, token: str) -> bool:
        return token in self.headers.get("prefer", "")


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or None
    headers: dict[str, str] = field(default_factory=dict)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Service:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.initialise(lambda s: seed.populate(s, _new_id))

    # -- dispatch ------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        match = _SEGMENT.match(unquote(request.path))
        if match is None:
            raise resource_not_found(request.path)
        name, key = match["name"], match["key"]
        if name == "WhoAmI" and request.method == "GET" and key in (None, ""):
            return self.who_am_i(request)
        table = BY_ENTITY_SET.get(name)
        if table is None:
            raise resource_not_found(name)
        if key is None:
            if request.method == "GET":
                return self.list(table, request)
            if request.method == "POST":
                return self.create(table, request)
            raise EmulatorError(
                405, INVALID_ARGUMENT, f"{request.method} is not allowed on {name}."
            )
        record_id = normalise_guid(key)
        if record_id is None:
            raise bad_request(
                QUERY_ERROR,
                f"'{key}' is not a valid key for {name}: use the record's GUID "
                "(no alternate keys are defined).",
            )
        if request.method == "GET":
            return self.get(table, record_id, request)
        with self.store.transaction():
            if request.method == "PATCH":
                return self.patch(table, record_id, request)
            if request.method == "DELETE":
                return self.delete(table, record_id, request)
        raise EmulatorError(405, INVALID_ARGUMENT, f"{request.method} is not allowed on a record.")

    # -- reads ---------------------------------------------------------------------------
    def who_am_i(self, request: Request) -> Response:
        return Response(
            200,
            {
                "@odata.context": (
                    f"{request.base_url}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
                ),
                "BusinessUnitId": self.store.meta("businessunitid"),
                "UserId": self.store.meta("userid"),
                "OrganizationId": self.store.meta("organizationid"),
            },
        )

    def get(self, table: Table, record_id: str, request: Request) -> Response:
        options = _options(request.query)
        unsupported = set(options) - {"$select"}
        if unsupported:
            raise query_error(f"The query option {sorted(unsupported)[0]} is not supported here.")
        row = self._existing(table, record_id)
        select = (
            parse_select(options["$select"], table.by_read_name, table.logical_name)
            if "$select" in options
            else None
        )
        if request.headers.get("if-none-match") == etag(row):
            return Response(304, None, {"ETag": etag(row)})
        body = {"@odata.context": f"{request.base_url}$metadata#{table.entity_set}/$entity"}
        body.update(shape(table, row, select))
        return Response(200, body, {"ETag": etag(row)})

    def list(self, table: Table, request: Request) -> Response:
        options = _options(request.query)
        if "$skip" in options:
            raise query_error(
                "The query parameter $skip is not supported; page with Prefer: "
                "odata.maxpagesize and follow @odata.nextLink."
            )
        unsupported = set(options) - _SUPPORTED_OPTIONS
        if unsupported:
            raise query_error(f"The query option {sorted(unsupported)[0]} is not supported.")
        resolve, type_name = table.by_read_name, table.logical_name
        select = (
            parse_select(options["$select"], resolve, type_name) if "$select" in options else None
        )
        where = (
            compile_filter(options["$filter"], resolve, type_name) if "$filter" in options else None
        )
        order = (
            compile_orderby(options["$orderby"], resolve, type_name)
            if "$orderby" in options
            else []
        )
        prefer = request.headers.get("prefer", "")
        # PAGE (powerapps-docs/developer/data-platform/webapi/query/page-results.md @1943c1cd…):
        # "If you include both, $top is ignored."
        top = None if _MAX_PAGE.search(prefer) else _top(options.get("$top"))
        page_size = _page_size(prefer)
        cursor = (
            PageCursor.decode(options["$skiptoken"]) if "$skiptoken" in options else PageCursor()
        )
        limit = top if top is not None else page_size
        rows = self.store.select(
            table,
            where=where.where if where else "",
            params=where.params if where else (),
            order=order,
            limit=limit + 1,
            offset=cursor.offset if order else 0,
            after=None if order else cursor.after,
        )
        more = top is None and len(rows) > limit
        rows = rows[:limit]
        body: dict[str, Any] = {"@odata.context": f"{request.base_url}$metadata#{table.entity_set}"}
        if options.get("$count", "false") not in ("true", "false"):
            raise query_error("$count must be true or false.")
        if options.get("$count") == "true":  # Dataverse counts up to 5000
            matching = self.store.count(table, *((where.where, where.params) if where else ()))
            body["@odata.count"] = min(MAX_PAGE_SIZE, matching)
        body["value"] = [shape(table, row, select) for row in rows]
        headers = {}
        if _MAX_PAGE.search(prefer):
            headers["Preference-Applied"] = f"odata.maxpagesize={page_size}"
        if more:
            following = (
                PageCursor(offset=cursor.offset + limit)
                if order
                else PageCursor(after=str(rows[-1][table.primary_key]))
            )
            kept = [p for p in request.query.split("&") if p and not _is_skiptoken(p)]
            kept.append(f"$skiptoken={following.encode()}")
            body["@odata.nextLink"] = f"{request.base_url}{table.entity_set}?{'&'.join(kept)}"
        return Response(200, body, headers)

    # -- writes --------------------------------------------------------------------------
    def create(self, table: Table, request: Request) -> Response:
        body = request.json()
        with self.store.transaction():
            given = body.get(table.primary_key) if isinstance(body, dict) else None
            record_id = normalise_guid(given) if isinstance(given, str) else None
            if given is not None and record_id is None:
                raise bad_request(
                    PAYLOAD_ERROR, f"The value of '{table.primary_key}' is not a valid GUID."
                )
            record_id = record_id or _new_id()
            if self.store.exists(table, record_id):
                raise _duplicate(table)
            row = self._insert(table, record_id, body)
        return self._written(table, row, request, created=True)

    def patch(self, table: Table, record_id: str, request: Request) -> Response:
        body = request.json()
        existing = self.store.get(table, record_id)
        if_match = request.headers.get("if-match")
        if_none_match = request.headers.get("if-none-match")
        if if_none_match == "*" and existing is not None:
            raise _duplicate(table)
        if if_match is not None:
            if existing is None:
                raise not_found(table.logical_name, record_id)
            if if_match != "*" and if_match != etag(existing):
                raise _stale()
        if existing is None:
            row = self._insert(table, record_id, body)
            return self._written(table, row, request, created=True)
        write = check_write(table, body, record_id=record_id, existing=existing)
        self._check_binds(write.binds)
        changes = dict(write.values)
        changes["versionnumber"] = self.store.next_version()
        changes["modifiedon"] = _now()
        self.store.update(table, record_id, changes)
        row = {**existing, **changes}
        self._after_save(table, row)
        return self._written(table, row, request, created=False)

    def delete(self, table: Table, record_id: str, request: Request) -> Response:
        row = self._existing(table, record_id)
        if_match = request.headers.get("if-match")
        if if_match not in (None, "*") and if_match != etag(row):
            raise _stale()
        if seed.is_system(self.store, table, record_id):
            raise bad_request(
                INVALID_ARGUMENT,
                f"This {table.logical_name} record is owned by the system and cannot be deleted.",
            )
        self._delete(table, record_id)
        return Response(204)

    def _delete(self, table: Table, record_id: str) -> None:
        """Delete a row as its relationships say (``tables``: each lookup's documented delete
        rule): refused while a row points at it through a Restrict relationship, rows under a
        Cascade relationship deleted with it, Remove Link lookups cleared. One transaction: a
        refusal anywhere in the cascade leaves everything as it was."""
        for other, column in REFERENCED_BY[table.logical_name]:
            children = self.store.referencing(other, column, record_id)
            if not children:
                continue
            if column.on_delete is OnDelete.RESTRICT:
                raise restricted_delete()
            for child in children:
                if column.on_delete is OnDelete.CASCADE:
                    self._delete(other, child)
                else:
                    self.store.update(
                        other,
                        child,
                        {
                            column.name: None,
                            "versionnumber": self.store.next_version(),
                            "modifiedon": _now(),
                        },
                    )
        self.store.delete(table, record_id)

    def _insert(self, table: Table, record_id: str, body: Any) -> Row:
        write = check_write(table, body, record_id=record_id, existing=None)
        self._check_binds(write.binds)
        now = _now()
        row = new_row(table, record_id, write.values)
        row.update(versionnumber=self.store.next_version(), createdon=now, modifiedon=now)
        self.store.insert(table, row)
        self._after_save(table, row)
        return row

    def _check_binds(self, binds: Mapping[str, tuple[Table, str]]) -> None:
        for target, target_id in binds.values():
            if not self.store.exists(target, target_id):
                raise not_found(target.logical_name, target_id)

    def _existing(self, table: Table, record_id: str) -> Row:
        row = self.store.get(table, record_id)
        if row is None:
            raise not_found(table.logical_name, record_id)
        return row

    def _written(self, table: Table, row: Row, request: Request, *, created: bool) -> Response:
        entity_url = f"{request.base_url}{table.entity_set}({row[table.primary_key]})"
        headers = {"OData-EntityId": entity_url}
        if created:
            headers["Location"] = entity_url
        if not request.prefers("return=representation"):
            return Response(204, None, headers)
        options = _options(request.query)
        select = (
            parse_select(options["$select"], table.by_read_name, table.logical_name)
            if "$select" in options
            else None
        )
        fresh = self._existing(table, str(row[table.primary_key]))
        body = {"@odata.context": f"{request.base_url}$metadata#{table.entity_set}/$entity"}
        body.update(shape(table, fresh, select))
        headers.update({"Preference-Applied": "return=representation", "ETag": etag(fresh)})
        return Response(201 if created else 200, body, headers)

    # -- server-side behaviour -----------------------------------------------------------
    def _after_save(self, table: Table, row: Row) -> None:
        """Outputs the service generates on save (docs/domain.md §1-§2)."""
        if table.logical_name == FB_PAGE and row.get("msdyn_ocfbapplicationid"):
            self._facebook_webhook(str(row["msdyn_ocfbapplicationid"]))
        elif table.logical_name == FB_APPLICATION:
            self._facebook_webhook(str(row[table.primary_key]))
        elif table.logical_name == CHAT_WIDGET:
            self._chat_widget(table, row)
        elif table.logical_name == GBM_PARTNER and not row.get(
            "msdyn_googlebusinessmessagescallbackurl"
        ):
            record_id = str(row[table.primary_key])
            url = f"{CALLBACK_HOST}/googlebusinessmessages/{record_id}/webhook"
            self.store.update(table, record_id, {"msdyn_googlebusinessmessagescallbackurl": url})
            row["msdyn_googlebusinessmessagescallbackurl"] = url

    def _chat_widget(self, table: Table, row: Row) -> None:
        """A new widget gets its app id and the script snippet to paste into a website, as the
        service makes them (msdyn_widgetappid, msdyn_widgetsnippet: FS-LCC in
        reconciler.dataverse.tables). The snippet is shaped as real ones are (the script tag
        of ce/customer-service/develop/customize-chat-widget.md @88917abd: data-app-id, data-org-id,
        data-org-url), with the emulator's own hub host for data-org-url."""
        if row.get("msdyn_widgetappid"):
            return
        record_id = str(row[table.primary_key])
        app_id = _new_id()
        org = self.store.meta("organizationid")
        snippet = (
            f'<script v2 id="Microsoft_Omnichannel_LCWidget" src="{WIDGET_SCRIPT}" '
            f'data-app-id="{app_id}" data-lcw-version="prod" data-org-id="{org}" '
            f'data-org-url="{CALLBACK_HOST}/omnichannel/{org}"></script>'
        )
        values = {"msdyn_widgetappid": app_id, "msdyn_widgetsnippet": snippet}
        self.store.update(table, record_id, values)
        row.update(values)

    def _facebook_webhook(self, application_id: str) -> None:
        """Give the app its callback URL and verify token once it has a page of its own.

        A page whose page ID another page already uses is a reused page: it gets nothing.
        """
        applications, pages = TABLES[FB_APPLICATION], TABLES[FB_PAGE]
        application = self.store.get(applications, application_id)
        if application is None or application.get("msdyn_fbcallbackuri"):
            return
        unshared = self.store.count(pages, _UNSHARED_PAGE, (application_id,))
        if unshared:
            self.store.update(
                applications,
                application_id,
                {
                    "msdyn_fbcallbackuri": f"{CALLBACK_HOST}/facebook/{application_id}/webhook",
                    "msdyn_fbverifytoken": secrets.token_hex(16),
                    "versionnumber": self.store.next_version(),
                },
            )


# One query: the app's pages whose page ID no other page uses.
_UNSHARED_PAGE = (
    '"msdyn_ocfbapplicationid" = ? AND "msdyn_fbpageid" IN (SELECT "msdyn_fbpageid" '
    f'FROM "{FB_PAGE}" GROUP BY "msdyn_fbpageid" HAVING COUNT(*) = 1)'
)


# The live chat widget's bootstrapper for North America (ce/customer-service/implement/
# system-requirements-omnichannel.md @7dfe0fce3daacbd20b2b7e3b2a9530b38995f7c2 lists a CDN host
# per region; this one is the Learn example's).
WIDGET_SCRIPT = "https://oc-cdn-ocprod.azureedge.net/livechatwidget/scripts/LiveChatBootstrapper.js"


def _new_id() -> str:
    """Ids and tokens come from the OS, never from --seed: a restart must not replay them."""
    return str(uuid.uuid4())


def _duplicate(table: Table) -> EmulatorError:
    return EmulatorError(
        412,
        DUPLICATE_RECORD,
        f"A record with matching key values already exists in {table.logical_name}.",
    )


def _stale() -> EmulatorError:
    return EmulatorError(
        412,
        VERSION_MISMATCH,
        "The version of the existing record doesn't match the RowVersion property provided.",
    )


def _is_skiptoken(part: str) -> bool:
    return part.split("=", 1)[0].replace("%24", "$") == "$skiptoken"


def _options(query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in options:
            raise query_error(f"The query option {name} is given more than once.")
        if not name.startswith("$"):
            raise query_error(f"The query parameter '{name}' is not supported.")
        options[name] = value
    return options


def _top(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or int(text) > MAX_PAGE_SIZE:
        raise query_error(f"$top must be a whole number from 0 to {MAX_PAGE_SIZE}.")
    return int(text)


def _page_size(prefer: str) -> int:
    match = _MAX_PAGE.search(prefer)
    size = int(match.group(1)) if match else MAX_PAGE_SIZE
    return max(1, min(size, MAX_PAGE_SIZE))
