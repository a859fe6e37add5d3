"""RetryPolicy: what is retried, how long it waits, when it gives up; stats count every send."""

import asyncio
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconciler.dataverse import (
    BadRequest,
    DataverseClient,
    DataverseError,
    NotFound,
    OutcomeUnknown,
    PreconditionFailed,
    RetryPolicy,
    ServerError,
    StaticToken,
    Throttled,
    TransportError,
)
from reconciler.dataverse.errors import parse_retry_after

BASE = "https://contoso.crm4.dynamics.com/api/data/v9.2/"
ROW = {"queueid": "1", "name": "q"}
Answer = httpx.Response | Exception


class FakeTime:
    """A clock that only the recorded sleeps move."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(time: FakeTime, **kwargs: Any) -> RetryPolicy:
    kwargs.setdefault("jitter", 0.0)
    return RetryPolicy(sleep=time.sleep, clock=time.clock, **kwargs)


class Script:
    """A handler answering (or failing) from a list; the last answer repeats."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def run(
    script: Script, op: Callable[[DataverseClient], Any], retry: RetryPolicy
) -> tuple[Any, DataverseClient]:
    client = DataverseClient(
        BASE, auth=StaticToken("t"), transport=httpx.MockTransport(script), retry=retry
    )

    async def scenario() -> Any:
        async with client:
            return await op(client)

    return asyncio.run(scenario()), client


def fails(
    script: Script, op: Callable[[DataverseClient], Any], retry: RetryPolicy
) -> tuple[DataverseError, DataverseClient]:
    holder: list[DataverseClient] = []

    def capture(client: DataverseClient) -> Any:
        holder.append(client)
        return op(client)

    with pytest.raises(DataverseError) as info:
        run(script, capture, retry)
    return info.value, holder[0]


def get(client: DataverseClient) -> Any:
    return client.get("queues", "1")


def throttled(retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"error": {"code": "0x80072322", "message": "Number of requests exceeded the limit"}}
    return httpx.Response(429, json=body, headers=headers)


def unavailable() -> httpx.Response:
    return httpx.Response(503, json={"error": {"code": "0x0", "message": "busy"}})


def test_backoff_doubles_up_to_max_delay_without_jitter():
    retry = RetryPolicy(base_delay=0.5, max_delay=5.0, jitter=0.0)
    assert [retry.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_stays_within_bounds_and_is_seedable():
    retry = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=0.5, rng=random.Random(7))
    for attempt in range(1, 6):
        ceiling = min(8.0, 2.0 ** (attempt - 1))
        samples = [retry.backoff(attempt) for _ in range(200)]
        assert all(ceiling * 0.5 <= s <= ceiling for s in samples)
        assert max(samples) - min(samples) > ceiling * 0.3  # it does vary
    again = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=0.5, rng=random.Random(7))
    first = RetryPolicy(base_delay=1.0, max_delay=8.0, jitter=0.5, rng=random.Random(7))
    assert [again.backoff(3) for _ in range(5)] == [first.backoff(3) for _ in range(5)]


def test_run_without_callback_returns_what_send_returns():
    time = FakeTime()
    attempts: list[int] = []

    async def send(attempt: int) -> str:
        attempts.append(attempt)
        if attempt < 3:
            raise ServerError(503, "busy", retryable=True)
        return "done"

    assert asyncio.run(policy(time).run(send)) == "done"
    assert attempts == [1, 2, 3]
    assert time.sleeps == [0.5, 1.0]


def test_policy_validation_and_none():
    assert RetryPolicy.none().max_attempts == 1
    assert RetryPolicy().max_attempts == 6
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), ("1.5", 1.5), (" 0 ", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", None),
     ("-3", None), ("nan", None), ("inf", None), (None, None)],
)  # fmt: skip
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value) == seconds


