"""Apply's output: a line per finished step (or a progress bar), a summary by outcome, and the
follow-up checklist. Every name and message from the target goes through ``clean``."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.apply.applier import Applied
from reconciler.apply.followup import Item
from reconciler.plan.evaluator import Outcome, Result
from reconciler.plan.stages import Op
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


def progress_bar(results: Sequence[Result], total: int, width: int = 30) -> str:
    """``[#########.....................]  9/30  applied 8 · failed 1``."""
    done = len(results)
    filled = width * done // total if total else width
    counts = [
        f"{outcome} {n}"
        for outcome in ORDER
        if (n := sum(1 for r in results if r.outcome is outcome))
    ]
    tally = " · ".join(counts)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>{len(str(total))}}/{total}  {tally}"


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
