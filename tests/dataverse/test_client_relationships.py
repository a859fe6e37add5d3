"""DataverseClient.associate, .disassociate and $expand against the real emulator, in-process:
the requests the client writes, and what it makes of the answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from reconciler.dataverse import (
    AlreadyExists,
    BadRequest,
    BatchRequest,
    ChangeSet,
    DataverseClient,
    NotFound,
    RetryPolicy,
    StaticToken,
)
from reconciler.emulator import EmulatorApp
from reconciler.emulator.store import Store

BASE = "http://org.example/api/data/v9.2/"
NAV = "queuemembership_association"
MISSING = "00000000-0000-0000-0000-00000000abcd"


class Recording(httpx.AsyncBaseTransport):
    """The emulator's ASGI transport, keeping every request sent through it."""

    def __init__(self, app: EmulatorApp) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


Scenario = Callable[[DataverseClient, Recording], Awaitable[None]]


def run(scenario: Scenario) -> None:
    store = Store(":memory:")
    transport = Recording(EmulatorApp(store))

    async def go() -> None:
        async with DataverseClient(
            BASE, auth=StaticToken("t"), transport=transport, retry=RetryPolicy.none()
        ) as client:
            await scenario(client, transport)

    try:
        asyncio.run(go())
    finally:
        store.close()


async def setup(client: DataverseClient) -> tuple[str, str, str]:
    """A queue and two users, created over HTTP."""
    queue = await client.create("queues", {"name": "Support", "msdyn_queuetype": 192350000})
    ada = await client.create(
        "systemusers", {"domainname": "ada@contoso.example", "firstname": "Ada", "lastname": "L"}
    )
    alan = await client.create(
        "systemusers", {"domainname": "alan@contoso.example", "firstname": "Alan", "lastname": "T"}
    )
    return queue, ada, alan


async def member_ids(client: DataverseClient, queue: str) -> list[str]:
    rows = await client.list(
        "queues", filter=f"queueid eq {queue}", expand=[f"{NAV}($select=systemuserid)"]
    )
    assert len(rows) == 1
    return [m["systemuserid"] for m in rows[0][NAV]]


def test_associate_posts_the_absolute_url_of_the_other_row() -> None:
    async def scenario(client: DataverseClient, transport: Recording) -> None:
        queue, ada, alan = await setup(client)
        client.stats.reset()

        await client.associate("queues", queue, NAV, "systemusers", ada)
        await client.associate("systemusers", alan, NAV, "queues", queue)

        first = transport.requests[-2]
        assert first.method == "POST"
        assert str(first.url) == f"{BASE}queues({queue})/{NAV}/$ref"
        assert first.headers["content-type"] == "application/json"
        assert json.loads(first.content) == {"@odata.id": f"{BASE}systemusers({ada})"}
        assert json.loads(transport.requests[-1].content) == {"@odata.id": f"{BASE}queues({queue})"}
        assert client.stats.snapshot() == {"POST queues": 1, "POST systemusers": 1}
        assert await member_ids(client, queue) == sorted([ada, alan])

    run(scenario)


def test_a_repeated_associate_is_already_exists() -> None:
    async def scenario(client: DataverseClient, transport: Recording) -> None:
        queue, ada, _ = await setup(client)
        await client.associate("queues", queue, NAV, "systemusers", ada)

        with pytest.raises(AlreadyExists) as info:
            await client.associate("systemusers", ada, NAV, "queues", queue)

        assert (info.value.status, info.value.code) == (412, "0x80040237")
        assert await member_ids(client, queue) == [ada]

    run(scenario)


def test_associate_and_disassociate_with_missing_rows_are_not_found() -> None:
    async def scenario(client: DataverseClient, transport: Recording) -> None:
        queue, ada, _ = await setup(client)

        with pytest.raises(NotFound):
            await client.associate("queues", queue, NAV, "systemusers", MISSING)
        with pytest.raises(NotFound):
            await client.associate("queues", MISSING, NAV, "systemusers", ada)
        with pytest.raises(NotFound):
            await client.disassociate("queues", queue, NAV, MISSING)
        with pytest.raises(NotFound):
            await client.disassociate("systemusers", MISSING, NAV, queue)

    run(scenario)


