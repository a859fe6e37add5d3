"""Which row is which record: ids, adoption, and telling our rows from everyone else's.

A record's id is its ``metadata.id`` when it adopts an existing row; else the id the ledger
holds for its address (``state.ledger``); else, for a rename, the id of its previous address
(``metadata.previousNames``: in the ledger, or derived); else ``uuid5(namespace, address)``.
Children of an adopted or renamed record (its pages, its contract and routing) are found under
it when their own ids find nothing, so adopting an account adopts its pages too.

A row no manifest describes is **ours** when the ledger lists it. A row the ledger does not
list is ours too when its id is provably one we derive (an org applied before ledgers, or an
apply killed before it wrote its ledger): the address is rebuilt from what the row holds, its
name (``Queue/<name>`` or the slug of a display name), its parent's address and its own name
(pages, agents), or the address the reconciler wrote as its name (contracts, routing
configurations, steps). Anything else is not ours: it is counted, and left alone.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reconciler.kinds.base import Match, named
from reconciler.mapping import kinds as k
from reconciler.mapping.fields import Resolver, Row, lookup
from reconciler.mapping.records import Record
from reconciler.mapping.values import record_id
from reconciler.state.ledger import Entry as LedgerEntry
from reconciler.state.reader import Snapshot


@dataclass
class Entry:
    """A desired record, the id it has in the target, and its row if it exists."""

    record: Record
    id: str
    row: Row | None = None


@dataclass
class Identity:
    resolver: Resolver
    entries: list[Entry] = field(default_factory=list)
    owned: dict[str, str] = field(default_factory=dict)
    """Ids of rows that are ours but described by no manifest → their address."""
    unclaimed: dict[str, list[Row]] = field(default_factory=dict)
    """Rows of each kind no desired record claimed (ours or not)."""
    ledger: dict[str, LedgerEntry] = field(default_factory=dict)
    """The ledger's entries by record id (empty without a ledger)."""
    renamed: dict[str, str] = field(default_factory=dict)
    """Address → the previous address whose record it is (``metadata.previousNames``)."""
    proved: set[str] = field(default_factory=set)
    """Ids of rows the ledger does not list that are provably ours by their derived ids."""
    duplicate: dict[str, str] = field(default_factory=dict)
    """Address → the address of the record that already has its id (a metadata.id naming
    another record's row)."""
    taken: dict[str, str] = field(default_factory=dict)
    """Address → the address the ledger lists its derived id under: a record renamed away from
    this address, whose id a new record of the old name cannot have too."""

    def created(self, entry: Entry) -> bool:
        """The entry's row was made by this project: the ledger says so, or its id is the one
        derived from its address (or a previous one)."""
        listed = self.ledger.get(entry.id)
        if listed is not None:
            return listed.origin == "created"
        namespace = self.resolver.namespace
        record = entry.record
        return any(
            record_id(namespace, address) == entry.id
            for address in (record.address, *record.previous)
        )


def slug(text: str) -> str:
    """A metadata name made of ``text``: ``"Café Support (NL)"`` → ``cafe-support-nl``; empty
    when nothing of it is a Latin letter or a digit."""
    folded = unicodedata.normalize("NFKD", text.casefold()).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")
    return words[:63].rstrip("-")


def _pk(kind: k.RecordKind) -> str:
    return kind.table.primary_key


def _sorted(kind: k.RecordKind, rows: Iterable[Row]) -> tuple[Row, ...]:
    key = _pk(kind)
    return tuple(sorted(rows, key=lambda row: str(row[key])))


def _child_row(
    entry: Entry,
    rows: Sequence[Row],
    by_id: dict[str, dict[str, Row]],
    ids: dict[str, str],
    claimed: set[str],
) -> Row | None:
    """An existing row of a derived or child record, found under its (adopted) parent."""
    record = entry.record
    kind = record.kind
    parent_id = ids.get(record.parent or "")
    if parent_id is None:
        return None
    free = [row for row in rows if row[_pk(kind)] not in claimed]
    if kind.match is not None:  # derived records: the kind says where their row is
        return kind.match(Match(free, record.fields, parent_id, by_id, ids))
    assert kind.parent is not None
    column = lookup(kind.parent)
    mine = [row for row in free if row.get(column) == parent_id]
    # A child under its parent: by its key first (a Facebook page ID, an agent ID: so a
    # renamed page is the same page), then by name, ignoring case.
    key, _ = kind.identity_key
    key_column = kind.field(key).columns[0] if kind.keys else None
    name = str(record.fields.get("name", "")).casefold()
    by_key = [row for row in mine if key_column and row.get(key_column) == record.fields.get(key)]
    by_name = [row for row in mine if kind.name_of(row).casefold() == name]
    found = by_key or by_name
    return found[0] if found else None


def address_hints(rows: dict[str, tuple[Row, ...]]) -> dict[str, list[str]]:
    """Addresses the routing records suggest for the rows they belong to: a contract or a step
    is named by its address, so a workstream or rule set whose display name says nothing of
    its metadata name can still be proved ours."""
    names = {row[_pk(k.CONTRACT)]: k.name_of_row(k.CONTRACT, row) for row in rows[k.CONTRACT.name]}
    hints: dict[str, list[str]] = {}
    for row in rows[k.WORKSTREAM.name]:
        contract = names.get(row.get(lookup("msdyn_routingcontractid")) or "", "")
        if contract.endswith("/contract"):
            hints.setdefault(row[_pk(k.WORKSTREAM)], []).append(contract.removesuffix("/contract"))
    for row in rows[k.ROUTING_STEP.name]:
        step, rule_set = k.name_of_row(k.ROUTING_STEP, row), row.get(lookup("msdyn_rulesetid"))
        if step.endswith("/step") and isinstance(rule_set, str):
            hints.setdefault(rule_set, []).append(step.removesuffix("/step"))
    return hints


