"""The plan as terminal text, read like ``terraform plan`` (docs/spec.md §4, §5).

Everything taken from the plan (names, reasons, values, messages) goes through ``clean``: the
target's data must not be able to move the cursor or recolour the terminal. Sensitive fields
show ``(sensitive)`` and the fingerprint of the value to be written, never a value. A structured
value (a rule, a condition) is shown in the manifests' own YAML under its field's line, a
changed one as a line diff (docs/spec.md §5); every one of its lines goes through ``clean``.
"""

from __future__ import annotations

import difflib
import io
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import JsonValue

from reconciler.manifest.yaml_loader import needs_quotes
from reconciler.plan.definition import DESTRUCTIVE, Action, Change, FieldChange, Plan, Summary
from reconciler.render.style import clean, paint, plural

SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.ADOPT: "<=",
    Action.CONFLICT: "!",
    Action.NOOP: "=",
}
PHRASES = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in place",
    Action.REPLACE: "must be replaced",
    Action.DELETE: "will be deleted",
    Action.ADOPT: "will be adopted",
    Action.CONFLICT: "is in conflict",
    Action.NOOP: "is unchanged",
}
_STYLES = {
    Action.CREATE: ("green",),
    Action.UPDATE: ("yellow",),
    Action.REPLACE: ("yellow",),
    Action.DELETE: ("red",),
    Action.ADOPT: ("cyan",),
    Action.CONFLICT: ("red", "bold"),
}
NOT_OURS = "not created by this project"
_FIELD_STYLES = {"+": "green", "-": "red", "~": "yellow"}
ARROW = "→"


def format_value(value: JsonValue) -> str:
    """JSON-ish: strings quoted, lists as ``["a", "b"]``, dicts compact."""
    return clean(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))


# --- structured values in the manifests' own YAML ---------------------------------------------

_BREAKS = frozenset("\n\r\x85\u2028\u2029")


class _Dumper(yaml.SafeDumper):
    """YAML written the way manifests write rules (examples/facebook-routing.yaml): a list
    indented under its key, a condition leaf (a mapping of plain values) and a list of plain
    values on one line in flow style, the rest in block style."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True  # the same condition twice is written twice, never as an anchor


def _plain(value: object) -> bool:
    """A scalar, or a list of scalars: what a flow-style condition leaf holds."""
    if isinstance(value, list):
        return all(not isinstance(item, dict | list) for item in value)
    return not isinstance(value, dict)


def _represent_dict(dumper: yaml.SafeDumper, value: dict[Any, Any]) -> yaml.Node:
    leaf = all(_plain(item) for item in value.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(), flow_style=leaf)


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=_plain(value))


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    """One line whatever the text holds: a line break is written ``\\n`` (double quotes), so
    no text of a value starts a line of the output."""
    odd = not value.isprintable() or _BREAKS & set(value) or value != value.strip()
    style = '"' if odd or needs_quotes(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(str, _represent_str)


def structured(value: JsonValue) -> bool:
    """A mapping, or a list holding mappings or lists: shown as YAML over several lines."""
    if isinstance(value, dict):
        return bool(value)
    return isinstance(value, list) and not _plain(value)


def yaml_lines(value: JsonValue) -> list[str]:
    """A structured value in the manifests' YAML form, a line each, every line ``clean``:
    its top level in block style even when it is a condition leaf, so it reads under its
    field's line."""
    node = _Dumper(io.StringIO(), sort_keys=False).represent_data(value)
    if isinstance(node, yaml.CollectionNode):
        node.flow_style = False
    text = yaml.serialize(node, Dumper=_Dumper, allow_unicode=True, width=sys.maxsize)
    return [clean(line) for line in text.rstrip("\n").split("\n")]


def shown(value: JsonValue) -> str:
    """A value as a field line shows it: YAML lines joined by a line feed when structured (the
    only line feed a shown value holds: ``clean`` escapes those of values), JSON otherwise."""
    return "\n".join(yaml_lines(value)) if structured(value) else format_value(value)


def changed_lines(row: Row) -> list[tuple[str, str]]:
    """A field's value lines, each with its mark: ``-`` before, ``+`` after, a space for the
    lines both sides share (a line diff, as ``git diff`` shows YAML), or the row's own symbol
    for a value that is only added or removed."""
    if row.before is None or row.after is None:
        return [(row.symbol, line) for line in (row.before or row.after or "").split("\n")]
    old, new = row.before.split("\n"), row.after.split("\n")
    found: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
        None, old, new, autojunk=False
    ).get_opcodes():
        if tag == "equal":
            found += [(" ", line) for line in old[i1:i2]]
            continue
        found += [("-", line) for line in old[i1:i2]]
        found += [("+", line) for line in new[j1:j2]]
    return found


