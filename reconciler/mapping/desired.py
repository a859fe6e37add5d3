"""Manifests → the records they describe, in manifest terms (secrets resolved by the caller).

One manifest gives one record, plus what its kind brings: children (pages, agents, a chat
widget) and, for workstreams and rule sets, their place in the routing chain (contract, routing
configuration, steps). Each kind's module says how (``reconciler.kinds``); this module only
walks the documents. A channel instance's settings come from the workstream it serves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from reconciler.kinds import BY_KIND, BY_WORD, Channel
from reconciler.kinds.base import RecordKind, attribute
from reconciler.kinds.routing import rule_json
from reconciler.manifest.document import Document
from reconciler.mapping.records import Record
from reconciler.mapping.values import Sensitive, Value
from reconciler.models.common import FromEnv, FromFile

__all__ = ["SecretLookup", "desired_records", "rule_json"]

SecretLookup = Callable[[FromEnv | FromFile, Document, tuple[str | int, ...]], Sensitive | None]
"""Resolves a secret reference written at a path of a document (None when it cannot)."""


class _Builder:
    def __init__(self, documents: Sequence[Document], secret: SecretLookup) -> None:
        self.documents = documents
        self.secret = secret
        self.records: list[Record] = []
        self.memo: dict[str, Any] = {}
        self.users: dict[tuple[str, str, str], Document] = {}
        for document in documents:
            spec = document.manifest.spec
            if not document.manifest.present or document.kind != "Workstream" or spec is None:
                continue
            for channel in BY_WORD.values():
                block = getattr(spec, attribute(type(spec), channel.block), None)
                if channel.account is not None and block is not None:
                    name = getattr(block, channel.child)
                    self.users[(channel.word, block.account, name)] = document

    def add(
        self,
        kind: RecordKind,
        document: Document,
        address: str,
        fields: dict[str, Value],
        **kw: Any,
    ) -> None:
        manifest = document.manifest
        # A renamed record's children and routing records were under its previous names too.
        own = manifest.address
        previous = tuple(
            old + address.removeprefix(own)
            for old in manifest.previous_addresses
            if address == own or address.startswith(own + "/")
        )
        self.records.append(
            Record(
                kind,
                address,
                fields,
                present=manifest.present,
                where=functools.partial(document.at, "metadata", "name"),
                at=document.at,
                previous=previous,
                **kw,
            )
        )

    def resolve(self, ref: Any, document: Document, *path: str | int) -> Sensitive | None:
        return None if ref is None else self.secret(ref, document, ("spec", *path))

    def serving(self, channel: Channel, account: str, child: str) -> Document | None:
        """The workstream whose block names this account's page or agent."""
        return self.users.get((channel.word, account, child))

    def build(self) -> list[Record]:
        for document in self.documents:
            manifest = document.manifest
            address = manifest.address
            kind = BY_KIND[manifest.KIND]
            spec = manifest.spec
            if spec is None or not manifest.present:
                # ensure: absent needs no spec and no secrets: its children go with it.
                self.add(kind.record, document, address, {}, adopt=manifest.metadata.id)
                for derived, suffix in kind.derived_when_absent:
                    self.add(derived, document, f"{address}/{suffix}", {}, parent=address)
                continue
            fields = kind.desired(self, document, spec)
            self.add(kind.record, document, address, fields, adopt=manifest.metadata.id)
        return self.records


def desired_records(documents: Sequence[Document], secret: SecretLookup) -> list[Record]:
    """Every record the manifests describe, present or absent, in document order."""
    return _Builder(documents, secret).build()