def prove(
    kind: k.RecordKind, row: Row, resolver: Resolver, hints: dict[str, list[str]]
) -> str | None:
    """The address this row would have if the reconciler made it, or None."""
    name = k.name_of_row(kind, row)
    candidates: Iterable[str]
    if kind.on_create is named:  # routing records are named by their address
        candidates = (name,)
    elif kind.parent is not None:
        parent = resolver.addresses.get(row.get(lookup(kind.parent)) or "")
        own = kind.suffix or f"{kind.child_prefix}{name}"
        candidates = (f"{parent}/{own}",) if parent else ()
    else:
        row_id = row[_pk(kind)]
        candidates = (f"{kind.name}/{name}", f"{kind.name}/{slug(name)}", *hints.get(row_id, ()))
    row_id = row[_pk(kind)]
    return next((c for c in candidates if record_id(resolver.namespace, c) == row_id), None)


def _id_of(
    record: Record,
    namespace: uuid.UUID,
    listed: dict[str, str],
    addresses: dict[str, str],
    exists: dict[str, Row],
) -> tuple[str, str | None]:
    """The id ``record`` has in the target, and the previous address it was found under. A
    derived id the ledger lists under another address is that record's (renamed from this
    address), not this one's."""
    if record.adopt is not None:
        return record.adopt, None
    own = record_id(namespace, record.address)
    for found in (listed.get(record.address), own):
        if found in exists and (
            found != own or addresses.get(own, record.address) == record.address
        ):
            return str(found), None
    for previous in record.previous:
        found = listed.get(previous) or record_id(namespace, previous)
        if found in exists:
            return found, previous
    return own, None


def identify(desired: Sequence[Record], snapshot: Snapshot, namespace: uuid.UUID) -> Identity:
    resolver = Resolver(
        namespace,
        languages=dict(snapshot.languages),
        output_contract=snapshot.output_contract,
        users=dict(snapshot.users),
    )
    ledger = snapshot.ledger.entries if snapshot.ledger is not None else {}
    identity = Identity(resolver, ledger=ledger)
    # Rows come in no set order: sort them, so that of two rows that fit equally (a child
    # under an adopted parent, a row named in a conflict) the same one is chosen every time.
    snapshot = dataclasses.replace(
        snapshot,
        rows={kind.name: _sorted(kind, snapshot.rows.get(kind.name, ())) for kind in k.KINDS},
    )
    by_id = {
        kind.name: {row[_pk(kind)]: row for row in snapshot.rows.get(kind.name, ())}
        for kind in k.KINDS
    }
    claimed: set[str] = set()
    listed = {entry.address: entry.id for entry in ledger.values()}
    addresses = {entry.id: entry.address for entry in ledger.values()}
    wanted = {record.address for record in desired}
    claimed_by: dict[str, str] = {}
    # First by id: adopted with metadata.id, in the ledger, derived, or renamed.
    for record in desired:
        of_kind = by_id[record.kind.name]
        record_key, previous = _id_of(record, namespace, listed, addresses, of_kind)
        entry = Entry(record, record_key, of_kind.get(record_key))
        holder = addresses.get(record_key, record.address)
        if entry.row is not None and holder != record.address and not record.adopt:
            if previous is None and holder in wanted:
                entry.row = None  # the record renamed away from this address keeps its row
                identity.taken[record.address] = holder
            elif previous is None:
                identity.renamed[record.address] = holder  # renamed back
        if entry.row is not None and record_key in claimed:
            identity.duplicate[record.address] = claimed_by[record_key]
            entry.row = None
        identity.entries.append(entry)
        if entry.row is not None:
            claimed.add(record_key)
            claimed_by[record_key] = record.address
            resolver.add(record.address, record_key)
            if previous is not None:
                identity.renamed[record.address] = previous
    # Then children and routing records of adopted parents, by what they hang under.
    for kind in k.KINDS:
        for entry in identity.entries:
            if entry.record.kind is not kind:
                continue
            if entry.row is None and entry.record.adopt is None:
                rows = snapshot.rows.get(kind.name, ())
                row = _child_row(entry, rows, by_id, resolver.ids, claimed)
                if row is not None:
                    entry.row, entry.id = row, row[_pk(kind)]
                    claimed.add(entry.id)
                    parent = entry.record.parent or ""
                    if parent in identity.renamed:
                        old = identity.renamed[parent]
                        identity.renamed[entry.record.address] = (
                            old + entry.record.address[len(parent) :]
                        )
            resolver.add(entry.record.address, entry.id)
    # What nobody claimed: ours (listed in the ledger, or by its derived id) or someone else's.
    hints = address_hints(dict(snapshot.rows))
    for kind in k.KINDS:
        rest = [row for row in snapshot.rows.get(kind.name, ()) if row[_pk(kind)] not in claimed]
        identity.unclaimed[kind.name] = rest
        for row in rest:
            row_id = row[_pk(kind)]
            listed_entry = ledger.get(row_id)
            if listed_entry is not None and listed_entry.table != kind.table.logical_name:
                listed_entry = None  # an entry of another table: not this row's (a hand edit)
            address = listed_entry.address if listed_entry is not None else None
            if address is None:
                address = prove(kind, row, resolver, hints)
                if address is None or address in resolver.ids:
                    continue
                identity.proved.add(row_id)
            elif address in resolver.ids:
                address = f"{address}#{row_id}"  # its address went to another record
            identity.owned[row_id] = address
            resolver.add(address, row_id)
    return identity
