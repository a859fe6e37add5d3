"""The ledger module (``reconciler.state.ledger``) against the real emulator: its notes, pages,
parse errors, and merges of concurrent writes, in process and over HTTP.

End-to-end ownership (prune, rename, adoption, kills) is ``tests/test_ownership.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from served import in_thread

from reconciler.dataverse import BadRequest, DataverseClient, StaticToken
from reconciler.dataverse import tables as t
from reconciler.emulator import EmulatorApp, EmulatorConfig
from reconciler.emulator.store import Store
from reconciler.state import ledger
from reconciler.state.ledger import Entry, LedgerError
from reconciler.targets import connect, parse_target

NS = uuid.UUID("5d0f6c1e-3b7a-4e2d-9c8b-1a2b3c4d5e6f")
OTHER = uuid.UUID("0b9a8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d")


def entry(n: int, origin: str = "created") -> Entry:
    return Entry(f"Queue/q-{n:04d}", "queue", str(uuid.uuid5(NS, f"Queue/q-{n:04d}")), origin)  # type: ignore[arg-type]


def local(path: Path) -> Any:
    return connect(parse_target(f"local:{path}"), {})


def notes(path: Path) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        async with local(path) as client:
            return await client.list("annotations", select=["annotationid", "subject", "notetext"])

    return asyncio.run(go())


def test_entries_fill_pages_and_stay_on_them(tmp_path: Path) -> None:
    db = tmp_path / "org.db"
    length = 1_000  # a page holds about 14 entries instead of about 1,400

    async def go() -> None:
        async with local(db) as client:
            written = await ledger.write(client, NS, [entry(n) for n in range(40)], length=length)
            assert written == 3
            read = await ledger.read(client, NS)
            assert read.requests == 1
            assert read.exists
            assert [len(p.text(NS)) <= length for p in read.pages] == [True] * 3
            assert list(read.entries) == [entry(n).id for n in range(40)]
            first = {p.number: set(p.entries) for p in read.pages}

            # A new ledger's page 0 is written first and counts itself only; the next write
            # counts the pages it found.
            assert read.pages[0].declared == 1
            assert await ledger.write(client, NS, [entry(0)], length=length) == 1
            assert (await ledger.read(client, NS)).pages[0].declared == 3
            # Removing one entry and adding one rewrites the page that changed, no other: the
            # new entry takes the room the removed one left (page 0 is full).
            assert await ledger.write(client, NS, [entry(40)], [entry(20).id], length=length) == 1
            again = await ledger.read(client, NS)
            assert set(again.entries) == {entry(n).id for n in range(41)} - {entry(20).id}
            for page in again.pages:
                assert first[page.number] - {entry(20).id} <= set(page.entries)
            # A write of what is already there writes nothing.
            assert await ledger.write(client, NS, [entry(1)], [entry(20).id]) == 0
            # An entry's origin is rewritten in place.
            assert await ledger.write(client, NS, [entry(1, "adopted")], length=length) == 1
            assert (await ledger.read(client, NS)).entries[entry(1).id].origin == "adopted"

    asyncio.run(go())


def test_a_page_is_a_note_an_admin_can_read(tmp_path: Path) -> None:
    db = tmp_path / "org.db"

    async def go() -> None:
        async with local(db) as client:
            odd = Entry(
                "FacebookAccount/contoso/Support / Hulp  ",
                "msdyn_facebookpage",
                str(uuid.uuid4()),
                "adopted",
            )
            await ledger.write(client, NS, [entry(7), odd])
            read = await ledger.read(client, NS)
            assert read.entries[odd.id] == odd  # spaces and slashes survive the line format

    asyncio.run(go())
    (note,) = notes(db)
    assert note["annotationid"] == str(uuid.uuid5(NS, "reconciler-ledger/page/0"))
    assert note["subject"] == (
        f"reconciler ledger {NS} page 0 (written by reconciler apply; do not edit)"
    )
    lines = note["notetext"].splitlines()
    assert lines[0] == f"reconciler-ledger/1 namespace={NS} page=0 pages=1"
    assert lines[1] == f"Queue/q-0007 queue {entry(7).id} created"
    assert lines[2].startswith("FacebookAccount/contoso/Support%20/%20Hulp%20%20 ")


def test_two_namespaces_keep_two_ledgers(tmp_path: Path) -> None:
    db = tmp_path / "org.db"

    async def go() -> None:
        async with local(db) as client:
            await ledger.write(client, NS, [entry(1)])
            await ledger.write(client, OTHER, [entry(2)])
            mine = await ledger.read(client, NS)
            assert list(mine.entries) == [entry(1).id]
            # The other project's entries are known, so that neither touches the other's.
            assert mine.others == {entry(2).id: (str(OTHER), "Queue/q-0002")}
            assert list((await ledger.read(client, OTHER)).entries) == [entry(2).id]
            # A note of another tool, or another project's page edited by hand, is left out.
            await client.create_only(
                "annotations",
                str(uuid.uuid4()),
                {"subject": "reconciler ledger notes", "notetext": "x"},
            )
            await client.update(
                "annotations", ledger.page_id(OTHER, 0), {"notetext": "edited"}, etag=None
            )
            assert (await ledger.read(client, NS)).others == {}
            absent = await ledger.read(client, uuid.uuid4())
            assert (absent.exists, absent.entries) == (False, {})

    asyncio.run(go())


def page_row(number: int, text: str, namespace: uuid.UUID = NS) -> dict[str, Any]:
    return {
        "annotationid": ledger.page_id(namespace, number),
        "subject": ledger.title(namespace, number),
        "notetext": text,
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "has no text"),
        ("a list of queues\n", "does not start with 'reconciler-ledger/1"),
        (f"reconciler-ledger/1 namespace={OTHER} page=0\n", "is the ledger of another namespace"),
        (f"reconciler-ledger/1 namespace={NS} page=3\n", "says it is page=3, which is not its id"),
        (
            f"reconciler-ledger/1 namespace={NS} page=0\nQueue/a queue not-a-guid created\n",
            "line 2: expected '<address> <table> <id> <origin>'",
        ),
        (
            f"reconciler-ledger/1 namespace={NS} page=0\nQueue/a queue {uuid.uuid4()} stolen\n",
            "line 2: expected",
        ),
    ],
)
def test_a_note_that_is_not_a_page_is_an_error_naming_it(text: str | None, says: str) -> None:
    with pytest.raises(LedgerError) as caught:
        ledger.parse(NS, page_row(0, text))  # type: ignore[arg-type]
    assert says in str(caught.value)
    assert ledger.page_id(NS, 0) in str(caught.value)


def test_a_missing_page_makes_the_ledger_unreadable(tmp_path: Path) -> None:
    db = tmp_path / "org.db"

    async def go() -> str:
        async with local(db) as client:
            await ledger.write(client, NS, [entry(n) for n in range(40)], length=1_000)
            await client.delete("annotations", ledger.page_id(NS, 1), etag=None)
            with pytest.raises(LedgerError) as caught:
                await ledger.read(client, NS)
            return str(caught.value)

    message = asyncio.run(go())
    assert "misses page 1" in message
    assert f"delete every note titled 'reconciler ledger {NS} …'" in message


def test_a_page_edited_by_hand_makes_the_ledger_unreadable_and_says_what_to_do(tmp_path):
    db = tmp_path / "org.db"

    async def go() -> str:
        async with local(db) as client:
            await ledger.write(client, NS, [entry(1)])
            await client.update(
                "annotations", ledger.page_id(NS, 0), {"notetext": "edited by hand"}, etag=None
            )
            with pytest.raises(LedgerError) as caught:
                await ledger.read(client, NS)
            return str(caught.value)

    message = asyncio.run(go())
    assert "does not start with 'reconciler-ledger/1" in message
    assert message.endswith(
        f"delete every note titled 'reconciler ledger {NS} …' to have the next apply write it "
        "again from the records' ids (docs/ownership.md)"
    )


def another_run_first(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Another apply writes ``entry(99)`` just before this one's first page write; the pages
    this one tried to write, in order."""
    real = ledger._write_page
    calls: list[int] = []

    async def interleaved(client: DataverseClient, namespace: uuid.UUID, page: Any) -> None:
        calls.append(page.number)
        if len(calls) == 1:
            monkeypatch.setattr(ledger, "_write_page", real)
            await ledger.write(client, namespace, [entry(99)])  # the other run, first
            monkeypatch.setattr(ledger, "_write_page", interleaved)
        await real(client, namespace, page)

    monkeypatch.setattr(ledger, "_write_page", interleaved)
    return calls


