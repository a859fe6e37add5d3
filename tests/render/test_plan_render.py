"""The plan as terminal text and as a pull-request comment (docs/spec.md §4, §5)."""

import json
import re

import pytest
from markdown_form import check_form, outside_code

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
from reconciler.render import neutral
from reconciler.render.plan_markdown import render_markdown
from reconciler.render.plan_text import render_text

MARKER = "MARKER-secret-value-5e5e"
FINGERPRINT = "sha256:1a2b3c4d5e6f"


def change(address, action, *, reason="because", fields=(), desired=None, kind=None, name=None):
    kind_part, _, name_part = address.partition("/")
    return Change(
        address=address,
        kind=kind or kind_part,
        name=name or name_part,
        action=action,
        reason=reason,
        id=f"id-{address}",
        fields=tuple(fields),
        desired=desired,
    )


def make_plan(*changes, **extra):
    extra.setdefault("target", PlanTarget(url="local:.reconciler/dev.db", organization_id="1234"))
    return Plan(
        tool_version="0.1.0",
        created_at="2024-05-01T12:00:00Z",
        summary=summarise(tuple(changes)),
        changes=tuple(changes),
        **extra,
    )


SECRET = FieldChange(
    path="applicationSecret",
    sensitive=True,
    fingerprint=FINGERPRINT,
    source="env:FB_APP_SECRET",
)

DELETE = change("Queue/old-queue", Action.DELETE, reason="not in the manifests (--prune)")
REPLACE = change(
    "Workstream/facebook-support",
    Action.REPLACE,
    reason="distribution.mode is set at creation: push → pick",
    fields=[FieldChange(path="distribution.mode", before="push", after="pick")],
)
CREATE = change(
    "Queue/new-queue",
    Action.CREATE,
    reason="not in the target",
    desired={
        "priority": 3,
        "description": None,
        "distribution.mode": "push",
        "distribution.capacity": 2,
        "languages": ["en-US", "fr-FR"],
    },
    fields=[
        FieldChange(path="priority", after=3),
        FieldChange(path="distribution.mode", after="push"),
        FieldChange(path="distribution.capacity", after=2),
        FieldChange(path="languages", after=["en-US", "fr-FR"]),
    ],
)
UPDATE = change(
    "FacebookAccount/fb",
    Action.UPDATE,
    reason="2 fields differ",
    fields=[FieldChange(path="priority", before=5, after=1), SECRET],
)
CONFLICT = change("Queue/shared", Action.CONFLICT, reason="owned by another project")
NOOP = change("Queue/same", Action.NOOP, reason="matches")

FULL = make_plan(
    DELETE,
    REPLACE,
    CREATE,
    UPDATE,
    CONFLICT,
    NOOP,
    warnings=(
        Warning(code="w", message="queue has no agents", location="queues.yaml:3:5"),
        Warning(code="w", message="Facebook channel retires soon"),
    ),
    follow_up=(
        FollowUp(address="FacebookAccount/fb/Page", output="callbackUrl", message="paste the URL"),
    ),
    unmanaged={"Workstream": 1, "Queue": 3},
    requests=12,
)

FULL_TEXT = """\
Target: local:.reconciler/dev.db (organization 1234)
Read the target in 12 requests.

  # Queue/old-queue will be deleted
  # (not in the manifests (--prune))
  - Queue "old-queue"

  # Workstream/facebook-support must be replaced
  # (distribution.mode is set at creation: push → pick)
-/+ Workstream "facebook-support" {
      ~ distribution.mode: "push" → "pick"
    }

  # Queue/new-queue will be created
  + Queue "new-queue" {
      + priority: 3
      + distribution.mode: "push"
      + distribution.capacity: 2
      + languages: ["en-US", "fr-FR"]
    }

  # FacebookAccount/fb will be updated in place
  ~ FacebookAccount "fb" {
      ~ priority: 5 → 1
      ~ applicationSecret: (sensitive) → (sensitive, sha256:1a2b3c4d5e6f, from env:FB_APP_SECRET)
    }

Conflicts (apply refuses until they are resolved):

  # Queue/shared is in conflict
  ! Queue "shared" conflicts: owned by another project

1 unchanged.

Warning: queues.yaml:3:5: queue has no agents
Warning: Facebook channel retires soon

Unmanaged: 3 Queue, 1 Workstream records in the target are left alone.

After apply:
  - FacebookAccount/fb/Page: paste the URL

Plan: 1 to create, 1 to update, 1 to replace, 1 to delete, 1 conflict.
"""


