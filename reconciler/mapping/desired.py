"""Manifests → the records they describe, in manifest terms (secrets resolved by the caller).

One manifest gives one record, plus its children (pages, agents) and, for workstreams and rule
sets, their place in the routing chain (contract, routing configuration, steps). A page's
channel settings come from the workstream that uses it.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from reconciler.manifest.document import Document
from reconciler.mapping import kinds as k
from reconciler.mapping.conditions import canonical_rule
from reconciler.mapping.records import Record
from reconciler.mapping.values import Sensitive, Value
from reconciler.models.accounts import FacebookAccountSpec, GoogleBusinessMessagesAccountSpec
from reconciler.models.common import FromEnv, FromFile, format_duration
from reconciler.models.queue import QueueSpec
from reconciler.models.routing import RoutingRuleSetSpec, RuleSetType
from reconciler.models.workstream import (
    FacebookSettings,
    GoogleBusinessMessagesSettings,
    WorkstreamSpec,
)

SecretLookup = Callable[[FromEnv | FromFile, Document, tuple[str | int, ...]], Sensitive | None]
"""Resolves a secret reference written at a path of a document (None when it cannot)."""


def rule_json(spec: RoutingRuleSetSpec) -> list[dict[str, Any]]:
    """The rules in the canonical form the rule XML holds (``mapping.conditions``)."""
    return [
        canonical_rule(rule.model_dump(mode="json", by_alias=True, exclude_none=True))
        for rule in spec.rules
    ]


class _Builder:
    def __init__(self, documents: Sequence[Document], secret: SecretLookup) -> None:
        self.documents = documents
        self.secret = secret
        self.records: list[Record] = []
        self.channel_users: dict[tuple[str, str, str], Document] = {}
        self.steps: dict[str, list[Document]] = defaultdict(list)
        for document in documents:
            spec = document.manifest.spec
            if not document.manifest.present:
                continue
            if isinstance(spec, WorkstreamSpec):
                if spec.facebook is not None:
                    key = ("FacebookAccount", spec.facebook.account, spec.facebook.page)
                    self.channel_users[key] = document
                if spec.google_business_messages is not None:
                    gbm = spec.google_business_messages
                    key = ("GoogleBusinessMessagesAccount", gbm.account, gbm.agent)
                    self.channel_users[key] = document
            elif isinstance(spec, RoutingRuleSetSpec):
                self.steps[spec.workstream].append(document)

    def add(
        self,
        kind: k.RecordKind,
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
                previous=previous,
                **kw,
            )
        )

    def build(self) -> list[Record]:
        for document in self.documents:
            manifest = document.manifest
            address = manifest.address
            adopt = manifest.metadata.id
            spec = manifest.spec
            kind = k.BY_NAME[manifest.KIND]
            if spec is None or not manifest.present:
                # ensure: absent needs no spec and no secrets: its children go with it.
                self.add(kind, document, address, {}, adopt=adopt)
                self.derived_absent(document)
                continue
            fields = getattr(self, f"_{kind.name}")(document, spec)
            self.add(kind, document, address, fields, adopt=adopt)
        return self.records

    def derived_absent(self, document: Document) -> None:
        name = document.name
        if document.kind == "Workstream":
            self.add(
                k.CONTRACT, document, f"Workstream/{name}/contract", {}, parent=f"Workstream/{name}"
            )
            self.add(
                k.ROUTING_CONFIGURATION,
                document,
                f"Workstream/{name}/routing",
                {},
                parent=f"Workstream/{name}",
            )
        elif document.kind == "RoutingRuleSet":
            self.add(
                k.ROUTING_STEP,
                document,
                f"RoutingRuleSet/{name}/step",
                {},
                parent=f"RoutingRuleSet/{name}",
            )

    def resolve(self, ref: Any, document: Document, *path: str | int) -> Sensitive | None:
        return None if ref is None else self.secret(ref, document, ("spec", *path))

    def channel_settings(self, owner_kind: str, account: str, child: str) -> dict[str, Value]:
        """A page's or agent's settings, written in the block of the workstream it serves."""
        user = self.channel_users.get((owner_kind, account, child))
        spec = user.manifest.spec if user is not None else None
        facebook = owner_kind == "FacebookAccount"
        block = "facebook" if facebook else "googleBusinessMessages"
        settings: FacebookSettings | GoogleBusinessMessagesSettings | None = None
        if isinstance(spec, WorkstreamSpec):
            settings = spec.facebook if facebook else spec.google_business_messages
        extra, attribute = (
            ("humanAgentMessageTag", "human_agent_message_tag")
            if facebook
            else ("agentOverride", "agent_override")
        )
        attachments = settings.file_attachments if settings is not None else None
        return {
            "workstream": user.name if user is not None else None,
            f"{block}.language": settings.language if settings is not None else None,
            f"{block}.fileAttachments.customer": bool(attachments and attachments.customer),
            f"{block}.fileAttachments.agent": bool(attachments and attachments.agent),
            f"{block}.{extra}": bool(getattr(settings, attribute, False)),
        }

    # -- one method per manifest kind ----------------------------------------------------------

    def _Queue(self, document: Document, spec: QueueSpec) -> dict[str, Value]:
        fields: dict[str, Value] = {
            "displayName": document.manifest.display_name,
            "type": spec.type.value,
            "priority": spec.priority,
            "assignment": spec.assignment.value,
            "visibility": spec.visibility.value,
            "maxSize": spec.max_size,
            "description": spec.description,
        }
        if spec.priority is None:  # neither written nor compared: the target's stays
            del fields["priority"]
        return fields

    def _FacebookAccount(self, document: Document, spec: FacebookAccountSpec) -> dict[str, Value]:
        name = document.name
        for index, page in enumerate(spec.pages):
            fields: dict[str, Value] = {
                "account": name,
                "name": page.name,
                "pageId": page.page_id,
                "accessToken": self.resolve(
                    page.access_token, document, "pages", index, "accessToken"
                ),
                **self.channel_settings("FacebookAccount", name, page.name),
            }
            notes = {"tokenRotatedOn": page.token_rotated_on}
            self.add(
                k.FACEBOOK_PAGE,
                document,
                f"FacebookAccount/{name}/{page.name}",
                fields,
                parent=f"FacebookAccount/{name}",
                notes=notes,
            )
        return {
            "displayName": document.manifest.display_name,
            "applicationId": spec.application_id,
            "applicationSecret": self.resolve(
                spec.application_secret, document, "applicationSecret"
            ),
        }

    def _GoogleBusinessMessagesAccount(
        self, document: Document, spec: GoogleBusinessMessagesAccountSpec
    ) -> dict[str, Value]:
        name = document.name
        for index, agent in enumerate(spec.agents):
            fields: dict[str, Value] = {
                "account": name,
                "name": agent.name,
                "agentId": agent.agent_id,
                "brandId": agent.brand_id,
                "clientToken": self.resolve(
                    agent.client_token, document, "agents", index, "clientToken"
                ),
                **self.channel_settings("GoogleBusinessMessagesAccount", name, agent.name),
            }
            self.add(
                k.GBM_AGENT,
                document,
                f"GoogleBusinessMessagesAccount/{name}/{agent.name}",
                fields,
                parent=f"GoogleBusinessMessagesAccount/{name}",
            )
        return {
            "displayName": document.manifest.display_name,
            "partnerId": spec.partner_id,
            "clientToken": self.resolve(spec.client_token, document, "clientToken"),
            "serviceAccountKey": self.resolve(
                spec.service_account_key, document, "serviceAccountKey"
            ),
        }

    def _Workstream(self, document: Document, spec: WorkstreamSpec) -> dict[str, Value]:
        name = document.name
        parent = f"Workstream/{name}"
        variables = {key: kind.value for key, kind in spec.context_variables.items()}
        self.add(
            k.CONTRACT,
            document,
            f"{parent}/contract",
            {"channel": spec.channel.value, "contextVariables": variables},
            parent=parent,
        )
        for key, kind in variables.items():
            self.add(
                k.CONTEXT_VARIABLE,
                document,
                f"{parent}/{k.CONTEXT_VARIABLE_PREFIX}{key}",
                {"workstream": name, "name": key, "type": kind},
                parent=parent,
            )
        self.add(
            k.ROUTING_CONFIGURATION,
            document,
            f"{parent}/routing",
            {"workstream": name, "active": True},
            parent=parent,
        )
        minutes = spec.auto_close_after_inactivity
        presences = spec.allowed_presences
        return {
            "displayName": document.manifest.display_name,
            "channel": spec.channel.value,
            "fallbackQueue": spec.fallback_queue,
            "distribution.mode": spec.distribution.mode.value,
            "distribution.capacity.units": spec.distribution.capacity.units,
            "distribution.maxConcurrency": spec.distribution.max_concurrency,
            "distribution.agentAffinity": spec.distribution.agent_affinity,
            "autoCloseAfterInactivity": None if minutes is None else format_duration(minutes),
            "allowedPresences": None
            if presences is None
            else [p for p in k.PRESENCES if p in {x.value for x in presences}],
            "automatedMessages": spec.automated_messages,
            "routingContract": name,
        }

    def _RoutingRuleSet(self, document: Document, spec: RoutingRuleSetSpec) -> dict[str, Value]:
        name = document.name
        self.add(
            k.ROUTING_STEP,
            document,
            f"RoutingRuleSet/{name}/step",
            {
                "workstream": spec.workstream,
                "ruleSet": name,
                "order": self.step_order(spec.workstream, name),
                "type": spec.type.value,
            },
            parent=f"RoutingRuleSet/{name}",
        )
        return {
            "displayName": document.manifest.display_name,
            "workstream": spec.workstream,
            "type": spec.type.value,
            "outputContract": spec.workstream
            if spec.type is RuleSetType.CLASSIFICATION
            else k.QUEUE_OUTPUT,
            "rules": rule_json(spec),
        }

    def step_order(self, workstream: str, rule_set: str) -> int:
        """Classification sets run first, in name order; the route-to-queue set runs last."""

        def key(document: Document) -> tuple[bool, str]:
            spec = document.manifest.spec
            assert isinstance(spec, RoutingRuleSetSpec)
            return spec.type is RuleSetType.ROUTE_TO_QUEUE, document.name

        ordered = sorted(self.steps[workstream], key=key)
        return 1 + [d.name for d in ordered].index(rule_set)


def desired_records(documents: Sequence[Document], secret: SecretLookup) -> list[Record]:
    """Every record the manifests describe, present or absent, in document order."""
    return _Builder(documents, secret).build()
