"""Checks across documents: names, references, channel rules, product limits and policy.

Every check adds diagnostics and goes on, so one run reports every problem it can see.
"""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from reconciler.diagnostics import (
    Diagnostic,
    Location,
    Severity,
    did_you_mean,
    error,
    warning,
)
from reconciler.manifest.document import Document
from reconciler.models import limits
from reconciler.models.accounts import FacebookAccountSpec, GoogleBusinessMessagesAccountSpec
from reconciler.models.manifest import (
    FacebookAccountManifest,
    GoogleBusinessMessagesAccountManifest,
    QueueManifest,
    RoutingRuleSetManifest,
    WorkstreamManifest,
)
from reconciler.models.project import Project, RetiredChannelPolicy
from reconciler.models.queue import QueueType
from reconciler.models.routing import (
    CONTEXT_FIELDS,
    AllOf,
    AnyOf,
    Condition,
    Leaf,
    NotOf,
    RuleSetType,
)
from reconciler.models.workstream import Channel, DistributionMode, WorkstreamSpec

RETIRED_CHANNEL = "retired-channel"
"""Diagnostics refused by policy rather than by the manifests' shape (exit code 3)."""
POLICY_CODES = frozenset({RETIRED_CHANNEL})


Path = tuple[str | int, ...]


def _leaves(condition: Condition, path: Path) -> Iterator[tuple[Leaf, Path]]:
    if isinstance(condition, Leaf):
        yield condition, path
    elif isinstance(condition, AllOf | AnyOf):
        key = "all" if isinstance(condition, AllOf) else "any"
        items = condition.all if isinstance(condition, AllOf) else condition.any
        for index, item in enumerate(items):
            yield from _leaves(item, (*path, key, index))
    elif isinstance(condition, NotOf):
        yield from _leaves(condition.not_, (*path, "not"))