# --- text -------------------------------------------------------------------------------------


def test_text_reads_like_terraform():
    assert render_text(FULL) == FULL_TEXT


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ((CREATE,), "Plan: 1 to create, 0 to update, 0 to replace, 0 to delete."),
        (
            (CREATE, CONFLICT),
            "Plan: 1 to create, 0 to update, 0 to replace, 0 to delete, 1 conflict.",
        ),
        (
            (CONFLICT,) * 2,
            "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 2 conflicts.",
        ),
        ((DELETE, REPLACE, UPDATE), "Plan: 0 to create, 1 to update, 1 to replace, 1 to delete."),
        ((NOOP,), "No changes. The target matches the manifests."),
        ((), "No changes. The target matches the manifests."),
    ],
)
def test_closing_line(changes, line):
    plan = make_plan(*changes)
    assert render_text(plan).splitlines()[-1] == line
    assert f"**{line}**" in render_markdown(plan)


def test_empty_plan_is_header_and_no_changes():
    plan = make_plan(target=PlanTarget(url="https://org.crm.dynamics.com"), requests=1)
    assert render_text(plan) == (
        "Target: https://org.crm.dynamics.com\n"
        "Read the target in 1 request.\n"
        "\n"
        "No changes. The target matches the manifests.\n"
    )


def test_symbols_are_right_aligned_and_each_action_has_its_own():
    lines = render_text(FULL).splitlines()
    assert '  - Queue "old-queue"' in lines
    assert '-/+ Workstream "facebook-support" {' in lines
    assert '  + Queue "new-queue" {' in lines
    assert '  ~ FacebookAccount "fb" {' in lines
    assert '  ! Queue "shared" conflicts: owned by another project' in lines


def test_every_delete_replace_and_conflict_has_a_reason_and_nothing_is_invented():
    text = render_text(FULL)
    assert "  # (not in the manifests (--prune))" in text
    assert "  # (distribution.mode is set at creation: push → pick)" in text
    assert "forces replacement" not in text
    # creates and updates show their reason only when verbose
    assert "not in the target" not in text
    assert "  # (not in the target)" in render_text(FULL, verbose=1)
    assert "  # (2 fields differ)" in render_text(FULL, verbose=1)
    assert render_text(FULL, verbose=1).count("owned by another project") == 1


def test_update_field_symbols_follow_which_side_is_present():
    fields = [
        FieldChange(path="description", before=None, after="VIP"),
        FieldChange(path="overflow", before={"action": "queue", "to": "q2"}, after=None),
        FieldChange(path="odd", before=None, after=None),
    ]
    text = render_text(make_plan(change("Queue/q", Action.UPDATE, fields=fields)))
    assert '      + description: "VIP"' in text
    # A structured value: its YAML under the field's line (manifest form, not JSON).
    assert "      - overflow:\n            action: queue\n            to: q2\n" in text
    assert "      ~ odd: null → null" in text


def test_create_without_desired_lists_fields_and_without_any_has_no_braces():
    fields = [FieldChange(path="name", after="Q"), FieldChange(path="gone", before=1), SECRET]
    text = render_text(make_plan(change("Queue/q", Action.CREATE, fields=fields)))
    assert '      + name: "Q"' in text
    assert "gone" not in text
    assert f"      + applicationSecret: (sensitive, {FINGERPRINT}, from env:FB_APP_SECRET)" in text
    bare = render_text(make_plan(change("Queue/empty", Action.CREATE, desired={"x": None})))
    assert '  + Queue "empty"\n' in bare
    assert "{" not in bare


