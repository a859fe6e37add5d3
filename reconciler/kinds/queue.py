"""``kind: Queue``: an Omnichannel queue (the ``queue`` table: DEV-Q in
reconciler.dataverse.tables)."""

from __future__ import annotations

from typing import Any

from reconciler.dataverse import tables as t
from reconciler.kinds.base import Assembler, Builder, ManifestKind, RecordKind, manifest_spec
from reconciler.kinds.base import spec_fields as _spec_fields
from reconciler.mapping.fields import members, option, plain
from reconciler.mapping.values import Fields, Value

# Manifest words ↔ option values: msdyn_queuetype, msdyn_assignmentstrategy (DEV-Q; voice is
# UNCONFIRMED, reconciler.dataverse.tables), queueviewtype.
QUEUE_TYPES = {"messaging": 192350000, "record": 192350001, "voice": 192350002}
ASSIGNMENT = {"highest-capacity": 192350000, "round-robin": 192350001, "longest-idle": 192350003}
VISIBILITY = {"public": 0, "private": 1}

QUEUE = RecordKind(
    "Queue",
    t.TABLES[t.QUEUE],
    (
        plain("displayName", "name"),
        option("type", "msdyn_queuetype", QUEUE_TYPES, "messaging", create_only=True),
        # Left out: neither written nor compared, the target's stays.
        plain("priority", "msdyn_priority", keep_unset=True),
        option("assignment", "msdyn_assignmentstrategy", ASSIGNMENT, "highest-capacity"),
        option("visibility", "queueviewtype", VISIBILITY, "public"),
        plain("maxSize", "msdyn_maxqueuesize"),
        plain("description", "description"),
        # Users by sign-in name (t.QUEUE_MEMBERSHIP: the relationship the admin center's "Add
        # users" and ALM's QueueToSystemUserLinkage.ps1 write).
        members("members", t.QUEUE_MEMBERSHIP),
    ),
    on_create=lambda _f, _a, _r: {"msdyn_isomnichannelqueue": True},
    # DEV-Q: every org has its default queues (msdyn_isdefaultqueue); nobody manages them.
    system=lambda row: bool(row.get("msdyn_isdefaultqueue")),
)


def _desired(_b: Builder, document: Any, spec: Any) -> dict[str, Value]:
    return _spec_fields(QUEUE, spec, {"displayName": document.manifest.display_name})


def _assemble(assembler: Assembler, found: Any) -> dict[str, Any]:
    return manifest_spec(found, assembler.secret)


def _cannot_express(fields: Fields) -> str | None:
    """A member whose user the target did not list has no sign-in name to write."""
    unknown = [str(m).strip("<>") for m in fields.get("members") or () if str(m).startswith("<")]
    if unknown:
        return (
            f"a member of it is no user the target holds ({', '.join(unknown)}): no sign-in "
            "name names it"
        )
    return None


KIND = ManifestKind(
    "Queue",
    QUEUE,
    _desired,
    _assemble,
    file="queues.yaml",
    what="queues",
    noun="queue",
    fallback_name="queue",
    cannot_express=_cannot_express,
)
