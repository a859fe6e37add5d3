"""``plan --against REF``: what the working tree changes against a git revision, offline.

Both sides are validated and turned into desired records the way ``plan`` does, then compared
record by record in manifest terms: no target is read and no credential is needed, so it runs
for pull requests from forks. Secrets are compared by where they are read from (``env:NAME``,
``file:PATH``), never by value: a stand-in takes each secret's place on both sides.

The result is a ``Plan`` whose target is ``git:REF (commit)``; it renders like any plan but
cannot be applied (``apply --plan`` refuses a target that is not a Dataverse org). The old side
may carry what time has made invalid since (a page token now past its rotation date, a channel
a policy now refuses): those are ignored there; any other error of the old side stops with
diagnostics located at ``REF:path:line:col``.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.diagnostics import Diagnostic, sorted_unique
from reconciler.errors import UsageError
from reconciler.kinds.base import named
from reconciler.manifest.document import Document
from reconciler.manifest.revision import Revision, checkout
from reconciler.mapping import kinds as k
from reconciler.mapping.desired import desired_records
from reconciler.mapping.records import Record
from reconciler.mapping.values import Sensitive, record_id
from reconciler.models.common import FromEnv, FromFile
from reconciler.plan import secrets
from reconciler.plan.builder import (
    created_fields,
    desired_json,
    differences,
    field_change,
    member_changes,
)
from reconciler.plan.definition import (
    Action,
    Change,
    FieldChange,
    Plan,
    PlanTarget,
    Warning,
    summarise,
)
from reconciler.plan.planner import PlanFailed, one_environment, report_warnings
from reconciler.plan.routing import Routing, routing_of
from reconciler.validate import semantic
from reconciler.validate.pipeline import Options as ValidateOptions
from reconciler.validate.pipeline import Report, validate

# What the old side may hold because time passed or policy changed, not because it was wrong
# (a secret reference a trust rule now refuses: the comparison reads no secret anyway).
_AGED = frozenset({"token-expired", *semantic.POLICY_CODES, *secrets.REFUSED})
# Records that follow their workstream or rule set: never reported on their own.
_DERIVED = frozenset(kind.name for kind in k.KINDS if kind.on_create is named)
_RANK = {kind.name: index for index, kind in enumerate(k.KINDS)}


@dataclass(frozen=True)
class AgainstOptions:
    ref: str
    paths: Sequence[str] = (".",)
    env: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    var_files: Sequence[str] = ()
    prune: bool = False
    today: datetime.date | None = None
    now: datetime.datetime | None = None


class StandInSecrets:
    """Each secret reference becomes a stand-in named after its source, relative to ``root``
    for files, so the same reference compares equal in both checkouts."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def __call__(
        self, ref: FromEnv | FromFile, document: Document, path: tuple[str | int, ...]
    ) -> Sensitive:
        if isinstance(ref, FromEnv):
            source = f"env:{ref.from_env}"
        else:
            folder = Path(document.source.file).resolve().parent
            absolute = Path(os.path.normpath(folder / ref.from_file))
            try:
                shown = absolute.relative_to(self.root).as_posix()
            except ValueError:
                shown = absolute.as_posix()
            source = f"file:{shown}"
        return Sensitive(f"stand-in for {source}", source)


def plan_against(options: AgainstOptions) -> tuple[Plan, dict[str, Routing]]:
    """The comparison, and the routing of the working tree's workstreams (for the charts)."""
    today = options.today or datetime.date.today()
    new = _validated(options, options.paths, options.env, today)
    if new.errors:
        raise PlanFailed(new.diagnostics, refused=new.refused_by_policy)
    env = one_environment(new, options.env)
    with checkout(options.ref, options.paths) as revision:
        top = revision.top
        new_records = desired_records(new.documents, StandInSecrets(top))
        old_records, old_namespace = _old_side(options, revision, env, today)
    changes, warnings = compare(
        old_records, old_namespace, new_records, new.project.namespace, options.prune
    )
    now = options.now or datetime.datetime.now(datetime.UTC)
    plan = Plan(
        tool_version=__version__,
        created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        target=PlanTarget(url=f"git:{revision.label}"),
        summary=summarise(changes),
        changes=changes,
        warnings=(*report_warnings(new), *warnings),
        managed=sum(1 for r in old_records if r.present),
        max_delete_percent=new.project.safety.max_delete_percent,
    ).with_checksum()
    return plan, routing_of(new_records)


def _validated(
    options: AgainstOptions, paths: Sequence[str], env: str | None, today: datetime.date
) -> Report:
    return validate(
        ValidateOptions(
            paths=paths,
            env=env,
            variables=options.variables,
            var_files=options.var_files,
            today=today,
        )
    )


def _old_side(
    options: AgainstOptions, revision: Revision, env: str | None, today: datetime.date
) -> tuple[list[Record], uuid.UUID | None]:
    """The revision's records and namespace (none at all when it has no manifests there)."""
    if not revision.paths:
        return [], None
    try:
        report = _validated(options, revision.paths, env, today)
    except UsageError as exc:
        raise UsageError(f"at {revision.label}: {exc}") from None
    errors = [d for d in report.errors if d.code not in _AGED]
    if errors:
        raise PlanFailed(sorted_unique([_located(d, revision) for d in errors]))
    return desired_records(report.documents, StandInSecrets(revision.root)), (
        report.project.namespace
    )