def test_429_waits_exactly_retry_after_then_succeeds():
    time = FakeTime()
    script = Script(throttled("7"), throttled("1.5"), httpx.Response(200, json=ROW))
    result, client = run(script, get, policy(time))
    assert result == ROW
    assert time.sleeps == [7.0, 1.5]
    assert len(script.requests) == 3
    assert client.stats.total == 3
    assert client.stats.retries == 2
    assert client.stats.snapshot() == {"GET queues": 3}


def test_a_503_with_retry_after_waits_that_long_within_max_elapsed():
    time = FakeTime()
    busy = httpx.Response(
        503, json={"error": {"code": "0x0", "message": "busy"}}, headers={"Retry-After": "7"}
    )
    result, _ = run(Script(busy, httpx.Response(200, json=ROW)), get, policy(time))
    assert result == ROW
    assert time.sleeps == [7.0]
    err, _ = fails(Script(busy), get, policy(FakeTime(), max_elapsed=10.0))
    assert err.attempts == 2  # 7 s, then 7 more would pass 10 s


def test_429_with_http_date_retry_after_uses_backoff():
    time = FakeTime()
    script = Script(throttled("Wed, 21 Oct 2015 07:28:00 GMT"), httpx.Response(200, json=ROW))
    run(script, get, policy(time, base_delay=0.25))
    assert time.sleeps == [0.25]


def test_503_is_retried_with_growing_backoff():
    time = FakeTime()
    script = Script(unavailable(), unavailable(), unavailable(), httpx.Response(200, json=ROW))
    result, client = run(script, get, policy(time, base_delay=0.5))
    assert result == ROW
    assert time.sleeps == [0.5, 1.0, 2.0]
    assert client.stats.retries == 3


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError(""),
    ],
)
def test_transport_failures_are_retried(failure):
    time = FakeTime()
    script = Script(failure, httpx.Response(200, json=ROW))
    result, client = run(script, get, policy(time))
    assert result == ROW
    assert len(time.sleeps) == 1
    assert client.stats.total == 2
    assert client.stats.retries == 1


def test_create_is_retried_too():
    time = FakeTime()
    created = httpx.Response(204, headers={"OData-EntityId": f"{BASE}queues(abc)"})
    script = Script(unavailable(), created)
    result, _ = run(script, lambda c: c.create("queues", {"queueid": "abc"}), policy(time))
    assert result == "abc"
    assert [r.method for r in script.requests] == ["POST", "POST"]
    assert script.requests[0].content == script.requests[1].content


def test_exhaustion_raises_the_last_error_with_attempts():
    time = FakeTime()
    script = Script(unavailable(), throttled(), unavailable())
    err, client = fails(script, get, policy(time, max_attempts=3))
    assert type(err) is ServerError
    assert err.attempts == 3
    assert err.retryable
    assert str(err).endswith("503 0x0 busy (after 3 attempts)")
    assert time.sleeps == [0.5, 1.0]  # a 429 without Retry-After backs off like a 503
    assert client.stats.total == 3
    assert client.stats.retries == 2


def test_throttles_with_retry_after_do_not_count_toward_max_attempts():
    time = FakeTime()
    script = Script(throttled("1"), throttled("1"), unavailable())
    err, client = fails(script, get, policy(time, max_attempts=3))
    assert type(err) is ServerError
    assert err.attempts == 5  # two honoured throttles, then three 503s
    assert str(err).endswith("503 0x0 busy (after 5 attempts)")
    assert time.sleeps == [1.0, 1.0, 0.5, 1.0]
    assert client.stats.total == 5
    assert client.stats.retries == 4


def test_transport_error_exhaustion():
    time = FakeTime()
    script = Script(httpx.ConnectError("[Errno 111] Connection refused"))
    err, _ = fails(script, get, policy(time, max_attempts=4))
    assert type(err) is TransportError
    assert err.attempts == 4
    assert err.url == "queues(1)"
    assert str(err) == (
        "GET queues(1): connection failed talking to contoso.crm4.dynamics.com "
        "(ConnectError: [Errno 111] Connection refused) (after 4 attempts)"
    )
    assert err.__cause__ is None
    assert err.__context__ is None


