"""Apply's output: a line per finished step (or a progress bar), a summary by outcome, and the
follow-up checklist. Every name and message from the target goes through ``clean``."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.apply.applier import Applied
from reconciler.apply.followup import Item
from reconciler.plan.evaluator import Outcome, Result
from reconciler.plan.stages import Op
from reconciler.render import neutral
from reconciler.render.style import clean, paint, plural

SYMBOLS = {Op.CREATE: "+", Op.UPDATE: "~", Op.LINK: "~", Op.DELETE: "-"}
STYLES = {
    Outcome.APPLIED: "green",
    Outcome.STALE: "yellow",
    Outcome.FAILED: "red",
    Outcome.SKIPPED: "dim",
}
ORDER = (Outcome.APPLIED, Outcome.STALE, Outcome.FAILED, Outcome.SKIPPED)


def step_line(result: Result, color: bool = False) -> str:
    """``+ Queue/vip-support: created (0.02 s)``; problems say ``stale:``/``failed:``."""
    step = result.step
    symbol = SYMBOLS[step.op] if result.outcome is Outcome.APPLIED else "!"
    head = paint(f"{symbol} {clean(step.address)}", STYLES[result.outcome], color)
    if result.outcome is Outcome.APPLIED:
        return f"{head}: {clean(result.detail)} ({result.seconds:.2f} s)"
    what = f"{step.op} {result.outcome}" if result.outcome is not Outcome.SKIPPED else "skipped"
    return f"{head}: {what}: {clean(result.detail)}"


def progress_bar(
    results: Sequence[Result], total: int, width: int = 30, elapsed: float | None = None
) -> str:
    """``[#########.....................]  9/30  applied 8 · failed 1``, and with the seconds
    ``elapsed`` since the first step started, the rate and what is left at that rate:
    ``  4.5 steps/s, ETA 5 s``."""
    done = len(results)
    filled = width * done // total if total else width
    counts = [
        f"{outcome} {n}"
        for outcome in ORDER
        if (n := sum(1 for r in results if r.outcome is outcome))
    ]
    tally = " · ".join(counts)
    bar = f"[{'#' * filled}{'.' * (width - filled)}] {done:>{len(str(total))}}/{total}  {tally}"
    if elapsed is None or not done or elapsed <= 0:
        return bar
    rate = done / elapsed
    return f"{bar}  {rate:.1f} steps/s, ETA {_duration((total - done) / rate)}"


def _duration(seconds: float) -> str:
    """``7 s``, ``2 min 5 s``, ``1 h 3 min``: an estimate, so whole units."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def already_applied(applied: Applied, color: bool = False) -> str:
    """A saved plan applied once more: said once, not as steps that look stale."""
    return (
        paint(
            f"This plan was already applied to {clean(applied.plan.target.url)} "
            f"at {clean(applied.already_applied or '')}: nothing to do.",
            "green",
            color,
        )
        + "\n"
    )


def event(name: str, /, **fields: object) -> str:
    """One line of ``apply --format json`` (JSON lines, like ``terraform apply -json``):
    ``{"type": ..., ...}``, neutralised as every JSON the CLI prints (``neutral``)."""
    return neutral.json_text(json.dumps({"type": name, **fields}, ensure_ascii=False)) + "\n"


def step_event(result: Result) -> str:
    step = result.step
    return event(
        "step",
        address=step.address,
        kind=step.change.kind,
        op=str(step.op),
        outcome=str(result.outcome),
        detail=result.detail,
        seconds=round(result.seconds, 3),
    )


def summary_event(applied: Applied) -> str:
    counts = {str(outcome): applied.count(outcome) for outcome in ORDER}
    return event(
        "summary",
        complete=applied.complete,
        already_applied=applied.already_applied,
        steps=len(applied.results),
        **counts,
        requests=applied.requests,
        seconds=round(applied.seconds, 3),
    )


def follow_up_events(items: Sequence[Item]) -> str:
    return "".join(
        event(
            "follow_up",
            address=item.address,
            message=item.message,
            values=dict(item.values),
            new=item.new,
        )
        for item in items
    )


def render_summary(applied: Applied, color: bool = False) -> str:
    if not applied.results:
        if applied.ledger_notes:  # a plan that changed no record, only the ledger
            timing = f"{plural(applied.requests, 'request')} in {applied.seconds:.1f} s"
            writes = plural(applied.ledger_notes, "ledger note write")
            adopted = applied.plan.summary.adopt
            done = (
                f"{adopted} adopted, the ledger is up to date"
                if adopted
                else ("the ledger is up to date")
            )
            return paint(f"Apply complete: {done} ({writes}, {timing}).", "green", color) + "\n"
        return ""  # the plan already said there is nothing to change
    counts = ", ".join(f"{applied.count(outcome)} {outcome}" for outcome in ORDER)
    steps = plural(len(applied.results), "step")
    timing = f"{steps}, {plural(applied.requests, 'request')} in {applied.seconds:.1f} s"
    if applied.complete:
        return paint(f"Apply complete: {counts} ({timing}).", "green", color) + "\n"
    lines = [paint(f"Apply incomplete: {counts} ({timing}).", "red", color)]
    for result in applied.results:
        if result.outcome is not Outcome.APPLIED:
            lines.append("  " + step_line(result, color))
    if applied.count(Outcome.STALE):
        lines.append(
            "Stale records changed in the target after the plan was made: plan again to see "
            "them, then apply the new plan. Everything written so far is kept."
        )
    else:
        lines.append("Applying again finishes the job: everything written so far is kept.")
    return "\n".join(lines) + "\n"


def render_checklist(items: Sequence[Item], color: bool = False) -> str:
    if not items:
        return ""
    lines = ["", paint("Follow-up (outside Dataverse):", "bold", color)]
    for item in items:
        mark = paint("new", "yellow", color) + " " if item.new else ""
        where = f"{clean(item.address)}: " if item.address else ""
        lines.append(f"  [ ] {mark}{where}{clean(item.message)}")
        lines += [f"        {label}: {clean(value)}" for label, value in item.values]
    return "\n".join(lines) + "\n"