def sensitive_text(field: FieldChange) -> str:
    """``(sensitive, sha256:…, from env:NAME)``: what will be written, never the value."""
    extras = [field.fingerprint, f"from {field.source}" if field.source else None]
    return "(sensitive" + "".join(f", {clean(extra)}" for extra in extras if extra) + ")"


@dataclass(frozen=True)
class Row:
    """One field line: display texts, ``None`` where the side is absent."""

    path: str
    before: str | None
    after: str | None
    multiline: bool = False
    """A structured value on either side: its YAML lines go under the field's line."""

    @property
    def symbol(self) -> str:
        if self.before is None:
            return "+"
        return "-" if self.after is None else "~"


def _field_row(field: FieldChange) -> Row:
    if field.sensitive:
        return Row(clean(field.path), "(sensitive)", sensitive_text(field))
    if field.before is None and field.after is None:
        return Row(clean(field.path), "null", "null")
    before = None if field.before is None else shown(field.before)
    after = None if field.after is None else shown(field.after)
    block = structured(field.before) or structured(field.after)
    return Row(clean(field.path), before, after, block)


def rows(change: Change) -> list[Row]:
    """The field lines of a change: desired fields for a create, differences otherwise."""
    if change.action is Action.CREATE:
        # Every field the record gets (rules item by item); never the desired values, which
        # carry no marker of which paths are sensitive.
        return [
            Row(clean(f.path), None, sensitive_text(f))
            if f.sensitive
            else Row(clean(f.path), None, shown(f.after), structured(f.after))
            for f in change.fields
            if f.sensitive or f.after is not None
        ]
    if change.action is Action.DELETE:
        return [
            Row(row.path, row.before, None, row.multiline) for row in map(_field_row, change.fields)
        ]
    return [_field_row(field) for field in change.fields]


def title(change: Change) -> str:
    return f"{clean(change.kind)} {format_value(change.name)}"


def foreign_line(change: Change, literal: Callable[[str], str] = clean) -> str | None:
    """What a change to a record this project did not create touches, as the target names
    it: ``adopts "Priority care" (id …)``, ``deletes …, not created by this project``; and a
    delete of a record whose id is not derived from its address (renamed since, or listed in
    the ledger by a hand edit): ``deletes "Payments" (id …), its id not derived from …``.
    ``literal`` prints what comes from the plan (the markdown puts it in code spans)."""
    if change.action not in (Action.ADOPT, *DESTRUCTIVE):
        return None
    if not change.adopted and not (change.action is Action.DELETE and change.current_name):
        return None
    name = format_value(change.current_name or change.name)
    what = f"{literal(f'{change.kind} {name}')} (id {literal(change.id)})"
    if change.action is Action.ADOPT:
        return f"adopts {what}, {NOT_OURS}"
    verb = "deletes" if change.action is Action.DELETE else "replaces"
    if not change.adopted:
        return (
            f"{verb} {what}, whose id is not derived from {literal(change.address)} (renamed "
            "since, or listed in the ledger by hand)"
        )
    return f"{verb} {what}, {NOT_OURS}"


def ledger_line(plan: Plan) -> str | None:
    """Said when apply would write the ledger although no record changes."""
    ledger = plan.ledger
    if ledger is None or not ledger.pending or plan.summary.changes:
        return None
    return (
        f"No record changes; apply brings the ledger of what this project manages up to date "
        f"({ledger.pending} {'entry' if ledger.pending == 1 else 'entries'})."
    )


def plan_line(
    summary: Summary, revision: str | None = None, literal: Callable[[str], str] = clean
) -> str:
    if not summary.changes and not summary.conflict:
        if revision is not None:
            return f"No changes. The manifests match {literal(revision)}."
        return "No changes. The target matches the manifests."
    line = (
        f"Plan: {summary.create} to create, {summary.update} to update, "
        f"{summary.replace} to replace, {summary.delete} to delete"
    )
    if summary.adopt:
        line += f", {summary.adopt} to adopt"
    if summary.conflict:
        line += f", {plural(summary.conflict, 'conflict')}"
    return line + "."


def unmanaged_line(unmanaged: Mapping[str, int], name: Callable[[str], str] = clean) -> str | None:
    counts = [(kind, count) for kind, count in sorted(unmanaged.items()) if count > 0]
    if not counts:
        return None
    total = sum(count for _, count in counts)
    kinds = ", ".join(f"{count} {name(kind)}" for kind, count in counts)
    records = "record in the target is" if total == 1 else "records in the target are"
    return f"Unmanaged: {kinds} {records} left alone."