def test_disassociate_deletes_the_ref_of_the_other_row() -> None:
    async def scenario(client: DataverseClient, transport: Recording) -> None:
        queue, ada, alan = await setup(client)
        for person in (ada, alan):
            await client.associate("queues", queue, NAV, "systemusers", person)
        client.stats.reset()

        await client.disassociate("queues", queue, NAV, ada)
        await client.disassociate("systemusers", alan, NAV, queue)
        await client.disassociate("queues", queue, NAV, ada)  # no longer associated: no error

        sent = transport.requests[-3]
        assert (sent.method, str(sent.url)) == (
            "DELETE",
            f"{BASE}queues({queue})/{NAV}({ada})/$ref",
        )
        assert sent.content == b""
        assert client.stats.snapshot() == {"DELETE queues": 2, "DELETE systemusers": 1}
        assert await member_ids(client, queue) == []

    run(scenario)


def test_list_with_expand_sends_if_none_match_null_and_keeps_expand_across_pages() -> None:
    async def scenario(client: DataverseClient, transport: Recording) -> None:
        _, ada, alan = await setup(client)
        queues = [await client.create("queues", {"name": f"Paged {n}"}) for n in range(3)]
        for queue in queues:
            await client.associate("queues", queue, NAV, "systemusers", ada)
        await client.associate("queues", queues[0], NAV, "systemusers", alan)
        client.stats.reset()
        sent = len(transport.requests)

        rows = await client.list(
            "queues",
            select=["name"],
            filter="startswith(name,'Paged')",
            expand=[f"{NAV}($select=domainname,fullname)"],
            page_size=1,
        )

        reads = transport.requests[sent:]
        assert len(reads) == 3
        assert client.stats.snapshot() == {"GET queues": 3}
        for request in reads:
            assert request.headers["if-none-match"] == "null"
            assert request.url.params["$expand"] == f"{NAV}($select=domainname,fullname)"
        assert {r["queueid"] for r in rows} == set(queues)
        by_queue = {r["queueid"]: r[NAV] for r in rows}
        expected = [name for _, name in sorted([(ada, "Ada L"), (alan, "Alan T")])]
        assert [m["fullname"] for m in by_queue[queues[0]]] == expected  # by systemuserid
        assert [m["domainname"] for m in by_queue[queues[1]]] == ["ada@contoso.example"]

    run(scenario)


def test_list_without_expand_sends_no_if_none_match() -> None:
    async def scenario(client: DataverseClient, transport: Recording) -> None:
        await client.list("queues", select=["name"])

        assert "if-none-match" not in transport.requests[-1].headers
        assert "$expand" not in transport.requests[-1].url.params

    run(scenario)


def test_several_expand_items_are_joined_with_commas() -> None:
    async def scenario(client: DataverseClient, transport: Recording) -> None:
        with pytest.raises(BadRequest) as info:  # the emulator refuses a property twice
            await client.list("queues", expand=[NAV, f"{NAV}($select=fullname)"])

        assert transport.requests[-1].url.params["$expand"] == f"{NAV},{NAV}($select=fullname)"
        assert info.value.code == "0x80060888"

    run(scenario)


def test_nested_expand_under_a_many_to_many_property_is_refused() -> None:
    async def scenario(client: DataverseClient, transport: Recording) -> None:
        with pytest.raises(BadRequest) as info:
            await client.list("queues", expand=[f"{NAV}($select=fullname;$expand=createdby)"])

        assert info.value.code == "0x80060888"
        assert "Only many-to-one relationships are supported" in info.value.message

    run(scenario)


def test_refs_in_a_batch_change_set() -> None:
    async def scenario(client: DataverseClient, transport: Recording) -> None:
        queue, ada, alan = await setup(client)

        def ref(person: str) -> BatchRequest:
            body: dict[str, Any] = {"@odata.id": f"{BASE}systemusers({person})"}
            return BatchRequest("POST", f"queues({queue})/{NAV}/$ref", body)

        answers = await client.batch([ChangeSet([ref(ada), ref(alan)])])
        assert [a.status for a in answers] == [204, 204]
        assert await member_ids(client, queue) == sorted([ada, alan])

        failed = await client.batch([ChangeSet([ref(ada), ref(ada)])])
        assert [a.status for a in failed] == [412]
        assert isinstance(failed[0].error(), AlreadyExists)

        removed = await client.batch(
            [ChangeSet([BatchRequest("DELETE", f"queues({queue})/{NAV}({ada})/$ref")])]
        )
        assert [a.status for a in removed] == [204]
        assert await member_ids(client, queue) == [alan]

    run(scenario)


def test_deleting_a_queue_removes_its_members() -> None:
    async def scenario(client: DataverseClient, transport: Recording) -> None:
        queue, ada, _ = await setup(client)
        await client.associate("queues", queue, NAV, "systemusers", ada)

        await client.delete("queues", queue)

        rows = await client.list(
            "systemusers", filter=f"systemuserid eq {ada}", expand=[f"{NAV}($select=name)"]
        )
        assert rows[0][NAV] == []

    run(scenario)
