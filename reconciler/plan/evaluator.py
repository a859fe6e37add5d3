"""Run a plan's steps: each starts as soon as the steps it needs have succeeded, with at most
``parallelism`` running at once.

A step that fails, or finds its record changed since the plan (stale), never stops the others:
only the steps that need it are skipped, and the steps that need those. The evaluator knows
nothing about Dataverse: a runner carries out one step and says how it went.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from reconciler.errors import ReconcilerError
from reconciler.models.limits import DEFAULT_PARALLELISM, MAX_PARALLELISM
from reconciler.plan.stages import Step

__all__ = [
    "DEFAULT_PARALLELISM",
    "MAX_PARALLELISM",
    "Outcome",
    "Result",
    "Runner",
    "StaleStep",
    "evaluate",
]


class Outcome(StrEnum):
    APPLIED = "applied"
    STALE = "stale"
    FAILED = "failed"
    SKIPPED = "skipped"


class StaleStep(ReconcilerError):
    """The record changed (or went away) since the plan was made: its write was refused."""


@dataclass(frozen=True)
class Result:
    step: Step
    outcome: Outcome
    detail: str
    """What happened: ``created``, ``already there; updated``, the error, what it waited for."""
    seconds: float = 0.0


Runner = Callable[[Step], Awaitable[str]]
"""Carries out one step and returns what happened; raises ``StaleStep`` when the record
changed since the plan, any other ``ReconcilerError`` when the step failed."""


async def evaluate(
    steps: Sequence[Step],
    run: Runner,
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Run ``steps``; the results come back in the steps' order."""
    if not 1 <= parallelism <= MAX_PARALLELISM:
        raise ValueError(f"parallelism must be 1 to {MAX_PARALLELISM}, got {parallelism}")
    loop = asyncio.get_running_loop()
    done: dict[str, asyncio.Future[Result]] = {step.key: loop.create_future() for step in steps}
    early = [done[step.key] for step in steps if step.early]
    slots = asyncio.Semaphore(parallelism)

    async def one(step: Step) -> None:
        if not step.early and early:
            await asyncio.wait(early)  # deletes listed first finish before anything else starts
        needed = [await done[key] for key in step.needs]
        blocked = next((r for r in needed if r.outcome is not Outcome.APPLIED), None)
        if blocked is not None:
            result = Result(step, Outcome.SKIPPED, f"needs {blocked.step.key} ({blocked.outcome})")
        else:
            async with slots:
                started = time.perf_counter()
                try:
                    detail = await run(step)
                    outcome = Outcome.APPLIED
                except StaleStep as stale:
                    detail, outcome = str(stale), Outcome.STALE
                except ReconcilerError as error:
                    detail, outcome = str(error), Outcome.FAILED
                result = Result(step, outcome, detail, time.perf_counter() - started)
        done[step.key].set_result(result)
        if on_result is not None:
            on_result(result)

    tasks = [asyncio.create_task(one(step)) for step in steps]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return [done[step.key].result() for step in steps]
