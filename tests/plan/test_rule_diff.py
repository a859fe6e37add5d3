"""A rule set's changes rule by rule, by rule name (docs/spec.md §5): an inserted rule is one
added rule, not every later rule changed; a real reorder shows as the fewest moves."""

from __future__ import annotations

import re

import pytest

from reconciler.plan import itempath
from reconciler.plan.builder import created_fields, differences
from reconciler.plan.definition import Action, Plan, PlanTarget, summarise
from reconciler.plan.stages import build_steps
from reconciler.render.plan_markdown import render_markdown
from reconciler.render.plan_text import render_text

ROUTING = "RoutingRuleSet/facebook-support-routing"
NIGHT = {"name": "Night", "when": {"field": "facebook.locale", "op": "isNotNull"}, "routeTo": "x"}
POSITIONAL = re.compile(r"\[\d+\]")


def rules(scenario) -> list[dict]:
    return scenario.spec("RoutingRuleSet", "facebook-support-routing")["rules"]


def routing_change(scenario, edit):
    rows = scenario.rows()
    edit(rules(scenario))
    (change,) = [c for c in scenario.build(rows).changes if c.action is not Action.NOOP]
    assert change.address == ROUTING
    assert change.action is Action.UPDATE
    return change


def diff(change) -> list[tuple[str, object, object]]:
    return [(f.path, f.before, f.after) for f in change.fields]


def plan_of(*changes) -> Plan:
    return Plan(
        tool_version="0.0.0-test",
        created_at="2024-06-01T12:00:00Z",
        target=PlanTarget(url="local:.reconciler/test.db", organization_id="org"),
        summary=summarise(changes),
        changes=changes,
    ).with_checksum()


def test_a_rule_inserted_at_the_top_is_one_added_rule(scenario):
    night = {**NIGHT, "routeTo": "dutch-support"}
    change = routing_change(scenario, lambda r: r.insert(0, night))

    assert diff(change) == [("rules[Night]", None, night)]
    assert not [f.path for f in change.fields if POSITIONAL.search(f.path)]
    assert change.reason == "1 field differs"
    # Apply writes the rule set's rules: one update step, of the ``rules`` field.
    (step,) = build_steps(plan_of(change))
    assert step.paths == ("rules",)


def test_a_removed_rule_is_one_entry_with_the_rule_before(scenario):
    removed = dict(rules(scenario)[0])
    change = routing_change(scenario, lambda r: r.pop(0))

    assert [(f.path, f.after) for f in change.fields] == [("rules[Known VIP customer]", None)]
    assert change.fields[0].before == removed


def test_a_changed_rule_names_the_rule_and_each_changed_key(scenario):
    when = {
        "all": [
            {"field": "facebook.locale", "op": "equals", "value": "nl_NL"},
            {"field": "context.Language", "op": "equals", "value": "Dutch"},
        ]
    }

    def edit(r):
        r[1]["routeTo"] = "vip-support"
        r[1]["when"] = when

    change = routing_change(scenario, edit)

    assert [f.path for f in change.fields] == [
        "rules[Dutch speakers].when",
        "rules[Dutch speakers].routeTo",
    ]
    assert change.fields[0].after == when
    assert (change.fields[1].before, change.fields[1].after) == ("dutch-support", "vip-support")


def test_a_real_move_is_shown_once_and_rules_it_passes_do_not_move(scenario):
    change = routing_change(scenario, lambda r: r.insert(0, r.pop()))

    assert diff(change) == [("rules[Spread the rest].position", 3, 1)]


def test_a_moved_and_changed_rule_shows_both(scenario):
    def edit(r):
        r.insert(0, r.pop())
        r[0]["routeTo"] = "vip-support"

    change = routing_change(scenario, edit)

    assert [f.path for f in change.fields] == [
        "rules[Spread the rest].position",
        "rules[Spread the rest].routeTo",
    ]


