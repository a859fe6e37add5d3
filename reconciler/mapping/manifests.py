"""Records in manifest terms → manifest documents (the way back; ``export`` builds on it).

Each manifest kind is assembled from its records: an account from its row and its pages or
agents, a workstream from its row and the channel instance that serves it (whose channel
settings live on the page or agent). Routing records (contracts, routing configurations,
steps) are not written: planning derives them again. Values equal to a manifest default are
left out, and every secret becomes a ``fromEnv`` reference to a variable named by ``secret_name``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.mapping import kinds as k
from reconciler.mapping.values import Fields, Sensitive, Value
from reconciler.models.common import API_VERSION


@dataclass(frozen=True)
class Found:
    """A record read from the target, in manifest terms."""

    kind: k.RecordKind
    address: str
    fields: Fields
    adopt: str | None = None
    """The row's id, written as ``metadata.id`` (a record the project's namespace did not make)."""

    @property
    def name(self) -> str:
        return self.address.split("/")[1]


@dataclass
class Assembled:
    documents: list[dict[str, Any]] = field(default_factory=list)
    secrets: dict[str, Sensitive] = field(default_factory=dict)
    """Variable name → the value it must hold for a plan of the documents to show no change."""
    holders: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Variable name → the address and field path of the secret it holds."""


SecretName = Callable[[str, str], str]
"""(address, field path) → the environment variable a fromEnv reference names."""


def env_name(address: str, path: str) -> str:
    """``FACEBOOKACCOUNT_CONTOSO_SUPPORT_ACCESSTOKEN``: ASCII letters, digits and ``_`` only."""
    text = unicodedata.normalize("NFKD", f"{address}/{path}").encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()


