"""Desired records + the target's rows → the changes of a plan. Pure: no I/O, no clock.

Records are visited in dependency order (``kinds.KINDS``), so by the time a record is planned,
every record it points at has been. A delete does to the rows pointing at the record what its
relationship's delete rule says (``dataverse.tables``): most links are cleared (remove-link),
Facebook pages go with their app (cascade), and a Facebook page keeps its workstream from being
deleted (restrict). The plan leaves no row of ours pointing nowhere: a row whose link a delete
clears is deleted too when it belongs to the deleted record (an agent of its account, a context
variable of its workstream), or has the link set again when the record is deleted and created
again (a replace); a row a restrict link ties to a replaced record is unlinked before the delete
and linked again after.
"""

from __future__ import annotations

import datetime
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.dataverse.tables import REFERENCED_BY, TABLES, Column, OnDelete
from reconciler.diagnostics import Diagnostic, article, error
from reconciler.mapping import kinds as k
from reconciler.mapping import rulexml
from reconciler.mapping.fields import MappingError, Row, lookup
from reconciler.mapping.records import Record
from reconciler.mapping.values import Sensitive, Value, json_value
from reconciler.mapping.values import record_id as derived_id
from reconciler.models import limits
from reconciler.plan import itempath, ownership
from reconciler.plan.definition import (
    CHANGING,
    DESTRUCTIVE,
    Action,
    Change,
    FieldChange,
    FollowUp,
    LedgerEntry,
    LedgerPlan,
    Warning,
)
from reconciler.plan.identity import Entry, Identity, identify
from reconciler.state.reader import Snapshot

LEFT_AS_IS = "left-as-is"
"""The warning of a field the target holds in a form no manifest can say."""
TOKEN_AGE_WARN_DAYS = limits.FACEBOOK_TOKEN_MAX_AGE_DAYS - limits.FACEBOOK_TOKEN_WARN_DAYS


@dataclass(frozen=True)
class Options:
    namespace: uuid.UUID
    prune: bool = False
    today: datetime.date = field(default_factory=datetime.date.today)


@dataclass
class Built:
    changes: list[Change] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)
    follow_up: list[FollowUp] = field(default_factory=list)
    unmanaged: dict[str, int] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)
    """Errors that make the plan impossible to apply (an unknown language in the target)."""
    managed: int = 0
    """Rows of this project in the target: in its ledger, or proved ours by their ids."""
    ledger: LedgerPlan | None = None


@dataclass(frozen=True)
class _After:
    """A row as it will be once the deletes planned before it have run."""

    row: Row | None
    """None: the row goes with a deleted record (``taken_by``)."""
    taken_by: str | None = None
    cascade: bool = False
    """Dataverse deletes the row with ``taken_by`` (a cascade); otherwise the plan does."""
    cleared: bool = False
    """A delete clears one of its links (remove-link): its ETag changes before it is written."""
    unlinked: frozenset[str] = frozenset()
    """Ids of replaced records it stops pointing at (a restrict link) until they are back."""

    @property
    def reason(self) -> str:
        return f"deleted with {self.taken_by}" + (" (cascade)" if self.cascade else "")


# --- field differences ------------------------------------------------------------------------


def same(before: Any, after: Any) -> bool:
    """Equal, and written alike: ``1``, ``1.0`` and ``true`` are equal in Python but are three
    texts in rule XML (docs/routing-xml.md), and ``-0.0`` is not ``0.0``."""
    if before is after:
        return True
    if before != after:
        return False
    if isinstance(before, dict) and isinstance(after, dict):
        return all(same(value, after[key]) for key, value in before.items())
    if isinstance(before, list | tuple) and isinstance(after, list | tuple):
        return all(same(a, b) for a, b in zip(before, after, strict=True))
    if isinstance(before, bool | int | float) or isinstance(after, bool | int | float):
        return type(before) is type(after) and repr(before) == repr(after)
    return True


def differences(path: str, before: Value, after: Value) -> list[tuple[str, Value, Value]]:
    """Where ``before`` and ``after`` differ. Named lists (a rule set's rules) are compared
    rule by rule, by name (docs/spec.md §5): an inserted rule is one added rule, not every
    later rule changed. Names that are not unique on either side (a target's rules edited by
    hand: validate refuses them in manifests) are compared by position, so nothing is lost."""
    if same(before, after):
        return []
    if _named_list(before) and _named_list(after):
        if _unique_names(before) and _unique_names(after):
            return _by_name(path, before, after)
        return _by_position(path, before, after)
    return [(path, before, after)]


