"""Every kind of record the reconciler manages: its table and its fields, both ways.

Manifest kinds map to one row each (Queue, FacebookAccount, GoogleBusinessMessagesAccount,
Workstream, RoutingRuleSet); their children and the routing chain are records of their own:

    FacebookAccount/<name>/<page>            FacebookPage (the channel instance)
    GoogleBusinessMessagesAccount/<n>/<a>    GoogleBusinessMessagesAgent
    Workstream/<name>/contract               DecisionContract (one per workstream)
    Workstream/<name>/routing                RoutingConfiguration (one per workstream)
    RoutingRuleSet/<name>/step               RoutingStep (the rule set's place in the routing)

The address is also the key the record's id derives from (``uuid5(namespace, address)``).
``KINDS`` lists them in dependency order: creates run in this order, deletes in reverse.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.dataverse import tables as t
from reconciler.mapping import contractxml, rulexml
from reconciler.mapping import rulegrammar as g
from reconciler.mapping.fields import (
    FieldMap,
    MappingError,
    Resolver,
    Row,
    boolean,
    choices,
    duration,
    language,
    lookup,
    option,
    plain,
    reference,
    secret,
)
from reconciler.mapping.values import Fields, Value, record_id

# Manifest words ↔ option values (docs/domain.md §2).
QUEUE_TYPES = {"messaging": 192350000, "record": 192350001, "voice": 192350002}
ASSIGNMENT = {"highest-capacity": 192350000, "round-robin": 192350001, "longest-idle": 192350003}
VISIBILITY = {"public": 0, "private": 1}
CHANNELS = {"facebook": 192330000, "google-business-messages": 192450001}
DISTRIBUTION = {"push": 192350000, "pick": 192350001}
PRESENCES = {
    "available": 192360000,
    "busy": 192360001,
    "busy-dnd": 192360002,
    "away": 192360003,
    "offline": 192360004,
}
# msdyn_rulesettype (MicrosoftDocs/dynamics-365-customer-engagement ce/developer/reference/
# entities/msdyn_decisionruleset.md @029760a1cac0ed6b102341889b0f7464e1b51ec0). Real orgs write
# 192350000 for route-to-queue and classification sets alike (ALM export); the kind of a set is
# told by its contracts (rule_set_type).
RULE_SET_DECLARATIVE = 192350000
RULE_SET_TYPE_LABELS = {
    192350000: "Declarative",
    192350001: "ML model based",
    192350002: "Dataverse Components",
    192350003: "Intelligent Conversation Distribution",
}
STEP_TYPES = {"classification": 192350000, "route-to-queue": 192350002}
# Columns the manifests do not describe, set once when the reconciler creates a record.
CAPACITY_UNITS = 192350000
DIRECTION_INBOUND = 0
MODE_SIMPLIFIED = 717210001
CONVERSATION_PERSISTENT = 192350001
# msdyn_authoringmode: its one option, "Decision list" (msdyn_decisionruleset.md, as above; the
# ALM export's rule sets hold it).
AUTHORING_MODE = 192350000
CREDENTIAL_FILE_NAME = "service-account.json"


@dataclass(frozen=True)
class RecordKind:
    name: str
    table: t.Table
    fields: tuple[FieldMap, ...]
    on_create: Callable[[Fields, str, Resolver], Row] = lambda _f, _a, _r: {}
    """Columns set once on create that no field describes."""
    parent: str | None = None
    """For children: the lookup column pointing at the record they belong to."""
    child_prefix: str = ""
    """For children: what stands before their name in their address (``context.``)."""

    @property
    def select(self) -> tuple[str, ...]:
        """What one query reads: the key, the name and every field's columns."""
        names = [self.table.primary_key, self.table.primary_name, "modifiedon"]
        names += [column for f in self.fields for column in f.columns]
        if self.parent is not None:
            names.append(lookup(self.parent))
        return tuple(dict.fromkeys(names))

    def field(self, path: str) -> FieldMap:
        return next(f for f in self.fields if f.path == path)

    def from_row(self, row: Row, resolver: Resolver) -> dict[str, Value]:
        """A row in manifest terms."""
        return {f.path: f.read(row, resolver) for f in self.fields}

    def to_row(
        self, fields: Fields, address: str, resolver: Resolver, *, create: bool = True
    ) -> Row:
        """Manifest-term fields as a row; ``create`` adds the columns set once."""
        row: Row = {self.table.primary_key: resolver.id_of(address)}
        if create:
            row.update(self.on_create(fields, address, resolver))
        for f in self.fields:
            if f.path in fields:
                row.update(f.write(fields[f.path], fields, address, resolver))
        return row

    def references(self, fields: Fields) -> list[str]:
        """Addresses of the records these fields point at."""
        found = [f.ref.format(fields[f.path]) for f in self.fields if f.ref and fields.get(f.path)]
        for rule in fields.get("rules") or ():
            route = rule.get("routeTo")
            shares = route if isinstance(route, list) else [{"queue": route}] if route else []
            found += [f"Queue/{share['queue']}" for share in shares]
        return list(dict.fromkeys(found))


