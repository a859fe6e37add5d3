"""``max_in_flight``: the client never has more requests on the wire than it was given."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from reconciler.dataverse import DataverseClient, StaticToken


async def _peak(max_in_flight: int | None, requests: int) -> int:
    active = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return httpx.Response(200, json={"value": []})

    client = DataverseClient(
        "https://org.example/api/data/v9.2/",
        auth=StaticToken("t"),
        transport=httpx.MockTransport(handler),
        max_in_flight=max_in_flight,
    )
    async with client:
        await asyncio.gather(*(client.list("queues") for _ in range(requests)))
    return peak


@pytest.mark.parametrize("limit", [1, 3])
def test_requests_in_flight_never_exceed_the_limit(limit):
    assert asyncio.run(_peak(limit, 12)) == limit


def test_without_a_limit_requests_run_together():
    assert asyncio.run(_peak(None, 12)) == 12
