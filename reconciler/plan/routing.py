"""Each workstream's routing as the manifests describe it, for reviewers to see (not to diff).

A ``Routing`` is the chain a conversation runs through: the classification rule sets in step
order, then the route-to-queue set's rules in order (the first match wins), then the fallback
queue. ``changed_routing`` tells which workstreams a plan changes the routing of, and which of
their rules it adds or changes, so a renderer can draw those and mark what moved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.mapping.records import Record
from reconciler.plan import itempath
from reconciler.plan.definition import CHANGING, Action, Plan


@dataclass(frozen=True)
class RuleSet:
    name: str
    type: str
    order: int
    rules: tuple[Mapping[str, Any], ...]
    """Rules in manifest terms: ``name``, ``when``, and ``routeTo`` or ``set``."""


@dataclass(frozen=True)
class Routing:
    workstream: str
    display_name: str | None
    fallback_queue: str | None
    rule_sets: tuple[RuleSet, ...] = ()


@dataclass(frozen=True)
class Marks:
    """What a plan changes in one workstream's routing."""

    new_sets: frozenset[str] = frozenset()
    changed_rules: Mapping[str, frozenset[int]] = field(default_factory=dict)
    """Rule set → indexes of its rules that are new or changed."""
    removed_rules: Mapping[str, int] = field(default_factory=dict)
    """Rule set → how many rules it loses."""
    fallback_changed: bool = False


def routing_of(records: Iterable[Record]) -> dict[str, Routing]:
    """The routing of every workstream the records describe (present ones only)."""
    workstreams: dict[str, Mapping[str, Any]] = {}
    sets: dict[str, Mapping[str, Any]] = {}
    orders: dict[str, int] = {}
    for record in records:
        if not record.present:
            continue
        name = record.address.split("/", 1)[1]
        if record.kind.name == "Workstream":
            workstreams[name] = record.fields
        elif record.kind.name == "RoutingRuleSet":
            sets[name] = record.fields
        elif record.kind.name == "RoutingStep":
            orders[str(record.fields["ruleSet"])] = int(str(record.fields["order"]))
    chains: dict[str, list[RuleSet]] = {name: [] for name in workstreams}
    for name, fields in sets.items():
        rules = fields.get("rules") or []
        assert isinstance(rules, list)
        chains.setdefault(str(fields["workstream"]), []).append(
            RuleSet(name, str(fields["type"]), orders.get(name, 0), tuple(rules))
        )
    return {
        name: Routing(
            workstream=name,
            display_name=_text(workstreams.get(name, {}).get("displayName")),
            fallback_queue=_text(workstreams.get(name, {}).get("fallbackQueue")),
            rule_sets=tuple(sorted(chain, key=lambda s: (s.order, s.name))),
        )
        for name, chain in sorted(chains.items())
        if name in workstreams
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _index(rule_set: RuleSet | None, key: str | int) -> int | None:
    """Where the rule a plan's path names stands in the manifests' rule set: paths name rules
    by name, or by position when the names are not unique (``itempath``)."""
    if isinstance(key, int):
        return key
    if rule_set is None:
        return None
    return next((i for i, rule in enumerate(rule_set.rules) if rule.get("name") == key), None)


def changed_routing(plan: Plan, routing: Mapping[str, Routing]) -> dict[str, Marks]:
    """The workstreams whose routing ``plan`` changes, each with what changes in it.

    Routing changes when a workstream is created or its fallback queue changes, when its
    routing configuration changes, or when one of its rule sets (or their steps) is created,
    updated, replaced or deleted. A deleted rule set is found through the step order of the
    sets that remain, which its delete changes: a workstream that loses its only rule set is
    drawn when its routing configuration changes with it.
    """
    owner = {s.name: name for name, r in routing.items() for s in r.rule_sets}
    sets = {s.name: s for r in routing.values() for s in r.rule_sets}
    touched: dict[str, dict[str, Any]] = {}

    def mark(workstream: str | None) -> dict[str, Any] | None:
        if workstream is None or workstream not in routing:
            return None
        return touched.setdefault(
            workstream, {"new": set(), "rules": {}, "removed": {}, "fallback": False}
        )

    for change in plan.changes:
        if change.action not in CHANGING:
            continue
        kind, _, rest = change.address.partition("/")
        if kind == "Workstream":
            name, _, child = rest.partition("/")
            if child == "routing" or (not child and change.action is not Action.UPDATE):
                mark(name)
            elif (
                not child
                and any(f.path == "fallbackQueue" for f in change.fields)
                and (found := mark(name)) is not None
            ):
                found["fallback"] = True
        elif kind == "RoutingRuleSet":
            name, _, child = rest.partition("/")
            found = mark(owner.get(name))
            if found is None:
                continue
            if change.action in (Action.CREATE, Action.REPLACE) and not child:
                found["new"].add(name)
            for item in change.fields:
                rule = itempath.split(item.path)
                if rule is None or rule[0] != "rules":
                    continue
                _, key, rest = rule
                if item.after is None and not rest:
                    found["removed"][name] = found["removed"].get(name, 0) + 1
                elif (index := _index(sets.get(name), key)) is not None:
                    found["rules"].setdefault(name, set()).add(index)
    return {
        name: Marks(
            new_sets=frozenset(t["new"]),
            changed_rules={s: frozenset(i) for s, i in t["rules"].items()},
            removed_rules=dict(t["removed"]),
            fallback_changed=t["fallback"],
        )
        for name, t in sorted(touched.items())
    }


def drawn(plan: Plan, routing: Mapping[str, Routing]) -> Sequence[tuple[Routing, Marks]]:
    """The routings to draw for ``plan``, in workstream order."""
    return [(routing[name], marks) for name, marks in changed_routing(plan, routing).items()]
