"""Markdown plans draw each workstream whose routing changes as a Mermaid flowchart.

``parse_flowchart`` is a strict parser of the Mermaid flowchart syntax the charts use (node
shapes with quoted labels, labelled edges, classDef/class/linkStyle): any other line fails the
test, and so does a label holding a raw quote. During development the same charts, and 300
randomly generated hostile ones, were also parsed by Mermaid 11 itself (``mermaid.parse``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from examples_project import copy_examples

from reconciler.cli import main
from reconciler.plan.routing import Marks, Routing, RuleSet
from reconciler.render.routing_mermaid import condition, label, mermaid

SHAPES = {"([": "])", "[(": ")]", "{{": "}}", "[": "]"}
NODE = re.compile(
    r'^(?P<id>[A-Za-z][A-Za-z0-9]*)(?P<open>\(\[|\[\(|\{\{|\[)"(?P<label>[^"]*)"(?P<close>\]\)|\)\]|\}\}|\])$'
)
EDGE = re.compile(
    r'^(?P<src>[A-Za-z][A-Za-z0-9]*) -->\|"(?P<label>[^"]*)"\| (?P<dst>[A-Za-z][A-Za-z0-9]*)$'
)
CLASSDEF = re.compile(r"^classDef (new|changed) [a-z-]+:#[0-9a-f]{6}(,[a-z-]+:#[0-9a-f]{6})*$")
CLASS = re.compile(r"^class (?P<ids>[A-Za-z0-9]+(,[A-Za-z0-9]+)*) (?P<name>new|changed)$")
LINKSTYLE = re.compile(
    r"^linkStyle (?P<edges>\d+(,\d+)*) [a-z-]+:[#0-9a-z]+(,[a-z-]+:[#0-9a-z]+)*$"
)
ENTITY = re.compile(r"#(\d+);")


def unescape(text: str) -> str:
    return ENTITY.sub(lambda m: chr(int(m.group(1))), text)


@dataclass
class Flowchart:
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)
    """id → (shape, label lines unescaped)."""
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    classes: dict[str, set[str]] = field(default_factory=dict)
    highlighted: set[int] = field(default_factory=set)

    def label(self, node: str) -> str:
        return self.nodes[node][1]

    def out(self, node: str, edge_label: str | None = None) -> list[str]:
        return [d for s, d, lab in self.edges if s == node and edge_label in (None, lab)]

    def by_label(self, start: str) -> str:
        (found,) = [i for i, (_, text) in self.nodes.items() if text.startswith(start)]
        return found


def parse_flowchart(text: str) -> Flowchart:
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    chart = Flowchart()
    for raw in lines[1:]:
        line = raw.strip()
        if m := NODE.match(line):
            assert SHAPES[m["open"]] == m["close"], line
            assert m["id"] not in chart.nodes, f"node defined twice: {line}"
            chart.nodes[m["id"]] = (m["open"], unescape(m["label"]).replace("<br/>", "\n"))
        elif m := EDGE.match(line):
            for end in (m["src"], m["dst"]):
                assert end in chart.nodes, f"edge to an undefined node: {line}"
            chart.edges.append((m["src"], m["dst"], unescape(m["label"])))
        elif m := CLASS.match(line):
            ids = set(m["ids"].split(","))
            assert ids <= chart.nodes.keys()
            chart.classes.setdefault(m["name"], set()).update(ids)
        elif m := LINKSTYLE.match(line):
            chart.highlighted |= {int(i) for i in m["edges"].split(",")}
            assert max(chart.highlighted) < len(chart.edges)
        else:
            assert CLASSDEF.match(line), f"not a line of the flowchart syntax: {raw!r}"
    return chart


def mermaid_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)


def chain(chart: Flowchart) -> list[str]:
    """The nodes from the workstream along "next" and "no match" edges, in order."""
    order, node = [], "ws"
    while True:
        following = chart.out(node, "next") + chart.out(node, "no match")
        if not following:
            return order
        (node,) = following
        order.append(node)


@pytest.fixture
def applied(tmp_path, monkeypatch, capsys):
    project = copy_examples(tmp_path, monkeypatch)
    target = f"local:{tmp_path / 'target.db'}"
    assert main(["apply", str(project), "--env", "dev", "--target", target, "--yes"]) == 0
    capsys.readouterr()
    return project, target


def markdown_plan(capsys, project: Path, target: str, *extra: str) -> str:
    code = main(
        ["plan", str(project), "--env", "dev", "--target", target, "--format", "markdown", *extra]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def test_a_routing_change_is_drawn_in_rule_order_with_queues_and_fallback(applied, capsys):
    project, target = applied
    routing = project / "facebook-routing.yaml"
    text = routing.read_text()
    routing.write_text(
        text.replace(
            "      routeTo: dutch-support\n",
            "      routeTo: dutch-support\n"
            "    - name: Night owls\n"
            "      when: {field: facebook.timezone, op: equals, value: Asia/Tokyo}\n"
            "      routeTo: overflow-support\n",
        )
    )
    out = markdown_plan(capsys, project, target)
    assert "#### Routing" in out
    (block,) = mermaid_blocks(out)  # gbm-stores' routing is unchanged: no chart for it
    assert out.index("#### Routing") < out.index("#### Changes")
    chart = parse_flowchart(block)

    assert chart.label("ws") == "Workstream facebook-support (Facebook support)"
    steps = [chart.label(node).split("\n")[0] for node in chain(chart)]
    assert steps == [
        "1. classification: facebook-support-classification",
        "1. Known VIP customer",
        "2. Dutch speakers",
        "3. Night owls",
        "4. Spread the rest",
    ]
    classification, vip, dutch, owls, rest = chain(chart)
    assert "Dutch locale: set Language = Dutch, Segment = consumer" in chart.label(classification)
    assert "facebook.customerName equals Jan de Vries" in chart.label(vip)
    # Conditions are drawn as they are written: `in` is `any` of `equals`.
    dutch_condition = chart.label(dutch).split("\n")[1]
    assert dutch_condition.startswith(
        "context.Language equals Dutch or facebook.timezone equals Europe/Amsterdam or "
    )
    assert chart.label(rest) == "4. Spread the rest\nfacebook.userPageScopedId isNotNull"

    def queues(node: str, edge: str) -> list[str]:
        return [chart.label(q) for q in chart.out(node, edge)]

    assert queues(vip, "match") == ["vip-support"]
    assert queues(dutch, "match") == ["dutch-support"]
    assert queues(owls, "match") == ["overflow-support"]
    assert queues(rest, "match: 70%") == ["general-support"]
    assert queues(rest, "match: 30%") == ["overflow-support"]
    assert queues(rest, "no match: fallback queue") == ["general-support"]
    # One node per queue: the split and the fallback share general-support's.
    assert sorted(chart.label(n) for n, (shape, _) in chart.nodes.items() if shape == "[(") == [
        "dutch-support",
        "general-support",
        "overflow-support",
        "vip-support",
    ]
    # The inserted rule is the one change: the rule it moves down is not changed (by name).
    assert chart.classes == {"changed": {owls}}
    assert not chart.highlighted


def test_no_chart_when_the_routing_does_not_change(applied, capsys):
    project, target = applied
    queues = project / "queues.yaml"
    queues.write_text(queues.read_text().replace("priority: 20", "priority: 21", 1))
    out = markdown_plan(capsys, project, target)
    assert "Queue/overflow-support" in out
    assert "```mermaid" not in out
    assert "#### Routing" not in out


def test_a_new_project_draws_every_workstream_as_new(tmp_path, monkeypatch, capsys):
    project = copy_examples(tmp_path, monkeypatch)
    out = markdown_plan(capsys, project, f"local:{tmp_path / 'empty.db'}")
    blocks = [parse_flowchart(block) for block in mermaid_blocks(out)]
    assert [chart.label("ws").split(" (")[0] for chart in blocks] == [
        "Workstream facebook-support",
        "Workstream gbm-stores",
        "Workstream web-chat",
    ]
    gbm = blocks[1]
    (rule,) = chain(gbm)
    assert gbm.classes == {"new": {rule}}
    assert [gbm.label(q) for q in gbm.out(rule, "match")] == ["dutch-support"]
    assert [gbm.label(q) for q in gbm.out(rule, "no match: fallback queue")] == ["general-support"]


def test_a_new_fallback_queue_highlights_its_edge(applied, capsys):
    project, target = applied
    facebook = project / "facebook.yaml"
    facebook.write_text(
        facebook.read_text().replace(
            "fallbackQueue: general-support", "fallbackQueue: overflow-support"
        )
    )
    (block,) = mermaid_blocks(markdown_plan(capsys, project, target))
    chart = parse_flowchart(block)
    index = next(
        i for i, (_, _, lab) in enumerate(chart.edges) if lab == "no match: fallback queue"
    )
    assert chart.label(chart.edges[index][1]) == "overflow-support"
    assert chart.highlighted == {index}
    assert "changed" not in chart.classes


def test_removed_rules_are_named_under_the_chart(applied, capsys):
    project, target = applied
    routing = project / "facebook-routing.yaml"
    text = routing.read_text()
    start = text.index("    - name: Dutch speakers")
    end = text.index("    - name: Spread the rest")
    routing.write_text(text[:start] + text[end:])
    out = markdown_plan(capsys, project, target)
    (block,) = mermaid_blocks(out)
    assert len(chain(parse_flowchart(block))) == 3  # classification + the two rules left
    assert "`facebook-support-routing` loses 1 rule." in out


def test_deleting_a_rule_set_with_prune_draws_what_remains(applied, capsys):
    project, target = applied
    routing = project / "facebook-routing.yaml"
    routing.write_text(routing.read_text().split("---\n")[0])
    out = markdown_plan(capsys, project, target, "--prune")
    (block,) = mermaid_blocks(out)
    steps = [parse_flowchart(block).label(n).split("\n")[0] for n in chain(parse_flowchart(block))]
    assert steps == ["1. Known VIP customer", "2. Dutch speakers", "3. Spread the rest"]


HOSTILE = ['q"]) --> x', "a|b", "<img src=x onerror=alert(1)>", "```", "#34;", "%% c", "x\ny"]


@pytest.mark.parametrize("text", HOSTILE)
def test_no_name_or_value_can_break_out_of_its_label(text):
    routing = Routing(
        workstream=f"ws{text}",
        display_name=text,
        fallback_queue=f"fallback{text}",
        rule_sets=(
            RuleSet(
                name=f"set{text}",
                type="route-to-queue",
                order=1,
                rules=(
                    {
                        "name": text,
                        "when": {"field": "conversation.x", "op": "equals", "value": text},
                        "routeTo": [
                            {"queue": f"a{text}", "percent": 50},
                            {"queue": text, "percent": 50},
                        ],
                    },
                ),
            ),
        ),
    )
    chart = parse_flowchart("\n".join(mermaid(routing, Marks())))
    assert len(chart.nodes) == 5  # workstream, rule, two split queues, fallback
    (rule,) = chain(chart)
    shown = text.replace("\n", "\\n")  # control characters are printed escaped, as elsewhere
    assert chart.label(rule) == f"1. {shown}\nconversation.x equals {shown}"
    assert {chart.label(q) for q in chart.out(rule)} == {f"a{shown}", shown, f"fallback{shown}"}
    assert "`" not in "\n".join(mermaid(routing, Marks()))


def test_long_labels_are_cut():
    assert unescape(label("x" * 200)) == "x" * 89 + "…"


def test_conditions_read_as_words():
    when = {
        "all": [
            {"field": "facebook.locale", "op": "in", "value": ["nl_NL", "nl_BE"]},
            {
                "any": [
                    {"field": "a", "op": "isNotNull"},
                    {"not": {"field": "b", "op": "equals", "value": 1}},
                ]
            },
        ]
    }
    assert (
        condition(when) == "facebook.locale in [nl_NL, nl_BE] and (a isNotNull or not b equals 1)"
    )
    assert condition("odd") == "odd"


def test_a_long_classification_set_is_summed_up_and_marked_changed():
    rules = tuple({"name": f"r{i}", "set": {"Segment": i}} for i in range(11))
    routing = Routing("ws", None, "q", (RuleSet("cls", "classification", 1, rules),))
    chart = parse_flowchart(
        "\n".join(mermaid(routing, Marks(changed_rules={"cls": frozenset({4})})))
    )
    (node,) = chain(chart)[:1]
    lines = chart.label(node).split("\n")
    assert lines[0] == "1. classification: cls"
    assert lines[1:3] == ["1. r0: set Segment = 0", "2. r1: set Segment = 1"]
    assert lines[-1] == "… and 3 more rules"
    assert chart.classes == {"changed": {node}}
    assert [chart.label(q) for q in chart.out(node, "no match: fallback queue")] == ["q"]


def test_a_rule_that_always_matches_ends_the_chain():
    rules = (
        {
            "name": "vip",
            "when": {"field": "context.Segment", "op": "equals", "value": "gold"},
            "routeTo": "vip",
        },
        {"name": "everyone", "routeTo": "general"},
        {
            "name": "never reached",
            "when": {"field": "conversation.x", "op": "isNotNull"},
            "routeTo": "other",
        },
    )
    routing = Routing("ws", None, "fallback", (RuleSet("rtq", "route-to-queue", 1, rules),))
    chart = parse_flowchart("\n".join(mermaid(routing, Marks())))
    assert [chart.label(n).split("\n") for n in chain(chart)] == [
        ["1. vip", "context.Segment equals gold"],
        ["2. everyone", "always"],
    ]
    everyone = chain(chart)[-1]
    assert [chart.label(q) for q in chart.out(everyone)] == ["general"]
    # Nothing leaves a rule that always matches: no later rule, no fallback queue.
    assert "fallback" not in {chart.label(n) for n in chart.nodes}