def _located(diagnostic: Diagnostic, revision: Revision) -> Diagnostic:
    """A diagnostic of the revision's files, at ``REF:path`` rather than a temporary path."""
    message = diagnostic.message.replace(str(revision.root) + os.sep, f"{revision.ref}:")
    location = diagnostic.location
    if location is not None:
        location = dataclasses.replace(location, file=revision.shown(location.file))
    return dataclasses.replace(diagnostic, message=message, location=location)


def compare(
    old: Sequence[Record],
    old_namespace: uuid.UUID | None,
    new: Sequence[Record],
    new_namespace: uuid.UUID,
    prune: bool,
) -> tuple[tuple[Change, ...], list[Warning]]:
    """The changes from ``old`` to ``new``: deletes first (reverse dependency order), then the
    others in dependency order, as ``plan`` orders them."""
    before = {record.address: record for record in old if record.present}
    wanted = {record.address for record in new}
    deletes: list[Change] = []
    others: list[Change] = []
    warnings: list[Warning] = []

    renamed: set[str] = set()

    def change(record: Record, action: Action, reason: str, **extra: Any) -> Change:
        namespace = new_namespace if record.address in wanted else old_namespace
        derived = record.adopt or record_id(namespace or new_namespace, record.address)
        return Change(
            address=record.address,
            kind=record.kind.name,
            name=record.address.split("/", 1)[1],
            action=action,
            reason=reason,
            id=extra.pop("id", derived),
            **extra,
        )

    for record in sorted(new, key=lambda r: _RANK[r.kind.name]):
        was = before.get(record.address)
        if was is None and record.present:
            # A rename (metadata.previousNames): the record of the old address, kept.
            previous = next((p for p in record.previous if p in before and p not in wanted), None)
            if previous is not None:
                was = before[previous]
                renamed.add(previous)
        if not record.present:
            if was is not None:
                deletes.append(change(record, Action.DELETE, "ensure: absent"))
            else:
                others.append(change(record, Action.NOOP, "already absent"))
            continue
        if was is None:
            relations = {f.path for f in record.kind.fields if f.relation is not None}
            fields = [
                field_change(record.kind, *item)
                for path, value in record.fields.items()
                if value is not None
                for item in (
                    member_changes(path, None, value, prune=True)
                    if path in relations
                    else created_fields(path, value)
                )
            ]
            others.append(
                change(
                    record,
                    Action.CREATE,
                    "new in the working tree",
                    fields=_hidden(fields),
                    desired=desired_json(record),
                )
            )
            continue
        others.append(_changed(record, was, old_namespace, new_namespace, change, prune))
    for address, record in before.items():
        if address in wanted or address in renamed or record.kind.name in _DERIVED:
            continue
        if prune:
            deletes.append(change(record, Action.DELETE, "no longer in the manifests (--prune)"))
        else:
            warnings.append(
                Warning(
                    code="no-longer-in-manifests",
                    message=f"{address} is no longer in the manifests: apply leaves it in the "
                    "target (--prune deletes it)",
                    address=address,
                )
            )
    deletes.sort(key=lambda c: -_RANK[c.kind])
    return (*deletes, *others), warnings


def _changed(
    record: Record,
    was: Record,
    old_namespace: uuid.UUID | None,
    new_namespace: uuid.UUID,
    change: Callable[..., Change],
    prune: bool,
) -> Change:
    kind = record.kind
    found = [
        item
        for f in kind.fields
        if f.path in record.fields or (f.path in was.fields and f.relation is None)
        for item in (
            # Members as apply would change them: those added, and those dropped only with
            # --prune (a list left out leaves the members as they are).
            member_changes(f.path, was.fields.get(f.path), record.fields[f.path], prune=prune)
            if f.relation is not None
            else differences(f.path, was.fields.get(f.path), record.fields.get(f.path))
        )
    ]
    fields = _hidden([field_change(kind, *item) for item in found])
    old_id = was.adopt or (record_id(old_namespace, was.address) if old_namespace else None)
    new_id = record.adopt or record_id(new_namespace, record.address)
    extra: dict[str, Any] = {}
    if was.address != record.address:  # renamed: the record keeps the id it had
        extra = {"renamed_from": was.address, "id": old_id or new_id}
        if old_namespace == new_namespace and not record.adopt:
            new_id = old_id or new_id
    fixed = [
        f
        for f in kind.fields
        if f.create_only and was.fields.get(f.path) != record.fields.get(f.path)
    ]
    desired = desired_json(record)
    if old_id != new_id:
        reason = (
            f"its id changes ({old_id} → {new_id}): metadata.id or the project's namespace "
            "changed, so apply creates a new record"
        )
        return change(record, Action.REPLACE, reason, fields=fields, desired=desired, **extra)
    if fixed:
        what = "; ".join(
            f"{f.path} is set at creation ({was.fields.get(f.path)} → {record.fields.get(f.path)})"
            for f in fixed
        )
        reason = f"{what}: the {kind.name} is deleted and created again with the same id"
        return change(record, Action.REPLACE, reason, fields=fields, desired=desired, **extra)
    renamed = f"renamed from {was.address} (keeps its id); " if "renamed_from" in extra else ""
    if fields:
        what = f"{len(fields)} field{'s differ' if len(fields) > 1 else ' differs'}"
        return change(
            record, Action.UPDATE, renamed + what, fields=fields, desired=desired, **extra
        )
    return change(record, Action.NOOP, renamed + "the same in both", **extra)


def _hidden(fields: list[FieldChange]) -> tuple[FieldChange, ...]:
    """Sensitive fields without a fingerprint: a stand-in's would mean nothing."""
    return tuple(f.model_copy(update={"fingerprint": None}) if f.sensitive else f for f in fields)