# --- rule sets and contracts ------------------------------------------------------------------


class Unreadable(str):
    """A field value the target holds in a form manifests cannot say: planning leaves the
    column as it is and says why (the text), export skips the record with the reason."""

    __slots__ = ()


def rule_set_type(row: Row, resolver: Resolver) -> str | None:
    """A rule set's kind, as real orgs tell it: every set is Declarative (``msdyn_rulesettype``
    192350000); a route-to-queue set writes the org's queue-identification contract, a
    classification set writes the contract it reads (ALM export, ``msdyn_decisionruleset.xml``
    of ``new_9bac…`` and ``new_372c…``; docs/routing-xml.md, "The rule set row")."""
    if row.get("msdyn_rulesettype") != RULE_SET_DECLARATIVE:
        return None
    output = row.get(lookup("msdyn_outputcontractid"))
    if output is not None and output == resolver.output_contract:
        return "route-to-queue"
    if output is not None and output == row.get(lookup("msdyn_inputcontractid")):
        return "classification"
    return None


def _type_field() -> FieldMap:
    columns = (
        "msdyn_rulesettype",
        lookup("msdyn_outputcontractid"),
        lookup("msdyn_inputcontractid"),
    )

    def read(row: Row, resolver: Resolver) -> Value:
        kind = rule_set_type(row, resolver)
        if kind is not None:
            return kind
        number = row.get("msdyn_rulesettype")
        label = RULE_SET_TYPE_LABELS.get(number, f"type {number}") if number else "no type"
        return f"<{label}>"

    def write(_v: Value, _f: Fields, _a: str, _r: Resolver) -> Row:
        return {"msdyn_rulesettype": RULE_SET_DECLARATIVE}

    # Only the type column is compared as written: the contracts are the outputContract's and
    # the workstream's to put right.
    return FieldMap("type", columns, read, write)


def _rules_field() -> FieldMap:
    column = "msdyn_rulesetdefinition"

    def read(row: Row, resolver: Resolver) -> Value:
        xml = row.get(column)
        if not xml:
            return []
        try:
            decoded = rulexml.decode(
                xml, queue_name=lambda queue_id: _name_of(resolver, queue_id, "Queue/")
            )
        except rulexml.RuleXmlError as exc:
            return _legacy_or(xml, Unreadable(str(exc)))
        reasons = [f"rule {name!r}: {why}" for name, why in decoded.unreadable]
        kind = rule_set_type(row, resolver)
        expected = {"route-to-queue": g.HIT_POLICY_ROUTE, "classification": g.HIT_POLICY_CLASSIFY}
        if kind is not None and decoded.hit_policy != expected[kind]:
            reasons.insert(0, f"hit-policy {decoded.hit_policy!r} in a {kind} rule set")
        return _legacy_or(xml, Unreadable("; ".join(reasons))) if reasons else decoded.rules

    def write(value: Value, fields: Fields, address: str, resolver: Resolver) -> Row:
        policy = (
            g.HIT_POLICY_ROUTE if fields.get("type") == "route-to-queue" else g.HIT_POLICY_CLASSIFY
        )
        xml = rulexml.encode(
            value or [],
            hit_policy=policy,
            rule_id=lambda name: _rule_id(resolver, address, name),
            queue_id=lambda name: resolver.id_of(f"Queue/{name}"),
        )
        return {column: xml}

    return FieldMap("rules", (column,), read, write, default=[])


LEGACY = "<written by an earlier version of the reconciler in a spelling no real org holds>"
"""What a rule set or contract the first version wrote reads as: a value the manifest's
differs from, so the plan rewrites it in the real grammar (docs/routing-xml.md)."""


def _legacy_or(xml: str, unreadable: Unreadable) -> Value:
    return LEGACY if rulexml.written_by_an_earlier_version(xml) else unreadable


