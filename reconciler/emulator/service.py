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
from collections.abc import Mapping, Sequence
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
    RELATIONSHIPS,
    SYSTEM_USER,
    TABLES,
    Column,
    OnDelete,
    Relationship,
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
    unknown_property,
)
from reconciler.emulator.odata import (
    PageCursor,
    compile_filter,
    compile_orderby,
    parse_expand,
    parse_select,
    query_error,
)
from reconciler.emulator.records import (
    check_write,
    etag,
    new_row,
    normalise_guid,
    parse_reference,
    shape,
)
from reconciler.emulator.store import Row, Store

API_PREFIX = "/api/data/v9.2/"
MAX_PAGE_SIZE = 5000
_SEGMENT = re.compile(r"^(?P<name>[A-Za-z_$][A-Za-z0-9_.$]*)(?:\((?P<key>[^)]*)\))?$")
_SUPPORTED_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$skiptoken", "$count", "$expand"}
# A many-to-many relationship's $ref: <set>(<id>)/<navigation>/$ref, or, to remove one pair,
# <set>(<id>)/<navigation>(<other id>)/$ref (REF: associate-disassociate-entities-using-web-api.md
# in MicrosoftDocs/powerapps-docs @2b58bc64fdb8b36936dbb011fef37751d25902b4).
_REF = re.compile(
    r"^(?P<set>[A-Za-z_][A-Za-z0-9_]*)\((?P<key>[^)]*)\)/(?P<nav>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\((?P<other>[^)]*)\))?/\$ref$"
)
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
        reference = _REF.match(unquote(request.path))
        if reference is not None:
            return self.reference(request, reference)
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
        record_id = _key(table, key)
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
        unsupported = set(options) - {"$select", "$expand"}
        if unsupported:
            raise query_error(f"The query option {sorted(unsupported)[0]} is not supported here.")
        row = self._existing(table, record_id)
        select = (
            parse_select(options["$select"], table.by_read_name, table.logical_name)
            if "$select" in options
            else None
        )
        expand = _expansions(table, options["$expand"]) if "$expand" in options else []
        if request.headers.get("if-none-match") == etag(row):
            return Response(304, None, {"ETag": etag(row)})
        body = {"@odata.context": f"{request.base_url}$metadata#{table.entity_set}/$entity"}
        body.update(shape(table, row, select))
        self._expand(table, [row], [body], expand)
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
        expand = _expansions(table, options["$expand"]) if "$expand" in options else []
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
        self._expand(table, rows, body["value"], expand)
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

    def _expand(
        self,
        table: Table,
        rows: Sequence[Row],
        shaped: Sequence[dict[str, Any]],
        expansions: Sequence[_Expansion],
    ) -> None:
        """Add each expanded many-to-many navigation property to the shaped rows: the related
        rows, shaped as their own table's are, by primary key. JOIN (join-tables.md
        @7df03445645ac234de3415d58a20e40d4e31be1d): with a single-level $expand "no paging is
        applied to the expanded rows" (Prefer: odata.maxpagesize pages the top-level rows
        only), and "up to 5,000 related table records can be returned for each expanded
        collection-valued navigation property". JOIN shows a ``<navigation>@odata.nextLink``
        beside each expanded collection, a URL re-reading the same rows; the emulator serves
        no such URL, so it sends none."""
        ids = [str(row[table.primary_key]) for row in rows]
        for expansion in expansions:
            side = expansion.side
            related = self.store.related(
                side.relationship, side.own, side.other, ids, limit=MAX_PAGE_SIZE
            )
            for record_id, body in zip(ids, shaped, strict=True):
                body[expansion.navigation] = [
                    shape(side.other, row, expansion.select) for row in related[record_id]
                ]

    # -- many-to-many $ref -----------------------------------------------------------------
    def reference(self, request: Request, match: re.Match[str]) -> Response:
        """Associate (POST .../<navigation>/$ref with ``{"@odata.id": <URL>}``) or disassociate
        (DELETE .../<navigation>(<id>)/$ref, or .../<navigation>/$ref?$id=<URL>) two records
        of a many-to-many relationship; 204 either way (REF: "a successful response has status
        204")."""
        table = BY_ENTITY_SET.get(match["set"])
        if table is None:
            raise resource_not_found(match["set"])
        record_id = _key(table, match["key"])
        navigation = match["nav"]
        side = _side(table, navigation)
        if side is None:
            if table.by_navigation(navigation) is not None:
                raise bad_request(
                    QUERY_ERROR,
                    f"'{navigation}' is a single-valued navigation property: this emulator sets "
                    "it with @odata.bind in a PATCH, not through $ref.",
                )
            raise resource_not_found(navigation)
        if request.method == "POST" and match["other"] is None:
            body = request.json()
            given = body.get("@odata.id") if isinstance(body, dict) else None
            other_id = _referenced(side, given, "@odata.id", PAYLOAD_ERROR)
            with self.store.transaction():
                self._existing(table, record_id)
                self._existing(side.other, other_id)
                if not self.store.associate(side.relationship, *side.pair(record_id, other_id)):
                    # COMPOSE (faults.py: compose-http-requests-handle-errors.md): "412
                    # Precondition Failed | Expect this for ... DuplicateRecord", whose code is
                    # 0x80040237 (faults.DUPLICATE_RECORD). UNCONFIRMED: that associating an
                    # associated pair again answers it is community-reported only.
                    raise EmulatorError(412, DUPLICATE_RECORD, "Cannot insert duplicate key.")
            return Response(204)
        if request.method == "DELETE":
            options = _options(request.query)
            unsupported = set(options) - {"$id"}
            if unsupported:
                raise query_error(
                    f"The query option {sorted(unsupported)[0]} is not supported here."
                )
            if match["other"] is not None:
                if "$id" in options:
                    raise query_error(
                        "Name the record to disassociate in the URL or in $id, not in both."
                    )
                other_id = _key(side.other, match["other"])
            elif "$id" in options:
                other_id = _referenced(side, options["$id"], "$id", QUERY_ERROR)
            else:
                raise query_error(
                    f"Name the record to disassociate: {navigation}(<id>)/$ref, or "
                    f"{navigation}/$ref?$id=<its URL>."
                )
            with self.store.transaction():
                self._existing(table, record_id)
                self._existing(side.other, other_id)
                # UNCONFIRMED: no source says what removing a pair that is not associated
                # answers; the emulator answers 204, as if it had been.
                self.store.disassociate(side.relationship, *side.pair(record_id, other_id))
            return Response(204)
        raise EmulatorError(
            405,
            INVALID_ARGUMENT,
            f"{request.method} is not allowed on this $ref: POST {navigation}/$ref associates, "
            f"DELETE {navigation}(<id>)/$ref disassociates.",
        )

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
        _check_required(table, write.values, creating=False)
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
        # UNCONFIRMED (no source says; it is how an intersect table behaves): a deleted record's
        # many-to-many pairs go with it.
        for relationship in RELATIONSHIPS.values():
            for logical_name, attribute in (
                (relationship.first, relationship.first_attribute),
                (relationship.second, relationship.second_attribute),
            ):
                if logical_name == table.logical_name:
                    self.store.forget(relationship, attribute, record_id)
        self.store.delete(table, record_id)

    def _insert(self, table: Table, record_id: str, body: Any) -> Row:
        write = check_write(table, body, record_id=record_id, existing=None)
        _check_required(table, write.values, creating=True)
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
        elif table.logical_name == SYSTEM_USER:
            self._full_name(table, row)
        elif table.logical_name == GBM_PARTNER and not row.get(
            "msdyn_googlebusinessmessagescallbackurl"
        ):
            record_id = str(row[table.primary_key])
            url = f"{CALLBACK_HOST}/googlebusinessmessages/{record_id}/webhook"
            self.store.update(table, record_id, {"msdyn_googlebusinessmessagescallbackurl": url})
            row["msdyn_googlebusinessmessagescallbackurl"] = url

    def _full_name(self, table: Table, row: Row) -> None:
        """A user's fullname, read-only, is the service's: "Full Name | First name + Last name"
        (create-users.md in MicrosoftDocs/power-platform
        @45042bf2ba00152107d27ee9c02d9c800c8404c1). UNCONFIRMED: a missing part is left out
        (no stray space), and a name longer than the column is cut to its length."""
        parts = (row.get("firstname"), row.get("lastname"))
        name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip()) or None
        length = table.columns["fullname"].max_length
        if name is not None and length is not None:
            name = name[:length]
        if row.get("fullname") != name:
            self.store.update(table, str(row[table.primary_key]), {"fullname": name})
            row["fullname"] = name

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


