"""A plan as the typed steps apply runs: create, update, delete, link.

Each step is one record's write and names the steps that must succeed before it. The evaluator
runs them; the explainer (``plan -v``) prints the same list, so the preview cannot drift from
what apply does. Steps hold no values: request bodies are built when a step runs, from the
plan's desired fields and the secrets resolved for it.

Order (docs/spec.md §5): the deletes the plan lists first run before anything else, in reverse
dependency order; then queues, accounts and pages, workstreams, contracts, rule sets, routing
configuration, steps; a page or agent is linked to a workstream once that workstream's whole
routing chain is written (a channel never goes live on a half-built workstream); deletes an
update frees run after it. A replace is a delete, then a create with the same id; a record whose
restrict link would refuse that delete (a Facebook page on a replaced workstream) is unlinked
first and linked again once the record is back.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from reconciler import kinds
from reconciler.dataverse.tables import Table
from reconciler.mapping import kinds as k
from reconciler.plan import itempath
from reconciler.plan.definition import Action, Change, Plan

LINK_FIELD = "workstream"
LINKED_KINDS = frozenset(kind.name for kind in k.KINDS if kind.linked)
"""Channel instances: their ``workstream`` field is the link that puts them live."""
_ROUTED = frozenset(kind.name for kind in (k.RULE_SET, *kinds.BY_KIND["RoutingRuleSet"].brings))
"""Records of a workstream's routing that its address does not name (rule sets, steps)."""


WRITES = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE, Action.ADOPT})
UPDATES = frozenset({Action.UPDATE, Action.ADOPT})
"""Writes to a record as it exists (an adoption writes the fields that differ, if any)."""