def test_delete_lists_its_fields_when_it_has_some():
    fields = [FieldChange(path="priority", before=5), SECRET]
    text = render_text(make_plan(change("Queue/q", Action.DELETE, fields=fields)))
    assert (
        '  - Queue "q" {\n      - priority: 5\n      - applicationSecret: (sensitive)\n    }'
        in text
    )


def test_conflict_lists_its_fields_under_the_conflict_line():
    fields = [FieldChange(path="priority", before=5, after=1)]
    text = render_text(make_plan(change("Queue/x", Action.CONFLICT, reason="etag", fields=fields)))
    assert '  ! Queue "x" conflicts: etag\n      ~ priority: 5 → 1\n' in text


def sensitive_plan():
    """A planner bug would put the secret in before/after or desired: it still never shows."""
    leaky = FieldChange(path="applicationSecret", before=MARKER, after=MARKER, sensitive=True)
    create_secret = SECRET.model_copy(update={"before": MARKER, "after": MARKER})
    return make_plan(
        change(
            "FacebookAccount/new",
            Action.CREATE,
            desired={"applicationId": "1", "applicationSecret": MARKER},
            fields=[FieldChange(path="applicationId", after="1"), create_secret],
        ),
        change("FacebookAccount/fb", Action.UPDATE, fields=[leaky, SECRET]),
        change("FacebookAccount/old", Action.DELETE, fields=[leaky]),
        change("FacebookAccount/x", Action.REPLACE, reason="r", fields=[leaky]),
    )


def test_sensitive_values_never_appear():
    plan = sensitive_plan()
    for output in (render_text(plan), render_text(plan, verbose=2), render_markdown(plan)):
        assert MARKER not in output
        assert "(sensitive)" in output
        assert FINGERPRINT in output
        assert "from env:FB_APP_SECRET" in output
    assert '      + applicationId: "1"' in render_text(plan)


def test_colour_paints_the_action_lines():
    text = render_text(FULL, color=True)
    assert '\x1b[32m  + Queue "new-queue" {\x1b[0m' in text
    assert '\x1b[31m  - Queue "old-queue"\x1b[0m' in text
    assert '\x1b[33m-/+ Workstream "facebook-support" {\x1b[0m' in text
    assert '\x1b[33m  ~ FacebookAccount "fb" {\x1b[0m' in text
    assert '\x1b[1m\x1b[31m  ! Queue "shared" conflicts: owned by another project' in text
    assert "\x1b[33m~\x1b[0m priority: 5 → 1" in text
    assert "\x1b[33mWarning\x1b[0m: queues.yaml:3:5" in text


def test_no_colour_means_no_escape_at_all_even_from_the_target():
    hostile = change(
        "Queue/evil\x1b[31m",
        Action.UPDATE,
        name="evil\x1b[2J",
        fields=[FieldChange(path="description", before="a\x1b]0;title\x07", after="b\u202ec")],
    )
    plan = make_plan(hostile, *FULL.changes, warnings=(Warning(code="w", message="m\x1b[0m"),))
    text = render_text(plan)
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert "Queue/evil\\x1b[31m" in text
    assert '~ Queue "evil\\u001b[2J"' in text
    assert "\x1b" not in render_markdown(plan)


def test_noops_are_counted_and_listed_only_when_verbose():
    plan = make_plan(NOOP, change("Queue/also-same", Action.NOOP), CREATE)
    quiet = render_text(plan)
    assert "2 unchanged." in quiet
    assert "Queue/same" not in quiet
    loud = render_text(plan, verbose=1)
    assert "2 unchanged.\n    Queue/same\n    Queue/also-same\n" in loud


def test_warning_location_falls_back_to_the_address():
    plan = make_plan(warnings=(Warning(code="w", message="no agents", address="Queue/q"),))
    assert "Warning: Queue/q: no agents\n" in render_text(plan)


def test_unmanaged_line_in_singular_and_without_empty_kinds():
    text = render_text(make_plan(unmanaged={"Queue": 1, "Workstream": 0}))
    assert "Unmanaged: 1 Queue record in the target is left alone.\n" in text
    assert "Unmanaged" not in render_text(make_plan(unmanaged={"Queue": 0}))