@dataclass
class _Checker:
    documents: list[Document]
    project: Project
    today: datetime.date
    invalid: set[tuple[str, str]]

    def __post_init__(self) -> None:
        self.out: list[Diagnostic] = []
        self.by_kind: dict[str, dict[str, Document]] = defaultdict(dict)
        for document in self.documents:
            self.by_kind[document.kind].setdefault(document.name, document)

    # -- helpers ---------------------------------------------------------------------------

    def error(self, code: str, message: str, where: Location) -> None:
        self.out.append(error(code, message, where))

    def present(self, kind: str) -> Iterator[Document]:
        return (d for d in self.documents if d.kind == kind and d.manifest.present)

    def resolve(self, source: Document, kind: str, name: str, *path: str | int) -> Document | None:
        """The document ``name`` of ``kind`` that ``source`` refers to at ``path``."""
        target = self.by_kind[kind].get(name)
        where = source.at(*path)
        field = ".".join(str(p) for p in path[1:])
        if target is None and (kind, name) in self.invalid:
            return None  # it exists; its own errors are reported where it is written
        if target is None:
            message = f"{field}: no {kind} named '{name}' in the manifests" + did_you_mean(
                name, self.by_kind[kind]
            )
            self.error("dangling-reference", message, where)
            return None
        if not target.manifest.present:
            self.error(
                "reference-to-absent",
                f"{field}: {kind} '{name}' is marked 'ensure: absent' "
                f"({target.at('metadata', 'ensure')}) but is still referenced here",
                where,
            )
            return None
        return target

    # -- checks ----------------------------------------------------------------------------

    def run(self) -> list[Diagnostic]:
        self.unique_names()
        self.unique_ids()
        self.accounts()
        self.workstreams()
        self.rule_sets()
        self.retired_channel()
        return self.out

    def unique_names(self) -> None:
        for document in self.documents:
            first = self.by_kind[document.kind][document.name]
            if first is not document:
                self.error(
                    "duplicate-name",
                    f"{document.kind} '{document.name}' is defined twice "
                    f"(first at {first.at('metadata', 'name')})",
                    document.at("metadata", "name"),
                )

    def unique_ids(self) -> None:
        seen: dict[str, Document] = {}
        for document in self.documents:
            record_id = document.manifest.metadata.id
            if record_id is None:
                continue
            if record_id in seen:
                self.error(
                    "duplicate-id",
                    f"metadata.id {record_id} is also used by {seen[record_id].manifest.address} "
                    f"({seen[record_id].at('metadata', 'id')})",
                    document.at("metadata", "id"),
                )
            else:
                seen[record_id] = document

    def accounts(self) -> None:
        page_ids: dict[str, tuple[Document, str, Location]] = {}
        for document in self.present("FacebookAccount"):
            assert isinstance(document.manifest, FacebookAccountManifest)
            spec = document.manifest.spec
            assert isinstance(spec, FacebookAccountSpec)
            self.unique_children(document, "pages", [p.name for p in spec.pages], "page")
            for index, page in enumerate(spec.pages):
                where = document.at("spec", "pages", index, "pageId")
                if page.page_id in page_ids:
                    owner, owner_page, owner_at = page_ids[page.page_id]
                    self.error(
                        "facebook-page-id-reused",
                        f"Facebook page ID {page.page_id} is already used by page '{owner_page}' "
                        f"of FacebookAccount '{owner.name}' ({owner_at}); a page belongs to one "
                        "account",
                        where,
                    )
                else:
                    page_ids[page.page_id] = (document, page.name, where)
                if page.token_rotated_on is not None:
                    self.token_age(document, index, page.name, page.token_rotated_on)
        for document in self.present("GoogleBusinessMessagesAccount"):
            gbm = document.manifest.spec
            assert isinstance(gbm, GoogleBusinessMessagesAccountSpec)
            self.unique_children(document, "agents", [a.name for a in gbm.agents], "agent")

    def unique_children(self, document: Document, key: str, names: list[str], noun: str) -> None:
        first: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in first:
                self.error(
                    f"duplicate-{noun}-name",
                    f"{noun} name '{name}' is used twice in this account "
                    f"(first at {document.at('spec', key, first[name], 'name')})",
                    document.at("spec", key, index, "name"),
                )
            else:
                first[name] = index

    def token_age(self, document: Document, index: int, page: str, rotated: datetime.date) -> None:
        where = document.at("spec", "pages", index, "tokenRotatedOn")
        due = rotated + datetime.timedelta(days=limits.FACEBOOK_TOKEN_MAX_AGE_DAYS)
        age = (self.today - rotated).days
        if age < 0:
            self.error(
                "token-date-in-future",
                f"page '{page}': tokenRotatedOn {rotated} is in the future",
                where,
            )
        elif age > limits.FACEBOOK_TOKEN_MAX_AGE_DAYS:
            self.error(
                "token-expired",
                f"page '{page}': the page access token was rotated {age} days ago; Facebook page "
                f"tokens must be refreshed every {limits.FACEBOOK_TOKEN_MAX_AGE_DAYS} days "
                f"(due {due}). Rotate it and update tokenRotatedOn",
                where,
            )
        elif (due - self.today).days <= limits.FACEBOOK_TOKEN_WARN_DAYS:
            self.out.append(
                warning(
                    "token-expiring",
                    f"page '{page}': the page access token is due for its "
                    f"{limits.FACEBOOK_TOKEN_MAX_AGE_DAYS}-day refresh on {due} "
                    f"(in {(due - self.today).days} days)",
                    where,
                )
            )

    def workstreams(self) -> None:
        instances: dict[tuple[str, str, str], Document] = {}
        for document in self.present("Workstream"):
            assert isinstance(document.manifest, WorkstreamManifest)
            spec = document.manifest.spec
            assert spec is not None
            fallback = self.resolve(document, "Queue", spec.fallback_queue, "spec", "fallbackQueue")
            if fallback is not None:
                self.messaging_queue(
                    fallback, document.at("spec", "fallbackQueue"), "fallbackQueue"
                )
            if spec.distribution.agent_affinity and spec.distribution.mode is DistributionMode.PICK:
                self.error(
                    "affinity-needs-push",
                    "distribution.agentAffinity needs distribution.mode push; pick-mode "
                    "workstreams cannot keep agent affinity",
                    document.at("spec", "distribution", "agentAffinity"),
                )
            self.channel_block(document, instances)

    def channel_block(
        self, document: Document, instances: dict[tuple[str, str, str], Document]
    ) -> None:
        assert isinstance(document.manifest, WorkstreamManifest)
        spec = document.manifest.spec
        assert spec is not None
        blocks = {
            "facebook": spec.facebook,
            "googleBusinessMessages": spec.google_business_messages,
        }
        wanted = spec.channel.block
        for block, value in blocks.items():
            if value is not None and block != wanted:
                self.error(
                    "channel-mismatch",
                    f"a {block} block does not belong in a workstream with channel "
                    f"{spec.channel}; use a {wanted} block",
                    document.at("spec", block),
                )
        if blocks[wanted] is None:
            self.error(
                "channel-mismatch",
                f"channel {spec.channel} needs a {wanted} block with its channel settings",
                document.at("spec", "channel"),
            )
            return
        if spec.facebook is not None and wanted == "facebook":
            account_kind, account, child, noun = (
                "FacebookAccount",
                spec.facebook.account,
                spec.facebook.page,
                "page",
            )
        elif spec.google_business_messages is not None:
            account_kind, account, child, noun = (
                "GoogleBusinessMessagesAccount",
                spec.google_business_messages.account,
                spec.google_business_messages.agent,
                "agent",
            )
        else:  # pragma: no cover - the block was checked above
            return
        owner = self.resolve(document, account_kind, account, "spec", wanted, "account")
        if owner is None:
            return
        owner_spec = owner.manifest.spec
        children = [
            c.name
            for c in (
                owner_spec.pages
                if isinstance(owner_spec, FacebookAccountSpec)
                else owner_spec.agents
                if isinstance(owner_spec, GoogleBusinessMessagesAccountSpec)
                else []
            )
        ]
        where = document.at("spec", wanted, noun)
        if child not in children:
            message = f"{wanted}.{noun}: {account_kind} '{account}' has no {noun} named '{child}'"
            message += did_you_mean(child, children)
            self.error("dangling-reference", message, where)
            return
        key = (account_kind, account, child)
        if key in instances:
            other = instances[key]
            self.error(
                "channel-instance-reused",
                f"{noun} '{child}' of {account_kind} '{account}' already serves Workstream "
                f"'{other.name}' ({other.at('spec', wanted, noun)}); a {noun} serves one "
                "workstream",
                where,
            )
        else:
            instances[key] = document

    def messaging_queue(self, queue: Document, where: Location, field: str) -> None:
        assert isinstance(queue.manifest, QueueManifest)
        spec = queue.manifest.spec
        if spec is not None and spec.type is not QueueType.MESSAGING:
            self.error(
                "queue-not-messaging",
                f"{field}: Queue '{queue.name}' is a {spec.type} queue; messaging workstreams "
                "can only use messaging queues",
                where,
            )

    def rule_sets(self) -> None:
        per_workstream: dict[str, Counter[RuleSetType]] = defaultdict(Counter)
        for document in self.present("RoutingRuleSet"):
            assert isinstance(document.manifest, RoutingRuleSetManifest)
            spec = document.manifest.spec
            assert spec is not None
            workstream = self.resolve(document, "Workstream", spec.workstream, "spec", "workstream")
            per_workstream[spec.workstream][spec.type] += 1
            count = per_workstream[spec.workstream][spec.type]
            allowed = (
                limits.MAX_ROUTE_TO_QUEUE_SETS
                if spec.type is RuleSetType.ROUTE_TO_QUEUE
                else limits.MAX_CLASSIFICATION_SETS
            )
            if count > allowed:
                code = (
                    "too-many-route-sets"
                    if spec.type is RuleSetType.ROUTE_TO_QUEUE
                    else "too-many-classification-sets"
                )
                self.error(
                    code,
                    f"Workstream '{spec.workstream}' already has {allowed} {spec.type} rule "
                    f"set{'s' if allowed > 1 else ''}; at most {allowed} allowed",
                    document.at("spec", "type"),
                )
            if len(spec.rules) > limits.MAX_RULES_PER_SET:
                self.error(
                    "too-many-rules",
                    f"rules: {len(spec.rules)} rules; a rule set holds at most "
                    f"{limits.MAX_RULES_PER_SET}",
                    document.at("spec", "rules"),
                )
            channel = None
            if workstream is not None:
                assert isinstance(workstream.manifest, WorkstreamManifest)
                channel = workstream.manifest.spec.channel if workstream.manifest.spec else None
            self.rules(document, spec.type, channel)

    def rules(self, document: Document, kind: RuleSetType, channel: Channel | None) -> None:
        assert isinstance(document.manifest, RoutingRuleSetManifest)
        spec = document.manifest.spec
        assert spec is not None
        names: dict[str, int] = {}
        for index, rule in enumerate(spec.rules):
            at = ("spec", "rules", index)
            if rule.name in names:
                self.error(
                    "duplicate-rule-name",
                    f"rule name '{rule.name}' is used twice in this rule set "
                    f"(first at {document.at(*at[:2], names[rule.name], 'name')})",
                    document.at(*at, "name"),
                )
            else:
                names[rule.name] = index
            if kind is RuleSetType.ROUTE_TO_QUEUE:
                if rule.set_ is not None:
                    self.error(
                        "rule-shape",
                        "route-to-queue rules route with routeTo; 'set' belongs to "
                        "classification rules",
                        document.at(*at, "set"),
                    )
                if rule.route_to is None:
                    self.error(
                        "rule-shape",
                        f"rule '{rule.name}': a route-to-queue rule needs routeTo",
                        document.at(*at),
                    )
                else:
                    self.route_to(document, index, rule.route_to)
            else:
                if rule.route_to is not None:
                    self.error(
                        "rule-shape",
                        "classification rules set outputs with 'set'; routeTo belongs to "
                        "route-to-queue rules",
                        document.at(*at, "routeTo"),
                    )
                if not rule.set_:
                    self.error(
                        "rule-shape",
                        f"rule '{rule.name}': a classification rule needs 'set' with at least "
                        "one output",
                        document.at(*at),
                    )
            if channel is not None:
                self.condition_fields(document, rule.when, (*at, "when"), channel)

    def route_to(self, document: Document, index: int, route: object) -> None:
        at = ("spec", "rules", index, "routeTo")
        if isinstance(route, str):
            queue = self.resolve(document, "Queue", route, *at)
            if queue is not None:
                self.messaging_queue(queue, document.at(*at), "routeTo")
            return
        assert isinstance(route, list)
        if len(route) > limits.MAX_ALLOCATION_QUEUES:
            self.error(
                "allocation-too-many-queues",
                f"routeTo: {len(route)} queues; a percentage allocation splits over at most "
                f"{limits.MAX_ALLOCATION_QUEUES}",
                document.at(*at),
            )
        total = sum(share.percent for share in route)
        if total != 100:
            self.error(
                "allocation-sum",
                f"routeTo: percentages add up to {total}; they must add up to 100",
                document.at(*at),
            )
        seen: set[str] = set()
        for position, share in enumerate(route):
            if share.queue in seen:
                self.error(
                    "allocation-duplicate-queue",
                    f"routeTo: Queue '{share.queue}' appears twice in the allocation",
                    document.at(*at, position, "queue"),
                )
            seen.add(share.queue)
            queue = self.resolve(document, "Queue", share.queue, *at, position, "queue")
            if queue is not None:
                self.messaging_queue(queue, document.at(*at, position, "queue"), "routeTo")

    def condition_fields(
        self, document: Document, condition: Condition, path: Path, channel: Channel
    ) -> None:
        for leaf, leaf_path in _leaves(condition, path):
            context = leaf.field.split(".", 1)[0]
            if context in CONTEXT_FIELDS and context != channel.block:
                self.error(
                    "condition-field-channel",
                    f"{leaf.field} is not available in a {channel} workstream; use "
                    f"{channel.block}.* or conversation.* fields",
                    document.at(*leaf_path, "field"),
                )

    def retired_channel(self) -> None:
        policy = self.project.policy.retired_channels
        severity = Severity.ERROR if policy is RetiredChannelPolicy.ERROR else Severity.WARNING
        suffix = " (refused by policy.retiredChannels: error)" if severity is Severity.ERROR else ""
        day = limits.GBM_RETIRED_ON
        retired = f"Google's Business Messages was retired on {day.day} {day:%B %Y}"
        for document in self.present("GoogleBusinessMessagesAccount"):
            assert isinstance(document.manifest, GoogleBusinessMessagesAccountManifest)
            self.out.append(
                Diagnostic(
                    severity,
                    RETIRED_CHANNEL,
                    f"{retired}; GoogleBusinessMessagesAccount '{document.name}' can no longer "
                    f"carry conversations (deleting it with 'ensure: absent' always works){suffix}",
                    document.at("kind"),
                )
            )
        for document in self.present("Workstream"):
            spec = document.manifest.spec
            if (
                isinstance(spec, WorkstreamSpec)
                and spec.channel is Channel.GOOGLE_BUSINESS_MESSAGES
            ):
                self.out.append(
                    Diagnostic(
                        severity,
                        RETIRED_CHANNEL,
                        f"{retired}; move Workstream '{document.name}' to another channel{suffix}",
                        document.at("spec", "channel"),
                    )
                )


def check(
    documents: Iterable[Document],
    project: Project,
    today: datetime.date,
    invalid: Iterable[tuple[str, str]] = (),
) -> list[Diagnostic]:
    """Every cross-document problem in ``documents``.

    ``invalid`` names documents that failed validation: references to them are not dangling.
    """
    return _Checker(list(documents), project, today, set(invalid)).run()
