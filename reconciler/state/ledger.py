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
managed record::

    reconciler-ledger/1 namespace=<uuid> page=<n>
    <address> <table> <id> <created|adopted>

Writes are **merges**: read the pages, add and remove entries, write the pages that changed
with ``If-Match`` (or ``If-None-Match: *`` for a new page); on 412 read again and merge again.
Two applies at once never lose each other's entries, and a write sent twice changes nothing
the second time. Entries stay on their page; new ones fill the first page with room, then new
pages, so 10,000 records take about ten notes (docs/performance.md) and an apply rewrites only
the pages it changes.
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

    def text(self, namespace: uuid.UUID) -> str:
        lines = [f"{FORMAT} namespace={namespace} page={self.number}"]
        lines += [entry.line() for entry in self.entries.values()]
        return "\n".join(lines) + "\n"


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
        the order they are to be written."""
        changed: dict[int, Page] = {}
        where = {i: page for page in self.pages for i in page.entries}
        for record_id in remove:
            page = where.pop(record_id, None)
            if page is not None:
                del page.entries[record_id]
                changed[page.number] = page
        placed: list[Entry] = []
        for entry in add:
            if entry.id in remove:
                continue
            page = where.get(entry.id)
            if page is None:
                placed.append(entry)
            elif page.entries[entry.id] != entry:
                page.entries[entry.id] = entry
                changed[page.number] = page
        sizes = {page.number: len(page.text(self.namespace)) for page in self.pages}
        for entry in placed:
            size = len(entry.line()) + 1
            page = next(
                (p for p in self.pages if sizes[p.number] + size <= length),
                None,
            )
            if page is None:
                number = len(self.pages)
                page = Page(number, page_id(self.namespace, number))
                self.pages.append(page)
                sizes[number] = len(page.text(self.namespace))
                if sizes[number] + size > length:
                    raise LedgerError(f"the ledger entry of {entry.address} is too long")
            page.entries[entry.id] = entry
            where[entry.id] = page
            sizes[page.number] += size
            changed[page.number] = page
        return [changed[number] for number in sorted(changed)]


def parse(namespace: uuid.UUID, row: Mapping[str, object]) -> Page:
    """A page from its note; ``LedgerError`` naming the note when it is not one."""
    note = str(row.get(TABLE.primary_key, ""))
    text = row.get("notetext")
    what = f"the ledger note {note} ({row.get('subject')!r})"
    if not isinstance(text, str):
        raise LedgerError(f"{what} has no text")
    lines = text.replace("\r\n", "\n").split("\n")
    header = lines[0].split()
    if len(header) != 3 or header[0] != FORMAT:
        raise LedgerError(f"{what} does not start with '{FORMAT} namespace=… page=…'")
    if header[1] != f"namespace={namespace}":
        raise LedgerError(f"{what} is the ledger of another namespace ({header[1]})")
    number_text = header[2].removeprefix("page=")
    if not number_text.isdigit() or page_id(namespace, int(number_text)) != note.lower():
        raise LedgerError(f"{what} says it is {header[2]}, which is not its id")
    page = Page(int(number_text), note.lower(), _etag(row))
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
        if len(header) != 3 or not header[1].startswith("namespace="):
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
    if numbers != list(range(len(numbers))):
        missing = sorted(set(range(max(numbers, default=-1) + 1)) - set(numbers))
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
    length: int = PAGE_LENGTH,
) -> int:
    """Merge ``add`` and ``remove`` into the target's ledger; the number of notes written.

    Each attempt reads the ledger, merges, and writes the pages that changed, each on the
    condition that nobody wrote it since it was read. Another run's write (412) or a lost
    answer sends it round again: the merge of entries already written changes nothing."""
    if not add and not remove:
        return 0
    written = 0
    for attempt in range(ATTEMPTS):
        try:
            ledger = await read(client, namespace)
            pages = ledger.merged(add, set(remove), length=length)
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


async def _write_page(client: DataverseClient, namespace: uuid.UUID, page: Page) -> None:
    body = {"notetext": page.text(namespace)}
    if page.etag is None:
        await client.create_only(
            TABLE.entity_set, page.id, {"subject": title(namespace, page.number), **body}
        )
    else:
        await client.update(TABLE.entity_set, page.id, body, etag=page.etag)
