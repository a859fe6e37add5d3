"""``plan``: validate the manifests, resolve their secrets, read the target, build the plan.

The only I/O of planning is here: the builder is a pure function of the desired records and
the snapshot, and the renderers are pure functions of the plan.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from reconciler import __version__, aio
from reconciler.dataverse import DataverseClient, RetryPolicy
from reconciler.diagnostics import Diagnostic, sorted_unique
from reconciler.errors import ReconcilerError, UsageError
from reconciler.mapping.desired import desired_records
from reconciler.mapping.records import Record
from reconciler.models.project import DEFAULT_NAMESPACE
from reconciler.plan import builder
from reconciler.plan.definition import Plan, PlanTarget, Warning, summarise
from reconciler.plan.routing import Routing, routing_of
from reconciler.plan.secrets import SecretResolver
from reconciler.state.reader import read_snapshot
from reconciler.targets import TARGET_VARIABLE, Target, choose_target, connect
from reconciler.validate.pipeline import Options as ValidateOptions
from reconciler.validate.pipeline import Report, validate


@dataclass(frozen=True)
class PlanOptions:
    paths: Sequence[str] = (".",)
    env: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    var_files: Sequence[str] = ()
    target: str | None = None
    prune: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    today: datetime.date | None = None
    now: datetime.datetime | None = None
    retry: RetryPolicy | None = None
    notice: Callable[[str], None] | None = None
    """Told once what the run assumes (the defaults of a project without a project file)."""


def defaults_note(options: PlanOptions, target: Target) -> str:
    """What a project without ``reconciler.yaml`` runs with, said once so nobody plans
    against a database or namespace they did not mean."""
    where = ", ".join(options.paths) or "."
    chosen = "" if options.target or options.environ.get(TARGET_VARIABLE) else f"target {target}, "
    return (
        f"no reconciler.yaml in {where} or the folders above it (up to the repository root): "
        f"using {chosen}the default namespace {DEFAULT_NAMESPACE} and the default safety and "
        "policy settings"
    )


class PlanFailed(ReconcilerError):
    """The manifests cannot be planned: the diagnostics say why, at file:line:col."""

    def __init__(self, diagnostics: list[Diagnostic], refused: bool = False) -> None:
        errors = sum(1 for d in diagnostics if d.is_error)
        super().__init__(f"no plan: {errors} error{'s' if errors != 1 else ''} in the manifests")
        self.diagnostics = diagnostics
        if refused:
            self.exit_code = 3


@dataclass(frozen=True)
class Prepared:
    """Everything planning needs before it touches the target."""

    report: Report
    target: Target
    records: list[Record]


def report_warnings(report: Report) -> list[Warning]:
    """Validation's warnings as the plan carries them."""
    return [
        Warning(
            code=d.code,
            message=d.message,
            location=str(d.location) if d.location else None,
        )
        for d in report.warnings
    ]


def one_environment(report: Report, env: str | None) -> str | None:
    """The environment a plan is for: ``env``, or the project's only one (``None`` without
    environments); a project with several needs ``--env``."""
    environments = report.project.environments
    if env is None and len(environments) > 1:
        raise UsageError(
            f"the project has several environments ({', '.join(environments)}); "
            "choose one with --env"
        )
    return env or next(iter(environments), None)


def prepare(options: PlanOptions) -> Prepared:
    """Validate for one environment and resolve secrets; raise ``PlanFailed`` on any error."""
    report = validate(
        ValidateOptions(
            paths=options.paths,
            env=options.env,
            variables=options.variables,
            var_files=options.var_files,
            today=options.today,
            environ=options.environ,
        )
    )
    environments = report.project.environments
    env_name = one_environment(report, options.env)
    if report.errors:
        raise PlanFailed(report.diagnostics, refused=report.refused_by_policy)
    # The project folder validate used: its own when the manifests have a project file, else
    # each manifest's folder (never a reconciler.yaml further up that validate did not read).
    secrets = SecretResolver(options.environ, report.project_folder, upward=False)
    records = desired_records(report.documents, secrets)
    if secrets.problems:
        raise PlanFailed(sorted_unique([*report.diagnostics, *secrets.problems]))
    env_target = environments[env_name].target if env_name is not None else None
    target = choose_target(options.target, options.environ, env_target, report.project_folder)
    if report.project_file is None and options.notice is not None:
        options.notice(defaults_note(options, target))
    return Prepared(report, target, records)


async def plan_with(client: DataverseClient, prepared: Prepared, options: PlanOptions) -> Plan:
    # Users are read when a manifest names some (a queue's members).
    users = any(
        f.relation is not None and f.path in record.fields
        for record in prepared.records
        for f in record.kind.fields
    )
    snapshot = await read_snapshot(client, prepared.report.project.namespace, users=users)
    built = builder.build(
        prepared.records,
        snapshot,
        builder.Options(
            namespace=prepared.report.project.namespace,
            prune=options.prune,
            today=options.today or datetime.date.today(),
        ),
    )
    if built.problems:
        raise PlanFailed(sorted_unique(built.problems))
    warnings = report_warnings(prepared.report)
    now = options.now or datetime.datetime.now(datetime.UTC)
    changes = tuple(built.changes)
    return Plan(
        tool_version=__version__,
        created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        target=PlanTarget(url=prepared.target.url, organization_id=snapshot.organization_id),
        summary=summarise(changes),
        changes=changes,
        warnings=(*warnings, *built.warnings),
        follow_up=tuple(built.follow_up),
        unmanaged=dict(sorted(built.unmanaged.items())),
        requests=snapshot.requests,
        managed=built.managed,
        ledger=built.ledger,
        max_delete_percent=prepared.report.project.safety.max_delete_percent,
    ).with_checksum()


async def make_plan_async(options: PlanOptions) -> Plan:
    return (await _planned(options))[0]


async def _planned(options: PlanOptions) -> tuple[Plan, Prepared]:
    prepared = prepare(options)
    async with connect(prepared.target, options.environ, retry=options.retry) as client:
        return await plan_with(client, prepared, options), prepared


def make_plan(options: PlanOptions) -> Plan:
    """Plan ``options.paths`` against the chosen target (reads only, never writes)."""
    return aio.run(make_plan_async(options))


def make_plan_with_routing(options: PlanOptions) -> tuple[Plan, dict[str, Routing]]:
    """``make_plan``, with the routing of each workstream the manifests describe (for the
    charts of the markdown plan)."""
    plan, prepared = aio.run(_planned(options))
    return plan, routing_of(prepared.records)
