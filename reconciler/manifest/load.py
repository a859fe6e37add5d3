"""Reading manifest sources: discovery, YAML parsing and the variables that apply."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from reconciler.diagnostics import Diagnostic, Location, error
from reconciler.manifest.discover import discover
from reconciler.manifest.variables import VAR_NAME_RE, scalar_to_text
from reconciler.manifest.yaml_loader import SourceDocument, load_file


@dataclass
class Sources:
    """Every parsed document under the given paths, before any model validation."""

    files: list[str] = field(default_factory=list)
    documents: list[SourceDocument] = field(default_factory=list)
    project: SourceDocument | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)


def read_sources(paths: Sequence[str]) -> Sources:
    found = discover(paths)
    sources = Sources(files=list(found.manifests))
    for missing in found.missing:
        reason = (
            "not a file or directory" if os.path.exists(missing) else "no such file or directory"
        )
        sources.diagnostics.append(error("no-such-path", f"{missing}: {reason}"))
    for outside in found.outside:
        sources.diagnostics.append(
            error(
                "link-outside",
                "a link to a file outside the folder being read; not read (name the file "
                "itself on the command line if it is meant)",
                Location(outside, 1, 1),
            )
        )
    if not found.manifests and not found.missing and not found.outside:
        where = ", ".join(paths)
        sources.diagnostics.append(
            error("no-manifests", f"no *.yaml or *.yml manifest files found in {where}")
        )
    for path in found.manifests:
        result = load_file(path, regular_only=True)
        sources.documents.extend(result.documents)
        sources.diagnostics.extend(result.diagnostics)
    if len(found.project_files) > 1:
        for extra in found.project_files[1:]:
            sources.diagnostics.append(
                error(
                    "project-file",
                    f"more than one project file: {found.project_files[0]} is used",
                    Location(extra, 1, 1),
                )
            )
    if found.project_files:
        sources.project = _single_mapping(
            found.project_files[0], sources.diagnostics, regular_only=True
        )
    return sources


def _single_mapping(
    path: str, diagnostics: list[Diagnostic], regular_only: bool = False
) -> SourceDocument | None:
    """A file that must hold one YAML mapping (the project file, a --var-file)."""
    result = load_file(path, regular_only=regular_only)
    diagnostics.extend(result.diagnostics)
    if not result.documents:
        return None
    document = result.documents[0]
    if len(result.documents) > 1:
        second = result.documents[1].location()
        diagnostics.append(error("project-file", "expected a single YAML document", second))
    if not isinstance(document.data, dict):
        diagnostics.append(error("not-a-mapping", "expected a mapping", document.location()))
        return None
    return document


def read_var_file(path: str, diagnostics: list[Diagnostic]) -> dict[str, str]:
    """``NAME: value`` pairs from a YAML file given with ``--var-file``."""
    document = _single_mapping(path, diagnostics)
    if document is None:
        return {}
    values: dict[str, str] = {}
    for name, value in document.data.items():
        where = document.location((name,))
        if not VAR_NAME_RE.match(name):
            diagnostics.append(error("invalid-variable", f"invalid variable name {name!r}", where))
        elif isinstance(value, dict | list):
            diagnostics.append(
                error("invalid-variable", f"variable {name!r} must be a single value", where)
            )
        else:
            values[name] = scalar_to_text(value)
    return values


def merge_variables(*layers: Mapping[str, object]) -> dict[str, str]:
    """Later layers win; values become the text they are written as."""
    merged: dict[str, str] = {}
    for layer in layers:
        merged.update({name: scalar_to_text(value) for name, value in layer.items()})
    return merged
