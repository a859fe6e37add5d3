"""Apply's output (a line per step, the progress bar, the summary, the follow-up checklist) and
the explainer ``plan -v`` prints (the API calls by level). Names and messages from the target or
a saved plan may hold escape sequences: they come out escaped."""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.apply.applier import Applied
from reconciler.apply.followup import Item
from reconciler.plan.definition import Action, Change, Plan, PlanTarget, Summary
from reconciler.plan.evaluator import Outcome, Result
from reconciler.plan.stages import Op, Step
from reconciler.render.apply_text import (
    progress_bar,
    render_checklist,
    render_summary,
    step_line,
)
from reconciler.render.steps_text import levels, render_steps

HOSTILE = "Queue/evil\x1b[2J\x1b]0;pwned\x07\u202egnp.exe\nline"
ESCAPED = "Queue/evil\\x1b[2J\\x1b]0;pwned\\x07\\u202egnp.exe\\nline"


def change(address: str = "Queue/vip-support", kind: str = "Queue") -> Change:
    return Change(
        address=address,
        kind=kind,
        name=address.split("/", 1)[1],
        action=Action.CREATE,
        reason="test",
        id="5c2a36a1-0d3b-4c1e-9a52-1f0e0e5b7a11",
    )


def step(
    op: Op = Op.CREATE,
    address: str = "Queue/vip-support",
    *needs: str,
    etag: str | None = None,
    early: bool = False,
    kind: str = "Queue",
) -> Step:
    return Step(f"{op} {address}", op, change(address, kind), (), etag, needs, early)


def result(
    outcome: Outcome = Outcome.APPLIED,
    op: Op = Op.CREATE,
    detail: str = "created",
    address: str = "Queue/vip-support",
    seconds: float = 0.0213,
) -> Result:
    return Result(step(op, address), outcome, detail, seconds)


def no_escapes(text: str) -> bool:
    return not any(ch in text for ch in "\x1b\x07\u202e\r") and "\nline" not in text


# --- a line per finished step -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "detail", "line"),
    [
        (Op.CREATE, "created", "+ Queue/vip-support: created (0.02 s)"),
        (
            Op.CREATE,
            "already there; updated",
            "+ Queue/vip-support: already there; updated (0.02 s)",
        ),
        (Op.UPDATE, "updated", "~ Queue/vip-support: updated (0.02 s)"),
        (Op.LINK, "linked", "~ Queue/vip-support: linked (0.02 s)"),
        (Op.DELETE, "already gone", "- Queue/vip-support: already gone (0.02 s)"),
    ],
)
def test_an_applied_step_shows_its_symbol_what_happened_and_how_long(op, detail, line):
    assert step_line(result(Outcome.APPLIED, op, detail)) == line


@pytest.mark.parametrize(
    ("outcome", "op", "line"),
    [
        (Outcome.STALE, Op.UPDATE, "! Queue/vip-support: update stale: why"),
        (Outcome.STALE, Op.DELETE, "! Queue/vip-support: delete stale: why"),
        (Outcome.FAILED, Op.CREATE, "! Queue/vip-support: create failed: why"),
        (Outcome.FAILED, Op.LINK, "! Queue/vip-support: link failed: why"),
        (Outcome.SKIPPED, Op.LINK, "! Queue/vip-support: skipped: why"),
    ],
)
def test_a_step_that_did_not_apply_says_which_write_and_why(outcome, op, line):
    assert step_line(result(outcome, op, "why")) == line


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (Outcome.APPLIED, "32"),
        (Outcome.STALE, "33"),
        (Outcome.FAILED, "31"),
        (Outcome.SKIPPED, "2"),
    ],
)
def test_step_lines_are_coloured_by_outcome_only_when_asked(outcome, code):
    coloured = step_line(result(outcome), color=True)
    assert coloured.startswith(f"\x1b[{code}m")
    assert "\x1b[0m" in coloured
    assert "\x1b" not in step_line(result(outcome), color=False)


def test_hostile_names_and_messages_in_a_step_line_are_escaped():
    for outcome in Outcome:
        line = step_line(result(outcome, detail="bad\x1b[31m\nnews", address=HOSTILE))
        assert ESCAPED in line
        assert "bad\\x1b[31m\\nnews" in line
        assert no_escapes(line)


# --- the progress bar -------------------------------------------------------------------------


def test_the_progress_bar_fills_in_proportion_and_counts_outcomes():
    results = [result()] * 8 + [result(Outcome.FAILED)]
    assert progress_bar(results, 30) == (
        "[#########.....................]  9/30  applied 8 · failed 1"
    )


@pytest.mark.parametrize(
    ("done", "total", "width", "filled"),
    [(0, 7, 10, 0), (1, 3, 10, 3), (2, 3, 10, 6), (3, 3, 10, 10), (5, 200, 30, 0)],
)
def test_the_progress_bar_rounds_down_and_is_full_only_when_done(done, total, width, filled):
    bar = progress_bar([result()] * done, total, width)
    assert bar.startswith("[" + "#" * filled + "." * (width - filled) + "]")