def test_timeout_message():
    err, _ = fails(Script(httpx.ReadTimeout("")), get, RetryPolicy.none())
    assert isinstance(err, TransportError)
    assert "timed out talking to contoso.crm4.dynamics.com (ReadTimeout)" in str(err)
    assert err.attempts == 1


def test_max_elapsed_stops_before_a_sleep_that_would_pass_it():
    time = FakeTime()
    script = Script(unavailable())
    err, _ = fails(script, get, policy(time, max_attempts=10, base_delay=1.0, max_elapsed=10.0))
    assert time.sleeps == [1.0, 2.0, 4.0]  # 7s spent; waiting 8s more would pass 10s
    assert err.attempts == 4
    assert len(script.requests) == 4


def test_a_retry_after_of_minutes_is_honoured_past_max_elapsed():
    time = FakeTime()
    script = Script(throttled("300"), throttled("240"), httpx.Response(200, json=ROW))
    result, client = run(script, get, policy(time, max_elapsed=60.0))
    assert result == ROW
    assert time.sleeps == [300.0, 240.0]
    assert client.stats.retries == 2


def test_throttle_waits_stop_at_max_throttle_wait_per_request():
    time = FakeTime()
    err, client = fails(Script(throttled("250")), get, policy(time, max_throttle_wait=600.0))
    assert isinstance(err, Throttled)
    assert err.retry_after == 250.0
    assert time.sleeps == [250.0, 250.0]  # a third wait would make 750 s
    assert err.attempts == 3
    assert client.stats.total == 3


def test_a_retry_after_beyond_max_throttle_wait_gives_up_at_once():
    time = FakeTime()
    err, _ = fails(Script(throttled("900")), get, policy(time))
    assert isinstance(err, Throttled)
    assert time.sleeps == []
    assert err.attempts == 1


def test_retry_after_zero_forever_is_bounded_by_the_throttle_budget():
    time = FakeTime()
    err, client = fails(Script(throttled("0")), get, policy(time, max_throttle_wait=20.0))
    assert isinstance(err, Throttled)
    assert client.stats.total == 21  # each honoured throttle uses at least 1 s of the budget


def test_throttle_waits_do_not_count_toward_max_elapsed():
    time = FakeTime()
    script = Script(
        unavailable(),
        throttled("300"),
        unavailable(),
        unavailable(),
        httpx.Response(200, json=ROW),
    )
    result, _ = run(script, get, policy(time, max_elapsed=10.0))
    assert result == ROW
    assert time.sleeps == [0.5, 300.0, 1.0, 2.0]


def test_retry_policy_none_does_not_wait_for_a_throttle_either():
    err, client = fails(Script(throttled("1")), get, RetryPolicy.none())
    assert isinstance(err, Throttled)
    assert client.stats.total == 1


def test_a_long_throttle_is_announced_once_per_throttled_stretch(caplog):
    caplog.set_level("WARNING", logger="reconciler.dataverse")
    time = FakeTime()
    retry = policy(time)

    async def scenario() -> None:
        transport = httpx.MockTransport(Script(httpx.Response(200, json=ROW)))
        async with DataverseClient(
            BASE, auth=StaticToken("t"), transport=transport, retry=retry
        ) as client:
            # requests throttled in the same stretch: one line; a later stretch: one more
            client._announce_throttle(45.0)
            client._announce_throttle(44.0)
            client._announce_throttle(50.0)
            time.now += 60
            client._announce_throttle(200.0)

    asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert lines == [
        "the service is throttling requests (429, service protection limits): waiting 45 s "
        "before going on",
        "the service is throttling requests (429, service protection limits): waiting "
        "3 min 20 s before going on",
    ]