def _name_of(resolver: Resolver, record_id: str, prefix: str) -> str:
    address = resolver.addresses.get(record_id, "")
    name = address[len(prefix) :]
    return name if address.startswith(prefix) and name and "/" not in name else f"<{record_id}>"


def _rule_id(resolver: Resolver, address: str, rule: str) -> str:
    """A rule's id in the XML: derived from its rule set's id, so it never changes."""
    return record_id(uuid.UUID(resolver.id_of(address)), f"rules/{rule}")


QUEUE_OUTPUT = "msdyn_demandqueueidentificationoutput"
"""The output of a route-to-queue rule set: the org's own contract, by its unique name."""


def _output_contract() -> FieldMap:
    """Where a rule set's results go: its workstream's contract (classification) or the org's
    queue-identification contract (route to queue). Derived from the type, never written in a
    manifest, but read and compared so a row pointing elsewhere is put right."""
    column = lookup("msdyn_outputcontractid")
    workstream = reference("outputContract", "msdyn_outputcontractid", "Workstream/{}/contract")

    def read(row: Row, resolver: Resolver) -> Value:
        value = row.get(column)
        if value is not None and value == resolver.output_contract:
            return QUEUE_OUTPUT
        return workstream.read(row, resolver)

    def write(value: Value, fields: Fields, address: str, resolver: Resolver) -> Row:
        if value != QUEUE_OUTPUT:
            return workstream.write(value, fields, address, resolver)
        if resolver.output_contract is None:
            raise MappingError(f"the target has no {QUEUE_OUTPUT} contract")
        return {column: resolver.output_contract}

    return FieldMap("outputContract", (column,), read, write)


_CHANNEL_CONTEXT = {
    "facebook": g.CHANNEL_CONTEXTS["facebook"],
    "google-business-messages": g.CHANNEL_CONTEXTS["googleBusinessMessages"],
}
_CHANNEL_BY_CONTEXT = {table: channel for channel, table in _CHANNEL_CONTEXT.items()}


def _contract_fields() -> tuple[FieldMap, FieldMap]:
    """A workstream's contract, in manifest terms: the channel whose engagement context it
    declares, and the context variables. Both are written as the one XML column."""
    column = "msdyn_contractdefinition"

    def decoded(row: Row) -> contractxml.Contract | Unreadable:
        xml = row.get(column)
        if not xml:
            return contractxml.Contract((), {})
        try:
            return contractxml.decode(xml)
        except rulexml.RuleXmlError as exc:
            return Unreadable(str(exc))

    def read_channel(row: Row, _r: Resolver) -> Value:
        contract = decoded(row)
        if isinstance(contract, Unreadable):
            return contract
        if contract.legacy:
            return LEGACY
        names = [_CHANNEL_BY_CONTEXT.get(t, f"<{t}>") for t in contract.channel_contexts]
        return names[0] if len(names) == 1 else (f"<{', '.join(names)}>" if names else None)

    def read_variables(row: Row, _r: Resolver) -> Value:
        contract = decoded(row)
        if isinstance(contract, Unreadable):
            return contract
        return LEGACY if contract.legacy else contract.variables

    def write(_v: Value, fields: Fields, _a: str, _r: Resolver) -> Row:
        channel = fields.get("channel")
        variables = fields.get("contextVariables") or {}
        assert isinstance(variables, dict)
        context = _CHANNEL_CONTEXT.get(channel) if isinstance(channel, str) else None
        try:
            return {column: contractxml.encode(context, variables)}
        except rulexml.RuleXmlError as exc:
            raise MappingError(str(exc)) from None

    return (
        FieldMap("channel", (column,), read_channel, write),
        FieldMap("contextVariables", (column,), read_variables, write, default={}),
    )


def _named(fields: Fields, address: str, resolver: Resolver) -> Row:
    """Derived records are named by their address, so their owner can always be told."""
    record = resolver.id_of(address).replace("-", "")
    return {"msdyn_name": address, "msdyn_uniquename": f"rcn_{record}"}


def _channel_instance_defaults(_f: Fields, _a: str, _r: Resolver) -> Row:
    return {"msdyn_postconversationsurveyenable": False}


# --- the kinds --------------------------------------------------------------------------------

