"""The plan as GitHub-flavoured markdown for a pull-request comment (docs/spec.md §5).

Summary table first, then destructive changes, conflicts and the other changes, each change's
fields in a collapsible ``diff`` block.

**Inert.** Every name, value, reason and message from the manifests, the org or the plan sits
in a code span (``markdown.code``: a fence longer than any run of backticks inside, controls
escaped, ``|`` escaped in table cells), in ``<code>`` with HTML escaped inside ``<summary>``,
or in a fenced block: GitHub makes no link, mention, image or HTML of it, and nothing can close
a table cell, a fence or a ``<details>``. Only the tool's own words are plain (escaped) text.

**Within a budget.** GitHub refuses a comment body longer than 65,536 characters (its REST API
answers ``Body is too long (maximum is 65536 characters)``, e.g.
https://github.com/danger/danger/issues/424; GitHub's documentation does not state the limit),
so the comment takes ``BUDGET`` (60,000) characters at most, leaving room for what a pipeline
adds around it. When the whole plan does not fit, the comment is filled in order of importance:
the title, summary table, plan line and footer; every destructive change and conflict as one
table row; the warnings (an eighth of the budget is kept for the conflicts and a quarter for the
warnings, so that a long list of deletes cannot crowd them out); the field details of destructive
changes and conflicts; the follow-up checklist; adoptions; routing charts; the details of the
other changes; the list of unchanged records. A part that does not fit is left out whole (never
half a ``<details>`` or code span), and a note under the plan line says how many changes are not
shown and where the full plan is (the ``plan --out`` file, or the text format). A list that
cannot be shown whole (destructive changes, conflicts, warnings...) shows as many entries as fit
and says how many more there are.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from reconciler.plan.definition import DESTRUCTIVE, Action, Change, Plan
from reconciler.plan.routing import Routing, drawn
from reconciler.render.markdown import cell as _cell
from reconciler.render.markdown import clip as _clip
from reconciler.render.markdown import code as _code
from reconciler.render.markdown import longest_backticks as _longest_backticks
from reconciler.render.markdown import text as _text
from reconciler.render.plan_text import (
    PHRASES,
    SYMBOLS,
    changed_lines,
    foreign_line,
    ledger_line,
    plan_line,
    rows,
    title,
    unmanaged_line,
)
from reconciler.render.routing_mermaid import LEGEND, caption, mermaid
from reconciler.render.style import clean, plural

BUDGET = 60_000
"""The most characters ``render_markdown`` writes unless told otherwise: under GitHub's 65,536."""
MIN_BUDGET = 5_000
"""The least budget accepted: the title, summary table, notes and footer always fit in it."""
MAX_CELL = 300
"""Characters of a value shown in a table cell, a title or a line; the field details show all."""

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
# Importance, most important first: the budget fills the comment in this order.
_ROWS = 1  # every destructive change and conflict, a table row each
_WARNINGS = 2  # and the unmanaged records' line
_DESTRUCTIVE_DETAILS = 3  # the field details of destructive changes and conflicts
_FOLLOW_UP = 4
_ADOPTED = 5
_CHARTS = 6
_CHANGES = 7  # creates and updates, with their details
_UNCHANGED = 8


def _literal(value: str) -> str:
    """A value from the plan in a line or a table cell: a code span (cut at ``MAX_CELL``)."""
    return _code(_clip(value, MAX_CELL))


def _html(text: str) -> str:
    return html.escape(clean(text))


# --- parts, and the budget choosing among them --------------------------------------------------


@dataclass(eq=False)
class _Part:
    """A piece of the comment: a block, set off by a blank line, or a table row or list item
    (``row``: joined to the block before it by a newline). ``needs``: what it cannot be shown
    without (its section's heading, its table's header). ``lists``: the changes it names, by
    index in the plan; ``details``: the change whose field details it holds."""

    text: str
    needs: tuple[_Part, ...] = ()
    row: bool = False
    lists: tuple[int, ...] = ()
    details: int | None = None
    shown: bool = False
    skeleton: bool = False

    @property
    def cost(self) -> int:
        return len(self.text) + (1 if self.row else 2)


