"""Running steps (docs/spec.md §5): each once what it needs has succeeded, at most N at a time,
a failure or a stale record stopping only what depends on it. The runners here are fakes that
sleep and record; nothing talks to Dataverse."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from reconciler.errors import ReconcilerError
from reconciler.plan.definition import Action, Change
from reconciler.plan.evaluator import MAX_PARALLELISM, Outcome, Result, StaleStep, evaluate
from reconciler.plan.stages import Op, Step

# --- factories --------------------------------------------------------------------------------


def step(name: str, *needs: str, early: bool = False) -> Step:
    """A step keyed by ``name`` (a queue's delete when ``early``, else its create)."""
    change = Change(
        address=f"Queue/{name}",
        kind="Queue",
        name=name,
        action=Action.DELETE if early else Action.CREATE,
        reason="test",
        id=f"id-{name}",
        desired=None if early else {"displayName": name},
    )
    op = Op.DELETE if early else Op.CREATE
    return Step(name, op, change, (), None, needs, early)


class Runner:
    """Sleeps ``delay[key]`` (default a tick), then answers, fails or goes stale; records
    starts, finishes and the most steps running at once."""

    def __init__(
        self,
        delay: dict[str, float] | None = None,
        fail: Sequence[str] = (),
        stale: Sequence[str] = (),
    ) -> None:
        self.delay = delay or {}
        self.fail = set(fail)
        self.stale = set(stale)
        self.events: list[tuple[str, str]] = []
        self.running = 0
        self.most = 0

    async def __call__(self, s: Step) -> str:
        self.events.append(("start", s.key))
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.delay.get(s.key, 0.001))
        finally:
            self.running -= 1
            self.events.append(("end", s.key))
        if s.key in self.fail:
            raise ReconcilerError(f"{s.key} broke")
        if s.key in self.stale:
            raise StaleStep(f"{s.key} changed")
        return f"did {s.key}"

    @property
    def started(self) -> list[str]:
        return [key for what, key in self.events if what == "start"]

    def index(self, what: str, key: str) -> int:
        return self.events.index((what, key))


