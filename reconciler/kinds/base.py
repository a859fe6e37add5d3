"""What a kind is: the parts every kind module declares (docs/style.md, "A kind is one place").

A **record kind** (``RecordKind``) is one Dataverse table as the reconciler sees it: its
columns as manifest fields (``FieldMap``), the columns set once on create, what identifies one
of its rows (matching keys), which rows every org has (system rows), what a person must do once
it exists (follow-ups). A **manifest kind** (``ManifestKind``) is what a manifest document of
that ``kind:`` becomes: its own record and the records it brings (children, routing records),
both ways: manifest → records (``desired``) and records → manifest (``assemble``, for export),
and how export names and files it. A **channel** (``Channel``) is what a Workstream's
``channel:`` brings: its ``msdyn_streamsource`` value, its engagement context, its settings
block and the record that carries those settings (a page, an agent, a widget).

The manifest ↔ row flattening is derived from the field declarations: a field's ``path`` is
where its value stands in the manifest's ``spec`` (``distribution.capacity.units``), so the
same declaration reads a manifest (``spec_fields``), writes and reads a row (``to_row``,
``from_row``) and writes a manifest back (``manifest_spec``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from reconciler.dataverse import tables as t
from reconciler.mapping.fields import FieldMap, Resolver, Row, expand, lookup
from reconciler.mapping.values import Fields, Value
from reconciler.mapping.values import Unreadable as Unreadable  # the kinds' users find it here

if TYPE_CHECKING:
    from reconciler.dataverse import DataverseClient
    from reconciler.manifest.document import Document
    from reconciler.mapping.manifests import Found


@dataclass(frozen=True)
class FollowUp:
    """What a person must do once a record of a kind is created (``plan`` lists it, apply's
    checklist prints it with the values read back)."""

    output: str
    """The generated values it needs, as the plan names them (``callbackUrl, verifyToken``)."""
    message: str


@dataclass(frozen=True)
class Match:
    """Where a derived or child record's existing row is looked for under its parent."""

    rows: Sequence[Row]
    """The kind's rows no other record has claimed."""
    fields: Fields
    """The desired record's fields."""
    parent_id: str
    by_id: Mapping[str, Mapping[str, Row]]
    """Every kind's rows by id (a contract is found through its workstream's row)."""
    ids: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """The ids of the records found so far, by address (a workstream's profile row is found by
    its profile's)."""


@dataclass(frozen=True, eq=False)  # one object per kind: compared and hashed by identity
class RecordKind:
    name: str
    table: t.Table
    fields: tuple[FieldMap, ...]
    on_create: Callable[[Fields, str, Resolver], Row] = lambda _f, _a, _r: {}
    """Columns set once on create that no field describes."""
    parent: str | None = None
    """For children: the lookup column pointing at the record they belong to."""
    child_prefix: str = ""
    """For children: what stands before their name in their address (``context.``)."""
    suffix: str | None = None
    """For a parent's only child of its kind: its address after the parent's (``widget``)."""
    name_column: str | None = None
    """The column naming a child in its address, when not the table's primary name."""
    casefold_name: bool = False
    """Names compare without case (host names): a row is named by its lower-case name."""
    excluded: Callable[[Row], str | None] = lambda _row: None
    """Why a row of the table is not one this kind describes: export lists it as not exported,
    planning never matches it to a record by its values (a row of ours, found by its id, is put
    right). ``None`` for the rows it does describe."""
    after_routing: bool = False
    """Created once its workstream's routing chain is written, as a channel instance is
    linked (plan/stages.py): a channel never goes live on a half-built workstream."""
    system: Callable[[Row], bool] = lambda _row: False
    """Rows every org has and nobody manages (default queues, the output contract)."""
    keys: tuple[tuple[str, str], ...] = ()
    """(field, words) that identify a row besides its id: a row not ours holding the same
    value is a conflict (``("pageId", "page ID")``); a child is found under its parent by the
    first key, then by name. Empty: the display name."""
    match: Callable[[Match], Row | None] | None = None
    """For derived records: their row under the parent's, when the id finds nothing."""
    follow_up: FollowUp | None = None
    linked: bool = False
    """A channel instance: its ``workstream`` field is the link that puts it live, written
    once the workstream's whole routing chain is (plan/stages.py)."""
    noun: str = ""
    """What a person calls one of these children (``page``), in messages; a manifest kind's
    own record is named by its ``ManifestKind.noun``."""

    @functools.cached_property
    def select(self) -> tuple[str, ...]:
        """What one query reads: the key, the name and every field's columns."""
        names = [self.table.primary_key, self.table.primary_name, "modifiedon"]
        names += [column for f in self.fields if f.relation is None for column in f.columns]
        if self.parent is not None:
            names.append(lookup(self.parent))
        return tuple(dict.fromkeys(names))

    @functools.cached_property
    def expand(self) -> tuple[str, ...]:
        """What one query expands besides: the relationships its fields read."""
        return tuple(expand(f.relation) for f in self.fields if f.relation is not None)

    def field(self, path: str) -> FieldMap:
        return next(f for f in self.fields if f.path == path)

    def from_row(self, row: Row, resolver: Resolver) -> dict[str, Value]:
        """A row in manifest terms."""
        return {f.path: f.read(row, resolver) for f in self.fields}

    def to_row(
        self, fields: Fields, address: str, resolver: Resolver, *, create: bool = True
    ) -> Row:
        """Manifest-term fields as a row; ``create`` adds the columns set once."""
        row: Row = {self.table.primary_key: resolver.id_of(address)}
        if create:
            row.update(self.on_create(fields, address, resolver))
        for f in self.fields:
            if f.path in fields:
                row.update(f.write(fields[f.path], fields, address, resolver))
        return row

    def references(self, fields: Fields) -> list[str]:
        """Addresses of the records these fields point at."""
        found = [f.ref.format(fields[f.path]) for f in self.fields if f.ref and fields.get(f.path)]
        for rule in fields.get("rules") or ():
            route = rule.get("routeTo")
            shares = route if isinstance(route, list) else [{"queue": route}] if route else []
            found += [f"Queue/{share['queue']}" for share in shares]
        return list(dict.fromkeys(found))

    def name_of(self, row: Row) -> str:
        value = row.get(self.name_column or self.table.primary_name)
        if not isinstance(value, str):
            return ""
        return value.lower() if self.casefold_name else value

    @property
    def identity_key(self) -> tuple[str, str]:
        """The field a clash is told by, and how a message says it."""
        return self.keys[0] if self.keys else ("displayName", "")