def test_text_keeps_plan_order():
    plan = make_plan(CREATE, DELETE, UPDATE)
    text = render_text(plan)
    assert text.index("Queue/new-queue") < text.index("Queue/old-queue") < text.index("Account/fb")


# --- markdown ---------------------------------------------------------------------------------


def test_markdown_title_then_summary_table_first():
    lines = render_markdown(FULL).splitlines()
    assert lines[:13] == [
        "### reconciler plan for `local:.reconciler/dev.db`",
        "",
        "| Action | Count |",
        "|---|---:|",
        "| create | 1 |",
        "| update | 1 |",
        "| replace | 1 |",
        "| delete | 1 |",
        "| adopt | 0 |",
        "| conflict | 1 |",
        "| unchanged | 1 |",
        "",
        "**Plan: 1 to create, 1 to update, 1 to replace, 1 to delete, 1 conflict.**",
    ]


def test_markdown_puts_destructive_changes_first_then_conflicts_then_the_rest():
    plan = make_plan(CREATE, UPDATE, NOOP, CONFLICT, REPLACE, DELETE)
    md = render_markdown(plan)
    order = [
        "#### ⚠️ Destructive changes",
        "| replace | `Workstream/facebook-support` |",
        "| delete | `Queue/old-queue` | `not in the manifests (--prune)` |",
        "#### ⛔ Conflicts",
        "| `Queue/shared` | `owned by another project` |",
        "#### Changes",
        "<code>Queue/new-queue</code> will be created",
        "<code>FacebookAccount/fb</code> will be updated in place",
        "<summary>1 record unchanged</summary>",
        "- `Queue/same`",
    ]
    positions = [md.index(text) for text in order]
    assert positions == sorted(positions)


def test_markdown_details_hold_a_diff_in_manifest_terms():
    md = render_markdown(FULL)
    assert (
        "<details><summary><code>-/+</code> <code>Workstream/facebook-support</code> "
        "must be replaced</summary>\n\n"
        '```diff\n- distribution.mode: "push"\n+ distribution.mode: "pick"\n```\n\n</details>'
    ) in md
    assert (
        "Reason: `2 fields differ`\n\n```diff\n- priority: 5\n+ priority: 1\n"
        "- applicationSecret: (sensitive)\n"
        f"+ applicationSecret: (sensitive, {FINGERPRINT}, from env:FB_APP_SECRET)\n```"
    ) in md
    assert '```diff\n- Queue "old-queue"\n```' in md
    assert '+ distribution.mode: "push"\n' in md
    assert md.count("<details>") == md.count("</details>") == 5


def test_markdown_conflict_details_only_when_it_has_fields_and_empty_diff_says_so():
    fields = [FieldChange(path="priority", before=5, after=1)]
    md = render_markdown(
        make_plan(
            change("Queue/x", Action.CONFLICT, fields=fields),
            CONFLICT,
            change("Queue/bare", Action.UPDATE),
        )
    )
    assert "<code>Queue/x</code> is in conflict" in md
    assert "<code>Queue/shared</code>" not in md
    assert "```diff\n  (no field changes)\n```" in md
    assert "Apply refuses while any conflict remains." in md


def test_markdown_warnings_unmanaged_follow_up_and_footer():
    md = render_markdown(FULL.with_checksum())
    assert (
        "#### Warnings\n\n- `queues.yaml:3:5`: `queue has no agents`\n"
        "- `Facebook channel retires soon`\n"
    ) in md
    assert "\nUnmanaged: 3 `Queue`, 1 `Workstream` records in the target are left alone.\n" in md
    assert "#### After apply\n\n- [ ] `FacebookAccount/fb/Page`: `paste the URL`\n" in md
    footer = md.splitlines()[-1]
    assert footer.startswith("<sub>organization `1234` · read in 12 requests · reconciler 0.1.0 · ")
    assert re.search(r"sha256:[0-9a-f]{64}</sub>$", footer)


