"""Auth, service-protection limits (with an injected clock), latency and injected faults."""

from __future__ import annotations

import asyncio
import time

import pytest

from reconciler.emulator.faults import (
    THROTTLED_CONCURRENCY,
    THROTTLED_REQUESTS,
    THROTTLED_TIME,
    UNAUTHORIZED,
    UNAVAILABLE,
)


# -- auth ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "Token abc", "abc"],
)
@pytest.mark.parametrize(
    ("method", "url"), [("GET", "WhoAmI"), ("GET", "$metadata"), ("POST", "queues")]
)
def test_a_request_without_a_bearer_token_is_401(org, authorization, method, url):
    before = len(org.rows("queues"))

    response = org.request(method, url, json={"name": "x"}, authorization=authorization)

    assert org.error_of(response) == (401, UNAUTHORIZED)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert len(org.rows("queues")) == before


@pytest.mark.parametrize(
    "authorization", ["Bearer t", "Bearer eyJ0eXAiOiJKV1Qi.x.y", "bearer anything"]
)
def test_any_bearer_token_is_accepted_by_default(org, authorization):
    assert org.get("WhoAmI", authorization=authorization).status_code == 200


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        ("Bearer T", 200),
        ("bearer T", 200),
        ("Bearer t", 401),
        ("Bearer TT", 401),
        ("Bearer other", 401),
        (None, 401),
    ],
)
def test_a_configured_token_is_the_only_one_accepted(make_org, authorization, status):
    org = make_org(token="T")

    response = org.get("WhoAmI", authorization=authorization)

    assert response.status_code == status
    if status == 401:
        assert org.error_of(response) == (401, UNAUTHORIZED)
        assert "WWW-Authenticate" in response.headers


# -- service protection --------------------------------------------------------------------
def test_the_request_after_the_limit_is_429_until_the_window_frees(make_org, clock):
    org = make_org(clock=clock, max_requests=3, window_seconds=60)
    statuses = []
    for at in (1000.0, 1010.0, 1020.0):
        clock.now = at
        statuses.append(org.get("WhoAmI").status_code)
    assert statuses == [200, 200, 200]

    clock.now = 1030.0
    throttled = org.get("WhoAmI")
    assert org.error_of(throttled) == (429, THROTTLED_REQUESTS)
    assert throttled.headers["Retry-After"] == "30"  # the 1000.0 request leaves at 1060.0

    clock.now = 1059.5
    almost = org.get("WhoAmI")
    assert org.error_of(almost) == (429, THROTTLED_REQUESTS)
    assert almost.headers["Retry-After"] == "1"

    clock.now = 1060.0
    assert org.get("WhoAmI").status_code == 200
    again = org.get("WhoAmI")
    assert org.error_of(again) == (429, THROTTLED_REQUESTS)
    assert again.headers["Retry-After"] == "10"  # the 1010.0 request leaves at 1070.0

    clock.now = 1200.0
    assert [org.get("WhoAmI").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_a_throttled_write_is_not_applied(make_org, clock):
    org = make_org(clock=clock, max_requests=2, window_seconds=300)
    record_id = org.new_id()
    org.get("WhoAmI")
    org.get("WhoAmI")

    response = org.post("queues", {"queueid": record_id, "name": "Throttled"})

    assert org.error_of(response) == (429, THROTTLED_REQUESTS)
    clock.now += 300
    assert org.missing("queues", record_id)


def test_combined_execution_time_over_the_limit_is_429(make_org, clock):
    clock.step = 3.0  # every clock reading is 3 s later: each request "runs" 3 s
    org = make_org(clock=clock, max_execution_seconds=5, window_seconds=300)

    first, second, third = org.get("WhoAmI"), org.get("WhoAmI"), org.get("WhoAmI")

    assert (first.status_code, second.status_code) == (200, 200)
    assert org.error_of(third) == (429, THROTTLED_TIME)
    # readings: 1000 admit, 1003 start, 1006 done; 1009, 1012, 1015; third admitted at 1018:
    # the first execution (recorded at 1006) leaves the window at 1306.
    assert third.headers["Retry-After"] == "288"


def test_more_concurrent_requests_than_allowed_are_429(make_org):
    org = make_org(max_concurrent=2, latency_ms=100)

    async def burst():
        async with org.client() as client:
            return await asyncio.gather(*(client.get("WhoAmI") for _ in range(5)))

    answers = asyncio.run(burst())

    assert sorted(a.status_code for a in answers) == [200, 200, 429, 429, 429]
    for answer in answers:
        if answer.status_code == 429:
            assert org.error_of(answer) == (429, THROTTLED_CONCURRENCY)
            assert answer.headers["Retry-After"] == "1"
    assert org.get("WhoAmI").status_code == 200  # the slots are free again


# -- latency -------------------------------------------------------------------------------
def test_latency_delays_every_answer(make_org):
    org = make_org(latency_ms=60)

    for call in (lambda: org.get("WhoAmI"), lambda: org.post("queues", {"name": "Slow"})):
        started = time.perf_counter()
        response = call()
        elapsed = time.perf_counter() - started
        assert response.status_code in (200, 204)
        assert elapsed >= 0.06


# -- injected faults -----------------------------------------------------------------------
def statuses(org, count: int) -> list[int]:
    async def many():
        async with org.client() as client:
            return [(await client.get("WhoAmI")) for _ in range(count)]

    answers = asyncio.run(many())
    for answer in answers:
        if answer.status_code == 429:
            assert org.error_of(answer) == (429, THROTTLED_REQUESTS)
            assert answer.headers["Retry-After"] == "1"
        elif answer.status_code == 503:
            assert org.error_of(answer) == (503, UNAVAILABLE)
        else:
            assert answer.status_code == 200
    return [a.status_code for a in answers]


def test_fault_rate_answers_about_that_fraction_with_429_or_503(make_org):
    got = statuses(make_org(fault_rate=0.3, seed=11), 400)

    faults = [s for s in got if s != 200]
    assert 0.2 * 400 <= len(faults) <= 0.4 * 400
    assert {429, 503} <= set(faults)


def test_faults_are_reproducible_for_the_same_seed(make_org):
    first = statuses(make_org(fault_rate=0.4, seed=5), 60)
    second = statuses(make_org(fault_rate=0.4, seed=5), 60)
    other = statuses(make_org(fault_rate=0.4, seed=6), 60)

    assert first == second
    assert first != other
    assert set(first) == {200, 429, 503}


def test_no_faults_at_rate_zero(make_org):
    assert set(statuses(make_org(seed=5), 50)) == {200}


def test_a_faulted_write_is_not_applied(make_org, tmp_path):
    path = tmp_path / "faults.db"
    faulty = make_org(path, fault_rate=0.5, seed=3)
    ids = [faulty.new_id() for _ in range(30)]
    answers = {i: faulty.post("queues", {"queueid": i, "name": "Maybe"}).status_code for i in ids}
    faulty.app.store.close()

    clean = make_org(path)

    assert set(answers.values()) == {204, 429, 503}
    for record_id, status in answers.items():
        assert clean.missing("queues", record_id) is (status != 204)