@dataclass(eq=False)
class _Group:
    """Parts the budget weighs together, ``rank`` first. A list (``more``) shows a leading run
    of its parts, then ``note`` says how many more there are; other groups show every part that
    fits."""

    rank: int
    parts: list[_Part] = field(default_factory=list)
    more: Callable[[int], str] | None = None
    what: str = ""
    note: _Part | None = None
    keep: float = 0.0
    """A share of the budget kept for this group (at most what it needs) while more important
    groups are filled: a long list of deletes does not crowd out the warnings."""


class _Comment:
    """The parts in the order they are printed, and the groups the budget chooses from."""

    def __init__(self) -> None:
        self.parts: list[_Part] = []
        self.groups: list[_Group] = []
        self.skipped: list[_Group] = []  # lists left out whole

    def block(self, text: str) -> _Part:
        """A part of the skeleton: always shown."""
        part = _Part(text, shown=True, skeleton=True)
        self.parts.append(part)
        return part

    def heading(self, *texts: str) -> tuple[_Part, ...]:
        """A section's heading and introduction: shown once anything of the section is."""
        parts: list[_Part] = []
        for text in texts:
            parts.append(_Part(text, needs=tuple(parts[:1])))
            self.parts.append(parts[-1])
        return tuple(parts)

    def group(self, rank: int, more: str | None = None, keep: float = 0.0) -> _Group:
        group = _Group(rank, more=_more(more) if more else None, what=more or "", keep=keep)
        self.groups.append(group)
        return group

    def add(self, group: _Group, text: str, needs: tuple[_Part, ...], **kwargs: object) -> None:
        part = _Part(text, needs, **kwargs)  # type: ignore[arg-type]
        self.parts.append(part)
        group.parts.append(part)

    def listing(
        self, group: _Group, heading: tuple[_Part, ...], items: Sequence[tuple[str, int | None]]
    ) -> None:
        """A list: its items, then a place for "… and N more"."""
        for number, (text, index) in enumerate(items):
            lists = () if index is None else (index,)
            self.add(group, text, heading, row=number > 0, lists=lists)
        group.note = _Part("", needs=heading)
        self.parts.append(group.note)

    def table(
        self,
        group: _Group,
        heading: tuple[_Part, ...],
        columns: Sequence[str],
        entries: Sequence[tuple[int, Sequence[str]]],
    ) -> None:
        """A table: its header, a row per entry, then a place for "… and N more"."""
        header = _Part("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns), needs=heading)
        self.parts.append(header)
        for index, cells in entries:
            row = "| " + " | ".join(_cell(item) for item in cells) + " |"
            self.add(group, row, (header,), row=True, lists=(index,))
        group.note = _Part("", needs=heading)
        self.parts.append(group.note)

    def used(self) -> int:
        """Characters the shown parts take, the closing newline included."""
        shown = [part for part in self.parts if part.shown and part.text]
        return sum(part.cost for part in shown) - 2 + 1 if shown else 1

    def text(self) -> str:
        blocks: list[str] = []
        for part in self.parts:
            if not part.shown or not part.text:
                continue
            if part.row and blocks:
                blocks[-1] += "\n" + part.text
            else:
                blocks.append(part.text)
        return "\n\n".join(blocks) + "\n"

    def fill(self, budget: int) -> None:
        """Show the groups' parts in order of importance while they fit in ``budget``."""
        order = sorted(self.groups, key=lambda g: g.rank)  # stable: in printed order
        kept = {id(group): _kept(group, budget) for group in order}
        for group in order:
            kept.pop(id(group))
            left = budget - self.used() - sum(kept.values())
            if _cost(group.parts) <= left:
                for part in group.parts:
                    _show(part)
                continue
            if group.more is not None and group.note is not None:
                group.note.text = group.more(len(group.parts))  # room for it at its longest
                if _cost([group.note]) > left:  # not even "… and N more": the note at the
                    self.skipped.append(group)  # top says the list is left out
                    continue
                left -= _cost([group.note])
            shown = 0
            for part in group.parts:
                cost = _cost([part])
                if cost <= left:
                    _show(part)
                    left -= cost
                    shown += 1
                elif group.more is not None:
                    break  # a list shows a leading run
            if group.more is not None and group.note is not None and shown < len(group.parts):
                group.note.text = group.more(len(group.parts) - shown)
                _show(group.note)


def _kept(group: _Group, budget: int) -> int:
    """What is kept for ``group`` while more important groups are filled."""
    if not group.keep:
        return 0
    needed = _cost(group.parts)
    if group.more is not None:
        needed += len(group.more(len(group.parts))) + 2
    return min(needed, int(budget * group.keep))


def _cost(parts: Iterable[_Part]) -> int:
    """What showing ``parts`` costs: themselves and what they need that is not shown yet."""
    seen: set[int] = set()

    def cost(part: _Part) -> int:
        if part.shown or id(part) in seen:
            return 0
        seen.add(id(part))
        return part.cost + sum(cost(need) for need in part.needs)

    return sum(cost(part) for part in parts)


def _show(part: _Part) -> None:
    part.shown = True
    for need in part.needs:
        _show(need)


def _more(what: str) -> Callable[[int], str]:
    def more(count: int) -> str:
        return f"*… and {count:,} more {what} not listed here: see the full plan.*"

    return more


# --- the sections -------------------------------------------------------------------------------


def _diff(change: Change) -> list[str]:
    """The lines of a change's ``diff`` block. A structured value (a condition, a rule) is its
    YAML under a line naming the field, each line marked: a changed one as a line diff."""
    lines = []
    for row in rows(change):
        if row.multiline:
            head = " " if row.symbol == "~" else row.symbol
            lines.append(f"{head} {row.path}:")
            lines += [f"{mark}   {line}" for mark, line in changed_lines(row)]
            continue
        if row.before is not None:
            lines.append(f"- {row.path}: {row.before}")
        if row.after is not None:
            lines.append(f"+ {row.path}: {row.after}")
    if lines:
        return lines
    if change.action is Action.DELETE:
        return [f"- {title(change)}"]
    return ["  (no field changes)"]


def _details(change: Change) -> str:
    summary = (
        f"<code>{html.escape(SYMBOLS[change.action])}</code> "
        f"<code>{_html(_clip(change.address, MAX_CELL))}</code> {PHRASES[change.action]}"
    )
    if change.renamed_from:
        renamed = _html(_clip(change.renamed_from, MAX_CELL))
        summary += f" (renamed from <code>{renamed}</code>: keeps its id)"
    body = _diff(change)
    fence = "`" * max(3, _longest_backticks("\n".join(body)) + 1)
    reason = [f"Reason: {_literal(change.reason)}", ""] if change.action in _REASON_INSIDE else []
    return "\n".join(
        [
            f"<details><summary>{summary}</summary>",
            "",
            *reason,
            f"{fence}diff",
            *body,
            fence,
            "",
            "</details>",
        ]
    )


def _summary_table(plan: Plan) -> str:
    counts = plan.summary.model_dump()
    lines = ["| Action | Count |", "|---|---:|"]
    lines += [f"| {label} | {counts[action.value]} |" for label, action in _COUNTS]
    return "\n".join(lines)


def _reason(change: Change) -> str:
    """A destructive change's reason; one to a record this project did not create says so
    first, in bold, with the record's name in the target and its id."""
    foreign = foreign_line(change, literal=_literal)
    reason = _literal(change.reason)
    return f"**⚠️ {foreign}**; {reason}" if foreign else reason


def _unchanged(changes: Sequence[Change]) -> str:
    items = [
        f"- {_literal(change.address)}"
        + (f" (renamed from {_literal(change.renamed_from)})" if change.renamed_from else "")
        for change in changes
    ]
    return "\n".join(
        [
            f"<details><summary>{plural(len(changes), 'record')} unchanged</summary>",
            "",
            *items,
            "",
            "</details>",
        ]
    )


def _chart(picture: Routing, note: str | None, lines: Sequence[str]) -> str:
    blocks = [f"**{_literal(picture.workstream)}**", "\n".join(["```mermaid", *lines, "```"])]
    return "\n\n".join([*blocks, note] if note else blocks)


def _footer(plan: Plan) -> str:
    parts = [f"read in {plural(plan.requests, 'request')}", f"reconciler {plan.tool_version}"]
    if plan.target.revision:
        parts[0] = "offline: no target read"
    parts = [_html(_clip(part, MAX_CELL)) for part in parts]
    if plan.target.organization_id:
        parts.insert(0, f"organization {_literal(plan.target.organization_id)}")
    if plan.checksum:
        parts.append(_html(_clip(plan.checksum, MAX_CELL)))
    return "<sub>" + " · ".join(parts) + "</sub>"


def _shortened(budget: int, changes: int, hidden: int, bare: int, extras: Sequence[str]) -> str:
    """The note of a comment the budget shortened: what is left out, where the rest is."""
    said = [f"{hidden:,} of {changes:,} changes are not listed here"] if hidden else []
    if bare:
        said.append(f"{bare:,} are listed without their field details")
    said += extras
    if not said:  # only entries of lists, each saying how many more it has
        said = ["some entries are not listed here"]
    what = ", ".join(said[:-1]) + (" and " if len(said) > 1 else "") + said[-1]
    return (
        f"> ✂️ **Shortened to fit a pull-request comment** ({budget:,} characters): {what}. "
        "The full plan is the plan file `reconciler plan --out FILE` writes (the pipeline's "
        "plan artifact); `reconciler plan` prints it whole as text."
    )


@dataclass
class _Left:
    """What the budget left out, for the note."""

    hidden: int = 0
    bare: int = 0
    extras: list[str] = field(default_factory=list)


def _left_out(plan: Plan, comment: _Comment, groups: Mapping[str, _Group]) -> _Left:
    listed = {index for part in comment.parts if part.shown for index in part.lists}
    detailed = {part.details for part in comment.parts if part.shown}
    with_details = {part.details for part in comment.parts if part.details is not None}
    left = _Left()
    left.hidden = sum(
        1
        for index, change in enumerate(plan.changes)
        if change.action is not Action.NOOP and index not in listed
    )
    left.bare = len({i for i in with_details if i in listed} - detailed)
    if (charts := groups.get("charts")) is not None:
        missing = sum(1 for part in charts.parts if not part.shown)
        if missing:
            left.extras.append(f"{plural(missing, 'routing chart')} left out")
    if (unchanged := groups.get("unchanged")) is not None and not unchanged.parts[0].shown:
        left.extras.append(f"the list of {plural(plan.summary.noop, 'unchanged record')} left out")
    for group in comment.skipped:
        if group.what not in ("adoptions",):  # those are changes, counted above
            left.extras.append(f"{len(group.parts):,} {group.what} left out")
    return left


def render_markdown(
    plan: Plan, routing: Mapping[str, Routing] | None = None, *, budget: int = BUDGET
) -> str:
    """The plan as a pull-request comment of ``budget`` characters at most; with ``routing``
    (the manifests' routing of each workstream), a Mermaid chart of every workstream whose
    routing the plan changes."""
    if budget < MIN_BUDGET:
        raise ValueError(f"a markdown plan needs a budget of at least {MIN_BUDGET} characters")

    def having(*actions: Action) -> list[tuple[int, Change]]:
        return [(i, change) for i, change in enumerate(plan.changes) if change.action in actions]

    comment = _Comment()
    groups: dict[str, _Group] = {}
    revision = plan.target.revision
    if revision is not None:
        comment.block(f"### reconciler plan: {_literal(revision)} → working tree")
    else:
        comment.block(f"### reconciler plan for {_literal(plan.target.url)}")
    comment.block(_summary_table(plan))
    comment.block(f"**{plan_line(plan.summary, revision, literal=_literal)}**")
    if note := ledger_line(plan):
        comment.block(_text(note))
    shortened = comment.block("")  # says what is left out, when the plan does not fit whole
    entries: list[tuple[int, Sequence[str]]]

    if destructive := having(*DESTRUCTIVE):
        heading = comment.heading("#### ⚠️ Destructive changes")
        entries = [(i, (str(c.action), _literal(c.address), _reason(c))) for i, c in destructive]
        comment.table(
            comment.group(_ROWS, "destructive changes"),
            heading,
            ("Action", "Address", "Reason"),
            entries,
        )
        details = comment.group(_DESTRUCTIVE_DETAILS)
        for index, change in destructive:
            comment.add(details, _details(change), heading, lists=(index,), details=index)
    if conflicts := having(Action.CONFLICT):
        heading = comment.heading("#### ⛔ Conflicts", "Apply refuses while any conflict remains.")
        entries = [(i, (_literal(c.address), _literal(c.reason))) for i, c in conflicts]
        conflict_rows = comment.group(_ROWS, "conflicts", keep=0.125)
        comment.table(conflict_rows, heading, ("Address", "Reason"), entries)
        details = comment.group(_DESTRUCTIVE_DETAILS)
        for index, change in conflicts:
            if change.fields:
                comment.add(details, _details(change), heading, lists=(index,), details=index)
    if charts := drawn(plan, routing or {}):
        heading = comment.heading("#### Routing", LEGEND)
        groups["charts"] = comment.group(_CHARTS)
        for picture, marks in charts:
            text = _chart(picture, caption(marks, literal=_literal), mermaid(picture, marks))
            comment.add(groups["charts"], text, heading)
    if adopted := having(Action.ADOPT):
        heading = comment.heading(
            "#### Adopted", "Records this project did not create, taken under management."
        )
        entries = [
            (i, (_literal(c.address), _literal(c.current_name or ""), _literal(c.id)))
            for i, c in adopted
        ]
        comment.table(
            comment.group(_ADOPTED, "adoptions"),
            heading,
            ("Address", "Name in the target", "Id"),
            entries,
        )
        details = comment.group(_ADOPTED)
        for index, change in adopted:
            if change.fields:
                comment.add(details, _details(change), heading, lists=(index,), details=index)
    if others := having(Action.CREATE, Action.UPDATE):
        heading = comment.heading("#### Changes")
        details = comment.group(_CHANGES)
        for index, change in others:
            comment.add(details, _details(change), heading, lists=(index,), details=index)
    if noops := having(Action.NOOP):
        groups["unchanged"] = comment.group(_UNCHANGED)
        indexes = tuple(index for index, _ in noops)
        comment.add(groups["unchanged"], _unchanged([c for _, c in noops]), (), lists=indexes)
    if plan.warnings:
        items = []
        for warning in plan.warnings:
            where = warning.location or warning.address
            prefix = f"{_literal(where)}: " if where else ""
            items.append((f"- {prefix}{_literal(warning.message)}", None))
        heading = comment.heading("#### Warnings")
        comment.listing(comment.group(_WARNINGS, "warnings", keep=0.25), heading, items)
    if unmanaged := unmanaged_line(plan.unmanaged, name=_literal):
        comment.add(comment.group(_WARNINGS), unmanaged, ())
    if plan.follow_up:
        heading = comment.heading("#### After apply")
        items = [
            (f"- [ ] {_literal(item.address)}: {_literal(item.message)}", None)
            for item in plan.follow_up
        ]
        comment.listing(comment.group(_FOLLOW_UP, "follow-up items"), heading, items)
    comment.block(_footer(plan))

    for group in comment.groups:  # the whole plan, if it fits
        for part in group.parts:
            _show(part)
    whole = comment.text()
    if len(whole) <= budget:
        return whole
    for part in comment.parts:
        part.shown = part.skeleton
    changes = plan.summary.changes + plan.summary.conflict
    charts_count = len(groups["charts"].parts) if "charts" in groups else 0
    longest = [f"{plural(charts_count, 'routing chart')} left out"] if charts_count else []
    if noops:
        longest.append(f"the list of {plural(plan.summary.noop, 'unchanged record')} left out")
    longest += [
        f"{len(group.parts):,} {group.what} left out"
        for group in comment.groups
        if group.more is not None and group.what != "adoptions"
    ]
    shortened.text = _shortened(budget, changes, changes, changes, longest)  # room at its longest
    comment.fill(budget)
    left = _left_out(plan, comment, groups)
    shortened.text = _shortened(budget, changes, left.hidden, left.bare, left.extras)
    return comment.text()