def test_markdown_empty_plan_has_no_sections():
    md = render_markdown(make_plan(target=PlanTarget(url="local")))
    assert "**No changes. The target matches the manifests.**" in md
    assert "####" not in md
    assert "<details>" not in md
    assert md.splitlines()[-1] == "<sub>read in 0 requests · reconciler 0.1.0</sub>"


def cells(row):
    """Split a GFM table row the way GitHub does: at every pipe not written ``\\|``."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def test_markdown_escapes_what_would_break_a_table_or_a_paragraph():
    evil = "a|b `x` <b>*bold*</b> [link](http://e) ~~s~~ & _u_"
    plan = make_plan(
        change(f"Queue/{evil}", Action.DELETE, name=evil, reason=evil),
        change("Queue/c|d", Action.CONFLICT, reason="x|y"),
        warnings=(
            Warning(code="w", message="- looks like a list"),
            Warning(code="w", message="1. looks numbered"),
            Warning(code="w", message="# looks like a heading", location="f`|.yaml:1:1"),
        ),
        unmanaged={"Q|<x>": 2},
    )
    md = render_markdown(plan)
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    delete_row = next(row for row in rows if row.startswith("| delete | `"))
    assert len(cells(delete_row)) == 3
    # Names and reasons sit in code spans: nothing in them is markdown or HTML.
    assert cells(delete_row)[2].strip() == (
        r"``a\|b `x` <b>*bold*</b> [link](http://e) ~~s~~ & _u_``"
    )
    assert "``Queue/a\\|b `x` <b>*bold*</b>" in delete_row
    assert len(cells(next(row for row in rows if "c\\|d" in row))) == 2
    assert "<summary><code>-</code> <code>Queue/a|b `x` &lt;b&gt;*bold*&lt;/b&gt;" in md
    assert "- `- looks like a list`" in md
    assert "- `1. looks numbered`" in md
    assert "- ``f`|.yaml:1:1``: `# looks like a heading`" in md
    assert "Unmanaged: 2 `Q|<x>` records" in md


def test_markdown_values_cannot_close_the_fence_or_the_details():
    value = "```\n</details>\n````"
    fields = [FieldChange(path="description", before=value, after="</details>")]
    plan = make_plan(
        change("Queue/q", Action.UPDATE, fields=fields, reason="</details>"),
        change("Queue/</details>", Action.DELETE, reason="```"),
    )
    md = render_markdown(plan)
    lines = md.splitlines()
    assert lines.count("</details>") == 2
    assert lines.count("<details>") == 0
    assert "`````diff" in lines
    start = lines.index("`````diff")
    end = lines.index("`````", start + 1)
    assert lines[start + 1 : end] == [
        '- description: "```\\n</details>\\n````"',
        '+ description: "</details>"',
    ]
    assert not any(line.startswith("```") for line in lines[start + 1 : end])
    assert "Reason: `</details>`" in md
    assert "<code>Queue/&lt;/details&gt;</code>" in md
    assert "| delete | `Queue/</details>` | ```` ``` ```` |" in md


def test_markdown_code_span_survives_backticks_at_its_edges():
    md = render_markdown(make_plan(target=PlanTarget(url="`tick`")))
    assert md.startswith("### reconciler plan for `` `tick` ``\n")


# --- ownership: adopt, renames, records this project did not create ---------------------------


def owned(name: str, action: Action, reason: str, n: int, **extra) -> Change:
    """A change of ``Queue/<name>`` with the ownership fields a plan fills in."""
    return Change(
        address=f"Queue/{name}",
        kind="Queue",
        name=name,
        action=action,
        reason=reason,
        id=f"6f1c2a34-0000-4000-8000-00000000000{n}",
        **extra,
    )


ADOPT = owned(
    "priority-care",
    Action.ADOPT,
    "metadata.id names a record this project did not create",
    1,
    current_name="Priority care (made by hand)",
    adopted=True,
    fields=(FieldChange(path="priority", before=9, after=2),),
)
FOREIGN_DELETE = owned(
    "legacy",
    Action.DELETE,
    "ensure: absent",
    2,
    current_name="Cases - Back office",
    adopted=True,
)
RENAMED = owned("second-tier", Action.NOOP, "matches", 3, renamed_from="Queue/tier2")
RENAMED_UPDATE = RENAMED.model_copy(
    update={
        "action": Action.UPDATE,
        "reason": "1 field differs",
        "fields": (FieldChange(path="displayName", before="Tier 2", after="Second tier"),),
    }
)


def test_an_adoption_is_its_own_action_with_the_rows_name_and_id():
    plan = make_plan(ADOPT, NOOP)
    text = render_text(plan)
    assert plan.summary.adopt == 1
    assert (
        "  # Queue/priority-care will be adopted\n"
        '  # ! adopts Queue "Priority care (made by hand)" '
        "(id 6f1c2a34-0000-4000-8000-000000000001), not created by this project\n"
        ' <= Queue "priority-care" {\n'
        "      ~ priority: 9 → 2\n"
        "    }\n"
    ) in text
    assert text.splitlines()[-1] == (
        "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 1 to adopt."
    )
    markdown = render_markdown(plan)
    assert "#### Adopted" in markdown
    assert "Priority care (made by hand)" in markdown
    assert "6f1c2a34-0000-4000-8000-000000000001" in markdown
    assert "| adopt |" in markdown.replace("**", "")
    dumped = plan.model_dump(mode="json")["changes"][0]
    assert (dumped["action"], dumped["adopted"], dumped["current_name"]) == (
        "adopt",
        True,
        "Priority care (made by hand)",
    )


def test_deleting_a_record_this_project_did_not_create_says_so_prominently():
    plan = make_plan(FOREIGN_DELETE)
    text = render_text(plan)
    assert (
        '  # ! deletes Queue "Cases - Back office" '
        "(id 6f1c2a34-0000-4000-8000-000000000002), not created by this project"
    ) in text
    painted = render_text(plan, color=True)
    assert "\x1b[1m" in painted  # bold red, like the delete itself
    markdown = render_markdown(plan)
    destructive = markdown.split("#### ")[1]
    assert destructive.startswith("⚠️ Destructive changes")
    assert '**⚠️ deletes `Queue "Cases - Back office"`' in destructive
    assert "Cases - Back office" in destructive
    assert "not created by this project" in destructive


def test_a_rename_says_where_the_record_came_from_and_that_it_keeps_its_id():
    text = render_text(make_plan(RENAMED))
    assert (
        "  = Queue/second-tier: renamed from Queue/tier2 (keeps its id; nothing else changes)"
    ) in text
    text = render_text(make_plan(RENAMED_UPDATE))
    assert "  # (renamed from Queue/tier2: keeps its id)" in text
    assert '  ~ Queue "second-tier" {' in text
    assert (
        "<code>Queue/second-tier</code> will be updated in place "
        "(renamed from <code>Queue/tier2</code>: keeps its id)</summary>"
    ) in render_markdown(make_plan(RENAMED_UPDATE))
    assert "- `Queue/second-tier` (renamed from `Queue/tier2`)" in render_markdown(
        make_plan(RENAMED)
    )


# --- inert: nothing from the manifests or the org is a link, a mention, HTML or an image -------

LURE = (
    "see https://evil.example/x @octocat <img src=x> www.evil.example "
    "![i](https://evil.example/i.png) <https://evil.example/a> [l](https://evil.example/l) :tada:"
)


def test_names_and_values_are_inert_in_the_markdown():
    lure_fields = (FieldChange(path="displayName", before=LURE, after=f"{LURE}!"),)
    plan = make_plan(
        Change(
            address="Queue/legacy",
            kind="Queue",
            name="legacy",
            action=Action.DELETE,
            reason=LURE,
            id=LURE,
            current_name=LURE,
            adopted=True,
            fields=lure_fields,
        ),
        change(f"RoutingRuleSet/rs/{LURE}", Action.REPLACE, reason=LURE, fields=lure_fields),
        change("Queue/shared", Action.CONFLICT, reason=LURE, fields=lure_fields),
        Change(
            address="Queue/care",
            kind="Queue",
            name="care",
            action=Action.ADOPT,
            reason=LURE,
            id="6f1c2a34-0000-4000-8000-000000000001",
            current_name=LURE,
            adopted=True,
            fields=lure_fields,
        ),
        change("Queue/new", Action.CREATE, reason=LURE, fields=lure_fields),
        change(f"Queue/{LURE}", Action.NOOP).model_copy(update={"renamed_from": LURE}),
        warnings=(Warning(code="w", message=LURE, location=f"{LURE}.yaml:1:1"),),
        follow_up=(FollowUp(address="FacebookAccount/fb/Page", output="u", message=LURE),),
        unmanaged={LURE: 2},
        target=PlanTarget(url=LURE, organization_id=LURE),
    )
    markdown = render_markdown(plan)
    assert markdown.count("evil.example/x") >= 15  # it is all there, as code
    outside, broken = outside_code(markdown)
    assert broken == []
    for lure in ("https://", "www.", "@octocat", "<img", "![", "](", "<https", ":tada:"):
        assert lure not in outside, lure
    check_form(markdown)
    # In <summary>, where markdown is not read, names are HTML-escaped inside <code>.
    assert "<code>RoutingRuleSet/rs/see https://evil.example/x @octocat &lt;img src=x&gt;" in (
        markdown
    )


def test_table_cells_hold_any_value_whole():
    odd = "a`b``c|d\ne <x> \\| ` "
    plan = make_plan(
        change("Queue/q", Action.DELETE, reason=odd), change("Queue/r", Action.CONFLICT, reason=odd)
    )
    markdown = render_markdown(plan)
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert cells(next(r for r in rows if "Queue/q" in r))[2].strip() == (
        "```a`b``c\\|d\\ne <x> \\\\| ` ```"  # a fence longer than any run inside
    )
    assert len(cells(next(r for r in rows if "Queue/r" in r))) == 2
    check_form(markdown)


def test_no_runner_command_reaches_any_plan_output():
    attack = "##vso[task.setvariable variable=x]y ##[group]z"
    plan = make_plan(
        change(
            "Queue/q",
            Action.UPDATE,
            reason=attack,
            fields=[FieldChange(path="displayName", before=attack, after=attack.upper())],
        ),
        warnings=(Warning(code="w", message=attack),),
        unmanaged={attack: 1},
    )
    for output in (render_text(plan), render_text(plan, verbose=2), render_markdown(plan)):
        assert "##vso[" not in output.lower()
        assert "##[" not in output
        assert "\\u0023#vso[task.setvariable variable=x]y" in output
    assert json.loads(neutral.json_text(plan.to_json())) == json.loads(plan.to_json())


# --- rules and conditions in the manifests' YAML (docs/spec.md §5) ----------------------------

VIP = {
    "name": "VIP customers",
    "when": {
        "any": [
            {"field": "facebook.customerName", "op": "equals", "value": "Jan"},
            {"field": "facebook.timezone", "op": "in", "value": ["Europe/Amsterdam", "UTC"]},
        ]
    },
    "routeTo": [{"queue": "vip", "percent": 70}, {"queue": "general", "percent": 30}],
}
RULE_FIELDS = [
    FieldChange(path="rules[VIP customers]", before=None, after=VIP),
    FieldChange(path="rules[Spread]", before={"name": "Spread", "routeTo": "general"}),
    FieldChange(
        path="rules[Dutch].when",
        before={"field": "context.Language", "op": "equals", "value": "Dutch"},
        after={
            "all": [
                {"field": "context.Language", "op": "equals", "value": "Dutch"},
                {"not": {"field": "facebook.locale", "op": "isNull"}},
            ]
        },
    ),
    FieldChange(path="rules[Dutch].position", before=3, after=1),
]


def test_rules_and_conditions_read_as_manifest_yaml_under_their_field():
    text = render_text(make_plan(change("RoutingRuleSet/rs", Action.UPDATE, fields=RULE_FIELDS)))
    assert (
        '  ~ RoutingRuleSet "rs" {\n'
        "      + rules[VIP customers]:\n"
        "            name: VIP customers\n"
        "            when:\n"
        "              any:\n"
        "                - {field: facebook.customerName, op: equals, value: Jan}\n"
        "                - {field: facebook.timezone, op: in, value: [Europe/Amsterdam, UTC]}\n"
        "            routeTo:\n"
        "              - {queue: vip, percent: 70}\n"
        "              - {queue: general, percent: 30}\n"
        "      - rules[Spread]:\n"
        "            name: Spread\n"
        "            routeTo: general\n"
        "      ~ rules[Dutch].when:\n"
        "          - field: context.Language\n"
        "          - op: equals\n"
        "          - value: Dutch\n"
        "          + all:\n"
        "          +   - {field: context.Language, op: equals, value: Dutch}\n"
        "          +   - not: {field: facebook.locale, op: isNull}\n"
        "      ~ rules[Dutch].position: 3 → 1\n"
        "    }\n"
    ) in text


def test_a_created_rule_set_shows_each_rule_as_yaml_in_text_and_markdown():
    fields = [FieldChange(path="type", after="route-to-queue"), RULE_FIELDS[0]]
    plan = make_plan(change("RoutingRuleSet/rs", Action.CREATE, fields=fields))
    text = render_text(plan)
    assert '      + type: "route-to-queue"\n      + rules[VIP customers]:\n' in text
    assert "            routeTo:\n              - {queue: vip, percent: 70}\n" in text
    markdown = render_markdown(plan)
    assert (
        "```diff\n"
        '+ type: "route-to-queue"\n'
        "+ rules[VIP customers]:\n"
        "+   name: VIP customers\n"
        "+   when:\n"
        "+     any:\n"
    ) in markdown
    check_form(markdown)


def test_markdown_shows_a_changed_condition_as_a_line_diff():
    plan = make_plan(change("RoutingRuleSet/rs", Action.UPDATE, fields=RULE_FIELDS[1:]))
    markdown = render_markdown(plan)
    assert (
        "```diff\n"
        "- rules[Spread]:\n"
        "-   name: Spread\n"
        "-   routeTo: general\n"
        "  rules[Dutch].when:\n"
        "-   field: context.Language\n"
        "-   op: equals\n"
        "-   value: Dutch\n"
        "+   all:\n"
        "+     - {field: context.Language, op: equals, value: Dutch}\n"
        "+     - not: {field: facebook.locale, op: isNull}\n"
        "- rules[Dutch].position: 3\n"
        "+ rules[Dutch].position: 1\n"
        "```"
    ) in markdown
    check_form(markdown)


HOSTILE = "##vso[task.complete]x ``` </details> <b>bold</b>\n\x1b[31mred\u202e ##[group]g"


def test_hostile_rule_names_and_values_stay_inert_in_the_multi_line_form():
    rule = {"name": HOSTILE, "when": {"field": "x", "op": "equals", "value": HOSTILE}}
    fields = [
        FieldChange(path='rules["' + HOSTILE + '"]', after=rule),
        FieldChange(path="rules[a].when", before={"field": HOSTILE}, after={"field": "````"}),
    ]
    plan = make_plan(change("RoutingRuleSet/rs", Action.UPDATE, fields=fields))
    for output in (render_text(plan), render_text(plan, color=True), render_markdown(plan)):
        assert not neutral.has_sequence(output)
        assert "\u202e" not in output
        assert "\\u202e" in output
        assert "\x1b[31mred" not in output
    text = render_text(plan)
    block = text[text.index("  ~ RoutingRuleSet") : text.index("    }")].splitlines()
    # Every line of a value is indented under its field: no value text starts a line.
    assert all(line.startswith("      ") for line in block[1:]), block
    assert '            name: "\\u0023#vso[task.complete]x ``` </details>' in text
    markdown = render_markdown(plan)
    lines = markdown.splitlines()
    assert lines.count("</details>") == 1  # the value's is inside the fence, on a diff line
    start = lines.index("`````diff")  # longer than the ```` inside
    end = lines.index("`````", start + 1)
    assert all(line[:1] in "+- " for line in lines[start + 1 : end])
    outside, broken = outside_code(markdown)
    assert broken == []
    assert "<b>" not in outside
