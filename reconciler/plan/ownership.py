"""What a plan writes to the ledger (``state.ledger``; docs/ownership.md).

The plan's changes say most of it: every record that exists or is created is listed under its
address (created, or adopted when this project did not make it), every record deleted leaves.
``LedgerPlan`` carries the rest: records no manifest describes that are provably this project's
but not listed yet (an org applied before ledgers), and entries whose records are gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from reconciler.mapping import kinds as k
from reconciler.plan.definition import Action, Change, LedgerEntry
from reconciler.state import ledger

_LISTED = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE, Action.ADOPT})


def listed(change: Change) -> bool:
    """The change leaves a record of the project in the target: it belongs in the ledger."""
    # A noop without an ETag is a record that is not there ("already absent").
    return change.action in _LISTED or (change.action is Action.NOOP and change.etag is not None)


def entry_of(change: Change) -> ledger.Entry:
    return ledger.Entry(
        address=change.address,
        table=k.BY_NAME[change.kind].table.logical_name,
        id=change.id,
        origin="adopted" if change.adopted else "created",
    )


def entries(changes: Iterable[Change], extra: Iterable[LedgerEntry] = ()) -> list[ledger.Entry]:
    """The ledger entries a plan's changes (and ``extra``) stand for."""
    found = [entry_of(change) for change in changes if listed(change)]
    found += [ledger.Entry(e.address, e.table, e.id, _origin(e.origin)) for e in extra]
    return found


def _origin(text: str) -> ledger.Origin:
    return "adopted" if text == "adopted" else "created"


def differing(
    wanted: Iterable[ledger.Entry], held: Mapping[str, ledger.Entry]
) -> Iterator[ledger.Entry]:
    """The entries the ledger does not hold as they are."""
    return (entry for entry in wanted if held.get(entry.id) != entry)
