"""``--fault-kinds``: every injected fault, in-process (``httpx.ASGITransport``), over a real
loopback socket (uvicorn in a thread: drops must be real transport failures), and once through
``reconciler emulator serve``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from served import in_thread

from reconciler.cli import main
from reconciler.dataverse.tables import BY_ENTITY_SET
from reconciler.emulator import EmulatorApp, EmulatorConfig
from reconciler.emulator.injected import HUGE_BODY, KINDS, bad_answer, parse_kinds
from reconciler.emulator.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared helpers
from served import Served

MESSAGING = 192350000
QUEUES = BY_ENTITY_SET["queues"]


def queue(name: str, queue_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "msdyn_queuetype": MESSAGING}
    if queue_id is not None:
        body["queueid"] = queue_id
    return body


def faulty(make_org, kinds: str, **config: Any):
    config.setdefault("fault_rate", 1.0)
    config.setdefault("seed", 1)
    return make_org(fault_kinds=parse_kinds(kinds), **config)


def many(org, method: str, url: str, count: int, **kwargs: Any) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with org.client() as client:
            return [await client.request(method, url, **kwargs) for _ in range(count)]

    return asyncio.run(go())


# --- configuration ----------------------------------------------------------------------------


def test_kinds_parse_and_unknown_ones_are_refused():
    assert parse_kinds("429, drop,429,ODD-500") == ("429", "drop", "odd-500")
    assert parse_kinds(",".join(KINDS)) == KINDS
    with pytest.raises(ValueError, match="unknown fault kind 'drip'"):
        parse_kinds("429,drip")
    with pytest.raises(ValueError, match="unknown fault kind ''"):
        parse_kinds("")
    with pytest.raises(ValueError, match="at least one"):
        parse_kinds([])
    with pytest.raises(ValueError, match="fault_on"):
        EmulatorConfig(fault_on="deletes")
    with pytest.raises(ValueError, match="not a bad answer"):
        bad_answer("drop", None, random.Random(1), "http://org.local/api/data/v9.2/")


def test_config_repr_shows_the_faults_and_hides_the_token():
    config = EmulatorConfig(
        token="TOKEN-MARKER", fault_rate=0.2, fault_kinds=("drop", "slow"), slow_ms=50, seed=4
    )
    text = repr(config)
    assert "TOKEN-MARKER" not in text
    assert "token=set" in text
    assert "fault_kinds=drop,slow" in text
    assert "slow_ms=50" in text


def test_default_kinds_draw_exactly_as_before(make_org):
    """429 or 503, from the same draws of the seeded generator as before kinds existed."""
    rng = random.Random(5)
    expected = []
    for _ in range(60):
        if rng.random() < 0.4:
            expected.append(429 if rng.random() < 0.5 else 503)
        else:
            expected.append(200)
    got = [a.status_code for a in many(make_org(fault_rate=0.4, seed=5), "GET", "WhoAmI", 60)]
    assert got == expected


def test_kinds_are_chosen_evenly_and_reproducibly(make_org):
    kinds = "429,503,truncated,html,content-type,odd-500"

    def run() -> list[tuple[int, str]]:
        answers = many(faulty(make_org, kinds, fault_rate=0.5, seed=9), "GET", "WhoAmI", 120)
        return [(a.status_code, a.headers.get("content-type", "")) for a in answers]

    first, second = run(), run()
    assert first == second
    assert {s for s, _ in first} >= {200, 429, 503, 500}


def test_faults_only_on_writes_or_only_on_reads(make_org):
    writes = faulty(make_org, "503", fault_on="writes")
    assert writes.get("WhoAmI").status_code == 200
    assert writes.post("queues", queue("Never")).status_code == 503
    reads = faulty(make_org, "503", fault_on="reads")
    assert reads.get("WhoAmI").status_code == 503
    assert reads.post("queues", queue("Made")).status_code == 204


# --- bad answers, in-process ------------------------------------------------------------------


def test_truncated_is_a_200_whose_json_is_cut_in_the_middle(make_org, tmp_path):
    path = tmp_path / "org.db"
    org = faulty(make_org, "truncated", path=path, fault_on="reads")
    record = org.new_id()
    assert org.post("queues", queue("Cut", record)).status_code == 204  # writes go through
    whole = make_org(path).get(f"queues({record})").content
    cut = org.get(f"queues({record})")
    assert cut.status_code == 200
    assert cut.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert 0 < len(cut.content) < len(whole)
    assert json.dumps(json.loads(whole)).encode().startswith(cut.content)


def test_a_bad_answer_to_a_write_may_or_may_not_have_been_applied(make_org, tmp_path):
    path = tmp_path / "org.db"
    org = faulty(make_org, "truncated,html,content-type,odd-500", path=path, seed=3)
    ids = [org.new_id() for _ in range(40)]
    answers = {i: org.post("queues", queue(f"Maybe {i}", i)) for i in ids}
    org.app.store.close()
    check = make_org(path)
    landed = {i for i in ids if not check.missing("queues", i)}
    assert 0 < len(landed) < len(ids)  # both happen
    statuses = Counter(a.status_code for a in answers.values())
    assert set(statuses) <= {200, 204, 500, 502}
    for answer in answers.values():  # never the clean answer of a create
        assert not (answer.status_code == 204 and not answer.content)


def test_html_is_a_gateway_or_server_page_on_500_or_502(make_org):
    answers = many(faulty(make_org, "html"), "GET", "WhoAmI", 30)
    assert {a.status_code for a in answers} == {500, 502}
    for answer in answers:
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert b"<title>" in answer.content
        assert b"<html" in answer.content


def test_content_type_labels_the_real_json_as_text(make_org):
    org = faulty(make_org, "content-type")
    answers = many(org, "GET", "WhoAmI", 20)
    types = {a.headers["content-type"] for a in answers}
    assert types == {"text/plain; charset=utf-8", "text/html; charset=utf-8"}
    for answer in answers:
        assert answer.status_code == 200
        assert set(answer.json()) >= {"UserId", "BusinessUnitId", "OrganizationId"}
    # an error answer keeps its status and document, under the wrong label
    missing = org.get(f"queues({org.new_id()})")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/")
    assert missing.json()["error"]["code"] == "0x80040217"


def test_odd_500_is_empty_text_foreign_json_or_huge(make_org):
    answers = many(faulty(make_org, "odd-500"), "GET", "WhoAmI", 40)
    assert {a.status_code for a in answers} == {500}
    shapes = set()
    for answer in answers:
        if not answer.content:
            shapes.add("empty")
        elif len(answer.content) > HUGE_BODY:
            shapes.add("huge")
        elif answer.headers.get("content-type", "").startswith("application/json"):
            assert "error" not in answer.json()
            shapes.add("json")
        else:
            assert b"\x1b" in answer.content  # hostile bytes for the client to make safe
            shapes.add("text")
    assert shapes == {"empty", "text", "json", "huge"}


def test_slow_answers_late_and_the_answer_is_the_real_one(make_org, tmp_path):
    path = tmp_path / "org.db"
    org = faulty(make_org, "slow", path=path, slow_ms=150)
    record = org.new_id()
    started = time.perf_counter()
    answer = org.post("queues", queue("Slow", record))
    assert time.perf_counter() - started >= 0.15
    assert answer.status_code == 204
    assert org.entity_id(answer) == ("queues", record)
    assert not make_org(path).missing("queues", record)


def test_drop_in_process_raises_what_the_client_would_see(make_org, tmp_path):
    path = tmp_path / "org.db"
    before = faulty(make_org, "drop", path=path)
    after = faulty(make_org, "drop-after", path=path)
    dropped, landed = before.new_id(), after.new_id()
    for org, record in ((before, dropped), (after, landed)):
        with pytest.raises(httpx.RemoteProtocolError):
            org.post("queues", queue("Dropped", record))
    check = make_org(path)
    assert check.missing("queues", dropped)
    assert not check.missing("queues", landed)


# --- over a real socket -----------------------------------------------------------------------


def over_socket(base: str, calls: list[tuple[str, str, Any]], timeout: float = 10.0) -> list[Any]:
    """Each call's response, or the exception it raised."""

    async def go() -> list[Any]:
        out: list[Any] = []
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": "Bearer t"}, timeout=timeout, trust_env=False
        ) as client:
            for method, url, body in calls:
                try:
                    out.append(await client.request(method, url, json=body))
                except httpx.HTTPError as exc:
                    out.append(exc)
        return out

    return asyncio.run(go())


