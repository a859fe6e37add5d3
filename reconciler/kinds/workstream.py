"""``kind: Workstream``: a workstream (``msdyn_liveworkstream``) and the routing records it
brings: its decision contract (``msdyn_decisioncontract``, one per workstream), its context
variables (``msdyn_ocliveworkstreamcontextvariable``) and its routing configuration
(``msdyn_routingconfiguration``). What its ``channel:`` brings is the channel's
(``reconciler.kinds.channels``): the stream source, the engagement context its contract
declares, and the record holding the channel's settings."""

from __future__ import annotations

from typing import Any

from reconciler.dataverse import tables as t
from reconciler.kinds import capacity
from reconciler.kinds.base import (
    LEGACY,
    Assembler,
    Builder,
    ManifestKind,
    Match,
    RecordKind,
    Unreadable,
    manifest_spec,
    named,
    spec_fields,
)
from reconciler.kinds.channels import BY_CONTEXT, BY_WORD, CHANNELS
from reconciler.mapping import contractxml, rulexml
from reconciler.mapping.fields import (
    FieldMap,
    MappingError,
    Resolver,
    Row,
    boolean,
    choices,
    duration,
    lookup,
    option,
    plain,
    reference,
)
from reconciler.mapping.values import Fields, Value

CHANNEL_VALUES = {channel.word: channel.stream_source for channel in CHANNELS}
DISTRIBUTION = {"push": 192350000, "pick": 192350001}
PRESENCES = {
    "available": 192360000,
    "busy": 192360001,
    "busy-dnd": 192360002,
    "away": 192360003,
    "offline": 192360004,
}
# Columns the manifests do not describe, set once when the reconciler creates a record.
DIRECTION_INBOUND = 0
MODE_SIMPLIFIED = 717210001
CONVERSATION_PERSISTENT = 192350001
# msdyn_streamsource labels of the channels manifests do not describe (ce/customer-service/
# develop/reference/entities/msdyn_liveworkstream.md @01969140…), for export's reasons.
STREAM_SOURCE_LABELS = {
    192360000: "live chat",
    192300000: "WhatsApp",
    19241000: "Teams",
    192350000: "entity records",
    192350002: "custom",
}


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
        names = [
            BY_CONTEXT[t].word if t in BY_CONTEXT else f"<{t}>" for t in contract.channel_contexts
        ]
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
        context = (
            BY_WORD[channel].context if isinstance(channel, str) and channel in BY_WORD else None
        )
        try:
            return {column: contractxml.encode(context, variables)}
        except rulexml.RuleXmlError as exc:
            raise MappingError(str(exc)) from None

    return (
        FieldMap("channel", (column,), read_channel, write),
        FieldMap("contextVariables", (column,), read_variables, write, default={}),
    )


def _contract_row(match: Match) -> Row | None:
    """A workstream's contract is the one its row points at."""
    workstream = match.by_id[WORKSTREAM.name].get(match.parent_id, {})
    contract = workstream.get(lookup("msdyn_routingcontractid"))
    return next((row for row in match.rows if row[CONTRACT.table.primary_key] == contract), None)


CONTRACT = RecordKind(
    "DecisionContract",
    t.TABLES[t.CONTRACT],
    _contract_fields(),
    on_create=named,
    # The org's own queue-identification contract (route-to-queue sets write to it).
    system=lambda row: row.get("msdyn_uniquename") == "msdyn_demandqueueidentificationoutput",
    match=_contract_row,
)

WORKSTREAM = RecordKind(
    "Workstream",
    t.TABLES[t.WORKSTREAM],
    (
        plain("displayName", "msdyn_name", export_always=True),
        option(
            "channel", "msdyn_streamsource", CHANNEL_VALUES, create_only=True, export_always=True
        ),
        reference("fallbackQueue", "msdyn_defaultqueue", "Queue/{}", export_always=True),
        option(
            "distribution.mode",
            "msdyn_workdistributionmode",
            DISTRIBUTION,
            "push",
            create_only=True,
            export_always=True,
        ),
        capacity.capacity_format(),
        plain("distribution.capacity.units", "msdyn_capacityrequired", 0),
        plain("distribution.maxConcurrency", "msdyn_maxconcurrentconnection", 1),
        boolean("distribution.agentAffinity", "msdyn_enableagentaffinity"),
        duration("autoCloseAfterInactivity", "msdyn_autocloseafterinactivity"),
        choices("allowedPresences", "msdyn_allowedpresences", PRESENCES),
        boolean("automatedMessages", "msdyn_enableautomatedmessages", default=True),
        reference(
            "routingContract", "msdyn_routingcontractid", "Workstream/{}/contract", derived=True
        ),
        *(f for channel in CHANNELS for f in channel.workstream_fields),
    ),
    on_create=lambda fields, _a, _r: {
        # Also for a plan saved before capacity was a field: unit-based, as it was created.
        "msdyn_capacityformat": capacity.CAPACITY_FORMATS[
            str(fields.get(capacity.CAPACITY) or "units")
        ],
        "msdyn_direction": DIRECTION_INBOUND,
        "msdyn_mode": MODE_SIMPLIFIED,
        "msdyn_conversationmode": CONVERSATION_PERSISTENT,
    },
)

