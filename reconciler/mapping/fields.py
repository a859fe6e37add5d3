"""How one manifest field maps to Dataverse columns, both ways.

A ``FieldMap`` reads a field's value (in manifest terms) from a row, and writes it back as
columns. Rows are in read form: lookups as ``_column_value`` holding the referenced id, as a
query returns them (``body`` turns one into a request body). Names and ids meet in the
``Resolver``: references are written by manifest name and stored as the record's id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.dataverse.tables import TABLES, Relationship, Table
from reconciler.mapping.values import Fields, Sensitive, Unreadable, Value, unknown_id
from reconciler.models.common import format_duration, parse_duration

Row = dict[str, Any]
NIL = uuid.UUID(int=0)


class MappingError(ValueError):
    """A value that cannot be turned into columns (an unknown language, reference or option).
    Messages name fields and values in manifest terms; secrets are never involved."""


@dataclass
class Resolver:
    """Ids of records by address and back, and the target's languages."""

    namespace: uuid.UUID = NIL
    """The project's namespace: planning proves ownership with it; writing never needs it."""
    ids: dict[str, str] = field(default_factory=dict)  # address → id
    addresses: dict[str, str] = field(default_factory=dict)  # id → address
    languages: dict[str, str] = field(default_factory=dict)  # locale code → language id
    output_contract: str | None = None
    users: dict[str, str] = field(default_factory=dict)  # user id → sign-in name
    _user_ids: dict[str, str] = field(default_factory=dict, repr=False)

    def user_id(self, name: str) -> str:
        """The id of the user signing in as ``name`` (sign-in names ignore case); a user the
        plan names by id (``<id>``: one without a sign-in name) is that id."""
        if name.startswith("<") and name.endswith(">"):
            return name[1:-1]
        if len(self._user_ids) != len(self.users):
            self._user_ids = {sign_in.casefold(): i for i, sign_in in self.users.items()}
        try:
            return self._user_ids[name.casefold()]
        except KeyError:
            raise MappingError(f"no user signs in as {name} in the target") from None

    def user_name(self, user_id: str) -> str:
        return self.users.get(user_id) or unknown_id(user_id)

    def add(self, address: str, record_id: str) -> None:
        self.ids[address] = record_id
        self.addresses[record_id] = address

    def id_of(self, address: str) -> str:
        try:
            return self.ids[address]
        except KeyError:
            raise MappingError(f"{address} is not a record of this project") from None

    def locale_of(self, language_id: str) -> str:
        for locale, known in self.languages.items():
            if known == language_id:
                return locale
        return unknown_id(language_id)

    def language_id(self, locale: str) -> str:
        try:
            return self.languages[locale]
        except KeyError:
            known = ", ".join(sorted(self.languages)) or "none"
            raise MappingError(
                f"language {locale} is not available in the target (it has: {known})"
            ) from None


Reader = Callable[[Row, Resolver], Value]
Writer = Callable[[Value, Fields, str, Resolver], Row]
"""(value, all the record's fields, the record's address, resolver) → columns."""


@dataclass(frozen=True)
class FieldMap:
    path: str
    columns: tuple[str, ...]  # read names of the columns this field lives in
    read: Reader
    write: Writer
    sensitive: bool = False
    create_only: bool = False
    ref: str | None = None
    """References: the address pattern of the referenced record, ``{}`` for the name."""
    default: Value = None
    """The value a manifest leaves out (export omits it)."""
    derived: bool = False
    """Not written in a manifest: the kind derives it (a workstream's own contract)."""
    keep_unset: bool = False
    """Left out of a manifest, it is neither written nor compared: the target's value stays."""
    export_always: bool = False
    """Export writes it even when it holds the default (or nothing)."""
    normalize: Callable[[Any], Value] | None = None
    """A manifest value (as the spec model holds it) → the field's value."""
    relation: Relationship | None = None
    """A set of records associated through a many-to-many relationship (a queue's members):
    read with ``$expand``, written with ``$ref`` (``apply.writer``), never a column."""


def lookup(column: str) -> str:
    return f"_{column}_value"


# --- field constructors -----------------------------------------------------------------------


def plain(path: str, column: str, default: Value = None, **kw: Any) -> FieldMap:
    """A column holding the value as it is (text, integer)."""
    return FieldMap(
        path,
        (column,),
        lambda row, _r: row.get(column),
        lambda value, _f, _a, _r: {column: value},
        default=default,
        **kw,
    )


def boolean(path: str, column: str, default: bool = False, **kw: Any) -> FieldMap:
    """A yes/no column; a row without a value reads as the column's default."""

    def read(row: Row, _r: Resolver) -> Value:
        value = row.get(column)
        return default if value is None else bool(value)

    return FieldMap(path, (column,), read, lambda v, _f, _a, _r: {column: v}, default=default, **kw)


def option(
    path: str, column: str, labels: Mapping[str, int], default: Value = None, **kw: Any
) -> FieldMap:
    """A choice column: the manifest's word ↔ the option value."""
    values = {number: label for label, number in labels.items()}

    def read(row: Row, _r: Resolver) -> Value:
        number = row.get(column)
        return None if number is None else values.get(number, f"<{number}>")

    def write(value: Value, _f: Fields, _a: str, _r: Resolver) -> Row:
        if value is None:
            return {column: None}
        if value not in labels:
            raise MappingError(f"{path}: unknown value {value!r}")
        return {column: labels[value]}

    return FieldMap(path, (column,), read, write, default=default, **kw)