class Op(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    LINK = "link"


@dataclass(frozen=True)
class Step:
    key: str
    """Unique in a plan: ``<op> <address>`` (``unlink <address>`` for an unlink)."""
    op: Op
    change: Change
    paths: tuple[str, ...]
    """The fields this step writes (manifest paths); none for a delete."""
    etag: str | None
    """``If-Match`` for updates, links and deletes; ``None`` means the record must only exist
    (``*``) for a write, or no condition for a delete."""
    needs: tuple[str, ...]
    """Keys of the steps that must succeed before this one starts."""
    early: bool = False
    """A delete that runs before every non-delete step starts."""
    guards: tuple[Change, ...] = ()
    """For an unlink: the replaces it lets go for. Their records must still be as read, or the
    unlink is stale (it would leave a record unlinked from one whose replace cannot run)."""

    @property
    def address(self) -> str:
        return self.change.address

    @property
    def clears(self) -> bool:
        """An unlink: the step sets the fields in ``paths`` to nothing."""
        return bool(self.guards)

    @property
    def table(self) -> Table:
        return k.BY_NAME[self.change.kind].table

    @property
    def writes_row(self) -> bool:
        """The step writes the record's row (not only its members)."""
        if self.op is not Op.UPDATE and self.op is not Op.LINK:
            return True
        relations = {f.path for f in k.BY_NAME[self.change.kind].fields if f.relation is not None}
        return not self.paths or not set(self.paths) <= relations

    def members(self, path: str) -> tuple[list[str], list[str]]:
        """The members (sign-in names) this step adds and removes at ``path``: a new row (or
        one created again) gets every member it should have; otherwise its ``path[NAME]``
        fields say (null → the name added, the name → null removed)."""
        if path not in self.paths:
            return [], []
        if self.op is Op.CREATE:
            wanted = (self.change.desired or {}).get(path)
            return ([str(name) for name in wanted] if isinstance(wanted, list) else []), []
        add, remove = [], []
        for item in self.change.fields:
            split = itempath.split(item.path)
            if split is None or split[0] != path or split[2]:
                continue
            if item.before is None and isinstance(item.after, str):
                add.append(item.after)
            elif item.after is None and isinstance(item.before, str):
                remove.append(item.before)
        return add, remove

    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """The requests this step sends, in order: method, path relative to the Web API root
        and conditional headers. A member is named by its sign-in name (``<ada@contoso.com>``)
        where apply puts the user's id."""
        path = f"{self.table.entity_set}({self.change.id})"
        if self.op is Op.DELETE:
            return [("DELETE", path, {"If-Match": self.etag} if self.etag else {})]
        found = []
        if self.op is Op.CREATE:
            found.append(("PATCH", path, {"If-None-Match": "*"}))
        elif self.writes_row:
            found.append(("PATCH", path, {"If-Match": self.etag or "*"}))
        for f in k.BY_NAME[self.change.kind].fields:
            if f.relation is None:
                continue
            add, remove = self.members(f.path)
            found += [("POST", f"{path}/{f.relation.name}/$ref", {}) for _ in add]
            found += [("DELETE", f"{path}/{f.relation.name}(<{name}>)/$ref", {}) for name in remove]
        return found

    def request(self) -> tuple[str, str, dict[str, str]]:
        """The first request this step sends (``requests``)."""
        return self.requests()[0]


def _top(path: str) -> str:
    """``rules[VIP customers].routeTo`` → ``rules``: the field a changed path belongs to (a
    rule's name is after the first ``[``, quoted if it holds one: ``plan.itempath``)."""
    return path.split("[", 1)[0]


def _chains(changes: Iterable[Change]) -> dict[str, list[str]]:
    """By workstream name, the addresses of the records that make up its routing, in the
    plan's order: the workstream, its contract and routing configuration, its rule sets and
    their steps. One pass over the plan (asking per workstream made planning quadratic)."""
    found: dict[str, list[str]] = defaultdict(list)
    prefix = "Workstream/"
    for change in changes:
        if change.action not in WRITES:
            continue
        address = change.address
        if address.startswith(prefix):
            found[address[len(prefix) :].split("/", 1)[0]].append(address)
        elif change.kind in _ROUTED:
            workstream = (change.desired or {}).get("workstream")
            if workstream is not None:
                found[str(workstream)].append(address)
    return found


def _waiting(changes: Iterable[Change]) -> dict[str, list[Change]]:
    """By address: the replaces whose delete waits for that record's change (the builder's
    ``depends_on``: the change stops a restrict link from refusing the delete)."""
    found: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        if change.action is Action.REPLACE:
            for address in change.depends_on:
                found[address].append(change)
    return found


def _unlinked(change: Change, replaces: Sequence[Change]) -> tuple[tuple[str, ...], list[Change]]:
    """The fields of ``change`` that point at one of ``replaces``, and those replaces: its
    record must let go of them while they are deleted, and point at them again once back."""
    desired = change.desired or {}
    by_address = {replace.address: replace for replace in replaces}
    pointed = {
        f.path: by_address[target]
        for f in k.BY_NAME[change.kind].fields
        if f.ref and desired.get(f.path) is not None
        if (target := f.ref.format(desired[f.path])) in by_address
    }
    return tuple(pointed), list({c.address: c for c in pointed.values()}.values())


def build_steps(plan: Plan) -> list[Step]:
    """The steps that carry out ``plan``, in the plan's order.

    A step needs records by address, resolved once every step exists to the step that leaves
    each record as planned: a replace's delete may wait for an update further down the plan
    (the one that points a restricting lookup, such as a page's workstream, elsewhere), or for
    the unlink that comes before that update.
    """
    final: dict[str, str] = {}  # address → key of the step that leaves the record as planned
    unlinks: dict[tuple[str, str], str] = {}  # (replaced address, address) → its unlink's key
    let_go: set[str] = set()  # addresses unlinked before their main step
    deleted: dict[str, str] = {}  # address of a replaced record → its delete's key
    drafts: list[tuple[Step, tuple[str, ...]]] = []  # (step without needs, addresses it needs)
    chains = _chains(plan.changes)
    waiting = _waiting(plan.changes)
    leading = True  # still among the deletes the plan lists before everything else

    def add(
        op: Op,
        change: Change,
        paths: tuple[str, ...],
        *needs: str,
        guards: tuple[Change, ...] = (),
    ) -> str:
        clears = bool(guards)
        key = f"{'unlink' if clears else op} {change.address}"
        # A record this apply creates (or creates again, or unlinks first) has no ETag the
        # plan could know.
        fresh = (
            op is Op.CREATE
            or (op is Op.LINK and change.action not in UPDATES)
            or (not clears and change.address in let_go)
        )
        etag = None if fresh else change.etag
        early = leading and op is Op.DELETE
        step = Step(key, op, change, paths, etag, (), early, guards)
        drafts.append((step, needs))
        final[change.address] = key
        return key

    for change in plan.changes:
        if change.action is Action.DELETE:
            add(Op.DELETE, change, (), *change.depends_on)
            continue
        if change.action not in WRITES:
            continue
        leading = False
        kind = k.BY_NAME[change.kind]
        desired = change.desired or {}
        workstream = desired.get(LINK_FIELD) if change.kind in LINKED_KINDS else None
        chain = chains.get(str(workstream), []) if workstream else []
        if change.action in UPDATES:
            if not change.fields:
                continue  # an adoption that writes nothing but the ledger
            cleared, replaces = _unlinked(change, waiting.get(change.address, []))
            if cleared:
                key = add(Op.UPDATE, change, cleared, guards=tuple(replaces))
                unlinks.update({(r.address, change.address): key for r in replaces})
                let_go.add(change.address)
            paths = tuple(dict.fromkeys(_top(f.path) for f in change.fields))
            op = Op.LINK if workstream and paths == (LINK_FIELD,) else Op.UPDATE
            add(op, change, paths, *change.depends_on, *(chain if LINK_FIELD in paths else ()))
            continue
        replaced: tuple[str, ...] = ()
        if change.action is Action.REPLACE:
            replaced = (add(Op.DELETE, change, (), *change.depends_on),)
            deleted[change.address] = replaced[0]
        paths = tuple(f.path for f in kind.fields if f.path in desired)
        own_prefix = change.address + "/"
        if kind.after_routing:  # created once its workstream's routing chain is written
            chain = chains.get(str(desired.get(LINK_FIELD)), [])
            routing = [a for a in chain if a != change.address and not a.startswith(own_prefix)]
            add(Op.CREATE, change, paths, *replaced, *change.depends_on, *routing)
            continue
        if not chain:
            add(Op.CREATE, change, paths, *replaced, *change.depends_on)
            continue
        # The workstream is being written too: create the channel instance unlinked now, and
        # link it once the workstream's routing chain is in place.
        unlinked = tuple(p for p in paths if p != LINK_FIELD)
        own = f"Workstream/{workstream}"
        key = add(
            Op.CREATE, change, unlinked, *replaced, *(a for a in change.depends_on if a != own)
        )
        add(Op.LINK, change, (LINK_FIELD,), key, *chain)
    keys = {step.key for step, _ in drafts}
    by_address = {change.address: change for change in plan.changes}
    steps = []
    for step, needs in drafts:
        resolved = (
            _across_replaces(step, need, deleted, by_address)
            if _tied(step.change, need, by_address)
            else unlinks.get((step.address, need)) or (need if need in keys else final.get(need))
            for need in needs
        )
        wanted = tuple(dict.fromkeys(key for key in resolved if key and key != step.key))
        steps.append(dataclasses.replace(step, needs=wanted))
    order(steps)  # refuses a cycle: the evaluator would wait for ever
    return steps


def _tied(change: Change, need: str, by_address: dict[str, Change]) -> bool:
    """Two replaced records that wait for each other: a chat widget (its workstream lookup is
    set once) and its workstream (whose delete the widget's restrict link refuses)."""
    other = by_address.get(need)
    return (
        change.action is Action.REPLACE
        and other is not None
        and other.action is Action.REPLACE
        and change.address in other.depends_on
    )


def _across_replaces(
    step: Step, need: str, deleted: dict[str, str], by_address: dict[str, Change]
) -> str:
    """What a step of one of two tied replaces waits for of the other: the referrer is
    deleted first, then the referenced record, which is created first. ``""``: nothing."""
    referrer = need in step.change.depends_on and _refers(by_address[need], step.address)
    if step.op is Op.DELETE:
        return deleted[need] if referrer else ""
    return "" if referrer else f"{Op.CREATE} {need}"


def _refers(change: Change, address: str) -> bool:
    return address in k.BY_NAME[change.kind].references(change.desired or {})


def order(steps: Sequence[Step]) -> dict[str, int]:
    """Each step's level: how many steps must finish, one after another, before it starts
    (every step that is not an early delete comes after all of those). A cycle is an error:
    the evaluator would wait for ever."""
    by_key = {step.key: step for step in steps}
    depth: dict[str, int] = {}
    visiting: set[str] = set()
    barrier = 0

    def level(step: Step) -> int:
        if step.key not in depth:
            if step.key in visiting:
                raise ValueError(f"the steps wait for each other in a cycle through {step.key}")
            visiting.add(step.key)
            if step.early and any(not by_key[key].early for key in step.needs):
                raise ValueError(
                    f"the steps wait for each other in a cycle through {step.key}: an early "
                    "delete needs a step that waits for every early delete"
                )
            start = 0 if step.early else barrier
            depth[step.key] = max([start, *(level(by_key[key]) + 1 for key in step.needs)])
        return depth[step.key]

    early = [level(step) for step in steps if step.early]
    barrier = max(early) + 1 if early else 0
    for step in steps:
        level(step)
    return depth