def test_short_throttles_are_not_announced_long_ones_are(caplog):
    caplog.set_level("WARNING", logger="reconciler.dataverse")
    run(Script(throttled("2"), httpx.Response(200, json=ROW)), get, policy(FakeTime()))
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []
    run(Script(throttled("300"), httpx.Response(200, json=ROW)), get, policy(FakeTime()))
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "throttling" in line
    assert "waiting 5 min before going on" in line
    assert "queues" not in line  # one line about the service, not a request


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "0x80044331", BadRequest),
        (404, "0x80040217", NotFound),
        (412, "0x1", PreconditionFailed),
    ],
)
def test_final_errors_are_not_retried(status, code, cls):
    time = FakeTime()
    script = Script(httpx.Response(status, json={"error": {"code": code, "message": "m"}}))
    err, client = fails(script, get, policy(time))
    assert type(err) is cls
    assert err.attempts == 1
    assert time.sleeps == []
    assert client.stats.total == 1
    assert client.stats.retries == 0


def test_unsupported_protocol_is_final():
    time = FakeTime()
    err, _ = fails(Script(httpx.UnsupportedProtocol("no ftp")), get, policy(time))
    assert isinstance(err, TransportError)
    assert not err.retryable
    assert time.sleeps == []


def test_real_sleep_default_is_used_when_not_injected():
    script = Script(throttled("0"), httpx.Response(200, json=ROW))
    result, client = run(script, get, RetryPolicy(max_attempts=2))
    assert result == ROW
    assert client.stats.retries == 1


def test_retries_are_logged_without_secrets(caplog):
    caplog.set_level("DEBUG", logger="reconciler.dataverse")
    time = FakeTime()
    run(Script(throttled("2"), httpx.Response(200, json=ROW)), get, policy(time))
    messages = [r.getMessage() for r in caplog.records]
    assert "GET queues(1) -> 429 in" in messages[0]
    assert "(attempt 1)" in messages[0]
    assert messages[1].startswith("retrying GET queues(1) in 2.00s: 429 0x80072322")
    assert "(attempt 2)" in messages[2]


def update(client: DataverseClient) -> Any:
    return client.update("queues", "1", {"name": "q"}, etag='W/"5"')


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError(""),
        httpx.WriteError(""),
    ],
)
def test_a_write_whose_answer_was_lost_is_not_resent(failure):
    time = FakeTime()
    script = Script(failure, httpx.Response(204))
    err, client = fails(script, update, policy(time))
    assert isinstance(err, OutcomeUnknown)
    assert isinstance(err, TransportError)
    assert not err.retryable
    assert "the write may have been applied" in str(err)
    assert (client.stats.total, time.sleeps) == (1, [])


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.PoolTimeout("")])
def test_a_write_that_never_left_is_resent(failure):
    time = FakeTime()
    script = Script(failure, httpx.Response(204))
    result, client = run(script, update, policy(time))
    assert result is None
    assert client.stats.total == 2


@pytest.mark.parametrize("status", [502, 504])
def test_a_write_behind_a_failing_gateway_is_not_resent(status):
    time = FakeTime()
    script = Script(httpx.Response(status, text="<html>gateway</html>"), httpx.Response(204))
    err, client = fails(script, update, policy(time))
    assert isinstance(err, OutcomeUnknown)  # the caller reads the record back to settle it
    assert not err.retryable
    assert str(status) in str(err)
    assert client.stats.total == 1
    # a read behind the same gateway is retried
    script = Script(
        httpx.Response(status, text="<html>gateway</html>"), httpx.Response(200, json=ROW)
    )
    assert run(script, get, policy(FakeTime()))[0] == ROW


def test_a_local_protocol_error_never_quotes_the_request():
    failure = httpx.LocalProtocolError("Illegal header value b'Bearer TOKEN-MARKER\\n'")
    err, _ = fails(Script(failure), get, policy(FakeTime()))
    assert "TOKEN-MARKER" not in str(err)
    assert "LocalProtocolError" in str(err)
