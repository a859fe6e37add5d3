"""The markdown plan stays within its budget (GitHub refuses a comment over 65,536 characters).

What matters always fits: the summary, every destructive change and conflict (a table row
each), the warnings; the rest is left out whole, and a note says how much and where the full
plan is. The comment stays well-formed: every ``<details>`` closed, no half code span or fence.
"""

from __future__ import annotations

import random
import re

import pytest
from markdown_form import check_form, shortened_counts

from reconciler.plan.definition import (
    Action,
    Change,
    FieldChange,
    FollowUp,
    Plan,
    PlanTarget,
    Warning,
    summarise,
)
from reconciler.render.plan_markdown import BUDGET, MIN_BUDGET, render_markdown


def change(address: str, action: Action, *, reason: str = "because", fields=()) -> Change:
    kind, _, name = address.partition("/")
    return Change(
        address=address,
        kind=kind,
        name=name,
        action=action,
        reason=reason,
        id=f"id-{address}",
        fields=tuple(fields),
    )


def make_plan(changes, **extra) -> Plan:
    return Plan(
        tool_version="0.1.0",
        created_at="2024-05-01T12:00:00Z",
        target=PlanTarget(url="https://contoso.crm4.dynamics.com", organization_id="1234"),
        summary=summarise(tuple(changes)),
        changes=tuple(changes),
        **extra,
    ).with_checksum()


def queue_fields(i: int, before: bool = False) -> list[FieldChange]:
    side = "before" if before else "after"
    return [
        FieldChange(path="priority", **{side: i % 100 + 1}),
        FieldChange(path="displayName", **{side: f"Support queue number {i}"}),
        FieldChange(path="description", **{side: "Conversations routed here. " * 3}),
    ]


def big_plan(
    creates: int = 2885, deletes: int = 100, replaces: int = 10, conflicts: int = 5
) -> Plan:
    changes = [
        change(
            f"Queue/old-{i:04}",
            Action.DELETE,
            reason="not in the manifests (--prune)",
            fields=queue_fields(i, before=True),
        )
        for i in range(deletes)
    ]
    changes += [
        change(
            f"Workstream/ws-{i:03}",
            Action.REPLACE,
            reason="distribution.mode is set at creation: push → pick",
            fields=[FieldChange(path="distribution.mode", before="push", after="pick")],
        )
        for i in range(replaces)
    ]
    changes += [
        change(
            f"Queue/new-{i:04}", Action.CREATE, reason="not in the target", fields=queue_fields(i)
        )
        for i in range(creates)
    ]
    changes += [
        change(f"Queue/shared-{i}", Action.CONFLICT, reason="owned by another project")
        for i in range(conflicts)
    ]
    warnings = tuple(
        Warning(code="w", message=f"queue new-{i:04} has no agents", location=f"q.yaml:{i}:1")
        for i in range(20)
    )
    follow_up = (FollowUp(address="FacebookAccount/fb/Page", output="u", message="paste the URL"),)
    return make_plan(changes, warnings=warnings, follow_up=follow_up, requests=12)


# --- the tests ----------------------------------------------------------------------------------


def test_a_plan_that_fits_is_whole_and_says_nothing_of_a_budget():
    plan = big_plan(creates=20, deletes=3, replaces=1, conflicts=1)
    markdown = render_markdown(plan)
    check_form(markdown)
    assert "Shortened" not in markdown
    assert markdown.count("<details><summary>") == 3 + 1 + 20


def test_a_3000_change_plan_fits_with_the_summary_every_destructive_change_and_the_warnings():
    plan = big_plan()
    assert len(plan.changes) == 3000
    markdown = render_markdown(plan)
    assert len(markdown) <= BUDGET
    check_form(markdown)
    assert markdown.startswith("### reconciler plan for `https://contoso.crm4.dynamics.com`\n")
    assert "| Action | Count |\n|---|---:|\n| create | 2885 |" in markdown
    assert "**Plan: 2885 to create, 0 to update, 10 to replace, 100 to delete, 5 conflicts.**" in (
        markdown
    )
    for change in plan.changes:
        if change.action in (Action.DELETE, Action.REPLACE):
            assert f"| {change.action} | `{change.address}` |" in markdown
        if change.action is Action.CONFLICT:
            assert f"| `{change.address}` | `owned by another project` |" in markdown
    for warning in plan.warnings:
        assert f"- `{warning.location}`: `{warning.message}`" in markdown
    assert "- [ ] `FacebookAccount/fb/Page`: `paste the URL`" in markdown
    # Room was left after the must-haves: destructive details first, then some creates.
    assert "<code>Queue/old-0099</code> will be deleted" in markdown
    shown = sum(f"<code>Queue/new-{i:04}</code>" in markdown for i in range(2885))
    assert 0 < shown < 2885
    hidden, total = shortened_counts(markdown)
    assert (hidden, total) == (2885 - shown, 3000)
    note = next(line for line in markdown.splitlines() if "Shortened" in line)
    assert "`reconciler plan --out FILE`" in note
    assert "`reconciler plan` prints it whole as text" in note
    assert markdown.index("**Plan:") < markdown.index(note) < markdown.index("#### ⚠️")
    assert markdown.splitlines()[-1].startswith("<sub>organization `1234` · read in 12 requests")


