"""Checks across documents: names, references, channel rules, product limits and policy.

Every check adds diagnostics and goes on, so one run reports every problem it can see.
Messages start with the manifest path of the value they are about (``spec.rules[2].routeTo:``),
as schema errors do.

Documents with schema errors are checked too, as rebuilt from their valid parts
(``validate/partial.py``): a check that concludes from something missing (a page an account
does not list, a rule without ``routeTo``, percentages that do not add up) first asks whether
that part was left out (``unreadable``), so a schema error is never reported again as another
problem.
"""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from reconciler import kinds
from reconciler.diagnostics import (
    Diagnostic,
    Severity,
    article,
    did_you_mean,
    error,
    warning,
)
from reconciler.kinds.base import attribute
from reconciler.manifest.document import Document
from reconciler.manifest.yaml_loader import PathKey
from reconciler.mapping import conditions
from reconciler.mapping import rulegrammar as g
from reconciler.models import limits
from reconciler.models.accounts import FacebookAccountSpec, GoogleBusinessMessagesAccountSpec
from reconciler.models.automated import CHAT_ONLY, AutomatedMessageSpec, MessageChannel
from reconciler.models.project import Project, RetiredChannelPolicy
from reconciler.models.queue import QueueSpec, QueueType
from reconciler.models.routing import (
    CONTEXT_FIELDS,
    CONVERSATION_CONTEXT,
    VARIABLE_CONTEXT,
    AllOf,
    AnyOf,
    Condition,
    Leaf,
    NotOf,
    RouteTo,
    RoutingRuleSetSpec,
    RuleSetType,
    Scalar,
)
from reconciler.models.workstream import Channel, DistributionMode, VariableType, WorkstreamSpec
from reconciler.validate.model_errors import format_path
from reconciler.validate.partial import is_unreadable

RETIRED_CHANNEL = "retired-channel"
POLICY_CODES = frozenset({RETIRED_CHANNEL})
"""Diagnostics refused by policy rather than by the manifests' shape (exit code 3)."""

Path = tuple[str | int, ...]


def _leaves(condition: Condition, path: Path) -> Iterator[tuple[Leaf, Path]]:
    if isinstance(condition, Leaf):
        yield condition, path
    elif isinstance(condition, AllOf):
        for index, item in enumerate(condition.all):
            yield from _leaves(item, (*path, "all", index))
    elif isinstance(condition, AnyOf):
        for index, item in enumerate(condition.any):
            yield from _leaves(item, (*path, "any", index))
    elif isinstance(condition, NotOf):
        yield from _leaves(condition.not_, (*path, "not"))