LEGACY = "<written by an earlier version of the reconciler in a spelling no real org holds>"
"""What a rule set or contract the first version wrote reads as: a value the manifest's
differs from, so the plan rewrites it in the real grammar (docs/routing-xml.md)."""


def named(_f: Fields, address: str, resolver: Resolver) -> Row:
    """Derived records are named by their address, so their owner can always be told."""
    record = resolver.id_of(address).replace("-", "")
    return {"msdyn_name": address, "msdyn_uniquename": f"rcn_{record}"}


def name_in(resolver: Resolver, record_id: str, prefix: str) -> str:
    """The name of the record with ``record_id`` under ``prefix`` (``Queue/``), else ``<id>``."""
    address = resolver.addresses.get(record_id, "")
    name = address[len(prefix) :]
    return name if address.startswith(prefix) and name and "/" not in name else f"<{record_id}>"


# --- manifest ↔ fields, from the declarations -------------------------------------------------


_ATTRIBUTES: dict[type[BaseModel], dict[str, str]] = {}


def attribute(model: type[BaseModel], segment: str) -> str:
    """The attribute of a manifest model holding the field a manifest calls ``segment``."""
    names = _ATTRIBUTES.get(model)
    if names is None:
        names = {(info.alias or name): name for name, info in model.model_fields.items()}
        _ATTRIBUTES[model] = names
    return names[segment]


def spec_value(spec: BaseModel | None, path: str) -> Any:
    """The value at a manifest path of a spec (``distribution.capacity.units``), in manifest
    words (an enum as its value); None when a block on the way is left out."""
    value: Any = spec
    for segment in path.split("."):
        if value is None:
            return None
        value = getattr(value, attribute(type(value), segment))
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [item.value if isinstance(item, Enum) else item for item in value]
    return value


def spec_fields(
    kind: RecordKind,
    spec: BaseModel | None,
    derived: Mapping[str, Value],
    *,
    only: Sequence[str] | None = None,
    secret: Callable[[Any, str], Value] | None = None,
) -> dict[str, Value]:
    """A record's fields read from a spec: every field (or those ``only``) at its path,
    normalised as the field says, except the ``derived`` ones, given; a block left out gives
    its fields' defaults. A field that ``keep_unset`` and is left out is neither written nor
    compared. A secret's reference is resolved by ``secret(reference, path)``."""
    fields: dict[str, Value] = {}
    for f in kind.fields:
        if f.path in derived:
            fields[f.path] = derived[f.path]
            continue
        if f.derived or (only is not None and f.path not in only):
            continue
        value = spec_value(spec, f.path)
        if f.sensitive:
            fields[f.path] = None if secret is None or value is None else secret(value, f.path)
        elif value is None:
            if not f.keep_unset:
                fields[f.path] = f.default
        else:
            fields[f.path] = f.normalize(value) if f.normalize is not None else value
    return fields


