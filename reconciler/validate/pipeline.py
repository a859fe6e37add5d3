"""``validate``: manifests on disk → documents and every diagnostic, offline.

Without ``--env``, a project with environments is validated once per environment (each with
its own variables), so a problem that only shows in production is caught too; a diagnostic
that only some environments have names them.

Every problem is reported in one run, and each once: a document with schema errors is built
again from its valid parts for the cross-document checks (``partial``), a value whose variable
is undefined is reported as undefined only, and a project file with errors is reported alone:
the variables it was meant to define are not reported undefined.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from reconciler.diagnostics import Diagnostic, Location, did_you_mean, error, sorted_unique
from reconciler.errors import UsageError
from reconciler.manifest.document import Document
from reconciler.manifest.load import Sources, merge_variables, read_sources, read_var_file
from reconciler.manifest.variables import substitute
from reconciler.manifest.yaml_loader import PathKey, SourceDocument
from reconciler.models.common import API_VERSION
from reconciler.models.manifest import MANIFEST_TYPES
from reconciler.models.project import Project
from reconciler.validate import secret_refs, semantic
from reconciler.validate.model_errors import model_diagnostics
from reconciler.validate.partial import salvage


@dataclass(frozen=True)
class Options:
    paths: Sequence[str] = (".",)
    env: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    var_files: Sequence[str] = ()
    today: datetime.date | None = None
    environ: Mapping[str, str] | None = None
    """Where ``RECONCILER_SECRET_DIRS`` is read (None: the process environment)."""


@dataclass
class Report:
    project: Project
    documents: list[Document]
    diagnostics: list[Diagnostic]
    files: list[str]
    document_count: int
    """Documents read from the files (valid or not)."""
    project_file: str | None = None
    """The project file the run uses (``reconciler.yaml``), if the manifests have one."""

    @property
    def project_folder(self) -> str | None:
        """Where ``fromFile`` secrets must be (with ``RECONCILER_SECRET_DIRS``): the folder
        of the project file; None without one (then each manifest's own folder)."""
        if self.project_file is None:
            return None
        return os.path.dirname(self.project_file) or "."

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    @property
    def refused_by_policy(self) -> bool:
        """Errors exist and every one of them is a policy refusal (exit code 3)."""
        return bool(self.errors) and all(d.code in semantic.POLICY_CODES for d in self.errors)


def build_project(source: SourceDocument | None) -> tuple[Project, list[Diagnostic]]:
    """The project file's settings, and its problems. A file with errors still gives the
    settings it holds that are valid (an unknown key aside, its environments), so that
    ``--env`` finds them."""
    if source is None:
        return Project(), []
    try:
        return Project.model_validate(source.data), []
    except ValidationError as exc:
        salvaged = salvage(Project, source.data, exc)
        kept = salvaged.model if salvaged is not None else None
        project = kept if isinstance(kept, Project) else Project()
        return project, model_diagnostics(exc, source, Project)


@dataclass
class Built:
    documents: list[Document] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    invalid: set[tuple[str, str]] = field(default_factory=set)
    """Kind and name of documents that exist but failed validation (not "dangling")."""
    checked: list[Document] = field(default_factory=list)
    """What the cross-document checks read, in file order: the valid documents and those
    rebuilt from their valid parts (``partial``)."""
    unreadable: list[tuple[Document, tuple[PathKey, ...]]] = field(default_factory=list)
    """The rebuilt documents of ``checked``, each with the paths left out of it."""
    variable_locations: set[Location] = field(default_factory=set)
    """Where a variable reference failed: that value's problem is reported there already."""


def build_documents(
    sources: Sequence[SourceDocument],
    variables: Mapping[str, str],
    *,
    report_undefined: bool = True,
) -> Built:
    """Every document built; ``report_undefined`` False when the variables cannot be known
    (a project file with errors), so that an undefined variable is not reported."""
    built = Built()
    for source in sources:
        _build_one(source, variables, built, report_undefined)
    return built


def _build_one(
    source: SourceDocument, variables: Mapping[str, str], built: Built, report_undefined: bool
) -> None:
    """Substitute variables in one document and validate it against its kind's model."""
    out = built.diagnostics
    if not isinstance(source.data, dict):
        message = "a manifest document is a mapping with apiVersion, kind, metadata and spec"
        out.append(error("not-a-manifest", message, source.location()))
        return
    reported: set[Location] = set()
    if source.uses_variables:
        data, problems = substitute(source.data, variables)
        source = dataclasses.replace(source, data=data)
        for path, code, text in problems:
            where = source.location(path)
            reported.add(where)
            if report_undefined or code != "undefined-variable":
                out.append(error(code, text, where))
        built.variable_locations |= reported
    kind = source.data.get("kind")
    if kind is None:
        hint = "" if "apiVersion" in source.data else f" (apiVersion: {API_VERSION})"
        message = f"missing required field 'kind'; not a reconciler manifest?{hint}"
        out.append(error("missing-field", message, source.location()))
        return
    model = MANIFEST_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        message = f"kind: unknown kind {kind!r}; expected one of {', '.join(MANIFEST_TYPES)}"
        message += did_you_mean(str(kind), MANIFEST_TYPES)
        out.append(error("unknown-kind", message, source.location(("kind",))))
        return
    try:
        manifest = model.model_validate(source.data)
    except ValidationError as exc:
        # A value whose variable is undefined is reported once, as undefined.
        out.extend(d for d in model_diagnostics(exc, source, model) if d.location not in reported)
        metadata = source.data.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
            built.invalid.add((kind, metadata["name"]))
        salvaged = salvage(model, source.data, exc)
        if salvaged is not None:
            partial = Document(source, salvaged.model)  # type: ignore[arg-type]
            built.checked.append(partial)
            built.unreadable.append((partial, salvaged.unreadable))
    else:
        document = Document(source, manifest)  # type: ignore[arg-type]
        built.documents.append(document)
        built.checked.append(document)


def _environments(
    project: Project, env: str | None, broken: bool, project_file: str | None
) -> list[str | None]:
    """The environments to validate for. With a project file that has errors, an ``--env``
    it does not define (the typo may be what hides it) is not a usage error: the file's own
    errors say what is wrong."""
    if env is not None:
        if env not in project.environments and broken:
            return [None]
        if env not in project.environments and project_file is None:
            raise UsageError(
                f"unknown environment '{env}': no reconciler.yaml was found in the paths or the "
                "folders above them (up to the repository root), and environments are defined "
                "there"
            )
        if env not in project.environments:
            known = ", ".join(project.environments) or f"none are defined in {project_file}"
            raise UsageError(f"unknown environment '{env}' (environments: {known})")
        return [env]
    return list(project.environments) or [None]


def validate(options: Options) -> Report:
    """Load, build and check every manifest under ``options.paths``."""
    sources: Sources = read_sources(options.paths)
    diagnostics = list(sources.diagnostics)
    project, project_diagnostics = build_project(sources.project)
    diagnostics.extend(project_diagnostics)
    file_variables: dict[str, str] = {}
    for path in options.var_files:
        file_variables.update(read_var_file(path, diagnostics))
    today = options.today or datetime.date.today()
    environ = os.environ if options.environ is None else options.environ
    project_file = sources.project.file if sources.project is not None else None

    broken = bool(project_diagnostics)
    environments = _environments(project, options.env, broken, project_file)
    per_env: list[list[Diagnostic]] = []
    documents: list[Document] = []
    for env in environments:
        env_vars = project.environments[env].vars if env is not None else {}
        variables = merge_variables(env_vars, file_variables, options.variables)
        built = build_documents(sources.documents, variables, report_undefined=not broken)
        documents = built.documents
        checks = semantic.check(built.checked, project, today, built.invalid, built.unreadable)
        checks += secret_refs.check(built.checked, project_file, environ)
        # A value whose variable failed is reported there once, not again as, say, a
        # reference to a queue named '${QUEUE}'.
        checks = [d for d in checks if d.location not in built.variable_locations]
        found = built.diagnostics + checks
        per_env.append(found)

    if len(environments) > 1:
        common = set.intersection(*(set(found) for found in per_env))
        diagnostics.extend(common)
        for env, found in zip(environments, per_env, strict=True):
            diagnostics.extend(
                d.with_suffix(f"[environment {env}]") for d in found if d not in common
            )
    else:
        diagnostics.extend(per_env[0])
    return Report(
        project,
        documents,
        sorted_unique(diagnostics),
        sources.files,
        len(sources.documents),
        project_file,
    )
