"""The plan as GitHub-flavoured markdown for a pull-request comment (docs/spec.md §5).

Summary table first, then destructive changes, conflicts and the other changes, each change's
fields in a collapsible ``diff`` block. Text from the plan is escaped where it lands: markdown
and ``|`` in table cells, HTML in ``<summary>``, and a code fence longer than any run of
backticks inside it, so no value can close a table cell, a fence or a ``<details>``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from reconciler.plan.definition import DESTRUCTIVE, Action, Change, Plan
from reconciler.plan.routing import Routing, drawn
from reconciler.render.markdown import code as _code
from reconciler.render.markdown import longest_backticks as _longest_backticks
from reconciler.render.markdown import table as _table
from reconciler.render.markdown import text as _text
from reconciler.render.plan_text import (
    PHRASES,
    SYMBOLS,
    foreign_line,
    ledger_line,
    plan_line,
    rows,
    title,
    unmanaged_line,
)
from reconciler.render.routing_mermaid import LEGEND, caption, mermaid
from reconciler.render.style import clean, plural

# Destructive changes and conflicts show their reason in their section's table.
_REASON_INSIDE = frozenset({Action.CREATE, Action.UPDATE, Action.ADOPT})
_COUNTS = (
    ("create", Action.CREATE),
    ("update", Action.UPDATE),
    ("replace", Action.REPLACE),
    ("delete", Action.DELETE),
    ("adopt", Action.ADOPT),
    ("conflict", Action.CONFLICT),
    ("unchanged", Action.NOOP),
)


def _html(text: str) -> str:
    return html.escape(clean(text))


def _diff(change: Change) -> list[str]:
    lines = []
    for row in rows(change):
        if row.before is not None:
            lines.append(f"- {row.path}: {row.before}")
        if row.after is not None:
            lines.append(f"+ {row.path}: {row.after}")
    if lines:
        return lines
    if change.action is Action.DELETE:
        return [f"- {title(change)}"]
    return ["  (no field changes)"]


def _details(change: Change) -> list[str]:
    summary = (
        f"<code>{html.escape(SYMBOLS[change.action])}</code> "
        f"<code>{_html(change.address)}</code> {PHRASES[change.action]}"
    )
    if change.renamed_from:
        summary += f" (renamed from <code>{_html(change.renamed_from)}</code>: keeps its id)"
    body = _diff(change)
    fence = "`" * max(3, _longest_backticks("\n".join(body)) + 1)
    return [
        f"<details><summary>{summary}</summary>",
        "",
        *([f"Reason: {_text(change.reason)}", ""] if change.action in _REASON_INSIDE else []),
        f"{fence}diff",
        *body,
        fence,
        "",
        "</details>",
    ]


def _summary_table(plan: Plan) -> list[str]:
    counts = plan.summary.model_dump()
    lines = ["| Action | Count |", "|---|---:|"]
    return lines + [f"| {label} | {counts[action.value]} |" for label, action in _COUNTS]


def _reason(change: Change) -> str:
    """A destructive change's reason; one to a record this project did not create says so
    first, in bold, with the record's name in the target and its id."""
    foreign = foreign_line(change)
    reason = _text(change.reason)
    return f"**⚠️ {_text(foreign)}**; {reason}" if foreign else reason


def _destructive(changes: Sequence[Change]) -> list[str]:
    lines = ["#### ⚠️ Destructive changes", ""]
    lines += _table(
        ("Action", "Address", "Reason"),
        [(str(c.action), _code(c.address), _reason(c)) for c in changes],
    )
    for change in changes:
        lines += ["", *_details(change)]
    return lines


def _conflicts(changes: Sequence[Change]) -> list[str]:
    lines = ["#### ⛔ Conflicts", "", "Apply refuses while any conflict remains.", ""]
    lines += _table(("Address", "Reason"), [(_code(c.address), _text(c.reason)) for c in changes])
    for change in changes:
        if change.fields:
            lines += ["", *_details(change)]
    return lines