@dataclass(frozen=True)
class _Side:
    """A many-to-many relationship seen from one of its tables."""

    relationship: Relationship
    own: str  # this table's intersect attribute
    other: Table

    def pair(self, own_id: str, other_id: str) -> tuple[str, str]:
        """(first, second) of the relationship, from this side's id and the other's."""
        if self.own == self.relationship.first_attribute:
            return own_id, other_id
        return other_id, own_id


@dataclass(frozen=True)
class _Expansion:
    navigation: str
    side: _Side
    select: list[Column] | None


def _side(table: Table, navigation: str) -> _Side | None:
    """The many-to-many relationship ``navigation`` names on ``table`` (its navigation property
    has the relationship's name on both sides: ``tables.Relationship``)."""
    relationship = RELATIONSHIPS.get(navigation)
    if relationship is None:
        return None
    if table.logical_name == relationship.first:
        return _Side(relationship, relationship.first_attribute, TABLES[relationship.second])
    if table.logical_name == relationship.second:
        return _Side(relationship, relationship.second_attribute, TABLES[relationship.first])
    return None


def _expansions(table: Table, text: str) -> list[_Expansion]:
    """``$expand`` checked: many-to-many navigation properties only, each with at most a
    ``$select``. The refusals JOIN (join-tables.md) documents answer as it shows them."""
    expansions: list[_Expansion] = []
    for item in parse_expand(text):
        navigation = item.navigation
        side = _side(table, navigation)
        if side is None:
            if table.by_navigation(navigation) is None:
                raise unknown_property(table.logical_name, navigation)
            raise query_error(
                f"This emulator expands many-to-many navigation properties only, not the "
                f"single-valued '{navigation}': select _{navigation}_value instead."
            )
        if item.ref:  # JOIN, "Return references"
            raise query_error(
                "Expand with $ref is only supported on lookup type navigation property."
            )
        if "$expand" in item.options:
            # JOIN, "Nested $expand with N:N relationships" (its message names '<NAME>';
            # UNCONFIRMED: that it names the many-to-many property rather than the nested one).
            raise query_error(
                f"The navigation property '{navigation}' cannot be expanded. Only many-to-one "
                "relationships are supported for nested expansion."
            )
        unsupported = set(item.options) - {"$select"}
        if unsupported:
            raise query_error(
                f"The option {sorted(unsupported)[0]} inside $expand is not supported by this "
                "emulator; use $select only."
            )
        if any(e.navigation == navigation for e in expansions):
            raise query_error(f"The navigation property '{navigation}' is expanded more than once.")
        other = side.other
        select = (
            parse_select(item.options["$select"], other.by_read_name, other.logical_name)
            if "$select" in item.options
            else None
        )
        expansions.append(_Expansion(navigation, side, select))
    return expansions