def test_destructive_changes_are_listed_compactly_when_their_details_do_not_fit():
    deletes = [
        change(
            f"Queue/old-{i:04}",
            Action.DELETE,
            fields=[FieldChange(path="description", before="x" * 2000)],
        )
        for i in range(200)
    ]
    markdown = render_markdown(make_plan(deletes))
    assert len(markdown) <= BUDGET
    check_form(markdown)
    for i in range(200):
        assert f"| delete | `Queue/old-{i:04}` | `because` |" in markdown
    detailed = markdown.count("will be deleted</summary>")
    assert 0 < detailed < 200
    assert f"{200 - detailed:,} are listed without their field details" in markdown
    assert "more destructive changes" not in markdown


def test_more_destructive_changes_than_fit_are_counted_never_dropped_silently():
    deletes = [
        change(f"Queue/old-{i:04}", Action.DELETE, reason="a long reason " * 30)
        for i in range(3000)
    ]
    warnings = tuple(Warning(code="w", message=f"warning {i}") for i in range(5))
    markdown = render_markdown(make_plan(deletes, warnings=warnings))
    assert len(markdown) <= BUDGET
    check_form(markdown)
    rows = [i for i in range(3000) if f"| delete | `Queue/old-{i:04}` |" in markdown]
    assert rows == list(range(len(rows)))  # a leading run, in plan order
    more = 3000 - len(rows)
    assert more > 0
    assert f"*… and {more:,} more destructive changes not listed here: see the full plan.*" in (
        markdown
    )
    assert shortened_counts(markdown) == (more, 3000)
    # The cells are cut (MAX_CELL), whole code spans: the reason ends with "…`".
    assert "a long reason a long reason" in markdown
    assert "…` |" in markdown
    # A share of the budget is kept for the warnings: the deletes do not crowd them out.
    assert all(f"- `warning {i}`" in markdown for i in range(5))
    assert "more warnings" not in markdown


def test_when_neither_deletes_nor_warnings_fit_both_say_how_many_more():
    deletes = [change(f"Queue/old-{i:04}", Action.DELETE) for i in range(3000)]
    warnings = tuple(Warning(code="w", message=f"warning {i} " * 10) for i in range(3000))
    conflicts = [change(f"Queue/c-{i:04}", Action.CONFLICT) for i in range(3000)]
    markdown = render_markdown(make_plan([*deletes, *conflicts], warnings=warnings))
    assert len(markdown) <= BUDGET
    check_form(markdown)
    for what, total, pattern in (
        ("destructive changes", 3000, r"\| delete \| `Queue/old-\d{4}` \|"),
        ("conflicts", 3000, r"\| `Queue/c-\d{4}` \|"),
        ("warnings", 3000, r"- `warning \d+ "),
    ):
        shown = len(re.findall(pattern, markdown))
        assert shown > 50, what
        assert f"*… and {total - shown:,} more {what} not listed here" in markdown


def test_the_budget_is_a_parameter_and_has_a_floor():
    plan = big_plan(creates=50, deletes=10, replaces=2, conflicts=2)
    for budget in (MIN_BUDGET, 8_000, 20_000):
        markdown = render_markdown(plan, budget=budget)
        assert len(markdown) <= budget
        check_form(markdown)
    with pytest.raises(ValueError, match="at least"):
        render_markdown(plan, budget=MIN_BUDGET - 1)


def test_one_huge_change_does_not_hide_the_others():
    huge = change("Queue/huge", Action.CREATE, fields=[FieldChange(path="d", after="x" * 100_000)])
    small = [change(f"Queue/q{i}", Action.CREATE, fields=queue_fields(i)) for i in range(20)]
    markdown = render_markdown(make_plan([huge, *small]))
    check_form(markdown)
    assert "Queue/huge" not in markdown
    assert all(f"<code>Queue/q{i}</code>" in markdown for i in range(20))
    assert shortened_counts(markdown) == (1, 21)


def test_unchanged_records_and_charts_left_out_are_said():
    noops = [change(f"Queue/same-{i:05}", Action.NOOP) for i in range(5000)]
    markdown = render_markdown(make_plan([change("Queue/new", Action.CREATE), *noops]))
    assert len(markdown) <= BUDGET
    check_form(markdown)
    assert "| unchanged | 5000 |" in markdown
    assert "the list of 5000 unchanged records left out" in markdown
    assert "Queue/same-00000" not in markdown


@pytest.mark.parametrize("seed", range(40))
def test_random_plans_stay_within_random_budgets(seed):
    rng = random.Random(seed)
    actions = [Action.CREATE, Action.UPDATE, Action.DELETE, Action.REPLACE, Action.CONFLICT]
    changes = []
    for i in range(rng.randint(0, 400)):
        action = rng.choice([*actions, Action.NOOP, Action.ADOPT])
        size = rng.choice([1, 10, 100, 3000])
        fields = [FieldChange(path="f", before="b" * size, after="a" * size)]
        change_ = change(f"Queue/q-{i}", action, reason="r" * rng.randint(1, 500), fields=fields)
        if action is Action.ADOPT:
            change_ = change_.model_copy(
                update={"current_name": "Made ` by | hand", "adopted": True}
            )
        changes.append(change_)
    warnings = tuple(
        Warning(code="w", message="m `x` |" * rng.randint(1, 50))
        for _ in range(rng.randint(0, 300))
    )
    plan = make_plan(changes, warnings=warnings)
    budget = rng.randint(MIN_BUDGET, 40_000)
    markdown = render_markdown(plan, budget=budget)
    assert len(markdown) <= budget
    check_form(markdown)
    destructive = [c for c in plan.changes if c.action in (Action.DELETE, Action.REPLACE)]
    rows = sum(f"| {c.action} | `{c.address}` |" in markdown for c in destructive)
    more = re.search(r"\*… and ([\d,]+) more destructive changes", markdown)
    assert rows + (int(more[1].replace(",", "")) if more else 0) == len(destructive)