def test_a_write_merges_what_another_run_wrote_under_it(tmp_path: Path, monkeypatch) -> None:
    """Another apply writes the page between this one's read and write: the conditional write
    fails (412), this one reads again and merges; neither loses an entry."""
    db = tmp_path / "org.db"

    async def go() -> list[int]:
        async with local(db) as client:
            await ledger.write(client, NS, [entry(1)])  # the page exists: an If-Match write
            calls = another_run_first(monkeypatch)
            await ledger.write(client, NS, [entry(2)])
            listed = set((await ledger.read(client, NS)).entries)
            assert listed == {entry(1).id, entry(2).id, entry(99).id}
            return calls

    assert len(asyncio.run(go())) >= 2  # the first write was refused, the second went through


def test_two_runs_creating_the_first_page_at_once_merge(tmp_path: Path, monkeypatch) -> None:
    """No ledger yet and two applies at once: both create page 0; the second's create fails
    (the id is derived, so it collides) and it merges into the first's."""
    db = tmp_path / "org.db"

    async def go() -> None:
        async with local(db) as client:
            another_run_first(monkeypatch)
            await ledger.write(client, NS, [entry(2)])
            read = await ledger.read(client, NS)
            assert set(read.entries) == {entry(2).id, entry(99).id}
            assert len(read.pages) == 1

    asyncio.run(go())


