"""A workstream's routing as a Mermaid flowchart, for the markdown plan.

The chart reads top to bottom the way a conversation is routed: the workstream, its
classification rule sets in step order, then the route-to-queue rules in order, each with the
queue (or the percentage split) it sends a match to and a "no match" edge to the next rule, and
last the fallback queue. Rules the plan adds or changes are highlighted.

Every label is quoted and every character Mermaid or markdown could read as syntax (quotes,
brackets, ``|``, ``<``, backticks…) is written as a Mermaid entity (``#34;``), so no name or
value in a manifest can end a label, add a node or close the code fence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.plan.routing import Marks, Routing, RuleSet
from reconciler.render.style import clean, plural

MAX_LABEL = 90
MAX_CLASSIFICATION_LINES = 8
_SYNTAX = frozenset('"#&<>`|{}[]()\\;')
_STYLES = (
    "classDef new fill:#dcfce7,stroke:#16a34a,color:#14532d",
    "classDef changed fill:#fef3c7,stroke:#d97706,color:#78350f",
)


def label(text: str, limit: int = MAX_LABEL) -> str:
    """``text`` made safe inside a quoted Mermaid label (and cut at ``limit`` characters)."""
    text = clean(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "".join(f"#{ord(char)};" if char in _SYNTAX else char for char in text)


def condition(when: Any) -> str:
    """A rule's condition in words: ``facebook.locale equals nl or …``; ``always`` for a rule
    without one."""
    if when is None:
        return "always"
    if not isinstance(when, Mapping):
        return str(when)
    if "all" in when or "any" in when:
        joiner = " and " if "all" in when else " or "
        parts = when.get("all") or when.get("any") or []
        return joiner.join(_nested(part) for part in parts)
    if "not" in when:
        return f"not {_nested(when['not'])}"
    value = when.get("value")
    if isinstance(value, list):
        value = "[" + ", ".join(str(v) for v in value) + "]"
    shown = "" if value is None else f" {value}"
    return f"{when.get('field')} {when.get('op')}{shown}"


def _nested(part: Any) -> str:
    text = condition(part)
    return f"({text})" if isinstance(part, Mapping) and part.keys() & {"all", "any"} else text


class _Chart:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.edges = 0
        self.queues: dict[str, str] = {}
        self.classes: dict[str, list[str]] = {"new": [], "changed": []}
        self.highlighted_edges: list[int] = []

    def node(self, node_id: str, shape: tuple[str, str], text: str) -> str:
        self.lines.append(f'    {node_id}{shape[0]}"{text}"{shape[1]}')
        return node_id

    def edge(self, source: str, target: str, text: str, highlight: bool = False) -> None:
        self.lines.append(f'    {source} -->|"{label(text)}"| {target}')
        if highlight:
            self.highlighted_edges.append(self.edges)
        self.edges += 1

    def queue(self, name: str) -> str:
        if name not in self.queues:
            self.queues[name] = self.node(f"q{len(self.queues) + 1}", ("[(", ")]"), label(name))
        return self.queues[name]


_STADIUM = ("([", "])")
_BOX = ("[", "]")
_HEXAGON = ("{{", "}}")


def _mark(chart: _Chart, node_id: str, rule_set: RuleSet, index: int, marks: Marks) -> None:
    if rule_set.name in marks.new_sets:
        chart.classes["new"].append(node_id)
    elif index in marks.changed_rules.get(rule_set.name, frozenset()):
        chart.classes["changed"].append(node_id)


def mermaid(routing: Routing, marks: Marks) -> list[str]:
    """The flowchart's lines, without the code fence."""
    chart = _Chart()
    chart.lines.append("flowchart TD")
    title = f"Workstream {routing.workstream}"
    if routing.display_name and routing.display_name != routing.workstream:
        title += f" ({routing.display_name})"
    previous: str | None = chart.node("ws", _STADIUM, label(title))
    step = 0
    for rule_set in routing.rule_sets:
        step += 1
        if rule_set.type == "classification":
            node_id = chart.node(f"c{step}", _BOX, _classification(step, rule_set))
            if rule_set.name in marks.new_sets:
                chart.classes["new"].append(node_id)
            elif marks.changed_rules.get(rule_set.name):
                chart.classes["changed"].append(node_id)
            if previous is not None:
                chart.edge(previous, node_id, "next")
            previous = node_id
            continue
        for index, rule in enumerate(rule_set.rules):
            node_id = f"s{step}r{index + 1}"
            text = f"{index + 1}. {rule.get('name')}"
            chart.node(
                node_id,
                _HEXAGON,
                label(text) + "<br/>" + label(condition(rule.get("when"))),
            )
            _mark(chart, node_id, rule_set, index, marks)
            if previous is not None:  # after a rule that always matches, none is reached
                chart.edge(previous, node_id, "next" if index == 0 else "no match")
            route = rule.get("routeTo")
            if isinstance(route, list):
                for split in route:
                    target = chart.queue(str(split.get("queue")))
                    chart.edge(node_id, target, f"match: {split.get('percent')}%")
            elif route is not None:
                chart.edge(node_id, chart.queue(str(route)), "match")
            reached = previous is not None
            previous = node_id if reached and rule.get("when") is not None else None
    if routing.fallback_queue is not None and previous is not None:
        fallback = chart.queue(routing.fallback_queue)
        words = "no match: fallback queue" if previous != "ws" else "fallback queue"
        chart.edge(previous, fallback, words, highlight=marks.fallback_changed)
    chart.lines += [f"    {style}" for style in _STYLES]
    for name, ids in chart.classes.items():
        if ids:
            chart.lines.append(f"    class {','.join(ids)} {name}")
    if chart.highlighted_edges:
        indexes = ",".join(str(i) for i in chart.highlighted_edges)
        chart.lines.append(f"    linkStyle {indexes} stroke:#d97706,stroke-width:3px")
    return chart.lines


def _classification(step: int, rule_set: RuleSet) -> str:
    lines = [label(f"{step}. classification: {rule_set.name}")]
    for index, rule in enumerate(rule_set.rules[:MAX_CLASSIFICATION_LINES]):
        outputs = ", ".join(f"{key} = {value}" for key, value in (rule.get("set") or {}).items())
        lines.append(label(f"{index + 1}. {rule.get('name')}: set {outputs}"))
    hidden = len(rule_set.rules) - MAX_CLASSIFICATION_LINES
    if hidden > 0:
        lines.append(label(f"… and {plural(hidden, 'more rule')}"))
    return "<br/>".join(lines)


LEGEND = (
    "Rules run top to bottom; the first match routes the conversation. "
    "Green: new, amber: changed by this plan."
)


def caption(marks: Marks, literal: Callable[[str], str] = clean) -> str | None:
    """What the chart cannot show: rules the plan removes (``literal`` prints a rule set's
    name: the markdown plan puts it in a code span)."""
    removed = [
        f"{literal(name)} loses {plural(count, 'rule')}"
        for name, count in sorted(marks.removed_rules.items())
    ]
    return "; ".join(removed) + "." if removed else None
