"""``export`` from end to end: read the target once, build the documents, write the folder."""

from __future__ import annotations

import dataclasses
import datetime
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import aio
from reconciler.dataverse import RetryPolicy
from reconciler.errors import UsageError
from reconciler.export import files as f
from reconciler.export.exporter import Export, build_export, default_namespace
from reconciler.state import ledger
from reconciler.state.reader import read_snapshot
from reconciler.targets import Target, choose_target, connect

DEFAULT_ENVIRONMENT = "default"
ENVIRONMENT_NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_]*$")  # models/project.py


@dataclass(frozen=True)
class ExportOptions:
    out: Path
    kinds: Sequence[str] = f.KINDS
    target: str | None = None
    environment: str | None = None
    """The name the project file gives the target's environment."""
    namespace: uuid.UUID | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    today: datetime.date | None = None
    retry: RetryPolicy | None = None


@dataclass(frozen=True)
class Exported:
    export: Export
    target: Target
    files: dict[str, str]
    written: f.Written
    requests: int


def _namespace(chosen: uuid.UUID | None, kept: uuid.UUID | None, out: Path) -> uuid.UUID | None:
    if chosen is not None and kept is not None and chosen != kept:
        raise UsageError(
            f"--namespace {chosen} differs from the namespace of {out / f.PROJECT_FILE} ({kept}); "
            "record ids derive from it, so an export keeps the one its project has"
        )
    return chosen or kept


async def export_async(options: ExportOptions) -> Exported:
    unknown = [kind for kind in options.kinds if kind not in f.KINDS]
    if unknown:
        raise UsageError(f"--kind {unknown[0]} is not a kind; choose from {', '.join(f.KINDS)}")
    kinds = [kind for kind in f.KINDS if kind in options.kinds]
    environment = options.environment or DEFAULT_ENVIRONMENT
    if not ENVIRONMENT_NAME.match(environment):
        raise UsageError(
            f"--env {environment!r} cannot name an environment of reconciler.yaml "
            "(letters, digits, '-' and '_', starting with a letter or digit)"
        )
    previous = f.check_folder(options.out)
    # Exporting again reads the org the folder came from, unless told otherwise.
    earlier = f.existing_target(options.out)  # a local:PATH there is relative to the folder
    target = choose_target(
        options.target, options.environ, earlier, str(options.out) if earlier is not None else None
    )
    namespace = _namespace(options.namespace, f.existing_namespace(options.out), options.out)
    async with connect(target, options.environ, retry=options.retry) as client:
        snapshot = await read_snapshot(client)
        namespace = namespace or default_namespace(snapshot.organization_id)
        # The project's ledger names the records it manages (docs/ownership.md).
        snapshot = dataclasses.replace(snapshot, ledger=await ledger.read(client, namespace))
        requests = client.stats.total
    whole = build_export(
        snapshot,
        namespace,
        options.today,
        f.previous_names(options.out, previous),
    )
    export = whole.only(kinds)
    named = f.target_text(target, options.out)
    files = {
        f.PROJECT_FILE: f.project_file(export, named, environment),
        **f.manifest_files(export, kinds),
    }
    # Files of other kinds an earlier export wrote stay, and stay listed as the export's.
    kept = [p for p in previous if p not in files and p != f.README and not f.owned(p, kinds)]
    files[f.README] = f.readme(export, named, sorted([*files, *kept]), kinds)
    written = f.write_folder(options.out, files, previous, kinds)
    return Exported(export, target, files, written, requests)


def export(options: ExportOptions) -> Exported:
    """Read the target and write its manifests under ``options.out``."""
    return aio.run(export_async(options))