def manifest_spec(
    found: Found,
    secret: Callable[[Found, str], dict[str, str] | None],
    *,
    prefix: str = "",
    only: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The spec a record's fields make (the way back): each field (or those ``only``) at its
    path under ``prefix``, leaving out values equal to the manifest's default unless the field
    is ``export_always``; secrets become references (``secret``)."""
    spec: dict[str, Any] = {}
    for f in found.kind.fields:
        if f.derived or not f.path.startswith(prefix):
            continue
        if only is not None and f.path not in only:
            continue
        value: Any = secret(found, f.path) if f.sensitive else found.fields.get(f.path)
        if not f.export_always and (value is None or value == f.default):
            continue
        *parents, last = f.path[len(prefix) :].split(".")
        target = spec
        for segment in parents:
            target = target.setdefault(segment, {})
        target[last] = value
    return spec


def block_settings(instance: RecordKind, user: Document | None, block: str) -> dict[str, Value]:
    """A channel instance's settings, written in the ``block`` of the workstream it serves
    (``user``; none: the defaults), and the link to that workstream."""
    spec = user.manifest.spec if user is not None else None
    paths = [f.path for f in instance.fields if f.path.startswith(block + ".")]
    fields: dict[str, Value] = {"workstream": user.name if user is not None else None}
    fields.update(spec_fields(instance, spec, {}, only=paths))
    return fields


def block_spec(
    instance: Found, block: str, child: str, secret: Callable[[Found, str], dict[str, str] | None]
) -> dict[str, Any]:
    """The block a workstream's manifest holds for the account's instance serving it."""
    settings: dict[str, Any] = {
        "account": instance.fields["account"],
        child: instance.fields["name"],
    }
    settings.update(manifest_spec(instance, secret, prefix=block + "."))
    return settings


@dataclass(frozen=True)
class Account:
    """A manifest kind holding channel instances in a list (a Facebook app's ``pages``): its
    record, the instances' kind, the list's name, what an item of it says and the channel the
    instances serve."""

    record: RecordKind
    instance: RecordKind
    key: str
    """The spec's list (``pages``)."""
    item: tuple[str, ...]
    """What an item says (``name``, ``pageId``, ``accessToken``); the rest is the block of the
    workstream it serves."""
    channel: Channel
    notes: Callable[[Any], Mapping[str, Any]] = lambda _item: {}
    """What the plan may warn about but never diffs (a page token's rotation date)."""

    def desired(self, builder: Builder, document: Document, spec: Any) -> dict[str, Value]:
        """The account's fields; its instances are added, each with the settings of the
        workstream it serves."""
        name = document.name
        for index, item in enumerate(getattr(spec, attribute(type(spec), self.key))):

            def resolve(ref: Any, path: str, index: int = index) -> Value:
                return builder.resolve(ref, document, self.key, index, path)

            fields = spec_fields(
                self.instance, item, {"account": name}, only=self.item, secret=resolve
            )
            user = builder.serving(self.channel, name, item.name)
            fields.update(block_settings(self.instance, user, self.channel.block))
            builder.add(
                self.instance,
                document,
                f"{self.record.name}/{name}/{item.name}",
                fields,
                parent=f"{self.record.name}/{name}",
                notes=self.notes(item),
            )
        return spec_fields(
            self.record,
            spec,
            {"displayName": document.manifest.display_name},
            secret=lambda ref, path: builder.resolve(ref, document, path),
        )

    def assemble(self, assembler: Assembler, found: Found) -> dict[str, Any]:
        """The account's spec, its list of instances included (export)."""
        spec = manifest_spec(found, assembler.secret)
        spec[self.key] = [
            manifest_spec(child, assembler.secret, only=self.item)
            for child in assembler.children(self.instance, found.name)
        ]
        return spec


async def generated(
    client: DataverseClient, table: t.Table, *columns: str
) -> dict[str, Mapping[str, Any]]:
    """The columns the service generates on save, of every row of ``table`` by id (lower case):
    one query, never one per record."""
    rows = await client.list(table.entity_set, select=[table.primary_key, *columns])
    return {str(row[table.primary_key]).casefold(): row for row in rows}


# --- what the pipeline stages ask a manifest kind ------------------------------------------------


class Builder(Protocol):
    """What ``desired`` is given: the records made so far (``mapping.desired``)."""

    documents: Sequence[Document]
    memo: dict[str, Any]
    """What a kind computes once per build (a workstream's rule sets in the order they run)."""

    def add(
        self,
        kind: RecordKind,
        document: Document,
        address: str,
        fields: dict[str, Value],
        **kw: Any,
    ) -> None: ...

    def resolve(self, ref: Any, document: Document, *path: str | int) -> Value: ...

    def serving(self, channel: Channel, account: str, child: str) -> Document | None: ...


class Assembler(Protocol):
    """What ``assemble`` is given (``mapping.manifests``)."""

    def secret(self, record: Found, path: str) -> dict[str, str] | None: ...

    def children(self, kind: RecordKind, parent: str, column: str = "account") -> list[Found]: ...


Desired = Callable[[Builder, "Document", Any], dict[str, Value]]
Assemble = Callable[[Assembler, "Found"], dict[str, Any]]
Checklist = Callable[
    [
        "DataverseClient",
        Mapping[str, bool],
        Mapping[str, str],
        Mapping[str, Mapping[str, Any]],
    ],
    Awaitable[list["Item"]],
]
"""(client, addresses applied as planned → created by this apply, ids by address, the plan's
desired fields by address) → the items."""


@dataclass(frozen=True)
class Item:
    """One thing the apply checklist asks a person to do."""

    address: str
    message: str
    values: tuple[tuple[str, str], ...] = ()
    """(label, value) pairs to copy: the callback URL, the verify token, the snippet."""
    new: bool = False
    """Set up by this apply: the person has not done it yet."""


@dataclass(frozen=True)
class ChecklistPart:
    """Apply's checklist for one record kind: given the addresses applied as planned (→
    created by this apply) and the plan's ids, it reads the generated values back (one query
    per table, never one per record)."""

    kind: RecordKind
    items: Checklist


@dataclass(frozen=True)
class ManifestKind:
    name: str
    record: RecordKind
    desired: Desired
    """A document's spec → its record's fields (its children are ``add``ed on the way)."""
    assemble: Assemble
    """Its record, read from the target → the spec (export)."""
    brings: tuple[RecordKind, ...] = ()
    """Records its documents bring besides their own (pages, agents, contracts, steps)."""
    derived_when_absent: tuple[tuple[RecordKind, str], ...] = ()
    """Derived records that go with an ``ensure: absent`` document: (kind, address suffix)."""
    file: str = ""
    """The file export writes its documents to."""
    what: str = ""
    """What that file holds, for export's README."""
    noun: str = ""
    """What a person calls one (``Facebook account``)."""
    fallback_name: str = ""
    """A metadata name for a display name with nothing to slug (``客服``)."""
    checklist: tuple[ChecklistPart, ...] = ()
    cannot_express: Callable[[Fields], str | None] = lambda _fields: None
    """Why a row of it cannot be a manifest, for what its own fields tell (export)."""
    children_key: str | None = None
    """The spec's list of children export reads back (``pages``), each by its ``name``."""


@dataclass(frozen=True)
class Channel:
    """What a Workstream's ``channel:`` brings."""

    word: str
    """The manifest's word (``facebook``)."""
    block: str
    """The settings block it needs in the Workstream spec (``facebook``)."""
    stream_source: int
    """``msdyn_liveworkstream.msdyn_streamsource``."""
    context: str
    """Its engagement context table, declared in the workstream's contract."""
    instance: RecordKind
    """The record holding its settings, linked to the workstream."""
    label: str
    """What a person calls it (``Facebook``)."""
    account: str | None = None
    """The manifest kind whose document holds the instance (``FacebookAccount``); None when
    the workstream's document brings the instance itself (a chat widget)."""
    child: str = ""
    """The block's field naming the instance in that account (``page``)."""
    own: Callable[[Builder, Document, Any], None] | None = None
    """For a workstream's own instance (a widget): add it from the workstream's document."""
    assemble: Callable[[Assembler, Found], dict[str, Any]] | None = None
    """For a workstream's own instance: the block export writes from it."""
    brings: tuple[RecordKind, ...] = ()
    """Records a workstream of this channel brings (a widget and its domains)."""
    workstream_fields: tuple[FieldMap, ...] = ()
    """Fields of the workstream's own row this channel's block says (``derived``: its
    ``carried`` values give them, so other channels' workstreams neither write nor compare
    them)."""
    carried: Callable[[Any], dict[str, Value]] = lambda _spec: {}
    """Values of the channel block the workstream's record carries: its ``workstream_fields``."""
    checklist: tuple[ChecklistPart, ...] = ()
    retired: bool = False
    """Retired (Google's Business Messages): named last where channels are listed."""

    def block_of(self, instance: Found, assembler: Assembler) -> dict[str, Any]:
        """The block export writes for the instance serving a workstream."""
        if self.assemble is not None:
            return self.assemble(assembler, instance)
        return block_spec(instance, self.block, self.child, assembler.secret)


def walk(kinds: Sequence[ManifestKind]) -> Iterator[RecordKind]:
    for kind in kinds:
        yield kind.record
        yield from kind.brings