def reference(path: str, column: str, pattern: str, **kw: Any) -> FieldMap:
    """A lookup to another record, written by name. ``pattern`` is its address with ``{}``
    for the name: ``Queue/{}``, ``Workstream/{}/routing``."""
    name = lookup(column)
    prefix, _, suffix = pattern.partition("{}")

    def read(row: Row, resolver: Resolver) -> Value:
        record_id = row.get(name)
        if record_id is None:
            return None
        address = resolver.addresses.get(record_id, "")
        inner = (
            address[len(prefix) : len(address) - len(suffix)] if suffix else address[len(prefix) :]
        )
        matches = address.startswith(prefix) and address.endswith(suffix)
        return inner if matches and inner and "/" not in inner else unknown_id(record_id)

    def write(value: Value, _f: Fields, _a: str, resolver: Resolver) -> Row:
        if value is None:
            return {name: None}
        return {name: resolver.id_of(pattern.format(value))}

    return FieldMap(path, (name,), read, write, ref=pattern, **kw)


def language(path: str, column: str, **kw: Any) -> FieldMap:
    """A lookup to a pre-existing language, written as its locale code (``nl-NL``)."""
    name = lookup(column)

    def read(row: Row, resolver: Resolver) -> Value:
        language_id = row.get(name)
        return None if language_id is None else resolver.locale_of(language_id)

    def write(value: Value, _f: Fields, _a: str, resolver: Resolver) -> Row:
        return {name: None if value is None else resolver.language_id(value)}

    return FieldMap(path, (name,), read, write, **kw)


def duration(path: str, column: str) -> FieldMap:
    """Minutes in the column, ``2d``/``12h``/``30m`` in the manifest."""

    def read(row: Row, _r: Resolver) -> Value:
        minutes = row.get(column)
        return None if minutes is None else format_duration(minutes)

    def write(value: Value, _f: Fields, _a: str, _r: Resolver) -> Row:
        return {column: None if value is None else parse_duration(value)}

    # A manifest's duration is held as minutes: the field says it in its shortest unit.
    return FieldMap(path, (column,), read, write, normalize=format_duration)


def choices(path: str, column: str, labels: Mapping[str, int]) -> FieldMap:
    """A multi-select column (comma-separated option values) ↔ a list in option order."""
    values = {number: label for label, number in labels.items()}
    order = list(labels)

    def read(row: Row, _r: Resolver) -> Value:
        text = row.get(column)
        if text is None:
            return None
        parts = [part.strip() for part in str(text).split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            return f"<{text}>"
        numbers = sorted({int(part) for part in parts})
        words = [values.get(number, f"<{number}>") for number in numbers]
        return sorted(words, key=lambda w: order.index(w) if w in order else len(order))

    def write(value: Value, _f: Fields, _a: str, _r: Resolver) -> Row:
        if value is None:
            return {column: None}
        return {column: ",".join(str(labels[word]) for word in order if word in value)}

    def normalize(value: Any) -> Value:
        return [word for word in order if word in set(value)]

    return FieldMap(path, (column,), read, write, normalize=normalize)


def members(path: str, relation: Relationship) -> FieldMap:
    """Users associated through ``relation``, by sign-in name: read from the expanded
    relationship (``_expand``), compared as a set ignoring case, written one ``$ref`` each. A
    manifest that leaves it out leaves the target's as they are."""
    key = relation.second_attribute

    def read(row: Row, resolver: Resolver) -> Value:
        related = row.get(relation.name)
        if not isinstance(related, list):
            return None
        if f"{relation.name}@odata.nextLink" in row:
            # More than one answer holds ("up to 5,000 related table records ... for each
            # expanded collection-valued navigation property": the Relationship's source).
            return Unreadable(f"it has more than the {len(related)} members one read returns")
        names = {resolver.user_name(str(item.get(key))) for item in related}
        return sorted(names, key=str.casefold)

    def write(_v: Value, _f: Fields, _a: str, _r: Resolver) -> Row:
        # No column: planning finds every member's user (plan.builder.unknown_members), and
        # the writer each one it adds or removes (apply.writer).
        return {}

    return FieldMap(
        path, (relation.name,), read, write, default=[], relation=relation, keep_unset=True
    )


def expand(relation: Relationship) -> str:
    """The ``$expand`` item reading ``relation``'s related ids with a table's rows."""
    return f"{relation.name}($select={relation.second_attribute})"


def secret(path: str, *columns: str, chunk: int = 0, **kw: Any) -> FieldMap:
    """A secret column, or a secret split over several columns of ``chunk`` characters."""

    def read(row: Row, _r: Resolver) -> Value:
        parts = [row.get(column) for column in columns]
        if all(part is None for part in parts):
            return None
        return Sensitive("".join(part or "" for part in parts))

    def write(value: Value, _f: Fields, _a: str, _r: Resolver) -> Row:
        text = value.reveal() if isinstance(value, Sensitive) else None
        if text is None:
            return dict.fromkeys(columns)
        if len(columns) == 1:
            return {columns[0]: text}
        pieces = [text[i * chunk : (i + 1) * chunk] or None for i in range(len(columns))]
        return dict(zip(columns, pieces, strict=True))

    return FieldMap(path, columns, read, write, sensitive=True, **kw)


def body(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """A read-form row as a request body: lookups become ``nav@odata.bind`` references."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key.startswith("_") and key.endswith("_value"):
            column = table.columns[key[1:-6]]
            target = TABLES[str(column.target)]
            out[f"{column.navigation}@odata.bind"] = (
                None if value is None else f"/{target.entity_set}({value})"
            )
        else:
            out[key] = value
    return out
