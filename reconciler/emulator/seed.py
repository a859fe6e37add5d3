"""The rows a new Omnichannel org already holds, created once per emulator database.

Ids are random per database, as they differ per real org: code must look these rows up
(languages by locale code, the output contract by unique name), never hard-code their ids.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

from reconciler.dataverse.tables import CONTRACT, LANGUAGE, QUEUE, SYSTEM_USER, TABLES, Table
from reconciler.emulator.records import new_row
from reconciler.emulator.store import Store

LANGUAGES = (
    ("English", "en-US", 1033),
    ("Dutch", "nl-NL", 1043),
    ("German", "de-DE", 1031),
    ("French", "fr-FR", 1036),
    ("Spanish", "es-ES", 3082),
    ("Italian", "it-IT", 1040),
    ("Portuguese (Brazil)", "pt-BR", 1046),
    ("Danish", "da-DK", 1030),
    ("Swedish", "sv-SE", 1053),
    ("Japanese", "ja-JP", 1041),
)
DEFAULT_QUEUES = (
    ("Default messaging queue", 192350000),
    ("Default entity queue", 192350001),
    ("Default voice queue", 192350002),
)
OUTPUT_CONTRACT = "msdyn_demandqueueidentificationoutput"
# UNCONFIRMED: no public export shows this system contract's definition (the ALM solution
# refers to it by unique name only), so the emulator holds the envelope real contracts have
# (docs/routing-xml.md) and nothing it would have to guess. The reconciler never reads it.
_OUTPUT_CONTRACT_XML = '<contract version="1"></contract>'
# The application user the client signs in as (WhoAmI's UserId): a user row like any other.
# .invalid: never a real sign-in name.
APPLICATION_USER = {
    "domainname": "reconciler@emulator.invalid",
    "firstname": "Reconciler",
    "lastname": "Emulator",
    "fullname": "Reconciler Emulator",  # as the service makes it (service.Service._full_name)
}


def populate(store: Store, new_id: Callable[[], str]) -> None:
    """Insert the pre-existing rows and the identity WhoAmI reports (its user a system row)."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    system: list[list[str]] = []

    def add(table: Table, values: dict[str, Any], record_id: str | None = None) -> None:
        record_id = record_id or new_id()
        row = new_row(table, record_id, values)
        row.update(versionnumber=store.next_version(), createdon=now, modifiedon=now)
        store.insert(table, row)
        system.append([table.logical_name, record_id])

    for name, code, locale_id in LANGUAGES:
        add(
            TABLES[LANGUAGE],
            {"msdyn_languagename": name, "msdyn_localecode": code, "msdyn_localeid": locale_id},
        )
    for name, queue_type in DEFAULT_QUEUES:
        add(
            TABLES[QUEUE],
            {
                "name": name,
                "msdyn_isomnichannelqueue": True,
                "msdyn_queuetype": queue_type,
                "msdyn_assignmentstrategy": 192350000,
                "msdyn_isdefaultqueue": True,
            },
        )
    add(
        TABLES[CONTRACT],
        {
            "msdyn_name": "Demand queue identification output",
            "msdyn_uniquename": OUTPUT_CONTRACT,
            "msdyn_contractdefinition": _OUTPUT_CONTRACT_XML,
        },
    )
    for key in ("userid", "businessunitid", "organizationid"):
        store.set_meta(key, new_id())
    add(TABLES[SYSTEM_USER], APPLICATION_USER, store.meta("userid"))
    store.set_meta("system", json.dumps(system))


def is_system(store: Store, table: Table, record_id: str) -> bool:
    return [table.logical_name, record_id] in json.loads(store.meta("system") or "[]")
