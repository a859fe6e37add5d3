"""Shared fixtures for the emulator protocol tests: raw httpx against the ASGI app, in-process.

Tests are plain functions; each request runs in its own ``asyncio.run`` through
``httpx.ASGITransport``. Nothing here uses a reconciler client: the emulator is driven exactly
as any Dataverse tool would drive it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator import EmulatorApp, EmulatorConfig
from reconciler.emulator.store import Store

BASE = "http://org.local/api/data/v9.2/"
ENTITY_ID = re.compile(r"^http://org\.local/api/data/v9\.2/(?P<set>\w+)\((?P<id>[0-9a-f-]{36})\)$")
MESSAGING, RECORD, VOICE = 192350000, 192350001, 192350002
FACEBOOK, PUSH, PICK = 192330000, 192350000, 192350001


class Org:
    """One emulated org (an ``EmulatorApp``) and a synchronous raw-HTTP view of it."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app

    def client(self, authorization: str | None = "Bearer t") -> httpx.AsyncClient:
        headers = {"Authorization": authorization} if authorization is not None else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=BASE, headers=headers
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        authorization: str | None = "Bearer t",
        **kwargs: Any,
    ) -> httpx.Response:
        async def go() -> httpx.Response:
            async with self.client(authorization) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(go())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, json=body, **kwargs)

    def patch(self, url: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, json=body, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def create(self, entity_set: str, body: dict[str, Any]) -> str:
        """POST a record that must be accepted; its id, from ``OData-EntityId``."""
        response = self.post(entity_set, body)
        assert response.status_code == 204, response.text
        found_set, record_id = self.entity_id(response)
        assert found_set == entity_set
        return record_id

    def read(self, entity_set: str, record_id: str) -> dict[str, Any]:
        """GET a record that must exist."""
        response = self.get(f"{entity_set}({record_id})")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def rows(self, entity_set: str, **params: str) -> list[dict[str, Any]]:
        """One page of rows (the whole answer must fit in one page)."""
        response = self.get(entity_set, params=params)
        assert response.status_code == 200, response.text
        assert "@odata.nextLink" not in response.json()
        rows: list[dict[str, Any]] = response.json()["value"]
        return rows

    @staticmethod
    def error_of(response: httpx.Response) -> tuple[int, str]:
        """(status, Dataverse error code) of an error answer, checking the body's shape."""
        assert response.headers["Content-Type"].startswith("application/json"), response.headers
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message"}, body
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["message"]
        return response.status_code, body["error"]["code"]

    @staticmethod
    def entity_id(response: httpx.Response) -> tuple[str, str]:
        """(entity set, id) named by an absolute ``OData-EntityId`` header."""
        match = ENTITY_ID.match(response.headers["OData-EntityId"])
        assert match is not None, response.headers["OData-EntityId"]
        return match["set"], match["id"]

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    def missing(self, entity_set: str, record_id: str) -> bool:
        response = self.get(f"{entity_set}({record_id})")
        assert response.status_code in (200, 404), response.text
        return response.status_code == 404

    # -- common records ------------------------------------------------------------------
    def queue(self, name: str = "Support", **extra: Any) -> str:
        body = {"name": name, "msdyn_queuetype": MESSAGING, "msdyn_isomnichannelqueue": True}
        return self.create("queues", {**body, **extra})

    def workstream(self, name: str = "Facebook support", queue: str | None = None) -> str:
        body: dict[str, Any] = {
            "msdyn_name": name,
            "msdyn_streamsource": FACEBOOK,
            "msdyn_workdistributionmode": PUSH,
        }
        if queue is not None:
            body["msdyn_defaultqueue@odata.bind"] = f"/queues({queue})"
        return self.create("msdyn_liveworkstreams", body)


class FakeClock:
    """A monotonic clock the test moves; ``step`` advances it on every reading."""

    def __init__(self, now: float = 1000.0, step: float = 0.0) -> None:
        self.now = now
        self.step = step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


MakeOrg = Callable[..., Org]


@pytest.fixture
def make_org() -> Iterator[MakeOrg]:
    """``make_org(path=":memory:", clock=None, **config)``: a new emulated org."""
    stores: list[Store] = []

    def make(
        path: str | Path = ":memory:",
        *,
        clock: Callable[[], float] | None = None,
        **config: Any,
    ) -> Org:
        store = Store(path)
        stores.append(store)
        options: dict[str, Any] = {} if clock is None else {"clock": clock}
        return Org(EmulatorApp(store, EmulatorConfig(**config), **options))

    yield make
    for store in stores:
        store.close()


@pytest.fixture(scope="session")
def wrap() -> Callable[[EmulatorApp], Org]:
    """``wrap(app)``: the raw-HTTP helper for an app a test built itself."""
    return Org


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def org(make_org: MakeOrg) -> Org:
    """A fresh in-memory org with Dataverse's default limits."""
    return make_org()