QUEUE = RecordKind(
    "Queue",
    t.TABLES[t.QUEUE],
    (
        plain("displayName", "name"),
        option("type", "msdyn_queuetype", QUEUE_TYPES, "messaging", create_only=True),
        plain("priority", "msdyn_priority"),
        option("assignment", "msdyn_assignmentstrategy", ASSIGNMENT, "highest-capacity"),
        option("visibility", "queueviewtype", VISIBILITY, "public"),
        plain("maxSize", "msdyn_maxqueuesize"),
        plain("description", "description"),
    ),
    on_create=lambda _f, _a, _r: {"msdyn_isomnichannelqueue": True},
)

FACEBOOK_ACCOUNT = RecordKind(
    "FacebookAccount",
    t.TABLES[t.FB_APPLICATION],
    (
        plain("displayName", "msdyn_name"),
        plain("applicationId", "msdyn_fbapplicationid"),
        secret("applicationSecret", "msdyn_fbapplicationsecret"),
    ),
)

GBM_ACCOUNT = RecordKind(
    "GoogleBusinessMessagesAccount",
    t.TABLES[t.GBM_PARTNER],
    (
        plain("displayName", "msdyn_name"),
        plain("partnerId", "msdyn_partneraccountid"),
        secret("clientToken", "msdyn_partneraccountclienttoken"),
        secret(
            "serviceAccountKey",
            "msdyn_base64credentialfilestring",
            "msdyn_base64credentialfilestringcontd",
            chunk=4000,
        ),
    ),
    on_create=lambda _f, _a, _r: {"msdyn_credentialfilename": CREDENTIAL_FILE_NAME},
)

CONTRACT = RecordKind(
    "DecisionContract", t.TABLES[t.CONTRACT], _contract_fields(), on_create=_named
)

WORKSTREAM = RecordKind(
    "Workstream",
    t.TABLES[t.WORKSTREAM],
    (
        plain("displayName", "msdyn_name"),
        option("channel", "msdyn_streamsource", CHANNELS, create_only=True),
        reference("fallbackQueue", "msdyn_defaultqueue", "Queue/{}"),
        option(
            "distribution.mode",
            "msdyn_workdistributionmode",
            DISTRIBUTION,
            "push",
            create_only=True,
        ),
        plain("distribution.capacity.units", "msdyn_capacityrequired", 0),
        plain("distribution.maxConcurrency", "msdyn_maxconcurrentconnection", 1),
        boolean("distribution.agentAffinity", "msdyn_enableagentaffinity"),
        duration("autoCloseAfterInactivity", "msdyn_autocloseafterinactivity"),
        choices("allowedPresences", "msdyn_allowedpresences", PRESENCES),
        boolean("automatedMessages", "msdyn_enableautomatedmessages", default=True),
        reference("routingContract", "msdyn_routingcontractid", "Workstream/{}/contract"),
    ),
    on_create=lambda _f, _a, _r: {
        "msdyn_capacityformat": CAPACITY_UNITS,
        "msdyn_direction": DIRECTION_INBOUND,
        "msdyn_mode": MODE_SIMPLIFIED,
        "msdyn_conversationmode": CONVERSATION_PERSISTENT,
    },
)

# msdyn_ocliveworkstreamcontextvariable.msdyn_datatype (reconciler.dataverse.tables, DEV-CV).
VARIABLE_TYPES = {"text": 192350000, "number": 192350001}
CONTEXT_VARIABLE_PREFIX = "context."
"""A context variable's address: ``Workstream/<name>/context.<variable>``."""

CONTEXT_VARIABLE = RecordKind(
    "ContextVariable",
    t.TABLES[t.CONTEXT_VARIABLE],
    (
        reference("workstream", "msdyn_liveworkstreamid", "Workstream/{}"),
        plain("name", "msdyn_name"),
        option("type", "msdyn_datatype", VARIABLE_TYPES),
    ),
    parent="msdyn_liveworkstreamid",
    child_prefix=CONTEXT_VARIABLE_PREFIX,
)

RULE_SET = RecordKind(
    "RoutingRuleSet",
    t.TABLES[t.RULESET],
    (
        plain("displayName", "msdyn_name"),
        reference("workstream", "msdyn_inputcontractid", "Workstream/{}/contract"),
        _type_field(),
        _output_contract(),
        _rules_field(),
    ),
    on_create=lambda _f, address, resolver: {
        "msdyn_uniquename": f"rcn_{resolver.id_of(address).replace('-', '')}",
        "msdyn_authoringmode": AUTHORING_MODE,
        "msdyn_isinputcollection": False,
    },
)

