"""Read what the target holds: one paged, ``$select``-ed query per table, never one per record.

The reads run concurrently. A read that fails fails the whole snapshot: a table that could not
be read is never taken for an empty one (a plan would then create or delete wrongly).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.dataverse import DataverseClient
from reconciler.dataverse import tables as t
from reconciler.mapping.kinds import KINDS, QUEUE, QUEUE_OUTPUT, RecordKind
from reconciler.state import ledger as ledger_

Row = dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """The target's rows by table, and what the mapping needs to resolve lookups."""

    rows: Mapping[str, tuple[Row, ...]]  # by record kind name
    languages: Mapping[str, str] = field(default_factory=dict)  # locale code → id
    output_contract: str | None = None
    organization_id: str | None = None
    requests: int = 0
    ledger: ledger_.Ledger | None = None
    """The namespace's ledger (``exists`` False when the target has none); None when not
    read (export)."""
    users: Mapping[str, str] = field(default_factory=dict)
    """Sign-in names by user id (``systemuser.domainname``), when read: a queue's members."""


def _filter(kind: RecordKind) -> str | None:
    # Only Omnichannel queues: an org's email and case queues are not ours to look at.
    return "msdyn_isomnichannelqueue eq true" if kind is QUEUE else None


async def _read(client: DataverseClient, kind: RecordKind) -> tuple[str, tuple[Row, ...]]:
    select = list(kind.select)
    if kind is QUEUE:
        select.append("msdyn_isdefaultqueue")
    elif kind.table.logical_name == t.CONTRACT:
        select.append("msdyn_uniquename")
    rows = await client.list(
        kind.table.entity_set, select=select, filter=_filter(kind), expand=kind.expand or None
    )
    return kind.name, tuple(rows)


async def read_users(client: DataverseClient) -> dict[str, str]:
    """Every user's sign-in name by id: one paged query (SYSUSER in
    reconciler.dataverse.tables: ``domainname``, the "User Name")."""
    table = t.TABLES[t.SYSTEM_USER]
    rows = await client.list(table.entity_set, select=[table.primary_key, "domainname"])
    return {
        str(row[table.primary_key]): row["domainname"]
        for row in rows
        if isinstance(row.get("domainname"), str) and row["domainname"]
    }


async def _no_users() -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Context:
    """What writing needs besides the plan: the target's languages and its own contract."""

    languages: Mapping[str, str]
    output_contract: str | None
    organization_id: str


def _languages(rows: list[Row]) -> dict[str, str]:
    key = t.TABLES[t.LANGUAGE].primary_key
    return {
        r["msdyn_localecode"]: r[key] for r in rows if isinstance(r.get("msdyn_localecode"), str)
    }


async def _language_rows(client: DataverseClient) -> list[Row]:
    language = t.TABLES[t.LANGUAGE]
    return await client.list(language.entity_set, select=[language.primary_key, "msdyn_localecode"])


async def read_context(client: DataverseClient) -> Context:
    """Languages, the output contract and who we are: three requests."""
    contract = t.TABLES[t.CONTRACT]
    languages, contracts, whoami = await asyncio.gather(
        _language_rows(client),
        client.list(
            contract.entity_set,
            select=[contract.primary_key],
            filter=f"msdyn_uniquename eq '{QUEUE_OUTPUT}'",
        ),
        client.who_am_i(),
    )
    return Context(
        languages=_languages(languages),
        output_contract=contracts[0][contract.primary_key] if contracts else None,
        organization_id=whoami.organization_id,
    )


async def _no_ledger() -> None:
    return None


async def read_snapshot(
    client: DataverseClient, namespace: uuid.UUID | None = None, *, users: bool = True
) -> Snapshot:
    """Every managed table, the languages, who we are, (given a namespace) its ledger and
    (``users``: when members are planned or exported) the users, in O(tables) requests."""
    before = client.stats.total
    tables, languages, whoami, ledger, user_names = await asyncio.gather(
        asyncio.gather(*(_read(client, kind) for kind in KINDS)),
        _language_rows(client),
        client.who_am_i(),
        ledger_.read(client, namespace) if namespace is not None else _no_ledger(),
        read_users(client) if users else _no_users(),
    )
    rows = dict(tables)
    contract_key = t.TABLES[t.CONTRACT].primary_key
    output = next(
        (
            r[contract_key]
            for r in rows["DecisionContract"]
            if r.get("msdyn_uniquename") == QUEUE_OUTPUT
        ),
        None,
    )
    return Snapshot(
        rows=rows,
        languages=_languages(languages),
        output_contract=output,
        organization_id=whoami.organization_id,
        requests=client.stats.total - before,
        ledger=ledger,
        users=user_names,
    )
