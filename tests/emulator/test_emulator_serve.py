"""The emulator over a real loopback socket: in-process uvicorn, and `reconciler emulator serve`."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from reconciler.emulator import EmulatorApp
from reconciler.emulator.server import bound_socket, make_server
from reconciler.emulator.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared helpers
from served import TIMEOUT, Served


def test_whoami_create_and_list_over_a_loopback_socket(tmp_path):
    app = EmulatorApp(Store(tmp_path / "loopback.db"))

    async def scenario() -> tuple[list[int], dict, list[dict]]:
        with bound_socket(0) as sock:
            host, port = sock.getsockname()[:2]
            server = make_server(app)
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                deadline = time.monotonic() + TIMEOUT
                while not server.started:
                    assert time.monotonic() < deadline, "the server did not start"
                    assert not serving.done(), serving
                    await asyncio.sleep(0.01)
                base = f"http://{host}:{port}/api/data/v9.2/"
                async with httpx.AsyncClient(
                    base_url=base,
                    headers={"Authorization": "Bearer t"},
                    timeout=TIMEOUT,
                    trust_env=False,
                ) as client:
                    who = await client.get("WhoAmI")
                    created = await client.post(
                        "queues", json={"name": "Over the wire", "msdyn_queuetype": 192350000}
                    )
                    listed = await client.get(
                        "queues", params={"$filter": "name eq 'Over the wire'", "$select": "name"}
                    )
                    unauthorised = await client.get("WhoAmI", headers={"Authorization": ""})
            finally:
                server.should_exit = True
                await asyncio.wait_for(serving, TIMEOUT)
        statuses = [who.status_code, created.status_code, listed.status_code]
        statuses.append(unauthorised.status_code)
        assert created.headers["OData-EntityId"].startswith(base)
        assert listed.json()["@odata.context"] == f"{base}$metadata#queues"
        return statuses, who.json(), listed.json()["value"]

    statuses, who, rows = asyncio.run(scenario())

    assert statuses == [200, 204, 200, 401]
    assert set(who) >= {"UserId", "BusinessUnitId", "OrganizationId"}
    assert [r["name"] for r in rows] == ["Over the wire"]


@pytest.fixture
def served(tmp_path):
    started: list[Served] = []

    def start(*extra: str) -> Served:
        started.append(Served(tmp_path / "served.db", *extra))
        return started[-1]

    yield start
    for process in started:
        process.kill()


def test_serve_announces_its_url_answers_and_keeps_its_state(served, tmp_path, make_org):
    emulator = served("--token", "T")

    who = emulator.get("WhoAmI", token="T")
    refused = emulator.get("WhoAmI", token="other")
    created = httpx.post(
        f"{emulator.url}/api/data/v9.2/queues",
        json={"name": "Served"},
        headers={"Authorization": "Bearer T"},
        timeout=TIMEOUT,
        trust_env=False,
    )
    emulator.stop()  # fails the test if the process does not end

    assert f"(database {tmp_path / 'served.db'})" in emulator.first_line
    assert who.status_code == 200
    assert refused.status_code == 401
    assert created.status_code == 204
    record_id = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    reopened = make_org(tmp_path / "served.db")
    assert reopened.read("queues", record_id)["name"] == "Served"
    again = reopened.get("WhoAmI").json()
    for key in ("UserId", "BusinessUnitId", "OrganizationId"):
        assert again[key] == who.json()[key]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_stops_cleanly_on_a_signal(served, sig):
    emulator = served()
    assert emulator.get("WhoAmI").status_code == 200

    code, out, err = emulator.stop(sig)

    assert (code, err) == (0, "")
    assert out.strip().endswith("Emulator stopped.")


def test_deleting_a_fallback_queue_over_http_clears_the_workstreams_link(served):
    """The workstream's link to its fallback queue is Delete: RemoveLink (msdyn_liveworkstream
    table reference): the delete answers 204 and the link is cleared, not refused."""
    emulator = served()
    base = f"{emulator.url}/api/data/v9.2/"

    def send(method: str, path: str, body: dict | None = None) -> httpx.Response:
        return httpx.request(
            method,
            base + path,
            json=body,
            headers=emulator.headers(),
            timeout=TIMEOUT,
            trust_env=False,
        )

    queue = send("POST", "queues", {"name": "Fallback", "msdyn_queuetype": 192350000})
    queue_id = queue.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    stream = send(
        "POST",
        "msdyn_liveworkstreams",
        {"msdyn_name": "Chat", "msdyn_defaultqueue@odata.bind": f"/queues({queue_id})"},
    )
    stream_id = stream.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    before = emulator.get(f"msdyn_liveworkstreams({stream_id})").json()

    deleted = send("DELETE", f"queues({queue_id})")

    after = emulator.get(f"msdyn_liveworkstreams({stream_id})").json()
    assert (queue.status_code, stream.status_code, deleted.status_code) == (204, 204, 204)
    assert before["_msdyn_defaultqueue_value"] == queue_id
    assert after["_msdyn_defaultqueue_value"] is None
    assert emulator.get(f"queues({queue_id})").status_code == 404