def test_the_progress_bar_pads_the_count_to_the_totals_width_and_orders_the_tally():
    results = [
        result(Outcome.SKIPPED),
        result(Outcome.STALE),
        result(Outcome.APPLIED),
        result(Outcome.FAILED),
    ]
    bar = progress_bar(results, 120, width=4)
    assert bar == "[....]   4/120  applied 1 · stale 1 · failed 1 · skipped 1"


def test_an_empty_progress_bar():
    assert progress_bar([], 0, width=3) == "[###] 0/0  "
    assert progress_bar([], 5, width=3) == "[...] 0/5  "


# --- the summary ------------------------------------------------------------------------------


def applied(*results: Result, requests: int = 12, seconds: float = 1.26) -> Applied:
    plan = Plan(
        tool_version="0",
        created_at="2024-06-01T00:00:00Z",
        target=PlanTarget(url="local:x.db"),
        summary=Summary(create=len(results)),
    )
    return Applied(plan, tuple(results), (), requests, seconds)


def test_nothing_applied_adds_nothing_to_what_the_plan_said():
    assert render_summary(applied()) == ""


def test_an_apply_that_only_brought_the_ledger_up_to_date_says_so():
    only_ledger = dataclasses.replace(applied(requests=3, seconds=0.04), ledger_notes=1)
    assert render_summary(only_ledger) == (
        "Apply complete: the ledger is up to date (1 ledger note write, 3 requests in 0.0 s).\n"
    )


def test_a_complete_apply_is_one_line():
    text = render_summary(applied(result(), result(Outcome.APPLIED, Op.DELETE, "deleted")))
    assert text == (
        "Apply complete: 2 applied, 0 stale, 0 failed, 0 skipped (2 steps, 12 requests in 1.3 s).\n"
    )


def test_one_step_one_request_is_singular():
    text = render_summary(applied(result(), requests=1, seconds=0.04))
    assert "(1 step, 1 request in 0.0 s)" in text


def test_an_incomplete_apply_lists_what_did_not_apply_and_what_to_do():
    text = render_summary(
        applied(
            result(),
            result(Outcome.FAILED, Op.CREATE, "400 bad", "Queue/a"),
            result(Outcome.SKIPPED, Op.LINK, "needs create Queue/a (failed)", "Queue/b"),
        )
    )
    assert text == (
        "Apply incomplete: 1 applied, 0 stale, 1 failed, 1 skipped "
        "(3 steps, 12 requests in 1.3 s).\n"
        "  ! Queue/a: create failed: 400 bad\n"
        "  ! Queue/b: skipped: needs create Queue/a (failed)\n"
        "Applying again finishes the job: everything written so far is kept.\n"
    )


def test_stale_steps_ask_for_a_new_plan_instead_of_applying_again():
    text = render_summary(
        applied(result(Outcome.STALE, Op.UPDATE, "changed"), result(Outcome.FAILED, detail="x"))
    )
    assert text == (
        "Apply incomplete: 0 applied, 1 stale, 1 failed, 0 skipped "
        "(2 steps, 12 requests in 1.3 s).\n"
        "  ! Queue/vip-support: update stale: changed\n"
        "  ! Queue/vip-support: create failed: x\n"
        "Stale records changed in the target after the plan was made: plan again to see them, "
        "then apply the new plan. Everything written so far is kept.\n"
    )


def test_the_summary_is_coloured_only_when_asked():
    assert render_summary(applied(result()), color=True).startswith("\x1b[32mApply complete")
    incomplete = render_summary(applied(result(Outcome.FAILED)), color=True)
    assert incomplete.startswith("\x1b[31mApply incomplete")
    assert "\x1b" not in render_summary(applied(result(Outcome.FAILED)))


def test_hostile_details_in_the_summary_are_escaped():
    text = render_summary(applied(result(Outcome.FAILED, detail="\x1b[2Joops", address=HOSTILE)))
    assert ESCAPED in text
    assert "\\x1b[2Joops" in text
    assert no_escapes(text)


# --- the follow-up checklist ------------------------------------------------------------------


def test_no_checklist_prints_nothing():
    assert render_checklist([]) == ""


def test_the_checklist_lists_each_item_with_its_values():
    items = [
        Item(
            "FacebookAccount/fb/Support",
            "set the callback URL and verify token",
            (("callback URL", "https://oc/hook"), ("verify token", "abc")),
            new=True,
        ),
        Item("FacebookAccount/fb/Deals", "no callback URL yet"),
    ]
    assert render_checklist(items) == (
        "\n"
        "Follow-up (outside Dataverse):\n"
        "  [ ] new FacebookAccount/fb/Support: set the callback URL and verify token\n"
        "        callback URL: https://oc/hook\n"
        "        verify token: abc\n"
        "  [ ] FacebookAccount/fb/Deals: no callback URL yet\n"
    )


def test_a_checklist_item_about_no_record_has_no_address():
    text = render_checklist([Item("", "could not read the follow-up values back")])
    assert text.endswith("\n  [ ] could not read the follow-up values back\n")


