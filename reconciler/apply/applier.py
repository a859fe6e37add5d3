"""``apply``: plan (or load a saved plan), check it is safe, ask, write, and say what is left.

Everything that can refuse runs before the first write: conflicts, the delete threshold, a
saved plan for another target or org, a secret that no longer matches the plan's fingerprint.
Then the plan's steps run (``stages`` → ``evaluator`` with the ``Writer``), and the follow-up
checklist is read back from the target. Progress and questions go through ``Ui``: library code
never prints.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pydantic

from reconciler.apply.followup import Item, checklist
from reconciler.apply.writer import Writer
from reconciler.dataverse import DataverseClient, DataverseError, RetryPolicy
from reconciler.errors import ReconcilerError, UsageError
from reconciler.mapping import kinds as k
from reconciler.mapping.fields import Resolver
from reconciler.mapping.values import Sensitive
from reconciler.plan import ownership
from reconciler.plan.definition import FORMAT_VERSION, Action, Plan
from reconciler.plan.evaluator import DEFAULT_PARALLELISM, Outcome, Result, evaluate
from reconciler.plan.planner import PlanOptions, plan_with, prepare
from reconciler.plan.secrets import SecretProblem, read_secret
from reconciler.plan.signing import PLAN_KEY_VARIABLE, plan_key
from reconciler.plan.stages import WRITES, Op, Step, build_steps
from reconciler.state import applied, ledger
from reconciler.state.reader import Context, read_context, read_users
from reconciler.targets import Target, connect, parse_target, pinned_target

log = logging.getLogger("reconciler.apply")


class ApplyRefused(ReconcilerError):
    """Apply will not start: a conflict, too many deletes, a plan that no longer fits the
    target or its secrets, no confirmation. Nothing was written."""

    exit_code = 3


class ApplyError(ReconcilerError):
    """Apply cannot start: a saved plan that cannot be read, a secret that cannot be read."""


class Ui(Protocol):
    """How apply talks to a person (the CLI implements it)."""

    def show(self, plan: Plan) -> None: ...

    def confirm(self, plan: Plan) -> bool:
        """True to go ahead; raise ``ApplyRefused`` when nobody can be asked."""
        ...

    def started(self, steps: Sequence[Step]) -> None: ...

    def finished(self, result: Result) -> None: ...


@dataclass(frozen=True)
class ApplyOptions:
    parallelism: int = DEFAULT_PARALLELISM
    force: bool = False
    """Apply even when the deletes exceed ``safety.maxDeletePercent``."""
    environ: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    """``--target`` (a saved plan otherwise goes to the target it was made for)."""
    retry: RetryPolicy | None = None


@dataclass(frozen=True)
class Applied:
    plan: Plan
    results: tuple[Result, ...] = ()
    checklist: tuple[Item, ...] = ()
    requests: int = 0
    """Requests apply made after planning: its reads, writes and retries."""
    seconds: float = 0.0
    ledger_notes: int = 0
    """Notes of the ledger this apply wrote (docs/ownership.md)."""
    already_applied: str | None = None
    """When a saved plan applied again was applied before (UTC): nothing was done."""

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome is outcome)

    @property
    def complete(self) -> bool:
        return all(result.outcome is Outcome.APPLIED for result in self.results)


# --- checks -----------------------------------------------------------------------------------


def check_safety(plan: Plan, *, force: bool) -> None:
    if plan.has_conflicts:
        count = plan.summary.conflict
        raise ApplyRefused(
            f"the plan has {count} conflict{'s' if count > 1 else ''} (records that exist but "
            "are not this project's); adopt or rename them first"
        )
    if plan.deletes_over_limit and not force:
        share = plan.summary.delete * 100 / plan.managed
        raise ApplyRefused(
            f"the plan deletes {plan.summary.delete} of {plan.managed} managed records "
            f"({share:.1f}%), more than safety.maxDeletePercent ({plan.max_delete_percent}%) "
            "allows; check the plan, then apply with --force if it is right"
        )


def resolve_secrets(plan: Plan, environ: Mapping[str, str]) -> dict[tuple[str, str], Sensitive]:
    """Read every secret the plan writes from where the plan says it came from, and check it
    is the value the plan was made with (by fingerprint).

    A saved plan can be edited, so its sources obey the trust rules again: a file inside the
    working folder, a ``RECONCILER_SECRET_DIRS`` folder or the project folder its path is
    written in, never a credential variable (docs/troubleshooting.md, "A secret is refused").
    A source they refuse is never read, and refuses the apply (exit 3)."""
    found: dict[tuple[str, str], Sensitive] = {}
    refused: list[str] = []
    unreadable: list[str] = []
    changed: list[str] = []
    for change in plan.changes:
        if change.action not in WRITES:
            continue
        for item in change.fields:
            if not item.sensitive or item.fingerprint is None:
                continue  # a secret the change clears
            where = f"{change.address} {item.path}"
            if item.source is None:
                unreadable.append(f"{where}: the plan does not say where the secret comes from")
                continue
            try:
                value = read_secret(item.source, item.path, environ)
            except SecretProblem as problem:
                (refused if problem.refused else unreadable).append(f"{where}: {problem}")
                continue
            if value.fingerprint != item.fingerprint:
                changed.append(f"{where} ({item.source})")
            found[(change.address, item.path)] = value
    if refused:
        raise ApplyRefused("the plan names secrets apply may not read: " + "; ".join(refused))
    if unreadable:
        raise ApplyError("cannot read the plan's secrets: " + "; ".join(unreadable))
    if changed:
        raise ApplyRefused(
            "secrets changed since the plan was made: "
            + ", ".join(changed)
            + "; plan again to apply the new values"
        )
    return found


def load_plan(path: str | Path) -> Plan:
    """A saved plan (``plan --out``), checked to be whole and unchanged."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the plan {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ApplyError(f"{path} is not a plan (not UTF-8 text)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApplyError(f"{path} is not a plan: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict) or "format_version" not in data:
        raise ApplyError(f"{path} is not a plan written by `reconciler plan --out`")
    if data["format_version"] != FORMAT_VERSION:
        raise ApplyError(
            f"{path} has plan format {data['format_version']!r}; this reconciler reads "
            f"{FORMAT_VERSION!r}: plan again"
        )
    try:
        plan = Plan.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ApplyError(f"{path} is not a valid plan: {where}: {first['msg']}") from None
    for index, change in enumerate(plan.changes):
        if change.kind not in k.BY_NAME:
            raise ApplyError(
                f"{path} is not a valid plan: changes[{index}].kind: unknown kind {change.kind!r}"
            )
    try:
        checksum = plan.computed_checksum()
    except UnicodeEncodeError:  # a lone surrogate (\ud800) in a string: no plan writes one
        raise ApplyError(f"{path} is not a valid plan: it holds text that is not Unicode") from None
    if checksum != plan.checksum:
        raise ApplyRefused(f"{path} was changed after it was written (checksum mismatch)")
    return plan


def saved_plan_target(plan: Plan, options: ApplyOptions) -> Target:
    """The target a saved plan was made for, once the plan is trusted (``trust_saved_plan``);
    ``--target`` or ``RECONCILER_TARGET`` may only name that one."""
    if plan.target.revision is not None:
        raise ApplyRefused(
            f"this is a comparison with the git revision {plan.target.revision} "
            "(plan --against), not a plan of a target: run plan against the org and apply that"
        )
    planned = parse_target(plan.target.url, options.environ)
    pinned = pinned_target(options.target, options.environ)
    if pinned is not None and pinned.url != planned.url:
        raise ApplyRefused(
            f"the plan was made for {planned.url}, not {pinned.url}; "
            "plan against that target instead"
        )
    return planned


def trust_saved_plan(plan: Plan, path: str | Path, environ: Mapping[str, str]) -> None:
    """Refuse (exit 3, before anything is read or written) a saved plan that could steer the
    apply: not signed by ``RECONCILER_PLAN_KEY`` when it is set, no organization to check the
    target against, or a write to a record read at plan time without its ETag (docs/security.md)."""
    key = plan_key(environ)
    if key is not None and not plan.verified_by(key):
        why = (
            "it is not signed"
            if not plan.signature
            else "its signature does not match (another key, or the plan was changed)"
        )
        raise ApplyRefused(
            f"{path} cannot be verified with {PLAN_KEY_VARIABLE}: {why}; apply only a plan "
            f"`reconciler plan --out` wrote with the same {PLAN_KEY_VARIABLE}"
        )
    if key is None and plan.signature:
        log.warning(
            "%s is signed, but %s is not set here: its signature is not checked",
            path,
            PLAN_KEY_VARIABLE,
        )
    if not plan.target.organization_id and not plan.target.url.startswith("local:"):
        raise ApplyRefused(
            f"{path} names no organization_id for {plan.target.url}, so apply cannot check it "
            "is the org the plan was made for: plan again"
        )
    # An update may go without one only where a delete or replace in the same plan changes its
    # row first (a link the delete clears, set again): the planner leaves that ETag out, since
    # the row will hold a new one (``plan.builder``).
    deleting = {c.address for c in plan.changes if c.action in (Action.DELETE, Action.REPLACE)}
    unguarded = [
        change.address
        for change in plan.changes
        if change.action in _READ_AT_PLAN_TIME
        and not (change.etag and _ETAG.fullmatch(change.etag))
        and not (
            change.etag is None
            and change.action is Action.UPDATE
            and deleting.intersection(change.depends_on)
        )
    ]
    if unguarded:
        shown = ", ".join(unguarded[:5]) + (
            f" and {len(unguarded) - 5} more" if unguarded[5:] else ""
        )
        raise ApplyRefused(
            f"{path} changes records without the ETag they were read with ({shown}), so a "
            "record changed since could be overwritten: plan again"
        )


# The actions that write a record the plan read: each write carries its If-Match ETag.
_READ_AT_PLAN_TIME = frozenset({Action.UPDATE, Action.REPLACE, Action.DELETE, Action.ADOPT})
# "Dataverse generates a weakly validating @odata.etag property for every entity instance", e.g.
# W/"468026" ("Perform conditional operations using the Web API", MicrosoftDocs/powerapps-docs
# powerapps-docs/developer/data-platform/webapi/perform-conditional-operations-using-web-api.md);
# never ``*``, which matches any version and would overwrite a record changed since the plan.
_ETAG = re.compile(r'W/"[^"*]+"')


# --- apply ------------------------------------------------------------------------------------


async def apply_plan(
    client: DataverseClient,
    plan: Plan,
    options: ApplyOptions,
    ui: Ui,
    context: Context | None = None,
) -> Applied:
    """Check ``plan``, ask, and carry it out against the target ``client`` speaks to (whose
    ``context`` a saved plan's apply has read already). The time reported starts after the
    answer to the question: a person reading the plan is not part of how long applying took."""
    started = time.perf_counter()
    before = client.stats.total
    ui.show(plan)
    check_safety(plan, force=options.force)
    pending = plan.ledger is not None and plan.ledger.pending > 0
    if not plan.has_changes and not pending:
        items = await _checklist(client, plan, ())
        return Applied(plan, (), tuple(items), client.stats.total - before)
    secrets = resolve_secrets(plan, options.environ)
    context = context or await organization(client, plan)
    if plan.has_changes:
        if not ui.confirm(plan):
            raise ApplyRefused("apply cancelled; nothing was written")
        started = time.perf_counter()
    # The ledger lists what this apply creates or adopts before it does (and drops what it
    # deletes after): a run killed at any moment leaves nothing of ours the ledger misses.
    notes = await _ledger(client, plan, before=True)
    # Members are named by sign-in name in the plan: their ids are read here, in one query.
    users = await read_users(client) if _names_members(plan) else {}
    resolver = Resolver(
        languages=dict(context.languages), output_contract=context.output_contract, users=users
    )
    for change in plan.changes:
        resolver.add(change.address, change.id)
    steps = build_steps(plan)
    ui.started(steps)
    results = await evaluate(
        steps,
        Writer(client, resolver, secrets),
        parallelism=options.parallelism,
        on_result=ui.finished,
    )
    notes += await _ledger(client, plan, results=results)
    items = await _checklist(client, plan, results)
    return Applied(
        plan,
        tuple(results),
        tuple(items),
        client.stats.total - before,
        time.perf_counter() - started,
        notes,
    )


def _names_members(plan: Plan) -> bool:
    """Whether a change of the plan adds or removes members (``plan.builder.member_changes``),
    or creates a record that has some (a replace creates its record again)."""
    for change in plan.changes:
        relations = {f.path for f in k.BY_NAME[change.kind].fields if f.relation is not None}
        if relations and any(f.path.split("[", 1)[0] in relations for f in change.fields):
            return True
        created = change.action in (Action.CREATE, Action.REPLACE)
        if created and any((change.desired or {}).get(path) for path in relations):
            return True
    return False


async def _ledger(
    client: DataverseClient,
    plan: Plan,
    *,
    before: bool = False,
    results: Sequence[Result] = (),
) -> int:
    """Write the plan's part of the ledger; the notes written.

    Before the steps: every record the plan leaves in the target but the ones it adopts (a
    create is listed before it is made, so a run killed after it is not lost), and the
    entries of records gone since the plan was made (each checked to be gone still). After
    them: the records adopted, created or replaced whose steps all went through (listed again:
    an apply that ran at the same time may have dropped one it saw missing), less the records
    deleted. An adoption whose step failed stays unlisted, so the next plan shows it again."""
    if plan.ledger is None:
        return 0  # a plan saved before ledgers: its records are found by their ids
    namespace = uuid.UUID(plan.ledger.namespace)
    try:
        if before:
            add = ownership.entries(
                (c for c in plan.changes if c.action is not Action.ADOPT), plan.ledger.add
            )
            return await ledger.write(
                client, namespace, add, plan.ledger.drop, unless_present=plan.ledger.drop
            )
        failed = {r.step.change.address for r in results if r.outcome is not Outcome.APPLIED}
        done = [
            change
            for change in plan.changes
            if change.action in (Action.ADOPT, Action.CREATE, Action.REPLACE)
            and change.address not in failed
        ]
        deleted = [
            result.step.change.id
            for result in results
            if result.step.op is Op.DELETE
            and result.step.change.action is Action.DELETE
            and result.outcome is Outcome.APPLIED
        ]
        return await ledger.write(client, namespace, ownership.entries(done), deleted)
    except DataverseError as error:
        when = "nothing was written" if before else "the records were written"
        raise ledger.LedgerError(f"cannot write the ledger ({when}): {error}") from None


async def _checklist(client: DataverseClient, plan: Plan, results: Sequence[Result]) -> list[Item]:
    """The follow-up checklist; a failed read-back never hides what apply did."""
    try:
        return await checklist(client, plan, results)
    except DataverseError as error:
        return [Item("", f"could not read the follow-up values back from the target: {error}")]


async def apply_manifests(plan_options: PlanOptions, options: ApplyOptions, ui: Ui) -> Applied:
    """``apply PATHS``: plan the manifests, then apply that plan."""
    prepared = prepare(plan_options)
    async with connect(
        prepared.target, options.environ, retry=options.retry, max_in_flight=options.parallelism
    ) as client:
        plan = await plan_with(client, prepared, plan_options)
        return await apply_plan(client, plan, options, ui)


async def apply_saved(path: str | Path, options: ApplyOptions, ui: Ui) -> Applied:
    """``apply --plan FILE``: apply a saved plan exactly, or refuse."""
    plan = load_plan(path)
    if plan.target.revision is None:  # a comparison (plan --against) is refused as such below
        trust_saved_plan(plan, path, options.environ)
    target = saved_plan_target(plan, options)
    if target.kind == "local" and target.path is not None and not target.path.is_file():
        # A local path is relative to where plan ran: from elsewhere it names no database,
        # and opening it would make a new, empty one.
        raise ApplyRefused(
            f"the plan's database {target.path} does not exist here: a local target's path is "
            "relative to the folder plan ran in; apply the plan from there"
        )
    async with connect(
        target, options.environ, retry=options.retry, max_in_flight=options.parallelism
    ) as client:
        if not plan.has_changes:
            return await apply_plan(client, plan, options, ui)
        start = client.stats.total
        # Only a plan for this organization is looked up among the applied ones.
        context = await organization(client, plan)
        namespace = uuid.UUID(plan.ledger.namespace) if plan.ledger is not None else None
        identity = plan.identity(plan_key(options.environ))
        noted = await applied.read(client, namespace) if namespace is not None else None
        if noted is not None and identity in noted.applied:
            requests = client.stats.total - start
            return Applied(plan, requests=requests, already_applied=noted.applied[identity])
        done = await apply_plan(client, plan, options, ui, context)
        if namespace is not None and done.results and done.complete:
            await _note_applied(client, namespace, identity, noted)
        # Every request of this apply: the organization and the note read before the steps
        # and the note written after them too.
        return dataclasses.replace(done, requests=client.stats.total - start)


async def organization(client: DataverseClient, plan: Plan) -> Context:
    """The target's context, once it is the organization ``plan`` was made for."""
    context = await read_context(client)
    if plan.target.organization_id and context.organization_id != plan.target.organization_id:
        raise ApplyRefused(
            f"the plan was made for organization {plan.target.organization_id}, but "
            f"{plan.target.url} is organization {context.organization_id}; plan again"
        )
    return context


async def _note_applied(
    client: DataverseClient, namespace: uuid.UUID, identity: str, noted: applied.Noted | None
) -> None:
    """Note in the target that the plan was applied, so running it again says so."""
    if not await applied.note(client, namespace, identity, noted):
        log.warning(
            "could not note in the target that this plan was applied (applying it again "
            "will report its steps as stale)"
        )
