"""The real client against the real emulator: in-process, and over a loopback socket."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from served import in_thread
from tokens import entra

from reconciler.dataverse import (
    AlreadyExists,
    AuthError,
    BatchRequest,
    ChangeSet,
    ClientCredentials,
    DataverseClient,
    NotFound,
    OutcomeUnknown,
    RetryPolicy,
    StaleRecord,
    StaticToken,
    TransportError,
    Unauthorized,
)
from reconciler.dataverse.tables import TABLES
from reconciler.emulator import EmulatorApp, EmulatorConfig
from reconciler.emulator.records import new_row
from reconciler.emulator.server import bound_socket
from reconciler.emulator.store import Store
from reconciler.targets import connect, parse_target

FAST = RetryPolicy(max_attempts=12, max_elapsed=60, base_delay=0.05, max_delay=0.5)


def _client(url: str, token: str = "t", **kwargs: Any) -> DataverseClient:
    return DataverseClient(f"{url}/api/data/v9.2/", auth=StaticToken(token), **kwargs)


def _queue(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "msdyn_isomnichannelqueue": True, "msdyn_queuetype": 192350000, **extra}


# -- in-process --------------------------------------------------------------------------------
def test_listing_12000_rows_takes_three_requests_at_page_size_5000(tmp_path: Path) -> None:
    db = tmp_path / "org.db"
    store = Store(db)
    table = TABLES["queue"]
    with store.transaction():
        for n in range(12_000):
            row = new_row(table, str(uuid.UUID(int=n + 1)), _queue(f"bulk-{n:05d}"))
            row["versionnumber"] = store.next_version()
            store.insert(table, row)
    store.close()

    async def go() -> tuple[int, int, dict[str, int]]:
        async with connect(parse_target(f"local:{db}"), {}) as client:
            rows = await client.list(
                "queues", select=["name"], filter="startswith(name,'bulk-')", page_size=5000
            )
            return len(rows), len({r["queueid"] for r in rows}), client.stats.snapshot()

    count, distinct, stats = asyncio.run(go())
    assert (count, distinct) == (12_000, 12_000)
    assert stats == {"GET queues": 3}


def test_conditional_writes_and_stale_records_in_process(tmp_path: Path) -> None:
    async def go() -> None:
        async with connect(parse_target(f"local:{tmp_path / 'org.db'}"), {}) as client:
            queue_id = str(uuid.uuid4())
            await client.create_only("queues", queue_id, _queue("Vip", msdyn_priority=5))
            with pytest.raises(AlreadyExists):
                await client.create_only("queues", queue_id, _queue("Vip"))
            first = await client.get("queues", queue_id, select=["msdyn_priority"])
            await client.update(
                "queues", queue_id, {"msdyn_priority": 1}, etag=first["@odata.etag"]
            )
            with pytest.raises(StaleRecord) as stale:
                await client.update(
                    "queues", queue_id, {"msdyn_priority": 2}, etag=first["@odata.etag"]
                )
            assert stale.value.status == 412
            assert stale.value.code == "0x80060882"
            current = await client.get("queues", queue_id, select=["msdyn_priority"])
            assert current["msdyn_priority"] == 1
            with pytest.raises(NotFound):
                await client.update("queues", str(uuid.uuid4()), {"msdyn_priority": 1})
            await client.upsert("queues", queue_id, {"description": "upserted"})
            await client.delete("queues", queue_id, etag=None)
            with pytest.raises(NotFound) as missing:
                await client.get("queues", queue_id)
            assert missing.value.code == "0x80040217"

    asyncio.run(go())


def test_batch_change_set_with_content_id_and_rollback(tmp_path: Path) -> None:
    async def go() -> None:
        async with connect(parse_target(f"local:{tmp_path / 'org.db'}"), {}) as client:
            contract = str(uuid.uuid4())
            ok = await client.batch(
                [
                    ChangeSet(
                        [
                            BatchRequest(
                                "POST",
                                "msdyn_decisioncontracts",
                                {"msdyn_decisioncontractid": contract, "msdyn_name": "C"},
                                content_id="1",
                            ),
                            BatchRequest(
                                "POST",
                                "msdyn_decisionrulesets",
                                {"msdyn_name": "R", "msdyn_inputcontractid@odata.bind": "$1"},
                                content_id="2",
                            ),
                        ]
                    )
                ]
            )
            assert [r.status for r in ok] == [204, 204]
            sets = await client.list(
                "msdyn_decisionrulesets", select=["_msdyn_inputcontractid_value"]
            )
            assert [s["_msdyn_inputcontractid_value"] for s in sets] == [contract]

            kept = str(uuid.uuid4())
            failed = await client.batch(
                [
                    ChangeSet(
                        [
                            BatchRequest(
                                "POST", "queues", {"queueid": kept, "name": "rolled back"}
                            ),
                            BatchRequest("POST", "queues", {"name": "x" * 201}),
                        ]
                    )
                ]
            )
            assert [r.status for r in failed] == [400]
            error = failed[0].error()
            assert error is not None
            assert error.code == "0x80044331"
            with pytest.raises(NotFound):
                await client.get("queues", kept)

    asyncio.run(go())


# -- over a loopback socket -----------------------------------------------------------------------
def test_client_over_loopback_socket(tmp_path: Path) -> None:
    app = EmulatorApp(Store(tmp_path / "org.db"))

    async def go(url: str) -> None:
        async with _client(url, page_size=3) as client:
            me = await client.who_am_i()
            assert uuid.UUID(me.organization_id)
            created = await client.create("queues", _queue("Loopback"), return_representation=True)
            assert isinstance(created, dict)
            assert created["name"] == "Loopback"
            for n in range(4):
                await client.create("queues", _queue(f"page-{n}"))
            names = [
                q["name"] for q in await client.list("queues", select=["name"], orderby="name")
            ]
            # three default queues + five of ours, three to a page
            assert len(names) == 8
            assert names == sorted(names, key=str.lower)
            assert client.stats.snapshot()["GET queues"] == 3
            created_id = created["queueid"]
            with pytest.raises(StaleRecord):
                await client.delete("queues", created_id, etag='W/"1"')
            await client.delete("queues", created_id, etag=created["@odata.etag"])

    with in_thread(app) as url:
        asyncio.run(go(url))


def test_wrong_token_is_unauthorized_and_not_retried(tmp_path: Path) -> None:
    app = EmulatorApp(Store(tmp_path / "org.db"), EmulatorConfig(token="right"))

    async def go(url: str) -> None:
        async with _client(url, token="wrong") as client:
            with pytest.raises(Unauthorized) as caught:
                await client.who_am_i()
            assert caught.value.status == 401
            assert client.stats.total == 1
        async with _client(url, token="right") as client:
            assert (await client.who_am_i()).user_id

    with in_thread(app) as url:
        asyncio.run(go(url))


def test_connection_refused_is_a_transport_error_after_bounded_retries() -> None:
    with bound_socket(0) as sock:
        port = sock.getsockname()[1]
    # the socket is closed: nothing listens on the port any more
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)

    async def go() -> None:
        async with _client(f"http://127.0.0.1:{port}", retry=policy) as client:
            with pytest.raises(TransportError) as caught:
                await client.who_am_i()
            assert caught.value.attempts == 3
            assert client.stats.total == 3

    asyncio.run(go())


def test_fault_rate_workload_of_500_requests_all_succeed(tmp_path: Path) -> None:
    config = EmulatorConfig(fault_rate=0.3, seed=20261121, fault_retry_after=1)
    app = EmulatorApp(Store(tmp_path / "org.db"), config)
    ids = [str(uuid.UUID(int=n + 1)) for n in range(250)]

    async def go(url: str) -> dict[str, Any]:
        gate = asyncio.Semaphore(50)

        async def one(coroutine: Any) -> Any:
            async with gate:
                return await coroutine

        async with _client(url, retry=FAST) as client:
            await asyncio.gather(
                *(one(client.create_only("queues", i, _queue(f"w-{i}"))) for i in ids)
            )
            rows = await asyncio.gather(
                *(one(client.get("queues", i, select=["name"])) for i in ids)
            )
            listed = await client.list("queues", select=["name"], filter="startswith(name,'w-')")
            return {
                "rows": rows,
                "listed": listed,
                "total": client.stats.total,
                "retries": client.stats.retries,
            }

    with in_thread(app) as url:
        result = asyncio.run(go(url))
    assert [r["name"] for r in result["rows"]] == [f"w-{i}" for i in ids]
    assert sorted(r["queueid"] for r in result["listed"]) == sorted(ids)
    # 501 logical requests; about 30% of sends were faults that the client retried
    assert result["total"] == 501 + result["retries"]
    assert 0.2 < result["retries"] / result["total"] < 0.4


def test_retry_after_is_waited_for(tmp_path: Path) -> None:
    config = EmulatorConfig(max_requests=3, window_seconds=2)
    app = EmulatorApp(Store(tmp_path / "org.db"), config)

    async def go(url: str) -> tuple[float, int]:
        async with _client(url) as client:
            for _ in range(3):
                await client.who_am_i()
            started = time.perf_counter()
            await client.who_am_i()  # over the limit: 429 with Retry-After, then success
            return time.perf_counter() - started, client.stats.retries

    with in_thread(app) as url:
        waited, retries = asyncio.run(go(url))
    assert retries == 1
    assert waited >= 1.0  # Retry-After is whole seconds; the window frees after ~2 s


def test_answers_slower_than_the_read_timeout(tmp_path: Path) -> None:
    """A read whose answer comes after the client's read timeout is sent again; a write's is an
    unknown outcome (not sent again), though the write landed."""
    config = EmulatorConfig(fault_rate=0.5, fault_kinds=("slow",), slow_ms=300, seed=3)
    app = EmulatorApp(Store(tmp_path / "org.db"), config)
    ids = [str(uuid.UUID(int=n + 1)) for n in range(6)]
    retry = RetryPolicy(base_delay=0.01, max_delay=0.02, max_attempts=12)

    async def go(url: str) -> tuple[list[str], list[dict[str, Any]]]:
        lost: list[str] = []
        async with _client(url, retry=retry, timeout=0.2) as client:
            for record_id in ids:
                try:
                    await client.create_only("queues", record_id, _queue(f"s-{record_id}"))
                except OutcomeUnknown as unknown:
                    lost.append(str(unknown))
            await asyncio.sleep(0.3)  # the late answers are in; the writes long before
            rows = [await client.get("queues", i, select=["name"]) for i in ids]
        return lost, rows

    with in_thread(app) as url:
        lost, rows = asyncio.run(go(url))
    assert lost  # some answers came too late...
    assert all("timed out" in message for message in lost)
    assert [r["name"] for r in rows] == [f"s-{i}" for i in ids]  # ...yet every write landed


def test_a_five_minute_throttle_window_is_waited_out_and_every_write_lands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Dataverse's limit (6000 requests per 300 s) scaled down to 40: 100 creates in a row need
    three windows. A throttled request waits out its Retry-After (300 s, far past max_elapsed)
    and goes on; the user is told once per wait. Time is simulated."""
    caplog.set_level(logging.WARNING, logger="reconciler.dataverse")
    now = [1000.0]

    def clock() -> float:
        return now[0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)

    config = EmulatorConfig(max_requests=40, window_seconds=300)
    app = EmulatorApp(Store(tmp_path / "org.db"), config, clock=clock)
    retry = RetryPolicy(sleep=sleep, clock=clock, jitter=0.0)
    ids = [str(uuid.UUID(int=n + 1)) for n in range(100)]

    async def go() -> tuple[int, int]:
        async with DataverseClient(
            "http://org.local/api/data/v9.2/",
            auth=StaticToken("t"),
            transport=httpx.ASGITransport(app=app),
            retry=retry,
        ) as client:
            for record_id in ids:
                await client.create_only("queues", record_id, _queue(f"w-{record_id}"))
            rows = await client.list("queues", select=["name"], filter="startswith(name,'w-')")
            return len(rows), client.stats.retries

    try:
        created, retries = asyncio.run(go())
    finally:
        app.store.close()
    assert created == 100
    assert retries == 2  # the 41st and the 81st request waited for the window to free
    assert now[0] == 1600.0
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        lines
        == [
            "the service is throttling requests (429, service protection limits): waiting 5 min "
            "before going on"
        ]
        * 2
    )


