"""Which saved plans were applied already: ``apply --plan`` run again says so instead of
reporting the steps the first run made as stale.

A plan's own writes make it stale (each update carries the ETag read at plan time), and a
secret cannot be read back to tell "written as planned" from "changed since"; so the target
keeps a short record instead, next to the ledger and the same way (docs/ownership.md): one
**note** (``annotation``, MicrosoftDocs/powerapps-docs
``powerapps-docs/developer/data-platform/reference/entities/annotation.md``) per namespace,
its id derived from the namespace, its text a header line and one line per applied plan,
newest first, the last ``KEPT`` of them::

    reconciler-applied/1 namespace=<uuid>
    <plan identity> <applied at, UTC>

A plan's identity (``Plan.identity``) covers the time it was made, so a new plan of the same
changes is never taken for an applied one; with ``RECONCILER_PLAN_KEY`` it is an HMAC under the
key, so a note written by someone without the key names no plan a pipeline will apply. Apply
reads the note only after a saved plan passed every check (signature, target, organization).

Only complete applies are noted (a partial one is finished by running it again). The note is
written with ``If-Match`` (or ``If-None-Match: *`` when new) and merged again when another run
changed it, like the ledger's pages; a note that cannot be written never fails an apply that
went through, it only makes a repeated apply report what it finds.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from reconciler.dataverse import DataverseClient
from reconciler.dataverse import tables as t
from reconciler.dataverse.errors import AlreadyExists, DataverseError, NotFound, StaleRecord

TABLE = t.TABLES[t.ANNOTATION]
FORMAT = "reconciler-applied/1"
KEPT = 200
"""Plans remembered per namespace: a pipeline applying a plan a day remembers half a year; a
plan older than that was stale long ago anyway."""
ATTEMPTS = 4


def note_id(namespace: uuid.UUID) -> str:
    return str(uuid.uuid5(namespace, "reconciler-applied"))


def subject(namespace: uuid.UUID) -> str:
    """What an admin sees in the list of notes (not the ledger's title: ``ledger.read`` lists
    notes by that prefix)."""
    return f"reconciler applied plans {namespace} (written by reconciler apply; do not edit)"


def _parse(text: str, namespace: uuid.UUID) -> dict[str, str]:
    lines = text.splitlines()
    if not lines or lines[0] != f"{FORMAT} namespace={namespace}":
        return {}
    applied: dict[str, str] = {}
    for line in lines[1:]:
        identity, _, when = line.partition(" ")
        if identity.startswith(("sha256:", "hmac-sha256:")) and when:
            applied.setdefault(identity, when)
    return applied


def _text(namespace: uuid.UUID, applied: dict[str, str]) -> str:
    lines = [f"{FORMAT} namespace={namespace}"]
    lines += [f"{identity} {when}" for identity, when in list(applied.items())[:KEPT]]
    return "\n".join(lines)


@dataclass(frozen=True)
class Noted:
    """The note as read: the plans applied (identity → when, newest first) and its ETag
    (None: no note yet)."""

    applied: dict[str, str]
    etag: str | None = None


async def read(client: DataverseClient, namespace: uuid.UUID) -> Noted:
    try:
        row = await client.get(TABLE.entity_set, note_id(namespace), select=["notetext"])
    except NotFound:
        return Noted({})
    return Noted(_parse(str(row.get("notetext") or ""), namespace), row.get("@odata.etag"))


async def note(
    client: DataverseClient,
    namespace: uuid.UUID,
    identity: str,
    noted: Noted | None = None,
    now: datetime.datetime | None = None,
) -> bool:
    """Note the plan as applied (over ``noted``, the note as read before, when given); False
    when the note could not be written."""
    when = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for _ in range(ATTEMPTS):
        try:
            noted = noted or await read(client, namespace)
            text = _text(namespace, {identity: when, **noted.applied})
            if noted.etag is None:
                body = {"subject": subject(namespace), "notetext": text}
                await client.create_only(TABLE.entity_set, note_id(namespace), body)
            else:
                await client.update(
                    TABLE.entity_set, note_id(namespace), {"notetext": text}, etag=noted.etag
                )
            return True
        except (AlreadyExists, StaleRecord):
            noted = None  # another run wrote it in between: read and merge again
        except DataverseError:
            return False
    return False