def _referenced(side: _Side, url: Any, name: str, code: str) -> str:
    """The id of the other side's record a URL (``@odata.id``, ``$id``) names."""
    reference = parse_reference(url)
    if reference is None or reference[0] != side.other.entity_set:
        raise bad_request(
            code,
            f"The value of '{name}' must be the URL of a {side.other.logical_name} record, like "
            f"'{API_PREFIX}{side.other.entity_set}(<guid>)'.",
        )
    return reference[1]


def _key(table: Table, key: str) -> str:
    record_id = normalise_guid(key)
    if record_id is None:
        raise bad_request(
            QUERY_ERROR,
            f"'{key}' is not a valid key for {table.entity_set}: use the record's GUID "
            "(no alternate keys are defined).",
        )
    return record_id


# SYSUSER (reconciler.dataverse.tables): domainname is SystemRequired. Columns carry no
# "required" flag (this is the one required column the emulator enforces), so it is named here.
# UNCONFIRMED: the code and wording of Dataverse's refusal.
_REQUIRED = {SYSTEM_USER: ("domainname",)}


def _check_required(table: Table, values: Mapping[str, Any], *, creating: bool) -> None:
    for name in _REQUIRED.get(table.logical_name, ()):
        if (creating or name in values) and values.get(name) in (None, ""):
            raise bad_request(
                INVALID_ARGUMENT,
                f"'{name}' of '{table.logical_name}' is required: it cannot be missing or empty.",
            )


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