# -- secrets -------------------------------------------------------------------------------------
TOKEN_MARKER = "TOKEN-MARKER-7f3a9c"
SECRET_MARKER = "SECRET-MARKER-51d0e2"


def _token_endpoint(issue: bool) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if not issue:
            return httpx.Response(
                401, json={"error": "invalid_client", "error_description": "AADSTS7000215"}
            )
        return httpx.Response(200, json={"access_token": TOKEN_MARKER, "expires_in": 3600})

    return entra(answer)


def test_token_and_client_secret_never_leak(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = EmulatorApp(Store(tmp_path / "org.db"), EmulatorConfig(token=TOKEN_MARKER))
    seen: list[str] = []

    def credentials(issue: bool) -> ClientCredentials:
        provider = ClientCredentials(
            "tenant",
            "client",
            SECRET_MARKER,
            "https://org/.default",
            transport=_token_endpoint(issue),
        )
        seen.append(repr(provider))
        return provider

    def record(error: BaseException) -> None:
        while error is not None:
            seen.extend([str(error), repr(error), repr(error.args)])
            error = error.__cause__ or error.__context__  # type: ignore[assignment]

    async def go(url: str) -> None:
        base = f"{url}/api/data/v9.2/"
        async with DataverseClient(base, auth=credentials(True)) as client:
            seen.append(repr(client))
            await client.who_am_i()  # succeeds with the issued token
            with pytest.raises(NotFound) as missing:
                await client.get("queues", str(uuid.uuid4()))
            record(missing.value)
        async with DataverseClient(base, auth=credentials(False), retry=FAST) as client:
            with pytest.raises(AuthError) as refused:
                await client.who_am_i()
            record(refused.value)
        async with DataverseClient(base, auth=StaticToken(SECRET_MARKER), retry=FAST) as client:
            seen.append(repr(client))
            with pytest.raises(Unauthorized) as unauthorized:
                await client.who_am_i()
            record(unauthorized.value)

    with in_thread(app) as url:
        asyncio.run(go(url))
    seen.extend(r.getMessage() for r in caplog.records)
    seen.append(caplog.text)
    assert len(caplog.records) > 0
    leaks = [text for text in seen if TOKEN_MARKER in text or SECRET_MARKER in text]
    assert leaks == []
