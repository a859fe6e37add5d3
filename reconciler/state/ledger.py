"""The ledger: what a project (a namespace) manages in the target, kept in the target itself.

Plans on pull requests and applies on main run on different machines with no state of their
own, so what the project manages is written where they all read: in **notes** (the
``annotation`` table every Dataverse org has: MicrosoftDocs/powerapps-docs
``powerapps-docs/developer/data-platform/reference/entities/annotation.md`` @000a09f9). A note
needs no customisation (no table, column or solution to install), regards no record
(``objectid`` is optional there) and holds up to 100,000 characters of plain text
(``notetext``); its ETag makes conditional writes possible. docs/ownership.md says what an
admin sees and how to remove it.

One note is one **page** of the ledger: its id is derived from the namespace and the page's
number (so every run finds the same notes, and two runs creating the same page collide instead
of making two), its title says what it is, and its text is a header line and one line per
managed record; page 0's header also counts the pages, so a page missing at the end is
noticed too::

    reconciler-ledger/1 namespace=<uuid> page=<n> [pages=<count>, page 0 only]
    <address> <table> <id> <created|adopted>

Writes are **merges**: read the pages, add and remove entries, write the pages that changed
with ``If-Match`` (or ``If-None-Match: *`` for a new page); on 412 read again and merge again.
Two applies at once never lose each other's entries, and a write sent twice changes nothing
the second time. Entries stay on their page; new ones fill the first page with room, then new
pages, so 10,000 records take about ten notes (docs/performance.md) and an apply rewrites only
the pages it changes. An entry that grows past its page's room (a rename) moves to a page with
room, written before the page it leaves: a run killed in between leaves it twice, never
nowhere, and the next write keeps one. Page 0 counts only pages that exist when it is written
(it is written after new pages, and a new ledger's page 0 first, counting itself).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, unquote

from reconciler.dataverse import DataverseClient
from reconciler.dataverse import tables as t
from reconciler.dataverse.errors import AlreadyExists, NotFound, OutcomeUnknown, StaleRecord
from reconciler.errors import ReconcilerError

TABLE = t.TABLES[t.ANNOTATION]
FORMAT = "reconciler-ledger/1"
TITLE = "reconciler ledger"
PAGE_LENGTH = t.NOTE_TEXT_LENGTH
"""A page's text is at most this long (the note's ``notetext`` MaxLength)."""
ATTEMPTS = 8
"""How often a write is merged again after another run changed a page under it."""
BACKOFF = 0.05
"""Seconds: the wait before attempt n+1 is random, up to ``BACKOFF * 2**n`` (at most 2 s), so
runs that collided do not collide again in step."""

Origin = Literal["created", "adopted"]
ORIGINS: frozenset[str] = frozenset({"created", "adopted"})


class LedgerError(ReconcilerError):
    """The ledger cannot be read or written: a plan is then incomplete, never "nothing
    managed"."""


@dataclass(frozen=True)
class Entry:
    """One managed record: where the manifests say it is, its table and id, how it came."""

    address: str
    table: str
    id: str
    origin: Origin

    def line(self) -> str:
        return f"{quote(self.address, safe='/#')} {self.table} {self.id} {self.origin}"


@dataclass
class Page:
    number: int
    id: str
    etag: str | None = None
    """None: the note does not exist yet."""
    entries: dict[str, Entry] = field(default_factory=dict)
    """By record id, in the order written."""
    declared: int | None = None
    """Page 0 only: how many pages its header says the ledger has, so that a page missing at
    the end is noticed too (None: not said)."""

    def text(self, namespace: uuid.UUID) -> str:
        header = f"{FORMAT} namespace={namespace} page={self.number}"
        if self.number == 0:
            header += f" pages={self.declared or 1}"
        return "\n".join([header, *(entry.line() for entry in self.entries.values())]) + "\n"


def _size(namespace: uuid.UUID, page: Page) -> int:
    """A page's length, page 0's with room for a count of up to a million pages."""
    return len(page.text(namespace)) + (6 if page.number == 0 else 0)