def test_drops_are_real_transport_failures_over_a_socket(tmp_path):
    path = tmp_path / "org.db"
    ids = [str(n).rjust(12, "0") for n in range(1, 25)]
    records = [f"00000000-0000-4000-8000-{i}" for i in ids]
    config = EmulatorConfig(fault_rate=0.5, fault_kinds=("drop", "drop-after"), seed=2)
    app = EmulatorApp(Store(path), config)
    with in_thread(app) as org:
        base = f"{org}/api/data/v9.2/"
        answers = over_socket(base, [("POST", "queues", queue(f"Q{r}", r)) for r in records])
    assert app.connections == {}  # every connection, dropped or closed, forgotten
    failures = [a for a in answers if isinstance(a, Exception)]
    assert failures, answers
    for failure in failures:
        assert isinstance(failure, httpx.RemoteProtocolError | httpx.ReadError), repr(failure)
    assert any(isinstance(a, httpx.Response) and a.status_code == 204 for a in answers)
    with contextlib.closing(Store(path)) as store:
        present = {r for r in records if store.exists(QUEUES, r)}
    answered = {r for r, a in zip(records, answers, strict=True) if isinstance(a, httpx.Response)}
    lost = {r for r, a in zip(records, answers, strict=True) if isinstance(a, Exception)}
    assert answered <= present
    assert lost & present  # drop-after: landed
    assert lost - present  # drop: never written