def _by_name(path: str, before: list[Any], after: list[Any]) -> list[tuple[str, Value, Value]]:
    """One entry per added (``rules[NAME]``: null → the rule) or removed rule (the rule →
    null), per changed key of a rule (``rules[NAME].routeTo``), and per moved rule
    (``rules[NAME].position``, 1-based, before → after). The order decides which rule matches
    first, so a reorder must show; but only the fewest rules that explain it move: the rules
    on a longest common subsequence of both orders stay, and a rule that only shifted because
    another was inserted or removed above it is not a move."""
    old = {rule["name"]: index for index, rule in enumerate(before)}
    new = {rule["name"]: index for index, rule in enumerate(after)}
    kept = _longest_common([r["name"] for r in before if r["name"] in new], list(new))
    removed = [rule for rule in before if rule["name"] not in new]
    found: list[tuple[str, Value, Value]] = []

    def flush(up_to: int) -> None:
        """The removed rules that stood before the old position ``up_to``, in their order."""
        while removed and old[removed[0]["name"]] < up_to:
            rule = removed.pop(0)
            found.append((itempath.item(path, rule["name"]), rule, None))

    # Where each rule of the new order stands in the old one: at the next rule that stays.
    anchors = [len(before)] * (len(after) + 1)
    for index in range(len(after) - 1, -1, -1):
        name = after[index]["name"]
        anchors[index] = old[name] if name in kept else anchors[index + 1]
    for index, rule in enumerate(after):
        name = rule["name"]
        item = itempath.item(path, name)
        flush(anchors[index])  # a removed rule is said where it stood, before what came there
        if name not in old:
            found.append((item, None, rule))
            continue
        if name not in kept:
            found.append((f"{item}.position", old[name] + 1, index + 1))
        found += _changed_keys(item, before[old[name]], rule)
    flush(len(before))
    return found


def _by_position(path: str, before: list[Any], after: list[Any]) -> list[tuple[str, Value, Value]]:
    """Item by item, by index (``rules[2].routeTo``): for names that are not unique."""
    found: list[tuple[str, Value, Value]] = []
    for index in range(max(len(before), len(after))):
        item = itempath.item(path, index)
        if index >= len(before) or index >= len(after):
            old = before[index] if index < len(before) else None
            new = after[index] if index < len(after) else None
            found.append((item, old, new))
            continue
        found += _changed_keys(item, before[index], after[index])
    return found


def _changed_keys(
    item: str, before: dict[str, Any], after: dict[str, Any]
) -> list[tuple[str, Value, Value]]:
    keys = dict.fromkeys([*before, *after])
    return [
        (f"{item}.{key}", before.get(key), after.get(key))
        for key in keys
        if not same(before.get(key), after.get(key))
    ]


def _longest_common(first: list[str], second: list[str]) -> set[str]:
    """The names on a longest common subsequence of two orders of distinct names (dynamic
    programming: a rule set holds at most 100 rules, docs/spec.md)."""
    lengths = [[0] * (len(second) + 1) for _ in range(len(first) + 1)]
    for i in range(len(first) - 1, -1, -1):
        for j in range(len(second) - 1, -1, -1):
            lengths[i][j] = (
                lengths[i + 1][j + 1] + 1
                if first[i] == second[j]
                else max(lengths[i + 1][j], lengths[i][j + 1])
            )
    found: set[str] = set()
    i = j = 0
    while i < len(first) and j < len(second):
        if first[i] == second[j]:
            found.add(first[i])
            i, j = i + 1, j + 1
        elif lengths[i + 1][j] >= lengths[i][j + 1]:
            i += 1
        else:
            j += 1
    return found


def created_fields(path: str, value: Value) -> list[tuple[str, Value, Value]]:
    """A new value; a named list (rules) one field per item, ``rules[NAME]`` → the rule, so
    each reads on its own (by position when the names are not unique)."""
    if value and _named_list(value):
        keys: list[Any] = (
            [item["name"] for item in value] if _unique_names(value) else list(range(len(value)))
        )
        return [
            (itempath.item(path, key), None, item) for key, item in zip(keys, value, strict=True)
        ]
    return [(path, None, value)]


def member_changes(
    path: str, before: Value, after: Value, *, prune: bool
) -> list[tuple[str, Value, Value]]:
    """A set of members (sign-in names, ignoring case), one entry per member added
    (``members[NAME]``: null → the name) and, with ``prune``, per member removed."""
    had = {str(name).casefold(): name for name in before or ()} if isinstance(before, list) else {}
    wanted = {str(name).casefold(): name for name in after or ()} if isinstance(after, list) else {}
    found = [(itempath.item(path, str(n)), None, n) for key, n in wanted.items() if key not in had]
    if prune:
        found += [
            (itempath.item(path, str(n)), n, None) for key, n in had.items() if key not in wanted
        ]
    return sorted(found, key=lambda item: item[0].casefold())


def unlisted(before: Value, after: Value) -> list[str]:
    """Members ``before`` holds that ``after`` does not list."""
    wanted = {str(name).casefold() for name in after or ()} if isinstance(after, list) else set()
    return (
        [str(n) for n in before or () if str(n).casefold() not in wanted]
        if isinstance(before, list)
        else []
    )


def _named_list(value: Value) -> bool:
    return isinstance(value, list) and all(isinstance(i, dict) and "name" in i for i in value)


def _unique_names(value: list[Any]) -> bool:
    """Every item's name a text, and none used twice."""
    names = [item["name"] for item in value]
    return all(isinstance(name, str) for name in names) and len(set(names)) == len(names)


def field_change(kind: k.RecordKind, path: str, before: Value, after: Value) -> FieldChange:
    top = path.split("[", 1)[0]
    if any(f.sensitive and f.path == top for f in kind.fields):
        shown = after if isinstance(after, Sensitive) else None
        return FieldChange(
            path=path,
            sensitive=True,
            fingerprint=shown.fingerprint if shown else None,
            source=shown.source if shown else None,
        )
    return FieldChange(path=path, before=json_value(before), after=json_value(after))