def title(namespace: uuid.UUID, number: int | None = None) -> str:
    """A page's title (``subject``): what an admin sees in the list of notes."""
    prefix = f"{TITLE} {namespace}"
    if number is None:
        return prefix
    return f"{prefix} page {number} (written by reconciler apply; do not edit)"


def page_id(namespace: uuid.UUID, number: int) -> str:
    return str(uuid.uuid5(namespace, f"reconciler-ledger/page/{number}"))


@dataclass
class Ledger:
    namespace: uuid.UUID
    pages: list[Page] = field(default_factory=list)
    requests: int = 0
    others: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Records other projects' ledgers in the target list: id → (namespace, address). Never
    touched by this one (docs/ownership.md); a page of theirs that cannot be read is left out."""

    @property
    def exists(self) -> bool:
        """Whether the target holds a ledger for the namespace at all (none: an org applied
        before ledgers, or one whose ledger was removed)."""
        return bool(self.pages)

    @property
    def entries(self) -> dict[str, Entry]:
        """Every entry by record id."""
        return {i: e for page in self.pages for i, e in page.entries.items()}

    def merged(
        self, add: Iterable[Entry], remove: Collection[str], *, length: int = PAGE_LENGTH
    ) -> list[Page]:
        """Add (or update) ``add`` and drop the ids in ``remove``; the pages that changed, in
        the order they are to be written: pages that receive entries before pages that lose
        them (a run killed in between leaves an entry twice, never nowhere), and page 0, which
        counts the pages, after any new page."""
        changed: dict[int, Page] = {}
        received: set[int] = set()
        where: dict[str, list[Page]] = {}
        for page in self.pages:
            for record_id in page.entries:
                where.setdefault(record_id, []).append(page)
        for record_id in remove:
            for page in where.pop(record_id, []):
                del page.entries[record_id]
                changed[page.number] = page
        placed: dict[str, Entry] = {}
        for entry in add:
            if entry.id in remove:
                continue
            held = where.get(entry.id)
            if not held:
                placed[entry.id] = entry
                continue
            first, *copies = held
            if first.entries[entry.id] != entry:
                first.entries[entry.id] = entry
                changed[first.number] = first
            for page in copies:  # left by a move that a killed run did not finish
                del page.entries[entry.id]
                changed[page.number] = page
            where[entry.id] = [first]
        before = len(self.pages)
        sizes = {page.number: _size(self.namespace, page) for page in self.pages}
        # A page an update made too long (a longer address) hands its last entries on.
        for full in self.pages:
            while sizes[full.number] > length and full.entries:
                record_id, entry = full.entries.popitem()
                sizes[full.number] -= len(entry.line()) + 1
                placed[record_id] = entry
                changed[full.number] = full
        for entry in placed.values():
            size = len(entry.line()) + 1
            target = next((p for p in self.pages if sizes[p.number] + size <= length), None)
            if target is None:
                number = len(self.pages)
                target = Page(number, page_id(self.namespace, number))
                self.pages.append(target)
                sizes[number] = _size(self.namespace, target)
                if sizes[number] + size > length:
                    raise LedgerError(f"the ledger entry of {entry.address} is too long")
            target.entries[entry.id] = entry
            sizes[target.number] += size
            changed[target.number] = target
            received.add(target.number)
        # Page 0 counts only pages that exist when it is written: a new ledger's page 0 says 1
        # (written first), and the next merge, the same apply's second write, counts the rest.
        if before == 0 and self.pages:
            self.pages[0].declared = 1
            order = [0, *(n for n in sorted(changed) if n > 0)]
        else:
            if self.pages and self.pages[0].declared != len(self.pages):
                self.pages[0].declared = len(self.pages)
                changed[0] = self.pages[0]
            new = [n for n in sorted(changed) if n >= before]
            receiving = [n for n in sorted(received) if 0 < n < before]
            rest = [n for n in sorted(changed) if 0 < n < before and n not in received]
            order = new + receiving + ([0] if 0 in changed else []) + rest
        return [changed[number] for number in order]


def parse(namespace: uuid.UUID, row: Mapping[str, object]) -> Page:
    """A page from its note; ``LedgerError`` naming the note when it is not one."""
    note = str(row.get(TABLE.primary_key, ""))
    text = row.get("notetext")
    what = f"the ledger note {note} ({row.get('subject')!r})"
    if not isinstance(text, str):
        raise LedgerError(f"{what} has no text")
    lines = text.replace("\r\n", "\n").split("\n")
    header = lines[0].split()
    declared = header.pop() if len(header) == 4 and header[3].startswith("pages=") else None
    if len(header) != 3 or header[0] != FORMAT:
        raise LedgerError(f"{what} does not start with '{FORMAT} namespace=… page=…'")
    if declared is not None and not declared.removeprefix("pages=").isdigit():
        raise LedgerError(f"{what} says {declared}, which is not a number of pages")
    if header[1] != f"namespace={namespace}":
        raise LedgerError(f"{what} is the ledger of another namespace ({header[1]})")
    number_text = header[2].removeprefix("page=")
    if not number_text.isdigit() or page_id(namespace, int(number_text)) != note.lower():
        raise LedgerError(f"{what} says it is {header[2]}, which is not its id")
    page = Page(int(number_text), note.lower(), _etag(row))
    if declared is not None and page.number == 0:
        page.declared = int(declared.removeprefix("pages="))
    for index, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4 or parts[3] not in ORIGINS or not _is_guid(parts[2]):
            raise LedgerError(f"{what}, line {index}: expected '<address> <table> <id> <origin>'")
        address, table, record_id, origin = parts
        entry = Entry(unquote(address), table, record_id.lower(), origin)  # type: ignore[arg-type]
        page.entries[entry.id] = entry
    return page


def _etag(row: Mapping[str, object]) -> str | None:
    value = row.get("@odata.etag")
    return value if isinstance(value, str) else None


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36


def _others(rows: Iterable[Mapping[str, object]]) -> dict[str, tuple[str, str]]:
    """The entries of other namespaces' pages, by record id; pages that are not pages of a
    ledger (another tool's notes, a hand edit) are left out: not this project's to judge."""
    found: dict[str, tuple[str, str]] = {}
    for row in rows:
        text = row.get("notetext")
        header = text.split("\n", 1)[0].split() if isinstance(text, str) else []
        if len(header) not in (3, 4) or not header[1].startswith("namespace="):
            continue
        try:
            other = uuid.UUID(header[1].removeprefix("namespace="))
            page = parse(other, row)
        except (ValueError, LedgerError):
            continue
        for entry in page.entries.values():
            found[entry.id] = (str(other), entry.address)
    return found


async def read(client: DataverseClient, namespace: uuid.UUID) -> Ledger:
    """The namespace's ledger, and which records other namespaces' ledgers list: one query. A
    failure raises; a page of this namespace that cannot be read raises ``LedgerError``. An
    absent ledger is an empty one with ``exists`` False."""
    before = client.stats.total
    # startswith is one of the Web API's OData query functions, and rows the caller may not
    # read are left out of an answer, silently (Microsoft Learn, "Filter rows by using OData":
    # MicrosoftDocs/powerapps-docs powerapps-docs/developer/data-platform/webapi/query/
    # filter-rows.md): page 0's count is what notices a page this identity cannot see.
    rows = await client.list(
        TABLE.entity_set,
        select=[TABLE.primary_key, "subject", "notetext"],
        filter=f"startswith(subject,'{TITLE} ')",
    )
    prefix = f"{title(namespace)} "
    own = [row for row in rows if str(row.get("subject", "")).startswith(prefix)]
    others = _others(row for row in rows if not str(row.get("subject", "")).startswith(prefix))
    remedy = (
        f"delete every note titled '{title(namespace)} …' to have the next apply write it again "
        "from the records' ids (docs/ownership.md)"
    )
    try:
        pages = sorted((parse(namespace, row) for row in own), key=lambda page: page.number)
    except LedgerError as error:
        raise LedgerError(f"{error}; {remedy}") from None
    numbers = [page.number for page in pages]
    # Page 0 counts the pages (pages beyond its count: a run killed before it rewrote page 0).
    declared = pages[0].declared if pages and pages[0].number == 0 else None
    if numbers != list(range(len(numbers))) or len(numbers) < (declared or 0):
        expected = max(max(numbers, default=-1) + 1, declared or 0)
        missing = sorted(set(range(expected)) - set(numbers))
        raise LedgerError(
            f"the ledger of namespace {namespace} misses page{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(str, missing))} (a note deleted by hand?); {remedy}"
        )
    return Ledger(namespace, pages, client.stats.total - before, others)


async def write(
    client: DataverseClient,
    namespace: uuid.UUID,
    add: Sequence[Entry] = (),
    remove: Collection[str] = (),
    *,
    unless_present: Collection[str] = (),
    length: int = PAGE_LENGTH,
) -> int:
    """Merge ``add`` and ``remove`` into the target's ledger; the number of notes written.
    An id of ``remove`` also in ``unless_present`` is removed only if its record is still not
    in the target (another run may have made it since the plan).

    Each attempt reads the ledger, merges, and writes the pages that changed, each on the
    condition that nobody wrote it since it was read. Another run's write (412) or a lost
    answer sends it round again: the merge of entries already written changes nothing."""
    if not add and not remove:
        return 0
    written = 0
    for attempt in range(ATTEMPTS):
        try:
            ledger = await read(client, namespace)
            held = ledger.entries
            checked = [held[i] for i in set(unless_present) & set(remove) if i in held]
            gone = set(remove) - await _present(client, checked)
            pages = ledger.merged(add, gone, length=length)
            for page in pages:
                await _write_page(client, namespace, page)
                written += 1
            return written
        except (StaleRecord, AlreadyExists, NotFound, OutcomeUnknown):
            await asyncio.sleep(random.uniform(0, min(2.0, BACKOFF * 2**attempt)))
            continue
    raise LedgerError(
        f"the ledger of namespace {namespace} kept changing under this apply "
        f"({ATTEMPTS} attempts); apply again"
    )


CHECKED_AT_ONCE = 50
"""Ids a query for entries' records asks for at once (``pk eq id or …``): short URLs."""


async def _present(client: DataverseClient, entries: Sequence[Entry]) -> set[str]:
    """The ids of ``entries`` whose records are in the target: one query per table (and per
    ``CHECKED_AT_ONCE`` ids, joined by the OData ``or`` of filter-rows.md, cited in ``read``);
    an entry of a table the reconciler does not know is not."""
    by_table: dict[str, list[str]] = {}
    for entry in entries:
        if entry.table in t.TABLES:
            by_table.setdefault(entry.table, []).append(entry.id)
    found: set[str] = set()
    for name, ids in sorted(by_table.items()):
        table = t.TABLES[name]
        ids.sort()
        for start in range(0, len(ids), CHECKED_AT_ONCE):
            chunk = ids[start : start + CHECKED_AT_ONCE]
            rows = await client.list(
                table.entity_set,
                select=[table.primary_key],
                filter=" or ".join(f"{table.primary_key} eq {i}" for i in chunk),
            )
            found |= {str(row[table.primary_key]).lower() for row in rows}
    return found


async def _write_page(client: DataverseClient, namespace: uuid.UUID, page: Page) -> None:
    body = {"notetext": page.text(namespace)}
    if page.etag is None:
        await client.create_only(
            TABLE.entity_set, page.id, {"subject": title(namespace, page.number), **body}
        )
    else:
        await client.update(TABLE.entity_set, page.id, body, etag=page.etag)