def run(
    steps: Sequence[Step],
    runner: Runner,
    parallelism: int = 8,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    # A bounded wait: an evaluator that deadlocks fails the test instead of hanging it.
    work = evaluate(steps, runner, parallelism=parallelism, on_result=on_result)
    return asyncio.run(asyncio.wait_for(work, timeout=5))


def outcomes(results: list[Result]) -> dict[str, Outcome]:
    return {r.step.key: r.outcome for r in results}


# --- order ------------------------------------------------------------------------------------


def test_a_step_starts_only_after_the_steps_it_needs_succeeded():
    steps = [step("c", "b"), step("b", "a"), step("a"), step("d", "a", "c")]
    runner = Runner(delay={"a": 0.02, "b": 0.01})
    results = run(steps, runner)

    assert all(r.outcome is Outcome.APPLIED for r in results)
    for later, earlier in [("b", "a"), ("c", "b"), ("d", "a"), ("d", "c")]:
        assert runner.index("end", earlier) < runner.index("start", later)


def test_independent_steps_run_at_the_same_time():
    steps = [step(str(n)) for n in range(5)]
    runner = Runner(delay=dict.fromkeys(map(str, range(5)), 0.02))
    run(steps, runner)

    assert runner.most == 5
    assert runner.started == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize("parallelism", [1, 3])
def test_no_more_steps_run_at_once_than_parallelism(parallelism):
    steps = [step(str(n)) for n in range(12)]
    runner = Runner(delay=dict.fromkeys(map(str, range(12)), 0.005))
    results = run(steps, runner, parallelism=parallelism)

    assert runner.most == parallelism
    assert len(runner.started) == 12
    assert all(r.outcome is Outcome.APPLIED for r in results)


def test_waiting_steps_do_not_take_a_slot():
    # With one slot, "b" waits for "a" without holding the slot "a" needs.
    steps = [step("b", "a"), step("c", "b"), step("a")]
    runner = Runner()
    results = run(steps, runner, parallelism=1)

    assert runner.started == ["a", "b", "c"]
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 3


def test_results_come_back_in_step_order_with_what_happened():
    steps = [step("slow"), step("quick"), step("middle")]
    runner = Runner(delay={"slow": 0.03, "quick": 0.0, "middle": 0.015})
    seen: list[str] = []
    results = run(steps, runner, on_result=lambda r: seen.append(r.step.key))

    assert [r.step for r in results] == steps
    assert [r.detail for r in results] == ["did slow", "did quick", "did middle"]
    assert seen == ["quick", "middle", "slow"]  # as they finish
    assert results[0].seconds >= 0.02


def test_on_result_is_called_once_per_step_whatever_the_outcome():
    steps = [step("a"), step("b", "a"), step("c"), step("d")]
    seen: list[Result] = []
    results = run(steps, Runner(fail=["a"], stale=["c"]), on_result=seen.append)

    assert sorted(r.step.key for r in seen) == ["a", "b", "c", "d"]
    assert {r.step.key: r for r in seen} == {r.step.key: r for r in results}


def test_no_steps_no_results():
    assert run([], Runner()) == []


# --- failures ---------------------------------------------------------------------------------


def test_a_failure_skips_what_depends_on_it_transitively_and_nothing_else():
    steps = [
        step("a"),
        step("b", "a"),
        step("c", "b"),
        step("d"),
        step("e", "d"),
        step("f", "d", "c"),
    ]
    runner = Runner(fail=["a"])
    results = run(steps, runner)

    assert outcomes(results) == {
        "a": Outcome.FAILED,
        "b": Outcome.SKIPPED,
        "c": Outcome.SKIPPED,
        "d": Outcome.APPLIED,
        "e": Outcome.APPLIED,
        "f": Outcome.SKIPPED,
    }
    assert sorted(runner.started) == ["a", "d", "e"]
    details = {r.step.key: r.detail for r in results}
    assert details["a"] == "a broke"
    assert details["b"] == "needs a (failed)"
    assert details["c"] == "needs b (skipped)"
    assert details["f"] == "needs c (skipped)"
    assert all(r.seconds == 0.0 for r in results if r.outcome is Outcome.SKIPPED)


def test_a_stale_step_skips_its_dependents_and_says_so():
    steps = [step("a"), step("b", "a"), step("c")]
    results = run(steps, Runner(stale=["a"]))

    assert [(r.outcome, r.detail) for r in results] == [
        (Outcome.STALE, "a changed"),
        (Outcome.SKIPPED, "needs a (stale)"),
        (Outcome.APPLIED, "did c"),
    ]


def test_the_skip_names_the_step_that_blocked_it():
    steps = [step("ok"), step("bad"), step("both", "ok", "bad")]
    results = run(steps, Runner(fail=["bad"]))
    assert results[2].detail == "needs bad (failed)"


def test_an_error_that_is_not_the_reconcilers_is_not_swallowed():
    async def broken(_s: Step) -> str:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        asyncio.run(evaluate([step("a")], broken))


# --- early deletes ----------------------------------------------------------------------------


def test_early_deletes_finish_before_any_other_step_starts():
    steps = [
        step("old-a", early=True),
        step("old-b", early=True),
        step("new"),
        step("other"),
    ]
    runner = Runner(delay={"old-a": 0.02, "old-b": 0.01})
    run(steps, runner)

    last_early = max(runner.index("end", "old-a"), runner.index("end", "old-b"))
    assert runner.index("start", "new") > last_early
    assert runner.index("start", "other") > last_early
    assert runner.started[:2] == ["old-a", "old-b"]


def test_steps_still_wait_for_early_deletes_that_fail_and_then_run():
    steps = [step("old", early=True), step("older", "old", early=True), step("new")]
    runner = Runner(delay={"old": 0.02}, fail=["old"])
    results = run(steps, runner)

    assert outcomes(results) == {
        "old": Outcome.FAILED,
        "older": Outcome.SKIPPED,
        "new": Outcome.APPLIED,  # it does not need the delete, only comes after it
    }
    assert runner.index("start", "new") > runner.index("end", "old")


def test_early_deletes_run_concurrently_with_each_other():
    steps = [step("x", early=True), step("y", early=True)]
    runner = Runner(delay={"x": 0.02, "y": 0.02})
    run(steps, runner)
    assert runner.most == 2


# --- parallelism ------------------------------------------------------------------------------


@pytest.mark.parametrize("parallelism", [0, -1, MAX_PARALLELISM + 1])
def test_parallelism_out_of_range_is_refused(parallelism):
    runner = Runner()
    with pytest.raises(ValueError, match=f"parallelism must be 1 to 52, got {parallelism}"):
        run([step("a")], runner, parallelism=parallelism)
    assert runner.started == []


@pytest.mark.parametrize("parallelism", [1, MAX_PARALLELISM])
def test_parallelism_at_the_limits_is_accepted(parallelism):
    assert MAX_PARALLELISM == 52
    results = run([step("a")], Runner(), parallelism=parallelism)
    assert results[0].outcome is Outcome.APPLIED