ROUTING_CONFIGURATION = RecordKind(
    "RoutingConfiguration",
    t.TABLES[t.ROUTING_CONFIGURATION],
    (
        reference("workstream", "msdyn_liveworkstreamid", "Workstream/{}"),
        boolean("active", "msdyn_isactiveconfiguration"),
    ),
    on_create=_named,
)

ROUTING_STEP = RecordKind(
    "RoutingStep",
    t.TABLES[t.ROUTING_STEP],
    (
        reference("workstream", "msdyn_routingconfigurationid", "Workstream/{}/routing"),
        reference("ruleSet", "msdyn_rulesetid", "RoutingRuleSet/{}"),
        plain("order", "msdyn_steporder"),
        option("type", "msdyn_type", STEP_TYPES),
    ),
    on_create=_named,
)

FACEBOOK_PAGE = RecordKind(
    "FacebookPage",
    t.TABLES[t.FB_PAGE],
    (
        reference("account", "msdyn_ocfbapplicationid", "FacebookAccount/{}"),
        plain("name", "msdyn_fbpagename"),
        plain("pageId", "msdyn_fbpageid"),
        secret("accessToken", "msdyn_fbpageaccesstoken"),
        reference("workstream", "msdyn_liveworkstreamid", "Workstream/{}"),
        language("facebook.language", "msdyn_ocwidgetlanguage"),
        boolean("facebook.fileAttachments.customer", "msdyn_enablefileattachmentsforcustomers"),
        boolean("facebook.fileAttachments.agent", "msdyn_enablefileattachmentsforagents"),
        boolean("facebook.humanAgentMessageTag", "msdyn_enablehumanagenttag"),
    ),
    on_create=_channel_instance_defaults,
    parent="msdyn_ocfbapplicationid",
)

GBM_AGENT = RecordKind(
    "GoogleBusinessMessagesAgent",
    t.TABLES[t.GBM_AGENT],
    (
        reference("account", "msdyn_ocgbmpartneraccount", "GoogleBusinessMessagesAccount/{}"),
        plain("name", "msdyn_name"),
        plain("agentId", "msdyn_agentid"),
        plain("brandId", "msdyn_brandid"),
        secret("clientToken", "msdyn_agentaccountclienttoken"),
        reference("workstream", "msdyn_liveworkstreamid", "Workstream/{}"),
        language("googleBusinessMessages.language", "msdyn_ocwidgetlanguage"),
        boolean(
            "googleBusinessMessages.fileAttachments.customer",
            "msdyn_enablefileattachmentsforcustomers",
        ),
        boolean(
            "googleBusinessMessages.fileAttachments.agent", "msdyn_enablefileattachmentsforagents"
        ),
        boolean("googleBusinessMessages.agentOverride", "msdyn_enableagentoverride"),
    ),
    on_create=_channel_instance_defaults,
    parent="msdyn_ocgbmpartneraccount",
)

KINDS: tuple[RecordKind, ...] = (
    QUEUE,
    FACEBOOK_ACCOUNT,
    GBM_ACCOUNT,
    CONTRACT,
    WORKSTREAM,
    CONTEXT_VARIABLE,
    RULE_SET,
    ROUTING_CONFIGURATION,
    ROUTING_STEP,
    FACEBOOK_PAGE,
    GBM_AGENT,
)
"""Dependency order (docs/spec.md §5; contracts come before the workstreams that use them)."""

BY_NAME: dict[str, RecordKind] = {kind.name: kind for kind in KINDS}
BY_TABLE: dict[str, RecordKind] = {kind.table.logical_name: kind for kind in KINDS}
STAGE: dict[str, int] = {kind.name: index for index, kind in enumerate(KINDS)}


def is_system_row(kind: RecordKind, row: Row) -> bool:
    """Rows every org has and nobody manages: default queues, the output contract."""
    if kind is QUEUE:
        return bool(row.get("msdyn_isdefaultqueue"))
    if kind is CONTRACT:
        return row.get("msdyn_uniquename") == "msdyn_demandqueueidentificationoutput"
    return False


def name_of_row(kind: RecordKind, row: Row) -> str:
    value = row.get(kind.table.primary_name)
    return value if isinstance(value, str) else ""


def row_references(kind: RecordKind, row: Row) -> Iterator[tuple[str, str]]:
    """(lookup column, referenced id) for every lookup set in ``row``."""
    for column in kind.table.lookups():
        value = row.get(lookup(column.name))
        if isinstance(value, str):
            yield column.name, value


def default_value(kind: RecordKind, path: str) -> Any:
    return kind.field(path).default
