"""Carry out one step against the target: the only code that writes records.

Every write is safe to repeat after a crash or a lost answer:

- a create is a PATCH with ``If-None-Match: *`` to the record's own id, so it never makes a
  second row; when the record is already there (an earlier run made it), the create carries on
  as an update of the planned fields;
- an update or a delete of a record read at plan time carries ``If-Match`` with the plan-time
  ETag: a record changed since is refused (412) and the step is reported stale;
- a write whose answer was lost (``OutcomeUnknown``) is settled by reading the record back:
  untouched means send it again, written as planned means done, anything else is stale.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from reconciler.dataverse import DataverseClient
from reconciler.dataverse.errors import AlreadyExists, NotFound, OutcomeUnknown, StaleRecord
from reconciler.dataverse.tables import TABLES
from reconciler.errors import ReconcilerError
from reconciler.mapping import kinds as k
from reconciler.mapping import rulexml
from reconciler.mapping.fields import FieldMap, MappingError, Resolver, Row, body
from reconciler.mapping.values import Sensitive
from reconciler.plan.evaluator import StaleStep
from reconciler.plan.stages import Op, Step

ATTEMPTS = 6
"""How often a write whose answer was lost is settled and sent again (as often as the client
sends a read that fails: on a network that loses one answer in ten, three tries left one step
in a thousand failed, six leave one in a million)."""

Secrets = Mapping[tuple[str, str], Sensitive]
"""Resolved secrets by (address, field path)."""


class StepFailed(ReconcilerError):
    """A step could not be carried out for a reason of its own (a value that cannot be
    written, a lost answer that could not be settled)."""


def _same(expected: Any, found: Any) -> bool:
    if isinstance(expected, str) and isinstance(found, str):
        return expected.casefold() == found.casefold() if _is_guid(expected) else expected == found
    return bool(expected == found)


def _is_guid(text: str) -> bool:
    return len(text) == 36 and text.count("-") == 4


def _secret_columns(step: Step) -> set[str]:
    return {c for f in k.BY_NAME[step.change.kind].fields if f.sensitive for c in f.columns}


class Writer:
    """Runs steps (``evaluator.Runner``) with one client, the plan's ids and its secrets."""

    def __init__(self, client: DataverseClient, resolver: Resolver, secrets: Secrets) -> None:
        self.client = client
        self.resolver = resolver
        self.secrets = secrets

    async def __call__(self, step: Step) -> str:
        if step.op is Op.DELETE:
            return await self.delete(step)
        try:
            row = self.row(step)
        except (MappingError, rulexml.RuleXmlError) as exc:
            raise StepFailed(f"{step.address}: {exc}") from None
        payload = body(step.table, row)
        relations = [f for f in k.BY_NAME[step.change.kind].fields if f.relation is not None]
        if step.op is Op.CREATE:
            done = await self.create(step, payload, row)
            return done + await self.associations(step, relations)
        if not step.writes_row:  # only members change: the row itself is not written
            return (await self.associations(step, relations)).removeprefix("; ")
        await self.guard(step)
        done = await self.update(step, payload, row)
        return done + await self.associations(step, relations)

    # -- many-to-many relationships ------------------------------------------------------------

    async def associations(self, step: Step, relations: list[FieldMap]) -> str:
        """Add and remove the members ``step`` changes (``$ref`` writes, each safe to repeat:
        a pair already associated is done, one already gone is done); what was done, as a
        suffix of the step's outcome."""
        said = []
        for f in relations:
            if f.path not in step.paths or f.relation is None:
                continue
            add, remove = step.members(f.path)
            relation, entity_set, record = f.relation, step.table.entity_set, step.change.id
            other = TABLES[relation.second].entity_set
            associate = functools.partial(
                self.client.associate, entity_set, record, relation.name, other
            )
            disassociate = functools.partial(
                self.client.disassociate, entity_set, record, relation.name
            )
            # Each pair is its own request, independent of the others: sent together, as many
            # at once as the client lets through (--parallelism).
            done = await asyncio.gather(
                *(self.settle(step, name, associate, AlreadyExists) for name in add),
                *(self.settle(step, name, disassociate, NotFound) for name in remove),
                return_exceptions=True,  # every request settles before the step fails
            )
            failed = next((error for error in done if isinstance(error, BaseException)), None)
            if failed is not None:
                raise failed
            if add or remove:
                said.append(f"{f.path}: {len(add)} added, {len(remove)} removed")
        return "".join(f"; {text}" for text in said)

    async def settle(
        self,
        step: Step,
        name: str,
        write: Callable[[str], Awaitable[None]],
        done: type[Exception],
    ) -> None:
        """One ``$ref`` write for the user ``name``; ``done`` means it was already so."""
        try:
            user = self.resolver.user_id(name)
        except MappingError as exc:
            raise StepFailed(f"{step.address}: {exc}") from None
        for _ in range(ATTEMPTS):
            try:
                await write(user)
                return
            except done:
                return
            except OutcomeUnknown:
                continue  # sent again: done (already so) or not
        raise StepFailed(f"{step.address}: no answer for {name} after {ATTEMPTS} attempts")

    async def guard(self, step: Step) -> None:
        """An unlink goes ahead only while the records it lets go for are as read: a replace
        that will find its record changed is stale, and must not leave this one unlinked. A
        record changed or gone because an earlier run of this plan went on is fine."""
        for replace in step.guards:
            if replace.etag is None:  # changed by this apply before its delete: any version
                continue
            table = k.BY_NAME[replace.kind].table
            try:
                current = await self.client.get(
                    table.entity_set, replace.id, select=[table.primary_key]
                )
            except NotFound:
                current = None
            if current is not None and current.get("@odata.etag") == replace.etag:
                continue
            if await self.already_written(step, self.row(step)):
                return
            what = "was deleted" if current is None else "changed in the target"
            raise StaleStep(f"{replace.address} {what} since the plan")

    # -- request bodies ------------------------------------------------------------------------

    def row(self, step: Step) -> Row:
        """The columns ``step`` writes, in read form (``_x_value`` for lookups); an unlink
        writes nothing into them."""
        change = step.change
        kind = k.BY_NAME[change.kind]
        if step.clears:
            return {
                column: None for f in kind.fields if f.path in step.paths for column in f.columns
            }
        fields: dict[str, Any] = dict(change.desired or {})
        for f in kind.fields:
            if f.sensitive:
                fields[f.path] = self.secrets.get((change.address, f.path))
        create = step.op is Op.CREATE
        full = kind.to_row(fields, change.address, self.resolver, create=create)
        keep = {column for f in kind.fields if f.path in step.paths for column in f.columns}
        if create:
            keep |= set(kind.on_create(fields, change.address, self.resolver))
        return {
            column: value
            for column, value in full.items()
            if column in keep and not (create and value is None)
        }

    # -- the three writes ----------------------------------------------------------------------

    async def create(self, step: Step, payload: dict[str, Any], row: Row) -> str:
        entity_set, record_id = step.table.entity_set, step.change.id
        for _ in range(ATTEMPTS):
            try:
                await self.client.create_only(entity_set, record_id, payload)
                return "created"
            except AlreadyExists as exists:
                return await self.finish(step, payload, row, exists)
            except OutcomeUnknown:
                continue  # the next attempt tells: created (already there) or not
        raise StepFailed(f"{step.address}: no answer to the create after {ATTEMPTS} attempts")

    async def finish(
        self, step: Step, payload: dict[str, Any], row: Row, exists: AlreadyExists
    ) -> str:
        """A create found its record there: made by an earlier run of this plan (or by this
        step, its answer lost) when it holds what the plan writes, so write it as planned.
        Anything else changed since the plan."""
        entity_set, record_id = step.table.entity_set, step.change.id
        for _ in range(ATTEMPTS):
            current = await self.read(step, row)
            if current is None:  # a duplicate of another record (a duplicate key)
                raise StepFailed(f"{step.address}: {exists}") from None
            if not self.written(step, row, current):
                raise StaleStep(f"{step.address} was created in the target since the plan")
            etag = current.get("@odata.etag")
            try:
                await self.client.update(entity_set, record_id, payload, etag=etag)
            except StaleRecord:
                raise StaleStep(f"{step.address} changed in the target just now") from None
            except OutcomeUnknown:
                continue  # read it again: landed (a new etag, as planned) or not, same thing
            return "already there; updated"
        raise StepFailed(f"{step.address}: no answer to the update after {ATTEMPTS} attempts")

    async def update(self, step: Step, payload: dict[str, Any], row: Row) -> str:
        entity_set, record_id = step.table.entity_set, step.change.id
        done = "unlinked" if step.clears else "linked" if step.op is Op.LINK else "updated"
        for _ in range(ATTEMPTS):
            try:
                await self.client.update(entity_set, record_id, payload, etag=step.etag)
                return done
            except StaleRecord:
                # Changed since the plan: by an earlier run of this plan (a crash, a lost
                # answer) when it already holds what this step writes, else by someone else.
                if await self.already_written(step, row):
                    return "already as planned"
                raise StaleStep(f"{step.address} changed in the target since the plan") from None
            except NotFound:
                raise StaleStep(f"{step.address} was deleted since the plan") from None
            except OutcomeUnknown:
                if step.etag is None:
                    continue  # no condition: sending it again is harmless
                current = await self.read(step, row)
                if current is None:
                    raise StaleStep(f"{step.address} was deleted since the plan") from None
                if current.get("@odata.etag") == step.etag:
                    continue  # the write never landed
                if self.written(step, row, current):
                    return done
                raise StaleStep(f"{step.address} changed in the target since the plan") from None
        raise StepFailed(f"{step.address}: no answer to the update after {ATTEMPTS} attempts")

    async def delete(self, step: Step) -> str:
        entity_set, record_id = step.table.entity_set, step.change.id
        for _ in range(ATTEMPTS):
            try:
                await self.client.delete(entity_set, record_id, etag=step.etag)
                return "deleted"
            except NotFound:
                return "already gone"
            except StaleRecord:
                raise StaleStep(f"{step.address} changed in the target since the plan") from None
            except OutcomeUnknown:
                current = await self.read(step, {})
                if current is None:
                    return "deleted"
                if step.etag is not None and current.get("@odata.etag") != step.etag:
                    raise StaleStep(
                        f"{step.address} changed in the target since the plan"
                    ) from None
        raise StepFailed(f"{step.address}: no answer to the delete after {ATTEMPTS} attempts")

    # -- settling a lost answer ----------------------------------------------------------------

    async def read(self, step: Step, row: Row) -> Row | None:
        table = step.table
        secret = _secret_columns(step)
        select = [table.primary_key, *(c for c in row if c not in secret)]
        try:
            return await self.client.get(table.entity_set, step.change.id, select=select)
        except NotFound:
            return None

    async def already_written(self, step: Step, row: Row) -> bool:
        """The record holds what ``row`` writes. Never for a write of a secret: a secret
        cannot be read back to tell."""
        if _secret_columns(step) & set(row):
            return False
        current = await self.read(step, row)
        return current is not None and self.written(step, row, current)

    @staticmethod
    def written(step: Step, row: Row, current: Row) -> bool:
        """``current`` holds what ``row`` writes (secret columns cannot be compared)."""
        secret = _secret_columns(step)
        return all(
            _same(value, current.get(column))
            for column, value in row.items()
            if column not in secret
        )