def test_the_text_plan_shows_a_changed_condition_as_yaml_lines(scenario):
    def edit(r):
        r[0]["when"] = {"field": "facebook.customerName", "op": "equals", "value": "Piet"}

    plan = plan_of(routing_change(scenario, edit))
    text = render_text(plan)

    assert (
        "      ~ rules[Known VIP customer].when:\n"
        "            field: facebook.customerName\n"
        "            op: equals\n"
        "          - value: Jan de Vries\n"
        "          + value: Piet\n"
    ) in text
    assert (
        "  rules[Known VIP customer].when:\n"
        "    field: facebook.customerName\n"
        "    op: equals\n"
        "-   value: Jan de Vries\n"
        "+   value: Piet\n"
    ) in render_markdown(plan)


# --- differences itself -----------------------------------------------------------------------


def rule(name: str, route: str = "q", **extra: object) -> dict:
    return {"name": name, "routeTo": route, **extra}


@pytest.mark.parametrize(
    ("before", "after", "found"),
    [
        pytest.param(
            ["a", "b", "c", "d"],
            ["b", "a", "c", "d"],
            [("rules[a].position", 1, 2)],
            id="swap-of-two-is-one-move",
        ),
        pytest.param(
            ["a", "b", "c", "d"],
            ["d", "c", "b", "a"],
            [("rules[c].position", 3, 2), ("rules[b].position", 2, 3), ("rules[a].position", 1, 4)],
            id="reversed-moves-all-but-one",
        ),
        pytest.param(
            ["a", "b", "c"],
            ["a", "x", "c"],
            [("rules[b]", rule("b"), None), ("rules[x]", None, rule("x"))],
            id="removed-then-added-where-they-stand",
        ),
        pytest.param(
            ["a", "b", "c"],
            ["b", "c"],
            [("rules[a]", rule("a"), None)],
            id="removed-at-the-top-moves-nothing",
        ),
    ],
)
def test_only_the_fewest_rules_move(before, after, found):
    assert differences("rules", [rule(n) for n in before], [rule(n) for n in after]) == found


def test_names_not_unique_on_either_side_are_diffed_by_position():
    """A target's rule set edited by hand may hold two rules of one name (validate refuses
    that in manifests): by position, nothing is lost."""
    before = [rule("a"), rule("a", "r")]
    after = [rule("a"), rule("a", "s"), rule("b")]

    assert differences("rules", before, after) == [
        ("rules[1].routeTo", "r", "s"),
        ("rules[2]", None, rule("b")),
    ]
    assert created_fields("rules", before) == [
        ("rules[0]", None, before[0]),
        ("rules[1]", None, before[1]),
    ]


def test_a_created_rule_set_is_one_field_per_rule():
    value = [rule("VIP customers"), rule("a.b]")]

    assert created_fields("rules", value) == [
        ("rules[VIP customers]", None, value[0]),
        ('rules["a.b]"]', None, value[1]),
    ]
    assert created_fields("rules", []) == [("rules", None, [])]


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("VIP customers", "rules[VIP customers]"),
        ("a.b", 'rules["a.b"]'),
        ("x]y", 'rules["x]y"]'),
        ("[x", 'rules["[x"]'),
        ('say "hi"', 'rules["say \\"hi\\""]'),
        ("back\\slash", 'rules["back\\\\slash"]'),
        ("2", 'rules["2"]'),
        (" padded", 'rules[" padded"]'),
        ("", 'rules[""]'),
        ("line\nbreak", 'rules["line\\nbreak"]'),
        ("Ünïcode ✓", "rules[Ünïcode ✓]"),
    ],
)
def test_a_rule_path_is_unambiguous_and_reads_back(name, path):
    assert itempath.item("rules", name) == path
    assert itempath.split(path) == ("rules", name, "")
    assert itempath.split(path + ".routeTo") == ("rules", name, "routeTo")
    assert itempath.split(path + ".position") == ("rules", name, "position")


def test_a_positional_path_reads_back_as_an_index():
    assert itempath.item("rules", 2) == "rules[2]"
    assert itempath.split("rules[2].when") == ("rules", 2, "when")
    for path in ("rules", "distribution.mode", 'rules["open', "rules[a]x", "rules[]"):
        assert itempath.split(path) is None