def test_the_checklist_marks_new_items_in_colour_when_asked():
    text = render_checklist([Item("Queue/x", "do it", new=True)], color=True)
    assert "\x1b[1mFollow-up (outside Dataverse):\x1b[0m" in text
    assert "[ ] \x1b[33mnew\x1b[0m Queue/x: do it" in text


def test_hostile_names_and_values_in_the_checklist_are_escaped():
    items = [
        Item(
            HOSTILE,
            "paste\x1b]8;;http://evil\x07 this",
            (("callback URL", "https://x/\x1b[2J\r\nfake line"),),
            new=True,
        )
    ]
    text = render_checklist(items)

    assert f"  [ ] new {ESCAPED}: paste\\x1b]8;;http://evil\\x07 this\n" in text
    assert "        callback URL: https://x/\\x1b[2J\\r\\nfake line\n" in text
    assert no_escapes(text)
    assert text.count("\n") == 4


# --- the explainer: API calls by level --------------------------------------------------------


def test_levels_group_steps_by_how_many_steps_come_before_them():
    a = step(Op.CREATE, "Queue/a")
    b = step(Op.CREATE, "Queue/b")
    c = step(Op.UPDATE, "Workstream/c", a.key, kind="Workstream")
    d = step(Op.LINK, "Workstream/d", c.key, b.key, kind="Workstream")
    e = step(Op.CREATE, "Queue/e", a.key)
    assert levels([a, b, c, d, e]) == [[a, b], [c, e], [d]]


def test_early_deletes_come_first_and_everything_else_after_all_of_them():
    old = step(Op.DELETE, "Queue/old", early=True)
    older = step(Op.DELETE, "Queue/older", old.key, early=True)
    new = step(Op.CREATE, "Queue/new")
    late = step(Op.DELETE, "Queue/late", new.key)
    # "new" needs no delete, but apply starts it only once every early delete is done.
    assert levels([old, older, new, late]) == [[old], [older], [new], [late]]


def test_levels_follow_needs_on_later_steps():
    replaced = step(Op.DELETE, "Queue/general-support", "update Workstream/w")
    update = step(Op.UPDATE, "Workstream/w", kind="Workstream")
    assert levels([replaced, update]) == [[update], [replaced]]


def test_levels_refuse_steps_waiting_for_each_other():
    a = step(Op.UPDATE, "Queue/a", "update Queue/b")
    b = step(Op.UPDATE, "Queue/b", "update Queue/a")
    with pytest.raises(ValueError, match="cycle"):
        levels([a, b])


def test_without_early_deletes_independent_steps_start_at_once():
    new = step(Op.CREATE, "Queue/new")
    late = step(Op.DELETE, "Queue/late")
    assert levels([new, late]) == [[new, late]]


def test_no_steps_no_calls():
    assert levels([]) == []
    assert render_steps([]) == "Apply would make no API calls.\n"


def test_render_steps_shows_each_request_with_its_condition():
    page = "FacebookAccount/fb/Support"
    old = step(Op.DELETE, "Queue/old", etag='W/"7"', early=True)
    gone = step(Op.DELETE, "Queue/gone", early=True)
    create = step(Op.CREATE, page, kind="FacebookPage")
    link = step(Op.LINK, page, create.key, kind="FacebookPage")
    update = step(Op.UPDATE, "Queue/vip", etag='W/"9"')
    text = render_steps([old, gone, create, link, update])
    rid = "5c2a36a1-0d3b-4c1e-9a52-1f0e0e5b7a11"

    assert text == (
        "Apply would make these API calls (5 steps in 3 levels; each level starts once the "
        "steps it needs are done):\n"
        "  level 1:\n"
        f'    DELETE queues({rid})  If-Match: W/"7"  # delete Queue/old\n'
        f"    DELETE queues({rid})  # delete Queue/gone\n"
        "  level 2:\n"
        f"    PATCH  msdyn_ocfbpages({rid})  If-None-Match: *  # create {page}\n"
        f'    PATCH  queues({rid})  If-Match: W/"9"  # update Queue/vip\n'
        "  level 3:\n"
        f"    PATCH  msdyn_ocfbpages({rid})  If-Match: *  # link {page}\n"
    )


def test_one_step_one_level_is_singular():
    assert render_steps([step()]).startswith("Apply would make these API calls (1 step in 1 level;")


def test_hostile_names_in_the_explainer_are_escaped():
    text = render_steps([step(Op.DELETE, HOSTILE, etag='W/"1"\x1b[2J')])
    assert f"# delete {ESCAPED}" in text
    assert 'If-Match: W/"1"\\x1b[2J' in text
    assert no_escapes(text)


def test_an_apply_that_only_adopted_says_how_many():
    plan = applied().plan.model_copy(update={"summary": Summary(adopt=25)})
    only = Applied(plan, (), (), 7, 0.04, ledger_notes=1)
    assert render_summary(only) == (
        "Apply complete: 25 adopted, the ledger is up to date (1 ledger note write, 7 requests "
        "in 0.0 s).\n"
    )
