"""``kind: RoutingRuleSet``: a decision rule set (``msdyn_decisionruleset``) and its step in
its workstream's routing configuration (``msdyn_routingconfigurationstep``); the rules are the
set's XML (docs/routing-xml.md)."""

from __future__ import annotations

import uuid
from typing import Any

from reconciler.dataverse import tables as t
from reconciler.kinds.base import (
    LEGACY,
    Assembler,
    Builder,
    ManifestKind,
    Match,
    RecordKind,
    Unreadable,
    manifest_spec,
    name_in,
    named,
    spec_fields,
)
from reconciler.mapping import rulegrammar as g
from reconciler.mapping import rulexml
from reconciler.mapping.conditions import canonical_rule
from reconciler.mapping.fields import (
    FieldMap,
    MappingError,
    Resolver,
    Row,
    lookup,
    option,
    plain,
    reference,
)
from reconciler.mapping.values import Fields, Value, record_id

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
# msdyn_authoringmode: its one option, "Decision list" (msdyn_decisionruleset.md, as above; the
# ALM export's rule sets hold it).
AUTHORING_MODE = 192350000
QUEUE_OUTPUT = "msdyn_demandqueueidentificationoutput"
"""The output of a route-to-queue rule set: the org's own contract, by its unique name."""


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
    return FieldMap("type", columns, read, write, export_always=True)


def legacy_or(xml: str, unreadable: Unreadable) -> Value:
    return LEGACY if rulexml.written_by_an_earlier_version(xml) else unreadable


def _rules_field() -> FieldMap:
    column = "msdyn_rulesetdefinition"

    def read(row: Row, resolver: Resolver) -> Value:
        xml = row.get(column)
        if not xml:
            return []
        try:
            decoded = rulexml.decode(
                xml, queue_name=lambda queue_id: name_in(resolver, queue_id, "Queue/")
            )
        except rulexml.RuleXmlError as exc:
            return legacy_or(xml, Unreadable(str(exc)))
        reasons = [f"rule {name!r}: {why}" for name, why in decoded.unreadable]
        kind = rule_set_type(row, resolver)
        expected = {"route-to-queue": g.HIT_POLICY_ROUTE, "classification": g.HIT_POLICY_CLASSIFY}
        if kind is not None and decoded.hit_policy != expected[kind]:
            reasons.insert(0, f"hit-policy {decoded.hit_policy!r} in a {kind} rule set")
        return legacy_or(xml, Unreadable("; ".join(reasons))) if reasons else decoded.rules

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

    return FieldMap("rules", (column,), read, write, default=[], derived=True)


def _rule_id(resolver: Resolver, address: str, rule: str) -> str:
    """A rule's id in the XML: derived from its rule set's id, so it never changes."""
    return record_id(uuid.UUID(resolver.id_of(address)), f"rules/{rule}")


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

    return FieldMap("outputContract", (column,), read, write, derived=True)


RULE_SET = RecordKind(
    "RoutingRuleSet",
    t.TABLES[t.RULESET],
    (
        plain("displayName", "msdyn_name", export_always=True),
        reference(
            "workstream", "msdyn_inputcontractid", "Workstream/{}/contract", export_always=True
        ),
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


def _step_row(match: Match) -> Row | None:
    column = lookup("msdyn_rulesetid")
    return next((row for row in match.rows if row.get(column) == match.parent_id), None)


ROUTING_STEP = RecordKind(
    "RoutingStep",
    t.TABLES[t.ROUTING_STEP],
    (
        reference("workstream", "msdyn_routingconfigurationid", "Workstream/{}/routing"),
        reference("ruleSet", "msdyn_rulesetid", "RoutingRuleSet/{}"),
        plain("order", "msdyn_steporder"),
        option("type", "msdyn_type", STEP_TYPES),
    ),
    on_create=named,
    match=_step_row,
)


def rule_json(spec: Any) -> list[dict[str, Any]]:
    """The rules in the canonical form the rule XML holds (``mapping.conditions``)."""
    return [
        canonical_rule(rule.model_dump(mode="json", by_alias=True, exclude_none=True))
        for rule in spec.rules
    ]


def _is_route(document: Any) -> bool:
    return bool(document.manifest.spec.type.value == "route-to-queue")


def step_order(builder: Builder, workstream: str, rule_set: str) -> int:
    """Classification sets run first, in name order; the route-to-queue set runs last."""
    orders = builder.memo.get("routing-step-orders")
    if orders is None:  # once per build: every workstream's sets, in the order they run
        by_workstream: dict[str, list[Any]] = {}
        for d in builder.documents:
            spec: Any = d.manifest.spec
            if d.manifest.present and d.kind == "RoutingRuleSet" and spec is not None:
                by_workstream.setdefault(spec.workstream, []).append(d)
        orders = {
            (ws, d.name): 1 + index
            for ws, sets in by_workstream.items()
            for index, d in enumerate(sorted(sets, key=lambda d: (_is_route(d), d.name)))
        }
        builder.memo["routing-step-orders"] = orders
    return int(orders[(workstream, rule_set)])


def _desired(builder: Builder, document: Any, spec: Any) -> dict[str, Value]:
    name = document.name
    builder.add(
        ROUTING_STEP,
        document,
        f"RoutingRuleSet/{name}/step",
        {
            "workstream": spec.workstream,
            "ruleSet": name,
            "order": step_order(builder, spec.workstream, name),
            "type": spec.type.value,
        },
        parent=f"RoutingRuleSet/{name}",
    )
    route = spec.type.value == "route-to-queue"
    return spec_fields(
        RULE_SET,
        spec,
        {
            "displayName": document.manifest.display_name,
            "outputContract": QUEUE_OUTPUT if route else spec.workstream,
            "rules": rule_json(spec),
        },
    )


def _assemble(assembler: Assembler, found: Any) -> dict[str, Any]:
    spec = manifest_spec(found, assembler.secret)
    spec["rules"] = found.fields.get("rules") or []
    return spec


def _cannot_express(fields: Fields) -> str | None:
    if str(fields.get("type") or "<").startswith("<"):
        return (
            f"it is a rule set of {str(fields.get('type')).strip('<>')}; manifests describe "
            "declarative route-to-queue and classification sets"
        )
    if str(fields.get("workstream") or "<").startswith("<"):
        return "its input contract belongs to no workstream the export writes"
    return None


KIND = ManifestKind(
    "RoutingRuleSet",
    RULE_SET,
    _desired,
    _assemble,
    brings=(ROUTING_STEP,),
    derived_when_absent=((ROUTING_STEP, "step"),),
    noun="routing rule set",
    fallback_name="rule-set",
    cannot_express=_cannot_express,
)
