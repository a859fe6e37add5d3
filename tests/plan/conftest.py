"""Plain-data factories for the planner tests: manifests as dicts, the target as rows.

A ``Scenario`` holds a small project (manifest dicts, the secrets its ``fromEnv`` references
resolve to) and the target's fixed rows (languages, the output contract). ``rows()`` gives the
rows a perfect apply of the manifests would leave; tests mutate the manifests or the rows and
call ``build``. No HTTP, no emulator.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from reconciler.manifest.document import Document
from reconciler.manifest.yaml_loader import SourceDocument
from reconciler.mapping import kinds as k
from reconciler.mapping.desired import SecretLookup, desired_records
from reconciler.mapping.fields import Resolver, Row
from reconciler.mapping.records import Record
from reconciler.mapping.values import Sensitive, record_id
from reconciler.models.common import FromEnv, FromFile
from reconciler.models.manifest import MANIFEST_TYPES
from reconciler.plan.builder import Built, Options, build
from reconciler.state.ledger import Ledger
from reconciler.state.reader import Snapshot

NAMESPACE = uuid.UUID("3b7c1e62-5d0a-4c8e-9f21-6a4d2b8e7c10")
TODAY = datetime.date(2024, 6, 1)
LANGUAGES = {
    "nl-NL": "0a000000-0000-0000-0000-000000000413",
    "en-US": "0a000000-0000-0000-0000-000000000409",
}
OUTPUT_CONTRACT = "0c000000-0000-0000-0000-00000000c0c0"
ORGANIZATION = "0e000000-0000-0000-0000-0000000000e0"
ETAG = 'W/"1"'
MODIFIED = "2024-05-20T10:00:00Z"

SECRETS = {
    "FB_APP_SECRET": "fb-app-secret-7f3a9c",
    "FB_TOKEN_SUPPORT": "fb-page-token-support-2d81",
    "FB_TOKEN_DEALS": "fb-page-token-deals-5b07",
    "GBM_CLIENT_TOKEN": "gbm-client-token-91ce",
    "GBM_KEY": "eyJ0eXBlIjoic2VydmljZV9hY2NvdW50In0=",
}


def manifest(kind: str, name: str, spec: dict[str, Any] | None = None, **metadata: Any) -> dict:
    data: dict[str, Any] = {
        "apiVersion": "reconciler.omnichannel/v1",
        "kind": kind,
        "metadata": {"name": name, **metadata},
    }
    if spec is not None:
        data["spec"] = spec
    return data


def when(field: str, op: str, value: Any = None) -> dict[str, Any]:
    leaf = {"field": field, "op": op}
    return leaf if value is None else {**leaf, "value": value}


def project() -> list[dict[str, Any]]:
    """Queues, a Facebook account with two pages, a workstream and two rule sets."""
    return [
        manifest(
            "Queue",
            "general-support",
            {"priority": 10, "description": "Everything no rule sends elsewhere."},
        ),
        manifest(
            "Queue",
            "vip-support",
            {
                "displayName": "VIP support",
                "priority": 1,
                "assignment": "round-robin",
                "visibility": "private",
                "maxSize": 50,
            },
        ),
        manifest("Queue", "dutch-support", {"displayName": "Klantenservice NL", "priority": 5}),
        manifest("Queue", "overflow-support", {"priority": 20}),
        manifest(
            "FacebookAccount",
            "contoso-facebook",
            {
                "displayName": "Contoso Facebook",
                "applicationId": "100000000000001",
                "applicationSecret": {"fromEnv": "FB_APP_SECRET"},
                "pages": [
                    {
                        "name": "Contoso Support",
                        "pageId": "104857600000001",
                        "accessToken": {"fromEnv": "FB_TOKEN_SUPPORT"},
                        "tokenRotatedOn": "2024-05-01",
                    },
                    {
                        "name": "Contoso Deals",
                        "pageId": "104857600000002",
                        "accessToken": {"fromEnv": "FB_TOKEN_DEALS"},
                    },
                ],
            },
        ),
        manifest(
            "Workstream",
            "facebook-support",
            {
                "displayName": "Facebook support",
                "channel": "facebook",
                "fallbackQueue": "general-support",
                "distribution": {
                    "mode": "push",
                    "capacity": {"units": 20},
                    "maxConcurrency": 3,
                    "agentAffinity": True,
                },
                "autoCloseAfterInactivity": "2d",
                "allowedPresences": ["available", "busy"],
                "facebook": {
                    "account": "contoso-facebook",
                    "page": "Contoso Support",
                    "language": "nl-NL",
                    "fileAttachments": {"customer": True, "agent": False},
                    "humanAgentMessageTag": True,
                },
            },
        ),
        manifest(
            "RoutingRuleSet",
            "facebook-support-routing",
            {
                "workstream": "facebook-support",
                "type": "route-to-queue",
                "rules": [
                    {
                        "name": "Known VIP customer",
                        "when": when("facebook.customerName", "equals", "Jan de Vries"),
                        "routeTo": "vip-support",
                    },
                    {
                        "name": "Dutch speakers",
                        "when": {
                            "any": [
                                when("facebook.locale", "contains", "nl"),
                                when("facebook.timezone", "in", ["Europe/Amsterdam"]),
                            ]
                        },
                        "routeTo": "dutch-support",
                    },
                    {
                        "name": "Spread the rest",
                        "when": when("facebook.userPageScopedId", "isNotNull"),
                        "routeTo": [
                            {"queue": "general-support", "percent": 70},
                            {"queue": "overflow-support", "percent": 30},
                        ],
                    },
                ],
            },
        ),
        manifest(
            "RoutingRuleSet",
            "facebook-support-classification",
            {
                "workstream": "facebook-support",
                "type": "classification",
                "rules": [
                    {
                        "name": "Dutch locale",
                        "when": when("facebook.locale", "equals", "nl_NL"),
                        "set": {"language": "Dutch"},
                    }
                ],
            },
        ),
    ]


def gbm_project() -> list[dict[str, Any]]:
    """The retired channel: an account with one agent and the workstream that serves it."""
    return [
        manifest(
            "GoogleBusinessMessagesAccount",
            "contoso-gbm",
            {
                "partnerId": "contoso-partner-01",
                "clientToken": {"fromEnv": "GBM_CLIENT_TOKEN"},
                "serviceAccountKey": {"fromEnv": "GBM_KEY"},
                "agents": [
                    {"name": "Contoso Stores", "agentId": "stores-agent", "brandId": "brand"}
                ],
            },
        ),
        manifest(
            "Workstream",
            "gbm-stores",
            {
                "channel": "google-business-messages",
                "fallbackQueue": "general-support",
                "distribution": {"mode": "pick"},
                "googleBusinessMessages": {
                    "account": "contoso-gbm",
                    "agent": "Contoso Stores",
                    "language": "en-US",
                },
            },
        ),
    ]


def documents(manifests: Iterable[dict[str, Any]]) -> list[Document]:
    out = []
    for index, data in enumerate(manifests):
        model = MANIFEST_TYPES[data["kind"]]
        source = SourceDocument("manifests.yaml", index, data, recorded={})
        out.append(Document(source, model.model_validate(data)))  # type: ignore[arg-type]
    return out


def secret_lookup(env: dict[str, str]) -> SecretLookup:
    def lookup(ref: FromEnv | FromFile, _document: Document, _path: tuple) -> Sensitive | None:
        assert isinstance(ref, FromEnv), "the planner tests resolve secrets from a dict"
        value = env.get(ref.from_env)
        return None if value is None else Sensitive(value, f"env:{ref.from_env}")

    return lookup


def rows_for(
    records: Sequence[Record],
    namespace: uuid.UUID = NAMESPACE,
    languages: dict[str, str] | None = None,
    output_contract: str | None = OUTPUT_CONTRACT,
) -> dict[str, list[Row]]:
    """The rows a perfect apply of ``records`` leaves: read form, with ETag and modifiedon."""
    resolver = Resolver(
        namespace,
        languages=dict(LANGUAGES if languages is None else languages),
        output_contract=output_contract,
    )
    for record in records:
        resolver.add(record.address, record.adopt or record_id(namespace, record.address))
    rows: dict[str, list[Row]] = {kind.name: [] for kind in k.KINDS}
    for record in records:
        if record.present:
            row = record.kind.to_row(record.fields, record.address, resolver)
            rows[record.kind.name].append({**row, "@odata.etag": ETAG, "modifiedon": MODIFIED})
    return rows


def system_rows() -> dict[str, list[Row]]:
    """What every org has and nobody manages: a default queue and the output contract."""
    return {
        "Queue": [
            {
                "queueid": "0d000000-0000-0000-0000-0000000000d1",
                "name": "Default entity queue",
                "msdyn_isdefaultqueue": True,
                "msdyn_priority": 1,
                "@odata.etag": ETAG,
            }
        ],
        "DecisionContract": [
            {
                "msdyn_decisioncontractid": OUTPUT_CONTRACT,
                "msdyn_name": "Queue identification output",
                "msdyn_uniquename": "msdyn_demandqueueidentificationoutput",
                "@odata.etag": ETAG,
            }
        ],
    }


class Scenario:
    """A project (manifest dicts, secrets) and what the target holds besides its rows."""

    def __init__(self, manifests: list[dict[str, Any]]) -> None:
        self.manifests = manifests
        self.env = dict(SECRETS)
        self.namespace = NAMESPACE
        self.languages = dict(LANGUAGES)
        self.output_contract: str | None = OUTPUT_CONTRACT
        self.today = TODAY

    # -- desired ---------------------------------------------------------------------------

    def spec(self, kind: str, name: str) -> dict[str, Any]:
        """The spec of a manifest, to change what is desired."""
        return self.find(kind, name)["spec"]

    def find(self, kind: str, name: str) -> dict[str, Any]:
        return next(
            m for m in self.manifests if m["kind"] == kind and m["metadata"]["name"] == name
        )

    def absent(self, kind: str, name: str) -> None:
        """``ensure: absent`` (without a spec) for a manifest of the project, or a new one."""
        self.manifests = [
            m for m in self.manifests if (m["kind"], m["metadata"]["name"]) != (kind, name)
        ]
        self.manifests.append(manifest(kind, name, ensure="absent"))

    def remove(self, kind: str, name: str) -> None:
        """Drop a manifest from the project (its records stay in the target)."""
        self.manifests.remove(self.find(kind, name))

    def records(self) -> list[Record]:
        return desired_records(documents(self.manifests), secret_lookup(self.env))

    # -- the target ------------------------------------------------------------------------

    def rows(
        self, *, system: bool = True, ids: dict[str, str] | None = None
    ) -> dict[str, list[Row]]:
        """Fresh, mutable rows of a perfect apply of the current manifests (plus the org's
        own rows unless ``system`` is false). ``ids`` gives records made by someone else
        (address → id) the id they have instead of the derived one."""
        records = [
            dataclasses.replace(r, adopt=(ids or {}).get(r.address, r.adopt))
            for r in self.records()
        ]
        rows = rows_for(records, self.namespace, self.languages, self.output_contract)
        if system:
            for kind, extra in system_rows().items():
                rows[kind] = extra + rows[kind]
        return copy.deepcopy(rows)

    def id(self, address: str) -> str:
        return record_id(self.namespace, address)

    def row(self, rows: dict[str, list[Row]], kind: str, address: str) -> Row:
        """The row of ``kind`` with the id derived from ``address``."""
        key = k.BY_NAME[kind].table.primary_key
        return next(row for row in rows[kind] if row[key] == self.id(address))

    def snapshot(
        self, rows: dict[str, list[Row]] | None = None, ledger: Ledger | None = None
    ) -> Snapshot:
        rows = rows if rows is not None else {}
        return Snapshot(
            rows={kind: tuple(found) for kind, found in rows.items()},
            languages=dict(self.languages),
            output_contract=self.output_contract,
            organization_id=ORGANIZATION,
            ledger=ledger,
        )

    def build(
        self,
        rows: dict[str, list[Row]] | None = None,
        *,
        prune: bool = False,
        records: Sequence[Record] | None = None,
        ledger: Ledger | None = None,
    ) -> Built:
        """The plan of the manifests against ``rows``; ``ledger``: the namespace's ledger as
        the target holds it (None: not read, as in tests that predate ledgers)."""
        return build(
            self.records() if records is None else records,
            self.snapshot(rows, ledger),
            Options(namespace=self.namespace, prune=prune, today=self.today),
        )


@pytest.fixture
def scenario() -> Scenario:
    return Scenario(project())


@pytest.fixture
def gbm_scenario() -> Scenario:
    return Scenario(project() + gbm_project())