def _paint(text: str, styles: tuple[str, ...], color: bool) -> str:
    for style in styles:
        text = paint(text, style, color)
    return text


def _field_lines(change: Change, color: bool) -> list[str]:
    lines = []
    for row in rows(change):
        symbol = paint(row.symbol, _FIELD_STYLES[row.symbol], color)
        if row.multiline:
            # The value's YAML under the field's line; a changed one as a line diff.
            lines.append(f"      {symbol} {row.path}:")
            for mark, line in changed_lines(row):
                diffed = row.symbol == "~" and mark != " "
                gutter = paint(mark, _FIELD_STYLES[mark], color) if diffed else " "
                lines.append(f"          {gutter} {line}")
        elif row.before is not None and row.after is not None:
            lines.append(f"      {symbol} {row.path}: {row.before} {ARROW} {row.after}")
        else:
            lines.append(f"      {symbol} {row.path}: {row.before or row.after}")
    return lines


def _change_block(change: Change, color: bool, verbose: int) -> list[str]:
    lines = [f"  # {clean(change.address)} {PHRASES[change.action]}"]
    # A conflict's reason is on its ``!`` line; creates and updates show theirs when verbose.
    if change.action in DESTRUCTIVE or (verbose and change.action is not Action.CONFLICT):
        lines.append(f"  # ({clean(change.reason)})")
    if change.renamed_from:
        lines.append(f"  # (renamed from {clean(change.renamed_from)}: keeps its id)")
    if foreign := foreign_line(change):
        lines.append(
            _paint(
                f"  # ! {foreign}",
                ("red", "bold") if change.action in DESTRUCTIVE else ("cyan",),
                color,
            )
        )
    head = f"{SYMBOLS[change.action]:>3} {title(change)}"
    fields = _field_lines(change, color)
    if change.action is Action.CONFLICT:
        lines.append(
            _paint(f"{head} conflicts: {clean(change.reason)}", _STYLES[change.action], color)
        )
        return lines + fields
    if not fields:
        return [*lines, _paint(head, _STYLES[change.action], color)]
    return [*lines, _paint(head + " {", _STYLES[change.action], color), *fields, "    }"]


def _target_lines(plan: Plan) -> list[str]:
    if revision := plan.target.revision:
        return [f"Changes from {clean(revision)} to the working tree (offline: no target read)."]
    organization = plan.target.organization_id
    where = f" (organization {clean(organization)})" if organization else ""
    return [
        f"Target: {clean(plan.target.url)}{where}",
        f"Read the target in {plural(plan.requests, 'request')}.",
    ]


def render_text(plan: Plan, *, color: bool = False, verbose: int = 0) -> str:
    """The plan for a terminal; ``color`` paints the action lines, ``verbose`` lists noops."""
    blocks: list[list[str]] = [_target_lines(plan)]
    changing = [c for c in plan.changes if c.action not in (Action.NOOP, Action.CONFLICT)]
    blocks += [_change_block(change, color, verbose) for change in changing]
    conflicts = [c for c in plan.changes if c.action is Action.CONFLICT]
    if conflicts:
        header = _paint("Conflicts (apply refuses until they are resolved):", ("bold",), color)
        blocks.append([header])
        blocks += [_change_block(change, color, verbose) for change in conflicts]
    if plan.summary.noop:
        noops = [c for c in plan.changes if c.action is Action.NOOP] if verbose else []
        blocks.append(
            [f"{plan.summary.noop} unchanged."] + [f"    {clean(c.address)}" for c in noops]
        )
    renamed = [c for c in plan.changes if c.action is Action.NOOP and c.renamed_from]
    if renamed:
        blocks.append(
            [
                f"  = {clean(c.address)}: renamed from {clean(c.renamed_from or '')} "
                "(keeps its id; nothing else changes)"
                for c in renamed
            ]
        )
    if plan.warnings:
        label = paint("Warning", "yellow", color)
        blocks.append(
            [
                f"{label}: {clean(where)}: {clean(w.message)}"
                if (where := w.location or w.address)
                else f"{label}: {clean(w.message)}"
                for w in plan.warnings
            ]
        )
    unmanaged = unmanaged_line(plan.unmanaged)
    if unmanaged:
        blocks.append([unmanaged])
    if plan.follow_up:
        items = [f"  - {clean(item.address)}: {clean(item.message)}" for item in plan.follow_up]
        blocks.append(["After apply:", *items])
    if note := ledger_line(plan):
        blocks.append([note])
    blocks.append([_paint(plan_line(plan.summary, plan.target.revision), ("bold",), color)])
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"