def test_a_slow_answer_outlasts_the_client_read_timeout_and_the_write_lands(tmp_path):
    path = tmp_path / "org.db"
    record = "00000000-0000-4000-8000-00000000abcd"
    app = EmulatorApp(
        Store(path), EmulatorConfig(fault_rate=1.0, fault_kinds=("slow",), slow_ms=600)
    )
    with in_thread(app) as org:
        base = f"{org}/api/data/v9.2/"
        (timed_out,) = over_socket(base, [("POST", "queues", queue("Late", record))], timeout=0.2)
        time.sleep(0.6)  # the answer would have come by now
    assert isinstance(timed_out, httpx.ReadTimeout)
    with contextlib.closing(Store(path)) as store:
        assert store.exists(QUEUES, record)


def test_serve_flags_inject_the_chosen_kinds(tmp_path):
    flags = ("--fault-rate", "1", "--fault-kinds", "html,drop", "--seed", "4", "-v")
    with Served(tmp_path / "org.db", *flags) as emulator:
        outcomes: list[Any] = []
        for _ in range(12):
            try:
                outcomes.append(emulator.get("WhoAmI").status_code)
            except httpx.TransportError as exc:
                outcomes.append(type(exc).__name__)
        _, _, log = emulator.stop()
    assert {o for o in outcomes if isinstance(o, int)} <= {500, 502}
    assert any(isinstance(o, int) for o in outcomes)
    assert {o for o in outcomes if isinstance(o, str)} <= {"RemoteProtocolError", "ReadError"}
    assert any(isinstance(o, str) for o in outcomes)
    assert " -> dropped " in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--fault-kinds", "429,drip"], "error: --fault-kinds: unknown fault kind 'drip'"),
        (["--fault-rate", "1.5"], "error: --fault-rate must be between 0 and 1"),
        (["--slow-ms", "-1"], "error: --slow-ms and --fault-retry-after must be >= 0"),
        (["--fault-on", "deletes"], "error: argument --fault-on: invalid choice: 'deletes'"),
    ],
)
def test_serve_refuses_bad_fault_flags(flags, message, capsys, tmp_path):
    code = main(["emulator", "serve", "--db", str(tmp_path / "org.db"), *flags])
    assert code == 1
    assert capsys.readouterr().err.startswith(message)
