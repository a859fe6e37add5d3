"""Records in manifest terms → manifest documents (the way back; ``export`` builds on it).

Each manifest kind assembles its documents from its records (its module's ``assemble``: an
account from its row and its pages or agents); a workstream gets the block of the channel
instance that serves it (the channel's ``block_of``: a page's settings, a widget's). Routing
records (contracts, routing configurations, steps) are not written: planning derives them
again. Values equal to a manifest default are left out, and every secret becomes a ``fromEnv``
reference to a variable named by ``secret_name``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.kinds import BY_KIND, BY_WORD, CHANNELS, MANIFEST_KINDS
from reconciler.kinds.base import RecordKind
from reconciler.mapping.values import Fields, Sensitive
from reconciler.models.common import API_VERSION


@dataclass(frozen=True)
class Found:
    """A record read from the target, in manifest terms."""

    kind: RecordKind
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

    def of(self, kind: RecordKind) -> list[Found]:
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
        for kind in MANIFEST_KINDS:
            for record in self.of(kind.record):
                spec = kind.assemble(self, record)
                if kind is BY_KIND["Workstream"]:
                    self.channel_block(record, spec)
                self.document(kind.name, record, spec)
        self.name_secrets()
        return self.out

    def children(self, kind: RecordKind, parent: str, column: str = "account") -> list[Found]:
        return [f for f in self.of(kind) if f.fields.get(column) == parent]

    def channel_block(self, workstream: Found, spec: dict[str, Any]) -> None:
        """The block of the channel serving the workstream, from its instance's fields."""
        channel = BY_WORD.get(str(workstream.fields["channel"]), CHANNELS[0])
        for instance in self.children(channel.instance, workstream.name, "workstream"):
            spec[channel.block] = channel.block_of(instance, self)
            break


def to_manifests(found: Sequence[Found], secret_name: SecretName = env_name) -> Assembled:
    """Manifest documents (plain data, as YAML would hold them) for the records ``found``."""
    return _Assembler(found, secret_name).build()