# msdyn_ocliveworkstreamcontextvariable.msdyn_datatype (reconciler.dataverse.tables, DEV-CV).
VARIABLE_TYPES = {"text": 192350000, "number": 192350001}
CONTEXT_VARIABLE_PREFIX = "context."
"""A context variable's address: ``Workstream/<name>/context.<variable>``."""


def _variable_row(match: Match) -> Row | None:
    """A context variable under its workstream, by its name, as rules and the contract name it."""
    column = lookup("msdyn_liveworkstreamid")
    wanted = match.fields.get("name")
    return next(
        (
            row
            for row in match.rows
            if row.get(column) == match.parent_id and CONTEXT_VARIABLE.name_of(row) == wanted
        ),
        None,
    )


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
    match=_variable_row,
    noun="context variable",
)


def _configuration_row(match: Match) -> Row | None:
    """The workstream's routing configuration: the active one first."""
    column = lookup("msdyn_liveworkstreamid")
    mine = [row for row in match.rows if row.get(column) == match.parent_id]
    mine.sort(key=lambda row: not row.get("msdyn_isactiveconfiguration"))
    return mine[0] if mine else None


ROUTING_CONFIGURATION = RecordKind(
    "RoutingConfiguration",
    t.TABLES[t.ROUTING_CONFIGURATION],
    (
        reference("workstream", "msdyn_liveworkstreamid", "Workstream/{}"),
        boolean("active", "msdyn_isactiveconfiguration"),
    ),
    on_create=named,
    match=_configuration_row,
)


def _desired(builder: Builder, document: Any, spec: Any) -> dict[str, Value]:
    name = document.name
    parent = f"Workstream/{name}"
    variables = {key: kind.value for key, kind in spec.context_variables.items()}
    builder.add(
        CONTRACT,
        document,
        f"{parent}/contract",
        {"channel": spec.channel.value, "contextVariables": variables},
        parent=parent,
    )
    for key, kind in variables.items():
        builder.add(
            CONTEXT_VARIABLE,
            document,
            f"{parent}/{CONTEXT_VARIABLE_PREFIX}{key}",
            {"workstream": name, "name": key, "type": kind},
            parent=parent,
        )
    builder.add(
        ROUTING_CONFIGURATION,
        document,
        f"{parent}/routing",
        {"workstream": name, "active": True},
        parent=parent,
    )
    channel = BY_WORD.get(spec.channel.value)
    carried: dict[str, Value] = {}
    if channel is not None:
        if channel.own is not None:
            channel.own(builder, document, spec)
        carried = channel.carried(spec)
    fields = spec_fields(
        WORKSTREAM,
        spec,
        {"displayName": document.manifest.display_name, "routingContract": name},
    )
    fields.update(capacity.add_profiles(builder, document, spec))
    if fields[capacity.CAPACITY] == "profiles":
        del fields["distribution.capacity.units"]
    return {**fields, **carried}


def _assemble(assembler: Assembler, found: Any) -> dict[str, Any]:
    spec = manifest_spec(found, assembler.secret)
    if found.fields.get(capacity.CAPACITY) == "profiles":
        profiles = [
            str(row.fields["profile"])
            for row in assembler.children(capacity.WORKSTREAM_PROFILE, found.name, "workstream")
        ]
        distribution = spec.setdefault("distribution", {})
        distribution["capacity"] = {"profiles": sorted(profiles)}
    if found.fields.get("contextVariables"):
        spec["contextVariables"] = found.fields["contextVariables"]
    return spec


def _cannot_express(fields: Fields) -> str | None:
    channel = str(fields.get("channel", ""))
    if channel.startswith("<"):
        number = int(channel.strip("<>")) if channel.strip("<>").isdigit() else None
        label = (
            STREAM_SOURCE_LABELS.get(number or 0, f"channel {number}") if number else "no channel"
        )
        labels = [c.label for c in CHANNELS if not c.retired] + [
            c.label for c in CHANNELS if c.retired
        ]
        supported = ", ".join(labels[:-1]) + " and " + labels[-1]
        return f"{label} workstreams are not supported (only {supported})"
    return None


KIND = ManifestKind(
    "Workstream",
    WORKSTREAM,
    _desired,
    _assemble,
    brings=(CONTRACT, CONTEXT_VARIABLE, ROUTING_CONFIGURATION, capacity.WORKSTREAM_PROFILE),
    derived_when_absent=(
        (CONTRACT, "contract"),
        (ROUTING_CONFIGURATION, "routing"),
        # A channel instance the workstream brings (its only one: ``suffix``) goes with it.
        *(
            (channel.instance, channel.instance.suffix)
            for channel in CHANNELS
            if channel.account is None and channel.instance.suffix
        ),
    ),
    file="workstreams.yaml",
    what="workstreams with their channel settings",
    noun="workstream",
    fallback_name="workstream",
    cannot_express=_cannot_express,
)