@dataclass
class _Checker:
    documents: list[Document]
    project: Project
    today: datetime.date
    invalid: set[tuple[str, str]]
    left_out: dict[int, tuple[PathKey, ...]] = field(default_factory=dict)
    """Paths left out of rebuilt documents, by ``id`` of the document."""
    out: list[Diagnostic] = field(default_factory=list)
    by_kind: dict[str, dict[str, Document]] = field(default_factory=lambda: defaultdict(dict))

    def __post_init__(self) -> None:
        for document in self.documents:
            self.by_kind[document.kind].setdefault(document.name, document)

    # -- helpers ---------------------------------------------------------------------------

    def unreadable(self, document: Document, *path: str | int) -> bool:
        """Whether a schema error left (part of) the value at ``path`` out of ``document``:
        what it holds is unknown, so nothing is concluded from its absence."""
        return is_unreadable(self.left_out.get(id(document), ()), path)

    def fail(self, code: str, document: Document, path: Path, message: str) -> None:
        """An error about the value at ``path``, written ``spec.x[0].y: message``."""
        self.out.append(error(code, f"{format_path(path)}: {message}", document.at(*path)))

    def present(self, kind: str) -> Iterator[Document]:
        return (d for d in self.documents if d.kind == kind and d.manifest.present)

    def resolve(self, source: Document, kind: str, name: str, path: Path) -> Document | None:
        """The present document ``name`` of ``kind`` that ``source`` refers to at ``path``."""
        target = self.by_kind[kind].get(name)
        if target is None and (kind, name) in self.invalid:
            return None  # it exists; its own errors are reported where it is written
        if target is None:
            message = f"no {kind} named '{name}' in the manifests"
            message += did_you_mean(name, self.by_kind[kind])
            self.fail("dangling-reference", source, path, message)
            return None
        if not target.manifest.present:
            self.fail(
                "reference-to-absent",
                source,
                path,
                f"{kind} '{name}' is marked 'ensure: absent' ({target.at('metadata', 'ensure')}) "
                "but is still referenced here",
            )
            return None
        return target

    def messaging_queue(self, source: Document, path: Path, name: str) -> None:
        """``name`` must be a present Queue of type messaging."""
        queue = self.resolve(source, "Queue", name, path)
        spec = queue.manifest.spec if queue is not None else None
        if isinstance(spec, QueueSpec) and spec.type is not QueueType.MESSAGING:
            self.fail(
                "queue-not-messaging",
                source,
                path,
                f"Queue '{name}' is a {spec.type} queue; messaging workstreams can only use "
                "messaging queues",
            )

    def unique(self, document: Document, key: str, names: list[str], noun: str, where: str) -> None:
        """Names of children (pages, agents, rules) are unique within their parent."""
        first: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in first:
                self.fail(
                    f"duplicate-{noun}-name",
                    document,
                    ("spec", key, index, "name"),
                    f"{noun} name '{name}' is used twice in this {where} "
                    f"(first at {document.at('spec', key, first[name], 'name')})",
                )
            else:
                first[name] = index

    # -- checks ----------------------------------------------------------------------------

    def run(self) -> list[Diagnostic]:
        self.unique_names()
        self.unique_ids()
        self.previous_names()
        self.accounts()
        self.workstreams()
        self.rule_sets()
        self.automated_messages()
        self.retired_channel()
        return self.out

    def automated_messages(self) -> None:
        """A message's workstream is of its channel; a trigger of live chat only is not for
        Facebook; a workstream that sends no automated messages would not send it. Then the
        refusal: no manifest of the kind can be applied yet (docs/automated-messages.md)."""
        for document in (d for d in self.documents if d.kind == "AutomatedMessage"):
            spec = document.manifest.spec
            if isinstance(spec, AutomatedMessageSpec) and document.manifest.present:
                self.automated_message(document, spec)
            self.fail(
                "automated-message-not-writable",
                document,
                ("kind",),
                "AutomatedMessage cannot be applied yet: no public source shows how a real "
                "org stores a custom message's text per language (the msdyn_oclocalizationdata "
                "rows) or names the channel instance it is for (msdyn_instanceid), and the "
                "reconciler writes nothing no real org was seen to hold. "
                "docs/automated-messages.md says what is known and how to help settle it",
            )

    def automated_message(self, document: Document, spec: AutomatedMessageSpec) -> None:
        if spec.channel is MessageChannel.FACEBOOK and spec.trigger.value in CHAT_ONLY:
            self.fail(
                "trigger-not-for-channel",
                document,
                ("spec", "trigger"),
                f"{spec.trigger.value} applies to live chat (and voice) channels only, not "
                "to facebook",
            )
        if spec.workstream is None:
            return
        path: Path = ("spec", "workstream")
        workstream = self.resolve(document, "Workstream", spec.workstream, path)
        stream = workstream.manifest.spec if workstream is not None else None
        if workstream is None or not isinstance(stream, WorkstreamSpec):
            return
        if stream.channel.value != spec.channel.value:
            self.fail(
                "message-channel-mismatch",
                document,
                path,
                f"Workstream '{spec.workstream}' serves {stream.channel.value}, not "
                f"{spec.channel.value}: a message is for a workstream of its channel",
            )
        elif not stream.automated_messages:
            self.out.append(
                warning(
                    "automated-messages-off",
                    f"spec.workstream: Workstream '{spec.workstream}' has automatedMessages: "
                    f"false ({workstream.at('spec', 'automatedMessages')}), so it sends no "
                    "automated message, this one included",
                    document.at(*path),
                )
            )

    def unique_names(self) -> None:
        for document in self.documents:
            first = self.by_kind[document.kind][document.name]
            if first is not document:
                self.fail(
                    "duplicate-name",
                    document,
                    ("metadata", "name"),
                    f"{document.kind} '{document.name}' is defined twice "
                    f"(first at {first.at('metadata', 'name')})",
                )

    def unique_ids(self) -> None:
        seen: dict[str, Document] = {}
        for document in self.documents:
            record_id = document.manifest.metadata.id
            if record_id is None:
                continue
            if record_id in seen:
                other = seen[record_id]
                self.fail(
                    "duplicate-id",
                    document,
                    ("metadata", "id"),
                    f"{record_id} is also the id of {other.manifest.address} "
                    f"({other.at('metadata', 'id')})",
                )
            else:
                seen[record_id] = document

    def previous_names(self) -> None:
        """A rename names a record that is no longer in the manifests, and one record only."""
        claimed: dict[tuple[str, str], tuple[Document, int]] = {}
        for document in self.documents:
            if not document.manifest.present and document.manifest.metadata.previous_names:
                self.fail(
                    "previous-names-absent",
                    document,
                    ("metadata", "previousNames"),
                    "a record 'ensure: absent' deletes is not renamed: to delete the record "
                    "of an old name, write that name (metadata.name) with 'ensure: absent'",
                )
                continue
            for index, old in enumerate(document.manifest.metadata.previous_names):
                path = ("metadata", "previousNames", index)
                other = self.by_kind[document.kind].get(old)
                if old == document.name:
                    self.fail(
                        "previous-name-is-name",
                        document,
                        path,
                        f"'{old}' is this {document.kind}'s own name, not a previous one",
                    )
                elif other is not None:
                    self.fail(
                        "previous-name-in-use",
                        document,
                        path,
                        f"{document.kind} '{old}' is still in the manifests "
                        f"({other.at('metadata', 'name')}); a record can be renamed only from a "
                        "name no manifest uses",
                    )
                elif (document.kind, old) in claimed:
                    first, at = claimed[(document.kind, old)]
                    self.fail(
                        "duplicate-previous-name",
                        document,
                        path,
                        f"{document.kind} '{old}' is also named as a previous name of "
                        f"'{first.name}' ({first.at('metadata', 'previousNames', at)}); one "
                        "record cannot become two",
                    )
                else:
                    claimed[(document.kind, old)] = (document, index)

    def accounts(self) -> None:
        page_ids: dict[str, tuple[Document, str, Path]] = {}
        for document in self.present("FacebookAccount"):
            spec = document.manifest.spec
            assert isinstance(spec, FacebookAccountSpec)
            self.unique(document, "pages", [p.name for p in spec.pages], "page", "account")
            for index, page in enumerate(spec.pages):
                path: Path = ("spec", "pages", index, "pageId")
                if page.page_id in page_ids:
                    owner, owner_page, owner_path = page_ids[page.page_id]
                    self.fail(
                        "facebook-page-id-reused",
                        document,
                        path,
                        f"Facebook page ID {page.page_id} is already used by page '{owner_page}' "
                        f"of FacebookAccount '{owner.name}' ({owner.at(*owner_path)}); a page "
                        "belongs to one account",
                    )
                else:
                    page_ids[page.page_id] = (document, page.name, path)
                if page.token_rotated_on is not None:
                    self.token_age(document, index, page.token_rotated_on)
        for document in self.present("GoogleBusinessMessagesAccount"):
            gbm = document.manifest.spec
            assert isinstance(gbm, GoogleBusinessMessagesAccountSpec)
            self.unique(document, "agents", [a.name for a in gbm.agents], "agent", "account")

    def token_age(self, document: Document, index: int, rotated: datetime.date) -> None:
        path: Path = ("spec", "pages", index, "tokenRotatedOn")
        due = rotated + datetime.timedelta(days=limits.FACEBOOK_TOKEN_MAX_AGE_DAYS)
        age = (self.today - rotated).days
        if age < 0:
            self.fail("token-date-in-future", document, path, f"{rotated} is in the future")
        elif age > limits.FACEBOOK_TOKEN_MAX_AGE_DAYS:
            self.fail(
                "token-expired",
                document,
                path,
                f"the page access token was rotated {age} days ago; Facebook page tokens must "
                f"be refreshed every {limits.FACEBOOK_TOKEN_MAX_AGE_DAYS} days (due {due}). "
                "Rotate it and update tokenRotatedOn",
            )
        elif (due - self.today).days <= limits.FACEBOOK_TOKEN_WARN_DAYS:
            self.out.append(
                warning(
                    "token-expiring",
                    f"{format_path(path)}: the page access token is due for its "
                    f"{limits.FACEBOOK_TOKEN_MAX_AGE_DAYS}-day refresh on {due} "
                    f"(in {(due - self.today).days} days)",
                    document.at(*path),
                )
            )

    def workstreams(self) -> None:
        instances: dict[tuple[str, str, str], tuple[Document, Path]] = {}
        for document in self.present("Workstream"):
            spec = document.manifest.spec
            assert isinstance(spec, WorkstreamSpec)
            self.messaging_queue(document, ("spec", "fallbackQueue"), spec.fallback_queue)
            if spec.distribution.agent_affinity and spec.distribution.mode is DistributionMode.PICK:
                self.fail(
                    "affinity-needs-push",
                    document,
                    ("spec", "distribution", "agentAffinity"),
                    "agent affinity needs distribution.mode push; pick-mode workstreams cannot "
                    "keep it",
                )
            self.channel(document, spec, instances)
            for index, profile in enumerate(spec.distribution.capacity.profiles or ()):
                path: Path = ("spec", "distribution", "capacity", "profiles", index)
                self.resolve(document, "CapacityProfile", profile, path)
            for name, kind in spec.context_variables.items():
                if kind.value not in g.VARIABLE_TYPES:
                    self.fail(
                        "variable-type-not-written",
                        document,
                        ("spec", "contextVariables", name),
                        f"{kind} context variables cannot be written: no real org was seen to "
                        "hold how a contract declares one (docs/routing-xml.md); use "
                        + ", ".join(g.VARIABLE_TYPES),
                    )

    def channel(
        self,
        document: Document,
        spec: WorkstreamSpec,
        instances: dict[tuple[str, str, str], tuple[Document, Path]],
    ) -> None:
        """The channel block matches ``channel`` and names a free page or agent."""
        wanted = spec.channel.block
        blocks = {
            channel.block: getattr(spec, attribute(type(spec), channel.block))
            for channel in kinds.CHANNELS
        }
        wrong = [block for block, value in blocks.items() if value is not None and block != wanted]
        for block in wrong:
            advice = "remove it" if blocks[wanted] is not None else f"use a {wanted} block instead"
            self.fail(
                "channel-mismatch",
                document,
                ("spec", block),
                f"does not belong in a workstream with channel {spec.channel}; {advice}",
            )
        settings = blocks[wanted]
        channel = kinds.BY_BLOCK[wanted]
        if settings is None:
            if not wrong and not self.unreadable(document, "spec", wanted):
                self.fail(
                    "channel-mismatch",
                    document,
                    ("spec", "channel"),
                    f"channel {spec.channel} needs a {wanted} block with its channel settings",
                )
            return
        if channel.account is None:  # the workstream brings its instance (a chat widget)
            return
        owner_kind, account, child, noun = (
            channel.account,
            settings.account,
            getattr(settings, channel.child),
            channel.child,
        )
        owner = self.resolve(document, owner_kind, account, ("spec", wanted, "account"))
        if owner is None:
            return
        owner_spec = owner.manifest.spec
        listed = kinds.BY_KIND[owner_kind].children_key or ""
        children = [c.name for c in getattr(owner_spec, listed, None) or []]
        path: Path = ("spec", wanted, noun)
        if child not in children:
            if self.unreadable(owner, "spec", f"{noun}s"):
                return
            message = f"{owner_kind} '{account}' has no {noun} named '{child}'"
            self.fail("dangling-reference", document, path, message + did_you_mean(child, children))
            return
        key = (owner_kind, account, child)
        if key in instances:
            other, other_path = instances[key]
            self.fail(
                "channel-instance-reused",
                document,
                path,
                f"{noun} '{child}' of {owner_kind} '{account}' already serves Workstream "
                f"'{other.name}' ({other.at(*other_path)}); {article(noun)} serves one "
                "workstream",
            )
        else:
            instances[key] = (document, path)

    def rule_sets(self) -> None:
        per_workstream: dict[str, Counter[RuleSetType]] = defaultdict(Counter)
        for document in self.present("RoutingRuleSet"):
            spec = document.manifest.spec
            assert isinstance(spec, RoutingRuleSetSpec)
            workstream = self.resolve(
                document, "Workstream", spec.workstream, ("spec", "workstream")
            )
            per_workstream[spec.workstream][spec.type] += 1
            route = spec.type is RuleSetType.ROUTE_TO_QUEUE
            allowed = limits.MAX_ROUTE_TO_QUEUE_SETS if route else limits.MAX_CLASSIFICATION_SETS
            if per_workstream[spec.workstream][spec.type] > allowed:
                self.fail(
                    "too-many-route-sets" if route else "too-many-classification-sets",
                    document,
                    ("spec", "type"),
                    f"Workstream '{spec.workstream}' already has {allowed} {spec.type} rule "
                    f"set{'s' if allowed > 1 else ''}, the most it may have",
                )
            if len(spec.rules) > limits.MAX_RULES_PER_SET:
                self.fail(
                    "too-many-rules",
                    document,
                    ("spec", "rules"),
                    f"{len(spec.rules)} rules; a rule set holds at most {limits.MAX_RULES_PER_SET}",
                )
            self.unique(document, "rules", [r.name for r in spec.rules], "rule", "rule set")
            ws_ok = workstream is not None and isinstance(workstream.manifest.spec, WorkstreamSpec)
            self.rules(document, spec, workstream if ws_ok else None)

    def rules(
        self, document: Document, spec: RoutingRuleSetSpec, workstream: Document | None
    ) -> None:
        """Each rule's shape, conditions and outputs (``workstream``: its Workstream, if
        found, with a ``WorkstreamSpec``)."""
        for index, rule in enumerate(spec.rules):
            at: Path = ("spec", "rules", index)
            if spec.type is RuleSetType.ROUTE_TO_QUEUE:
                if rule.set_ is not None:
                    self.fail(
                        "rule-shape",
                        document,
                        (*at, "set"),
                        "belongs to classification rules; route-to-queue rules use routeTo",
                    )
                if rule.route_to is not None:
                    self.route_to(document, (*at, "routeTo"), rule.route_to)
                elif not self.unreadable(document, *at, "routeTo"):
                    self.fail("rule-shape", document, at, "a route-to-queue rule needs routeTo")
            else:
                if rule.route_to is not None:
                    self.fail(
                        "rule-shape",
                        document,
                        (*at, "routeTo"),
                        "belongs to route-to-queue rules; classification rules use 'set'",
                    )
                if not rule.set_ and not self.unreadable(document, *at, "set"):
                    self.fail(
                        "rule-shape",
                        document,
                        at,
                        "a classification rule needs 'set' with at least one output",
                    )
            if rule.when is not None:
                self.condition(document, rule.when, (*at, "when"), workstream)
            if rule.set_ and spec.type is RuleSetType.CLASSIFICATION:
                self.outputs(document, rule.set_, (*at, "set"), workstream)

    def route_to(self, document: Document, at: Path, route: RouteTo) -> None:
        if isinstance(route, str):
            self.messaging_queue(document, at, route)
            return
        if len(route) > limits.MAX_ALLOCATION_QUEUES:
            self.fail(
                "allocation-too-many-queues",
                document,
                at,
                f"{len(route)} queues; a percentage allocation splits over at most "
                f"{limits.MAX_ALLOCATION_QUEUES}",
            )
        total = sum(share.percent for share in route)
        if total != 100 and not self.unreadable(document, *at):
            message = f"percentages add up to {total}; they must add up to 100"
            self.fail("allocation-sum", document, at, message)
        seen: set[str] = set()
        for position, share in enumerate(route):
            share_at = (*at, position, "queue")
            if share.queue in seen:
                self.fail(
                    "allocation-duplicate-queue",
                    document,
                    share_at,
                    f"Queue '{share.queue}' appears twice in the allocation",
                )
            seen.add(share.queue)
            self.messaging_queue(document, share_at, share.queue)

    def condition(
        self,
        document: Document,
        condition: Condition,
        path: Path,
        workstream: Document | None,
    ) -> None:
        """Operators that can be written, fields the workstream has, values that fit."""
        dumped = condition.model_dump(mode="json", by_alias=True, exclude_none=True)
        for op_path, written, op in conditions.unwritable(dumped, path):
            what = op if op == written else f"{written} under not (that is, {op})"
            self.fail(
                "operator-not-written",
                document,
                op_path,
                f"{what} cannot be written: no real org was seen to hold its spelling in rule "
                f"XML (docs/routing-xml.md); use one of {g.WRITABLE}",
            )
        if workstream is None:
            return
        assert isinstance(workstream.manifest.spec, WorkstreamSpec)
        channel = workstream.manifest.spec.channel
        for leaf, leaf_path in _leaves(condition, path):
            context, _, name = leaf.field.partition(".")
            if context in CONTEXT_FIELDS and context != channel.block:
                self.fail(
                    "condition-field-channel",
                    document,
                    (*leaf_path, "field"),
                    f"{leaf.field} is not available in a {channel} workstream; use "
                    f"{channel.block}.*, context.* or conversation.* fields",
                )
            elif context == VARIABLE_CONTEXT:
                kind = self.variable(document, (*leaf_path, "field"), name, workstream)
                at: Path = (*leaf_path, "value")
                if kind is None or leaf.value is None:
                    continue
                if isinstance(leaf.value, list):
                    for index, item in enumerate(leaf.value):
                        self.fits(document, (*at, index), name, kind, item)
                else:
                    self.fits(document, at, name, kind, leaf.value)

    def outputs(
        self,
        document: Document,
        outputs: dict[str, Scalar],
        path: Path,
        workstream: Document | None,
    ) -> None:
        if workstream is None:
            return
        for key, value in outputs.items():
            if key.startswith(f"{CONVERSATION_CONTEXT}."):
                continue
            kind = self.variable(document, (*path, key), key, workstream)
            if kind is not None:
                self.fits(document, (*path, key), key, kind, value)

    def variable(
        self, document: Document, path: Path, name: str, workstream: Document
    ) -> VariableType | None:
        """The type of context variable ``name`` of ``workstream``, or an error."""
        spec = workstream.manifest.spec
        assert isinstance(spec, WorkstreamSpec)
        kind = spec.context_variables.get(name)
        if kind is None and not self.unreadable(workstream, "spec", "contextVariables", name):
            declared = spec.context_variables
            message = (
                f"the workstream has no context variable {name!r}; declare it in its "
                "contextVariables" + did_you_mean(name, declared)
            )
            self.fail("unknown-context-variable", document, path, message)
        return kind

    def fits(
        self, document: Document, path: Path, name: str, kind: VariableType, value: Scalar
    ) -> None:
        """Rule XML holds values as text: any value fits a text variable."""
        fits = (
            kind is VariableType.TEXT
            or (kind is VariableType.BOOLEAN and isinstance(value, bool))
            or (
                kind is VariableType.NUMBER
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            )
        )
        if not fits:
            self.fail(
                "context-variable-type",
                document,
                path,
                f"{value!r} is not a {kind} value, and context variable {name!r} is {kind}",
            )

    def retired_channel(self) -> None:
        policy = self.project.policy.retired_channels
        severity = Severity.ERROR if policy is RetiredChannelPolicy.ERROR else Severity.WARNING
        suffix = " (refused by policy.retiredChannels: error)" if severity is Severity.ERROR else ""
        day = limits.GBM_RETIRED_ON
        retired = f"Google's Business Messages was retired on {day.day} {day:%B %Y}"
        for document in self.present("GoogleBusinessMessagesAccount"):
            message = (
                f"{retired}; GoogleBusinessMessagesAccount '{document.name}' can no longer "
                f"carry conversations (deleting it with 'ensure: absent' always works; "
                f"{MOVING_OFF}){suffix}"
            )
            self.out.append(Diagnostic(severity, RETIRED_CHANNEL, message, document.at("kind")))
        for document in self.present("Workstream"):
            spec = document.manifest.spec
            if (
                isinstance(spec, WorkstreamSpec)
                and spec.channel is Channel.GOOGLE_BUSINESS_MESSAGES
            ):
                message = (
                    f"{retired}; move Workstream '{document.name}' to another channel "
                    f"({MOVING_OFF}){suffix}"
                )
                where = document.at("spec", "channel")
                self.out.append(Diagnostic(severity, RETIRED_CHANNEL, message, where))


MOVING_OFF = "docs/moving-off-google-business-messages.md shows how, to live chat"


def check(
    documents: Iterable[Document],
    project: Project,
    today: datetime.date,
    invalid: Iterable[tuple[str, str]] = (),
    unreadable: Iterable[tuple[Document, tuple[PathKey, ...]]] = (),
) -> list[Diagnostic]:
    """Every cross-document problem in ``documents``.

    ``invalid`` names documents that failed validation: references to them are not dangling
    (unless ``documents`` holds them, rebuilt from their valid parts). ``unreadable`` names
    the rebuilt documents among ``documents``, each with the paths its schema errors left out.
    """
    left_out = {id(document): paths for document, paths in unreadable}
    return _Checker(list(documents), project, today, set(invalid), left_out).run()
