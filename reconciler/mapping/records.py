"""A record: one Dataverse row in manifest terms, with the address its id derives from."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.diagnostics import Location
from reconciler.mapping.kinds import RecordKind
from reconciler.mapping.values import Value


@dataclass(frozen=True)
class Record:
    kind: RecordKind
    address: str
    fields: Mapping[str, Value]
    present: bool = True
    """False for ``ensure: absent``: the record should not exist."""
    adopt: str | None = None
    """``metadata.id``: the existing record to manage, instead of the derived id."""
    parent: str | None = None
    """Children and routing records: the address of the record they belong to."""
    previous: tuple[str, ...] = ()
    """The addresses it had before a rename (``metadata.previousNames``): its id is the one
    the ledger holds for the first of them found."""
    where: Callable[[], Location] | None = field(default=None, repr=False, compare=False)
    """Where the record is written, found when asked for: positions are read on demand."""
    notes: Mapping[str, Any] = field(default_factory=dict)
    """What the plan may warn about but never diffs (a page token's rotation date)."""
    at: Callable[..., Location] | None = field(default=None, repr=False, compare=False)
    """Where a value of the document is written (``at("spec", "members", 0)``)."""

    @property
    def location(self) -> Location | None:
        return self.where() if self.where is not None else None