def _others(changes: Sequence[Change]) -> list[str]:
    lines = ["#### Changes"]
    for change in changes:
        lines += ["", *_details(change)]
    return lines


def _adopted(changes: Sequence[Change]) -> list[str]:
    lines = ["#### Adopted", "", "Records this project did not create, taken under management.", ""]
    lines += _table(
        ("Address", "Name in the target", "Id"),
        [(_code(c.address), _text(c.current_name or ""), _code(c.id)) for c in changes],
    )
    for change in changes:
        if change.fields:
            lines += ["", *_details(change)]
    return lines


def _unchanged(changes: Sequence[Change]) -> list[str]:
    return [
        f"<details><summary>{plural(len(changes), 'record')} unchanged</summary>",
        "",
        *(
            f"- {_code(change.address)}"
            + (f" (renamed from {_code(change.renamed_from)})" if change.renamed_from else "")
            for change in changes
        ),
        "",
        "</details>",
    ]


def _routing(plan: Plan, routing: Mapping[str, Routing]) -> list[str]:
    """A Mermaid chart for each workstream whose routing the plan changes."""
    charts = drawn(plan, routing)
    if not charts:
        return []
    lines = ["#### Routing", "", LEGEND]
    for picture, marks in charts:
        lines += ["", f"**{_code(picture.workstream)}**", "", "```mermaid"]
        lines += [*mermaid(picture, marks), "```"]
        if note := caption(marks):
            lines += ["", _text(note)]
    return lines


def _footer(plan: Plan) -> str:
    parts = [f"read in {plural(plan.requests, 'request')}", f"reconciler {plan.tool_version}"]
    if plan.target.revision:
        parts[0] = "offline: no target read"
    if plan.target.organization_id:
        parts.insert(0, f"organization {plan.target.organization_id}")
    if plan.checksum:
        parts.append(plan.checksum)
    return "<sub>" + " · ".join(_html(part) for part in parts) + "</sub>"


def render_markdown(plan: Plan, routing: Mapping[str, Routing] | None = None) -> str:
    """The plan as a pull-request comment; with ``routing`` (the manifests' routing of each
    workstream), a Mermaid chart of every workstream whose routing the plan changes."""

    def having(*actions: Action) -> list[Change]:
        return [change for change in plan.changes if change.action in actions]

    heading = f"### reconciler plan for {_code(plan.target.url)}"
    if revision := plan.target.revision:
        heading = f"### reconciler plan: {_code(revision)} → working tree"
    blocks = [
        [heading],
        _summary_table(plan),
        [f"**{_text(plan_line(plan.summary, plan.target.revision))}**"],
    ]
    if note := ledger_line(plan):
        blocks.append([_text(note)])
    if destructive := having(*DESTRUCTIVE):
        blocks.append(_destructive(destructive))
    if conflicts := having(Action.CONFLICT):
        blocks.append(_conflicts(conflicts))
    if charts := _routing(plan, routing or {}):
        blocks.append(charts)
    if adopted := having(Action.ADOPT):
        blocks.append(_adopted(adopted))
    if others := having(Action.CREATE, Action.UPDATE):
        blocks.append(_others(others))
    if noops := having(Action.NOOP):
        blocks.append(_unchanged(noops))
    if plan.warnings:
        items = []
        for warning in plan.warnings:
            where = warning.location or warning.address
            prefix = f"{_code(where)}: " if where else ""
            items.append(f"- {prefix}{_text(warning.message)}")
        blocks.append(["#### Warnings", "", *items])
    if unmanaged := unmanaged_line(plan.unmanaged, name=_text):
        blocks.append([unmanaged])
    if plan.follow_up:
        items = [f"- [ ] {_code(item.address)}: {_text(item.message)}" for item in plan.follow_up]
        blocks.append(["#### After apply", "", *items])
    blocks.append([_footer(plan)])
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"