def desired_json(record: Record) -> dict[str, Any]:
    return {path: json_value(value) for path, value in record.fields.items()}


# --- the builder ------------------------------------------------------------------------------


class _Planner:
    def __init__(self, desired: Sequence[Record], snapshot: Snapshot, options: Options) -> None:
        self.options = options
        self.snapshot = snapshot
        self.identity: Identity = identify(desired, snapshot, options.namespace)
        self.resolver = self.identity.resolver
        self.out = Built()
        self.gone: dict[str, str] = {}  # id → address of the record whose delete removes it
        self.replaced: set[str] = set()  # ids deleted and created again
        self.claimed = {e.id for e in self.identity.entries if e.row is not None}
        self.conflicting: set[str] = set()
        self.leftover: list[str] = []
        self.delete_refs: dict[str, set[str]] = {}  # address deleted → ids its row points at
        self.releases: dict[str, set[str]] = {}  # address updated → ids it stops restricting

    def run(self) -> Built:
        for kind in k.KINDS:
            entries = [e for e in self.identity.entries if e.record.kind is kind]
            for entry in sorted(entries, key=lambda e: e.record.address):
                self.plan_entry(entry)
            for row in sorted(
                self.identity.unclaimed[kind.name],
                key=lambda r: (k.name_of_row(kind, r), r[kind.table.primary_key]),
            ):
                self.plan_unclaimed(kind, row)
        self.finish()
        self.ownership()
        return self.out

    def ownership(self) -> None:
        """How many records the project manages (the delete threshold's base), and what the
        ledger needs besides what the changes say (``plan.ownership``)."""
        identity = self.identity
        existing = {
            row[kind.table.primary_key]
            for kind in k.KINDS
            for row in self.snapshot.rows.get(kind.name, ())
        }
        ours = {i for i in identity.ledger if i in existing} | set(identity.owned)
        ours |= {
            e.id
            for e in identity.entries
            if e.row is not None and (e.id in identity.ledger or identity.created(e))
        }
        others = self.snapshot.ledger.others if self.snapshot.ledger is not None else {}
        self.out.managed = len(ours - set(others))  # another project's: never counted here
        if self.snapshot.ledger is None:
            return
        found = self.snapshot.ledger.exists
        kinds = {
            row[kind.table.primary_key]: kind
            for kind in k.KINDS
            for row in self.snapshot.rows.get(kind.name, ())
        }
        add = tuple(
            LedgerEntry(
                address=identity.owned[i],
                table=kinds[i].table.logical_name,
                id=i,
                origin="created",
            )
            for i in sorted(identity.proved)
        )
        created = {c.id for c in self.out.changes if c.action in (Action.CREATE, Action.REPLACE)}
        drop = tuple(sorted(i for i in identity.ledger if i not in existing and i not in created))
        wanted = ownership.entries(self.out.changes, add)
        pending = sum(1 for _ in ownership.differing(wanted, identity.ledger)) + len(drop)
        self.out.ledger = LedgerPlan(
            namespace=str(self.options.namespace),
            found=found,
            records=sum(1 for i in identity.ledger if i in existing),
            add=add,
            drop=drop,
            pending=pending,
        )
        listed_now = sum(1 for e in wanted if e.id in existing)
        if not found and listed_now:
            self.out.warnings.append(
                Warning(
                    code="ledger-new",
                    message=f"the target has no ledger of this project (namespace "
                    f"{self.options.namespace}) yet: apply writes one listing the {listed_now} "
                    f"record{'s' if listed_now != 1 else ''} this project manages there"
                    + (f", {len(add)} of them found by their ids alone" if add else "")
                    + ". From then on --prune deletes exactly what the ledger lists "
                    "(docs/ownership.md)",
                )
            )

    # -- rows as they will be once earlier deletes have run ------------------------------------

    def after_deletes(
        self, kind: k.RecordKind, row: Row, *, ours: bool, keeps: Row | None = None
    ) -> _After:
        """``row`` once the deletes planned so far have run. ``ours``: the row is this
        project's, so it goes with the record it belongs to (``kind.parent``) rather than be
        left unlinked. ``keeps``: the row the record will write, when it stays: a restrict link
        to a record deleted and created again is unlinked first (and written again after)."""
        cleared: dict[str, None] = {}
        unlinked: set[str] = set()
        removed = False
        for column in kind.table.lookups():
            name = lookup(column.name)
            value = row.get(name)
            if value not in self.gone:
                continue
            if column.on_delete is OnDelete.CASCADE:
                return _After(None, self.gone[value], cascade=True)
            if ours and column.name == kind.parent and value not in self.replaced:
                return _After(None, self.gone[value])
            if column.on_delete is OnDelete.REMOVE_LINK:
                cleared[name] = None
                removed = True
            elif keeps is not None and keeps.get(name) == value and not self.held(column, value):
                cleared[name] = None
                unlinked.add(value)
        after = {**row, **cleared} if cleared else row
        return _After(after, cleared=removed, unlinked=frozenset(unlinked))

    def held(self, column: Column, record_id: str) -> bool:
        """Whether a row the plan neither describes nor deletes holds a restrict link to
        ``record_id`` (like ``column``'s): its delete will be refused whatever the plan's own
        rows do, so they are not unlinked for nothing (``restricted`` warns of it)."""
        table = TABLES[str(column.target)]
        for referrer, restrict in REFERENCED_BY[table.logical_name]:
            if restrict.on_delete is not OnDelete.RESTRICT:
                continue
            kind = k.BY_TABLE[referrer.logical_name]
            for row in self.snapshot.rows.get(kind.name, ()):
                row_id = row[referrer.primary_key]
                if row.get(lookup(restrict.name)) != record_id or row_id in self.claimed:
                    continue
                if not (self.options.prune and row_id in self.identity.owned):
                    return True
        return False

    def change(
        self,
        record_or_kind: Record | k.RecordKind,
        action: Action,
        reason: str,
        record_id: str,
        address: str,
        row: Row | None = None,
        **kw: Any,
    ) -> None:
        kind = record_or_kind.kind if isinstance(record_or_kind, Record) else record_or_kind
        self.out.changes.append(
            Change(
                address=address,
                kind=kind.name,
                name=address.split("/", 1)[1],
                action=action,
                reason=reason,
                id=record_id,
                etag=(row or {}).get("@odata.etag"),
                **kw,
            )
        )

    def delete(
        self,
        kind: k.RecordKind,
        record_id: str,
        address: str,
        row: Row,
        reason: str,
        *,
        adopted: bool = False,
        named: bool = False,
    ) -> None:
        """Plan the delete of ``row`` as read: what it points at waits for it (a delete waits
        for the deletes of the rows pointing at it, so none of them is changed under it). A
        record this project did not create (``adopted``), or one whose id is not derived from
        its address (``named``), is named as the target names it."""
        self.gone[record_id] = address
        self.delete_refs[address] = {value for _, value in k.row_references(kind, row)}
        extra: dict[str, Any] = {}
        if adopted or named:  # the renders say it, with its name and id (plan_text.foreign_line)
            extra = {"adopted": adopted, "current_name": k.name_of_row(kind, row)}
        self.change(kind, Action.DELETE, reason, record_id, address, row, **extra)

    # -- desired records -----------------------------------------------------------------------

    def plan_entry(self, entry: Entry) -> None:
        record, kind = entry.record, entry.record.kind
        written = self.check_writable(record) if record.present else None
        after = (
            self.after_deletes(kind, entry.row, ours=True, keeps=written)
            if entry.row is not None
            else _After(None)
        )
        row = after.row
        created = self.identity.created(entry)
        other = self.other_project(entry.id) if entry.id not in self.identity.ledger else None
        if entry.row is not None and other is not None:
            self.change(
                record,
                Action.CONFLICT,
                f"{kind.name} {k.name_of_row(kind, entry.row)!r} (id {entry.id}) is managed "
                f"by another project ({other}); a record has one owner, and this project "
                "never changes another's",
                entry.id,
                record.address,
            )
            return
        if not record.present:
            # A row of ours that would go with its parent goes first when no cascade takes it
            # (a chat widget, whose restrict link would refuse its workstream's delete).
            if entry.row is not None and (row is not None or not after.cascade):
                self.delete(
                    kind,
                    entry.id,
                    record.address,
                    entry.row,
                    "ensure: absent" if row is not None else after.reason,
                    adopted=not created,
                )
            elif entry.row is None and kind.suffix is not None:
                pass  # a workstream's own instance it never had (a widget): nothing to say
            else:
                why = after.reason if after.taken_by else "already absent"
                self.change(record, Action.NOOP, why, entry.id, record.address)
            return
        if row is None:
            if after.taken_by is not None:
                # Gone with the record it belongs to: what belongs to it goes too.
                self.gone[entry.id] = after.taken_by
            self.plan_create(entry, after.taken_by)
            return
        current = self.current(record, row, written)
        self.unreadable(record, current)
        found = [
            d
            for f in kind.fields
            if f.path in record.fields and not isinstance(current.get(f.path), k.Unreadable)
            for d in (
                member_changes(
                    f.path, current.get(f.path), record.fields[f.path], prune=self.options.prune
                )
                if f.relation is not None
                else differences(f.path, current.get(f.path), record.fields[f.path])
            )
        ]
        self.unlisted_members(record, current)
        fields = tuple(field_change(kind, *d) for d in found)
        # A row a delete in this apply changes before it is written (a link cleared) has a new
        # ETag by then: its write can only require that it exists. A row the plan unlinks
        # itself is unlinked as read.
        read = None if after.cleared else entry.row
        fixed = [
            f
            for f in kind.fields
            if f.create_only
            and f.path in record.fields
            and current[f.path] != record.fields[f.path]
        ]
        if fields or fixed:
            self.releases[record.address] = self.released(entry) | after.unlinked
        self.token_age(entry, row, found)
        renamed = self.identity.renamed.get(record.address)
        extra: dict[str, Any] = {}
        if renamed is not None:
            extra["renamed_from"] = renamed
        if not created:
            extra.update(adopted=True, current_name=k.name_of_row(kind, entry.row or row))
        if not created and entry.id not in self.identity.ledger and not fixed:
            what = f"{len(fields)} field{'s differ' if len(fields) != 1 else ' differs'}"
            self.change(
                record,
                Action.ADOPT,
                f"{kind.name} {extra['current_name']!r} (id {entry.id}) exists and was not "
                f"created by this project; taken under management ({what})",
                entry.id,
                record.address,
                read,
                fields=fields,
                desired=desired_json(record),
                **extra,
            )
            return
        if fixed:
            gone = set(self.gone.values())
            what = "; ".join(
                f"its {f.path} {target} is deleted and created again, and a {kind.name}'s "
                f"{f.path} is set at creation"
                if f.ref
                and current[f.path] is None
                and (target := f.ref.format(record.fields.get(f.path))) in gone
                else f"{f.path} is set at creation ({_shown(current[f.path])} → "
                f"{_shown(record.fields.get(f.path))})"
                for f in fixed
            )
            reason = f"{what}: the {kind.name} is deleted and created again with the same id"
            self.gone[entry.id] = record.address
            self.replaced.add(entry.id)
            self.change(
                record,
                Action.REPLACE,
                reason,
                entry.id,
                record.address,
                read,
                fields=fields,
                desired=self.kept_members(record, current, desired_json(record)),
                **extra,
            )
            self.created(record)
        elif fields:
            reason = self.update_reason(record, after, current, len(fields))
            self.change(
                record,
                Action.UPDATE,
                f"renamed from {renamed}; {reason}" if renamed else reason,
                entry.id,
                record.address,
                read,
                fields=fields,
                desired=desired_json(record),
                **extra,
            )
        else:
            reason = "matches the manifests"
            if renamed:
                reason = f"renamed from {renamed} (keeps its id); {reason}"
            # Values a kind carries outside its fields (a chat widget's snippet colour) reach
            # apply's checklist even when the record is unchanged.
            declared = {f.path for f in record.kind.fields}
            carried = {p: json_value(v) for p, v in record.fields.items() if p not in declared}
            if carried:
                extra["desired"] = carried
            self.change(record, Action.NOOP, reason, entry.id, record.address, entry.row, **extra)

    def update_reason(
        self, record: Record, after: _After, current: dict[str, Value], count: int
    ) -> str:
        if after.unlinked:
            replaced = ", ".join(sorted(self.gone[i] for i in after.unlinked))
            return f"unlinked while {replaced} is deleted and created again, then linked again"
        relinked = after.cleared and any(
            f.ref and current.get(f.path) is None and record.fields.get(f.path) is not None
            for f in record.kind.fields
        )
        if relinked:
            return "link to a deleted record cleared; set again"
        return f"{count} field{'s differ' if count > 1 else ' differs'}"

    def released(self, entry: Entry) -> set[str]:
        """Ids the row points at through a restrict lookup that the change points elsewhere
        (a page moving to another workstream): their delete must wait for it."""
        record, row = entry.record, entry.row or {}
        try:
            wanted = record.kind.to_row(record.fields, record.address, self.resolver, create=False)
        except MappingError:
            return set()
        return {
            row[name]
            for column in record.kind.table.lookups()
            if column.on_delete is OnDelete.RESTRICT
            and (name := lookup(column.name)) in wanted
            and row.get(name) is not None
            and row[name] != wanted[name]
        }

    def other_project(self, row_id: str) -> str | None:
        """Which other project's ledger lists the row: "namespace N, as Kind/name"."""
        ledger = self.snapshot.ledger
        other = ledger.others.get(row_id) if ledger is not None else None
        return f"namespace {other[0]}, as {other[1]}" if other is not None else None

    def plan_create(self, entry: Entry, cause: str | None) -> None:
        record = entry.record
        if (first := self.identity.duplicate.get(record.address)) is not None:
            self.change(
                record,
                Action.CONFLICT,
                f"its id ({entry.id}) is {first}'s too; one record cannot be two: fix the "
                "metadata.id of one of them",
                entry.id,
                record.address,
            )
            return
        if (holder := self.identity.taken.get(record.address)) is not None:
            self.change(
                record,
                Action.CONFLICT,
                f"its id ({entry.id}, derived from {record.address}) is the record this project "
                f"renamed to {holder} (the ledger lists it there); a name a record was renamed "
                "from cannot name a new record: choose another name",
                entry.id,
                record.address,
            )
            return
        clash = self.clash(record)
        if clash is not None:
            self.change(record, Action.CONFLICT, clash, entry.id, record.address)
            return
        reason = f"deleted with {cause}; created again" if cause else "not in the target"
        # What the record's kind declares: values a kind only carries for its own use (a chat
        # widget's name on create, its snippet's colour) are not fields of the record.
        declared = {f.path for f in record.kind.fields}
        relations = {f.path for f in record.kind.fields if f.relation is not None}
        fields = tuple(
            field_change(record.kind, *item)
            for path, value in record.fields.items()
            if value is not None and path in declared
            for item in (
                member_changes(path, None, value, prune=True)
                if path in relations
                else created_fields(path, value)
            )
        )
        self.change(
            record,
            Action.CREATE,
            reason,
            entry.id,
            record.address,
            fields=fields,
            desired=desired_json(record),
        )
        self.created(record)

    def clash(self, record: Record) -> str | None:
        """A row that is not ours but is the same thing: same name, or same page/agent id."""
        kind = record.kind
        key, words = kind.identity_key
        if key not in {f.path for f in kind.fields}:
            return None
        wanted = record.fields.get(key)
        column = kind.field(key).columns[0]
        for row in self.identity.unclaimed[kind.name]:
            row_id = row[kind.table.primary_key]
            if k.is_system_row(kind, row):
                continue
            value = row.get(column)
            if not (
                isinstance(value, str)
                and isinstance(wanted, str)
                and value.casefold() == wanted.casefold()
            ):
                continue
            ours = self.identity.owned.get(row_id)
            if ours is not None:
                hint = self.renamed_hint(record, ours, row_id, value)
                if hint is not None:
                    return hint
                continue
            self.conflicting.add(row_id)
            what = f"{words} {wanted}" if words else f"the name {value!r}"
            if (other := self.other_project(row_id)) is not None:
                return (
                    f"a {kind.name} with {what} already exists in the target (id {row_id}) and "
                    f"is managed by another project ({other}); rename yours"
                )
            if kind.parent is not None:
                owner = row.get(lookup(kind.parent))
                advice = (
                    f"to manage it, adopt the account it belongs to (metadata.id: {owner}) "
                    "(or run `reconciler export`), or remove it from that account"
                )
            else:
                advice = (
                    f"to manage it, set metadata.id: {row_id} (or run `reconciler export`), "
                    "or rename yours"
                )
            return (
                f"a {kind.name} with {what} already exists in the target (id {row_id}) and "
                f"was not created by this project; {advice}"
            )
        return None

    def renamed_hint(self, record: Record, ours: str, row_id: str, value: str) -> str | None:
        """A record of ours under another address has this one's name: most likely a rename
        without ``previousNames``. With --prune the old one goes (a warning says how to keep
        it instead); without, the plan stops and asks."""
        old = ours.split("/", 1)[1].split("#", 1)[0]
        hint = f"metadata.previousNames: [{old}]" if "/" not in old else "metadata.previousNames"
        if self.options.prune:
            self.out.warnings.append(
                Warning(
                    code="rename-hint",
                    message=f"{record.address} has the name {value!r} of {ours} (id {row_id}), "
                    f"which this plan deletes; to keep that record and its id instead (a "
                    f"rename), add {hint} to {record.address}",
                    location=str(record.location) if record.location else None,
                    address=record.address,
                )
            )
            return None
        return (
            f"a {record.kind.name} named {value!r} is ours, under {ours} (id {row_id}); "
            f"rename with {hint}? Or plan with --prune to delete it and create a new one"
        )

    def created(self, record: Record) -> None:
        follow_up = record.kind.follow_up
        if follow_up is not None:
            self.out.follow_up.append(
                FollowUp(address=record.address, output=follow_up.output, message=follow_up.message)
            )

    def check_writable(self, record: Record) -> Row | None:
        """The row the record's fields write, or None (and a problem) when they cannot be."""
        if self.unknown_members(record):
            return None
        try:
            return record.kind.to_row(record.fields, record.address, self.resolver)
        except (MappingError, rulexml.RuleXmlError) as exc:
            self.out.problems.append(
                error("cannot-plan", f"{record.address}: {exc}", record.location)
            )
            return None

    def unknown_members(self, record: Record) -> bool:
        """Members no user of the target signs in as: a problem each, where it is written."""
        found = False
        for f in record.kind.fields:
            names = record.fields.get(f.path) if f.relation is not None else None
            for index, name in enumerate(names if isinstance(names, list) else ()):
                try:
                    self.resolver.user_id(str(name))
                except MappingError as exc:
                    where = record.at("spec", *f.path.split("."), index) if record.at else None
                    location = where or record.location
                    self.out.problems.append(
                        error("unknown-user", f"{record.address}: {exc}", location)
                    )
                    found = True
        return found

    def current(self, record: Record, row: Row, written: Row | None) -> dict[str, Value]:
        """The target's row in manifest terms. A field whose columns already hold exactly what
        it would write is taken as the manifest's value without reading (decoding) them: the
        rule XML of a large project costs more to decode than everything else in a plan."""
        same = {
            f.path
            for f in record.kind.fields
            if written is not None
            and f.path in record.fields
            and all(c in written and written[c] == row.get(c) for c in f.columns)
        }
        return {
            f.path: record.fields[f.path] if f.path in same else f.read(row, self.resolver)
            for f in record.kind.fields
        }

    def kept_members(
        self, record: Record, current: dict[str, Value], desired: dict[str, Any]
    ) -> dict[str, Any]:
        """What a replace creates again: the members the target has stay, as they would on an
        update (all of them when the manifest leaves members out; those it does not list
        unless --prune), since the record is created again without any."""
        for f in record.kind.fields:
            had = current.get(f.path)
            if f.relation is None or not isinstance(had, list):
                continue
            listed = record.fields.get(f.path)
            if listed is None:
                desired[f.path] = list(had)
            elif isinstance(listed, list) and not self.options.prune:
                names = {str(name).casefold() for name in listed}
                desired[f.path] = [*listed, *(n for n in had if str(n).casefold() not in names)]
        return desired

    def unlisted_members(self, record: Record, current: dict[str, Value]) -> None:
        """Members the target has that the manifest does not list stay without --prune: the
        plan says so, as it says of records no longer in the manifests."""
        if self.options.prune:
            return
        for f in record.kind.fields:
            if f.relation is None or f.path not in record.fields:
                continue
            names = unlisted(current.get(f.path), record.fields[f.path])
            if names:
                shown = ", ".join(names[:10]) + (" …" if len(names) > 10 else "")
                self.out.warnings.append(
                    Warning(
                        code="members-not-listed",
                        message=f"{record.address}: {len(names)} "
                        f"{'members are' if len(names) > 1 else 'member is'} in the target but "
                        f"not in its {f.path} ({shown}); kept: plan with --prune to remove "
                        f"{'them' if len(names) > 1 else 'it'}",
                        location=str(record.location) if record.location else None,
                        address=record.address,
                    )
                )

    def unreadable(self, record: Record, current: dict[str, Value]) -> None:
        """Fields the target holds in a form no manifest can say are left as they are, and
        the plan says so (docs/routing-xml.md): rewriting them would lose what they hold."""
        said: set[str] = set()  # fields of one column (a contract's) are said once
        for path, value in current.items():
            if isinstance(value, k.Unreadable) and path in record.fields and value not in said:
                said.add(value)
                self.out.warnings.append(
                    Warning(
                        code=LEFT_AS_IS,
                        message=f"{record.address}: its {path} in the target cannot be said in "
                        f"a manifest ({value}); left as it is, not rewritten from the manifests. "
                        "Change it in the admin center, or delete the record to write it anew",
                        location=str(record.location) if record.location else None,
                        address=record.address,
                    )
                )

    def token_age(self, entry: Entry, row: Row, found: list[tuple[str, Value, Value]]) -> None:
        record = entry.record
        if record.kind is not k.FACEBOOK_PAGE or record.notes.get("tokenRotatedOn") is not None:
            return
        if any(path == "accessToken" for path, _, _ in found):
            return
        modified = row.get("modifiedon")
        if not isinstance(modified, str):
            return
        days = (self.options.today - datetime.date.fromisoformat(modified[:10])).days
        if days >= TOKEN_AGE_WARN_DAYS:
            self.out.warnings.append(
                Warning(
                    code="token-age",
                    message=f"the page was last written {days} days ago; if its access token "
                    f"has not been refreshed since, it is due ({limits.FACEBOOK_TOKEN_MAX_AGE_DAYS}"
                    "-day cycle). Set tokenRotatedOn to track it",
                    location=str(record.location) if record.location else None,
                    address=record.address,
                )
            )

    # -- rows no manifest describes ------------------------------------------------------------

    def plan_unclaimed(self, kind: k.RecordKind, row: Row) -> None:
        row_id = row[kind.table.primary_key]
        owned = self.identity.owned.get(row_id)
        after = self.after_deletes(kind, row, ours=owned is not None)
        parent = (
            self.resolver.addresses.get(row.get(lookup(kind.parent)) or "") if kind.parent else None
        )
        # Not ours: the id keeps two rows of the same name apart.
        address = owned or f"{parent or kind.name}/{k.name_of_row(kind, row)}#{row_id}"
        if after.row is None:
            self.delete(kind, row_id, address, row, after.reason)
        elif owned is not None and self.options.prune and (other := self.other_project(row_id)):
            self.out.warnings.append(
                Warning(
                    code="shared-record",
                    message=f"{owned} (id {row_id}) is not deleted: another project manages it "
                    f"too ({other}); remove it from one of the two ledgers (docs/ownership.md)",
                    address=owned,
                )
            )
        elif owned is not None and self.options.prune:
            listed = self.identity.ledger.get(row_id)
            self.delete(
                kind,
                row_id,
                owned,
                row,
                "no longer in the manifests (--prune)",
                adopted=listed is not None and listed.origin == "adopted",
                # Its id does not say it is this address's (renamed since, or a hand-edited
                # ledger): the plan names the row as the target does.
                named=derived_id(self.options.namespace, owned) != row_id,
            )
        elif owned is not None and self.other_project(row_id) is None:
            self.leftover.append(owned)
        elif row_id not in self.conflicting and not k.is_system_row(kind, row):
            self.out.unmanaged[kind.name] = self.out.unmanaged.get(kind.name, 0) + 1
            if after.cleared:
                self.link_cleared(kind, row)
            elif (
                parent is not None
                and kind.child_prefix
                and parent in self.described
                and kind.excluded(row) is None  # what manifests never describe (an Exclude rule)
            ):
                self.not_described(kind, row, parent)

    @functools.cached_property
    def described(self) -> set[str]:
        """Addresses of the records the manifests describe as present."""
        return {e.record.address for e in self.identity.entries if e.record.present}

    def not_described(self, kind: k.RecordKind, row: Row, parent: str) -> None:
        """A row under a record the manifests describe, made outside the project (a capacity
        profile row, an allowed domain added in the admin center): it counts for that record
        all the same, so the plan says so rather than that the target matches."""
        name = k.name_of_row(kind, row)
        self.out.warnings.append(
            Warning(
                code="not-described",
                message=f"{article(kind.noun or kind.name)} this project does not manage, "
                f"{kind.name} {name!r} ({row[kind.table.primary_key]}), counts for it all the "
                "same: describe it (if a manifest can), or delete it in the admin center",
                address=parent,
            )
        )

    def link_cleared(self, kind: k.RecordKind, row: Row) -> None:
        """A row this project does not manage loses a link to a record the plan deletes or
        replaces (Dataverse clears it: RemoveLink): it is not put back, so say so."""
        for column in kind.table.lookups():
            value = row.get(lookup(column.name))
            if value in self.gone and column.on_delete is OnDelete.REMOVE_LINK:
                self.out.warnings.append(
                    Warning(
                        code="link-cleared",
                        message=f"{kind.name} {k.name_of_row(kind, row)!r} "
                        f"({row[kind.table.primary_key]}), which this project does not manage, "
                        f"points at {self.gone[value]} ({column.name}); deleting it clears that "
                        "link and nothing sets it again. Adopt the row or link it again after "
                        "apply",
                        address=self.gone[value],
                    )
                )

    # -- ordering, dependencies, warnings ------------------------------------------------------

    def finish(self) -> None:
        changes = self.out.changes
        changing = {c.address for c in changes if c.action in CHANGING}
        by_address = {e.record.address: e.record for e in self.identity.entries}
        ordered_deletes: list[Change] = []
        rest: list[Change] = []
        for change in changes:
            if change.action is Action.DELETE:
                # A delete waits for the deletes of the rows that point at it.
                waits = sorted(
                    other
                    for other, refs in self.delete_refs.items()
                    if other != change.address and change.id in refs
                )
                ordered_deletes.append(change.model_copy(update={"depends_on": tuple(waits)}))
                continue
            record = by_address.get(change.address)
            if record is not None and change.action in CHANGING:
                wanted = record.kind.references(record.fields)
                parent = record.parent
                # A contract belongs to its workstream but is made before it (it is used by it).
                if parent and k.STAGE[parent.split("/")[0]] < k.STAGE[record.kind.name]:
                    wanted.append(parent)
                if change.action is Action.REPLACE:
                    # Its delete waits for the updates that stop restricting lookups pointing
                    # at it (a page moving to another workstream, or unlinked until it is back).
                    wanted += [a for a, ids in self.releases.items() if change.id in ids]
                depends = tuple(
                    sorted(
                        a for a in dict.fromkeys(wanted) if a in changing and a != change.address
                    )
                )
                change = change.model_copy(update={"depends_on": depends})
            rest.append(change)
        ordered_deletes.sort(key=lambda c: (-k.STAGE[c.kind], c.address))
        # A delete still restricted by a row that an update points elsewhere runs after it,
        # and so do the deletes that wait for that delete.
        late: set[str] = set()
        for index, change in enumerate(ordered_deletes):
            released_by = sorted(a for a, ids in self.releases.items() if change.id in ids)
            if released_by or late & set(change.depends_on):
                late.add(change.address)
                depends = tuple(sorted({*change.depends_on, *released_by}))
                ordered_deletes[index] = change.model_copy(update={"depends_on": depends})
        self.out.changes = (
            [c for c in ordered_deletes if c.address not in late]
            + rest
            + [c for c in ordered_deletes if c.address in late]
        )
        self.restricted([c for c in self.out.changes if c.action in DESTRUCTIVE])
        gbm = len(self.snapshot.rows.get(k.GBM_ACCOUNT.name, ())) + len(
            self.snapshot.rows.get(k.GBM_AGENT.name, ())
        )
        if gbm:
            self.out.warnings.append(
                Warning(
                    code="retired-channel",
                    message=f"the target holds {gbm} Google's Business Messages record"
                    f"{'s' if gbm > 1 else ''}; the channel was retired on 31 July 2024",
                )
            )
        if self.leftover:
            shown = ", ".join(self.leftover[:10]) + (" …" if len(self.leftover) > 10 else "")
            self.out.warnings.append(
                Warning(
                    code="not-in-manifests",
                    message=f"{len(self.leftover)} record{'s' if len(self.leftover) > 1 else ''} "
                    f"managed by this project {'are' if len(self.leftover) > 1 else 'is'} no "
                    f"longer in the manifests ({shown}); plan with --prune to delete them",
                )
            )

    def restricted(self, deletes: list[Change]) -> None:
        """Warn about deletes (and replaces) Dataverse will refuse: a row the plan neither
        deletes nor unlinks points at the record through a restrict lookup (a Facebook page
        someone else made on our workstream)."""
        for change in deletes:
            verb = "deleted" if change.action is Action.DELETE else "replaced"
            table = k.BY_NAME[change.kind].table.logical_name
            for referrer, column in REFERENCED_BY[table]:
                if column.on_delete is not OnDelete.RESTRICT:
                    continue
                kind = k.BY_TABLE[referrer.logical_name]
                for row in self.snapshot.rows.get(kind.name, ()):
                    row_id = row[referrer.primary_key]
                    if row.get(lookup(column.name)) != change.id or row_id in self.gone:
                        continue
                    address = self.resolver.addresses.get(row_id)
                    if address is not None and change.id in self.releases.get(address, ()):
                        continue
                    holder = address or f"{kind.name} {k.name_of_row(kind, row)!r} ({row_id})"
                    self.out.warnings.append(
                        Warning(
                            code="delete-blocked",
                            message=f"{change.address} cannot be {verb} while {holder} "
                            f"points at it ({column.name}); point it elsewhere or delete it "
                            "too, or apply will fail",
                            address=change.address,
                        )
                    )


def build(desired: Sequence[Record], snapshot: Snapshot, options: Options) -> Built:
    """The changes that make ``snapshot`` match ``desired``."""
    return _Planner(desired, snapshot, options).run()


def _shown(value: object) -> str:
    """A create-only field's value in a reason: ``unset`` for none."""
    return "unset" if value is None else str(value)
