"""The checklist after apply: what a person must still do outside Dataverse.

Each kind says what its records need (``ManifestKind.checklist``): Facebook pages need the
app's callback URL and verify token pasted into the Facebook app's webhook settings; Google's
Business Messages partners need their webhook URL in the Business Messages console. What the
service generates on save is read back from the target (one query per table, never one per
record). Tokens near their rotation date come from the plan's warnings.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler import kinds
from reconciler.dataverse import DataverseClient
from reconciler.kinds.base import Item
from reconciler.plan.definition import Action, Plan
from reconciler.plan.evaluator import Outcome, Result
from reconciler.plan.ownership import listed

__all__ = ["TOKEN_WARNINGS", "Item", "checklist"]

TOKEN_WARNINGS = frozenset({"token-expiring", "token-age"})


def _present(plan: Plan, results: Iterable[Result], kind: str) -> dict[str, bool]:
    """Addresses of ``kind`` that are in the target as planned once apply ran → whether this
    apply created them."""
    outcomes: dict[str, list[Result]] = {}
    for result in results:
        outcomes.setdefault(result.step.address, []).append(result)
    found: dict[str, bool] = {}
    for change in plan.changes:
        if change.kind != kind or not listed(change):
            continue
        ran = outcomes.get(change.address, [])
        if all(r.outcome is Outcome.APPLIED for r in ran):
            found[change.address] = change.action in (Action.CREATE, Action.REPLACE)
    return found


def _ids(plan: Plan) -> dict[str, str]:
    return {change.address: change.id for change in plan.changes}


async def checklist(client: DataverseClient, plan: Plan, results: Iterable[Result]) -> list[Item]:
    """Each kind's part of the checklist (``ManifestKind.checklist``), in kind order, then the
    tokens near their rotation date."""
    results = list(results)
    ids = _ids(plan)
    desired = {change.address: change.desired or {} for change in plan.changes}
    items: list[Item] = []
    parts = [part for kind in kinds.MANIFEST_KINDS for part in kind.checklist]
    parts += [part for channel in kinds.CHANNELS for part in channel.checklist]
    for part in parts:
        present = _present(plan, results, part.kind.name)
        if present:
            items += await part.items(client, present, ids, desired)
    for warning in plan.warnings:
        if warning.code in TOKEN_WARNINGS:
            items.append(Item(warning.address or warning.location or "", warning.message))
    return items