class _Assembler:
    def __init__(self, found: Sequence[Found], secret_name: SecretName) -> None:
        self.found = found
        self.secret_name = secret_name
        self.out = Assembled()
        self.references: list[tuple[dict[str, str], Found, str, Sensitive]] = []

    def of(self, kind: k.RecordKind) -> list[Found]:
        return [f for f in self.found if f.kind is kind]

    def secret(self, record: Found, path: str) -> dict[str, str] | None:
        value = record.fields.get(path)
        if not isinstance(value, Sensitive):
            return None
        reference = {"fromEnv": self.secret_name(record.address, path)}
        self.references.append((reference, record, path, value))
        return reference

    def name_secrets(self) -> None:
        """Give each secret its variable. Names two secrets share ("Store A" and "Store-A"
        read alike) all get a suffix of their own, so a variable never comes to hold another
        record's secret when a look-alike appears."""
        holders: dict[str, set[str]] = {}
        for reference, record, path, _ in self.references:
            holders.setdefault(reference["fromEnv"], set()).add(f"{record.address}/{path}")
        for reference, record, path, value in self.references:
            name = reference["fromEnv"]
            if len(holders[name]) > 1:
                owner = f"{record.address}/{path}"
                name += "_" + hashlib.sha256(owner.encode()).hexdigest()[:8].upper()
                reference["fromEnv"] = name
            self.out.secrets[name] = value
            self.out.holders[name] = (record.address, path)

    def keep(self, record: Found, spec: dict[str, Any], *paths: str) -> None:
        """Copy fields whose value is not the manifest's default."""
        for path in paths:
            value = record.fields.get(path)
            if value is not None and value != k.default_value(record.kind, path):
                spec[path.rsplit(".", 1)[-1]] = value

    def document(self, kind: str, record: Found, spec: dict[str, Any]) -> None:
        if spec.get("displayName") == record.name:
            del spec["displayName"]
        metadata = {"name": record.name}
        if record.adopt is not None:
            metadata["id"] = record.adopt
        self.out.documents.append(
            {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}
        )

    def build(self) -> Assembled:
        for queue in self.of(k.QUEUE):
            spec: dict[str, Any] = {}
            self.keep(
                queue,
                spec,
                "displayName",
                "type",
                "priority",
                "assignment",
                "visibility",
                "maxSize",
                "description",
            )
            self.document("Queue", queue, spec)
        for account in self.of(k.FACEBOOK_ACCOUNT):
            pages = [
                {
                    "name": page.fields["name"],
                    "pageId": page.fields["pageId"],
                    "accessToken": self.secret(page, "accessToken"),
                }
                for page in self.children(k.FACEBOOK_PAGE, account.name)
            ]
            spec = {
                "displayName": account.fields["displayName"],
                "applicationId": account.fields["applicationId"],
                "applicationSecret": self.secret(account, "applicationSecret"),
                "pages": pages,
            }
            self.document("FacebookAccount", account, spec)
        for partner in self.of(k.GBM_ACCOUNT):
            agents = []
            for agent in self.children(k.GBM_AGENT, partner.name):
                item = {key: agent.fields[key] for key in ("name", "agentId", "brandId")}
                token = self.secret(agent, "clientToken")
                agents.append(item if token is None else {**item, "clientToken": token})
            spec = {
                "displayName": partner.fields["displayName"],
                "partnerId": partner.fields["partnerId"],
                "clientToken": self.secret(partner, "clientToken"),
                "serviceAccountKey": self.secret(partner, "serviceAccountKey"),
                "agents": agents,
            }
            self.document("GoogleBusinessMessagesAccount", partner, spec)
        for workstream in self.of(k.WORKSTREAM):
            self.document("Workstream", workstream, self.workstream(workstream))
        for rule_set in self.of(k.RULE_SET):
            fields = rule_set.fields
            spec = {
                "displayName": fields["displayName"],
                "workstream": fields["workstream"],
                "type": fields["type"],
                "rules": fields.get("rules") or [],
            }
            self.document("RoutingRuleSet", rule_set, spec)
        self.name_secrets()
        return self.out

    def children(self, kind: k.RecordKind, account: str) -> list[Found]:
        return [f for f in self.of(kind) if f.fields.get("account") == account]

    def workstream(self, record: Found) -> dict[str, Any]:
        fields = record.fields
        distribution: dict[str, Any] = {"mode": fields["distribution.mode"]}
        units = fields.get("distribution.capacity.units")
        if units:
            distribution["capacity"] = {"units": units}
        self.keep(record, distribution, "distribution.maxConcurrency", "distribution.agentAffinity")
        spec: dict[str, Any] = {
            "displayName": fields["displayName"],
            "channel": fields["channel"],
            "fallbackQueue": fields["fallbackQueue"],
            "distribution": distribution,
        }
        self.keep(record, spec, "autoCloseAfterInactivity", "allowedPresences", "automatedMessages")
        if fields.get("contextVariables"):
            spec["contextVariables"] = fields["contextVariables"]
        block, instance_kind, child = (
            ("facebook", k.FACEBOOK_PAGE, "page")
            if fields["channel"] == "facebook"
            else ("googleBusinessMessages", k.GBM_AGENT, "agent")
        )
        for instance in self.of(instance_kind):
            if instance.fields.get("workstream") == record.name:
                spec[block] = self.channel(instance, block, child)
                break
        return spec

    def channel(self, instance: Found, block: str, child: str) -> dict[str, Any]:
        fields = instance.fields
        settings: dict[str, Any] = {
            "account": fields["account"],
            child: fields["name"],
            "language": fields[f"{block}.language"],
        }
        attachments: dict[str, Value] = {}
        for side in ("customer", "agent"):
            if fields.get(f"{block}.fileAttachments.{side}"):
                attachments[side] = True
        if attachments:
            settings["fileAttachments"] = attachments
        extra = "humanAgentMessageTag" if block == "facebook" else "agentOverride"
        if fields.get(f"{block}.{extra}"):
            settings[extra] = True
        return settings


def to_manifests(found: Sequence[Found], secret_name: SecretName = env_name) -> Assembled:
    """Manifest documents (plain data, as YAML would hold them) for the records ``found``."""
    return _Assembler(found, secret_name).build()