def test_a_ledger_that_keeps_changing_is_an_error(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "org.db"
    monkeypatch.setattr(ledger, "BACKOFF", 0.0)
    real = ledger._write_page
    n = iter(range(100, 200))

    async def always(client: DataverseClient, namespace: uuid.UUID, page: Any) -> None:
        monkeypatch.setattr(ledger, "_write_page", real)
        await ledger.write(client, namespace, [entry(next(n))])
        monkeypatch.setattr(ledger, "_write_page", always)
        await real(client, namespace, page)

    async def go() -> str:
        async with local(db) as client:
            await ledger.write(client, NS, [entry(1)])
            monkeypatch.setattr(ledger, "_write_page", always)
            with pytest.raises(LedgerError) as caught:
                await ledger.write(client, NS, [entry(2)])
            return str(caught.value)

    assert "kept changing under this apply (8 attempts); apply again" in asyncio.run(go())


def test_concurrent_writers_over_http_lose_nothing(tmp_path: Path) -> None:
    """Four clients, each its own connection to a served emulator, write 25 entries each at
    once: every entry is in the ledger afterwards."""
    app = EmulatorApp(Store(tmp_path / "org.db"), EmulatorConfig(latency_ms=5))

    async def writer(url: str, start: int) -> None:
        client = DataverseClient(f"{url}/api/data/v9.2/", auth=StaticToken("t"))
        async with client:
            for n in range(start, start + 25, 5):
                await ledger.write(client, NS, [entry(i) for i in range(n, n + 5)])

    async def go(url: str) -> set[str]:
        await asyncio.gather(*(writer(url, start) for start in (0, 25, 50, 75)))
        client = DataverseClient(f"{url}/api/data/v9.2/", auth=StaticToken("t"))
        async with client:
            return set((await ledger.read(client, NS)).entries)

    with in_thread(app) as url:
        assert asyncio.run(go(url)) == {entry(i).id for i in range(100)}


def test_the_emulator_holds_notes_as_documented(tmp_path: Path) -> None:
    """``annotation`` (MicrosoftDocs/powerapps-docs, reference/entities/annotation.md): no
    status columns, ``notetext`` at most 100,000 characters, ``subject`` at most 500."""
    table = t.TABLES[t.ANNOTATION]
    assert (table.entity_set, table.primary_key) == ("annotations", "annotationid")
    assert t.NOTE_TEXT_LENGTH == 100_000
    db = tmp_path / "org.db"

    async def go() -> dict[str, Any]:
        async with local(db) as client:
            note = str(uuid.uuid4())
            await client.create_only(
                "annotations", note, {"subject": "s", "notetext": "x" * 100_000}
            )
            with pytest.raises(BadRequest) as too_long:
                await client.create_only(
                    "annotations", str(uuid.uuid4()), {"subject": "s", "notetext": "x" * 100_001}
                )
            assert too_long.value.status == 400
            with pytest.raises(BadRequest) as long_subject:
                await client.create_only("annotations", str(uuid.uuid4()), {"subject": "s" * 501})
            assert long_subject.value.status == 400
            return await client.get("annotations", note)

    row = asyncio.run(go())
    assert "statecode" not in row
    assert "statuscode" not in row
    assert len(row["notetext"]) == 100_000


def test_an_entry_that_grows_moves_to_a_page_with_room_written_first(tmp_path: Path) -> None:
    """A rename makes an address longer on a full page: the page hands entries on, never goes
    past its length, and the page that receives them is written before the page that loses
    them (a run killed in between leaves an entry twice, which the next write tidies)."""
    db = tmp_path / "org.db"
    length = 1_000

    async def go() -> None:
        async with local(db) as client:
            await ledger.write(client, NS, [entry(n) for n in range(20)], length=length)
            await ledger.write(client, NS, [entry(0)], length=length)  # page 0 counts 2 pages
            held = await ledger.read(client, NS)
            assert [len(p.entries) for p in held.pages] == [14, 6]
            longer = Entry("Queue/" + "x" * 60, "queue", entry(3).id, "created")
            pages = held.merged([longer], (), length=length)
            assert [p.number for p in pages] == [1, 0]  # the receiver first
            assert all(len(p.text(NS)) <= length for p in held.pages)
            for page in pages:
                await ledger._write_page(client, NS, page)
            after = await ledger.read(client, NS)
            assert after.entries[entry(3).id] == longer
            assert len(after.entries) == 20

            # Killed between the two writes: the moved entry is on both pages. Reads agree,
            # a removal removes both, and the next write of it keeps one.
            twice = await ledger.read(client, NS)
            moved = next(iter(twice.pages[1].entries.values()))
            twice.pages[0].entries[moved.id] = moved
            await ledger._write_page(client, NS, twice.pages[0])
            assert len((await ledger.read(client, NS)).entries) == 20
            await ledger.write(client, NS, [moved], length=length)
            kept = await ledger.read(client, NS)
            assert sum(moved.id in p.entries for p in kept.pages) == 1
            assert all(len(p.text(NS)) <= length for p in kept.pages)
            assert len(kept.entries) == 20

    asyncio.run(go())


def test_a_missing_last_page_is_noticed_by_page_0s_count(tmp_path: Path) -> None:
    db = tmp_path / "org.db"

    async def go() -> str:
        async with local(db) as client:
            await ledger.write(client, NS, [entry(n) for n in range(20)], length=1_000)
            await ledger.write(client, NS, [entry(0)], length=1_000)  # page 0 counts 2
            await client.delete("annotations", ledger.page_id(NS, 1), etag=None)
            with pytest.raises(LedgerError) as caught:
                await ledger.read(client, NS)
            return str(caught.value)

    assert "misses page 1" in asyncio.run(go())


def test_new_pages_are_written_before_page_0_counts_them(tmp_path: Path) -> None:
    held = ledger.Ledger(NS)
    first = held.merged([entry(n) for n in range(10)], (), length=1_000)
    assert [p.number for p in first] == [0]
    assert first[0].declared == 1
    for page in held.pages:
        page.etag = 'W/"1"'
    grown = held.merged([entry(n) for n in range(10, 30)], (), length=1_000)
    assert [p.number for p in grown] == [1, 2, 0]  # page 0, counting 3, last
    assert held.pages[0].declared == 3


def test_an_entry_planned_to_be_dropped_stays_if_its_record_came_back(tmp_path: Path) -> None:
    """A plan drops the entry of a record it found missing; meanwhile another apply made the
    record: the drop checks first, and keeps it."""
    db = tmp_path / "org.db"

    async def go() -> None:
        async with local(db) as client:
            await ledger.write(client, NS, [entry(1), entry(2)])
            await client.create_only(
                "queues",
                entry(1).id,
                {"name": "q", "msdyn_isomnichannelqueue": True, "msdyn_queuetype": 192350000},
            )
            dropped = [entry(1).id, entry(2).id]
            before = client.stats.snapshot().get("GET queues", 0)
            await ledger.write(client, NS, (), dropped, unless_present=dropped)
            assert list((await ledger.read(client, NS)).entries) == [entry(1).id]
            # One query of the table for both ids, not a request per record.
            assert client.stats.snapshot()["GET queues"] - before == 1

    asyncio.run(go())
