"""Diagnostics as compiler-style text lines, as JSON, or as GitHub workflow annotations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reconciler.diagnostics import Diagnostic, Severity
from reconciler.render import neutral
from reconciler.render.style import clean, paint


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summary_line(diagnostics: Sequence[Diagnostic], files: int, documents: int) -> str:
    errors = sum(1 for d in diagnostics if d.is_error)
    warnings = len(diagnostics) - errors
    return (
        f"{_plural(documents, 'document')} in {_plural(files, 'file')}: "
        f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"
    )


def line(diagnostic: Diagnostic, color: bool = False) -> str:
    """``file:line:col: error: message``, on one line whatever the names it repeats hold: a
    newline or an escape sequence in a key or a file name is printed escaped."""
    where = f"{clean(str(diagnostic.location))}: " if diagnostic.location else ""
    style = "red" if diagnostic.severity is Severity.ERROR else "yellow"
    return f"{where}{paint(str(diagnostic.severity), style, color)}: {clean(diagnostic.message)}"


def to_text(
    diagnostics: Sequence[Diagnostic], files: int, documents: int, color: bool = False
) -> str:
    lines = [line(diagnostic, color) for diagnostic in diagnostics]
    lines.append(summary_line(diagnostics, files, documents))
    return "\n".join(lines) + "\n"


def as_json(d: Diagnostic) -> dict[str, Any]:
    """One diagnostic as ``validate --format json`` and ``apply --format json`` give it."""
    loc = d.location
    return {
        "file": loc.file if loc else None,
        "line": loc.line if loc else None,
        "column": loc.column if loc else None,
        "severity": str(d.severity),
        "code": d.code,
        "message": d.message,
    }


def to_json(diagnostics: Sequence[Diagnostic], files: int, documents: int) -> str:
    errors = sum(1 for d in diagnostics if d.is_error)
    payload = {
        "diagnostics": [as_json(d) for d in diagnostics],
        "summary": {
            "files": files,
            "documents": documents,
            "errors": errors,
            "warnings": len(diagnostics) - errors,
        },
    }
    return neutral.json_text(json.dumps(payload, indent=2)) + "\n"


def _github_data(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF escaped, so no line of a manifest's
    content can end the annotation early or start a workflow command of its own; and no
    ``##[``/``##vso[`` left in it (``neutral``), which both runners read anywhere in a line.
    The escapes are the runner's own (``ActionCommand``'s ``_escapeDataMappings``,
    https://github.com/actions/runner/blob/main/src/Runner.Common/ActionCommand.cs; "Workflow
    commands for GitHub Actions", https://docs.github.com/en/actions/reference/workflow-commands-for-github-actions)."""
    text = neutral.text(text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    """A workflow command's property value (``file=``): ``:`` and ``,`` escaped as well
    (``_escapePropertyMappings``: the properties are split at ``,``, the message starts after
    ``::``)."""
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(diagnostic: Diagnostic) -> str:
    """``::error file=F,line=L,col=C,title=reconciler code::message``: GitHub shows it on the
    pull request's diff, at the line (see "Workflow commands for GitHub Actions")."""
    command = "error" if diagnostic.is_error else "warning"
    properties = []
    if loc := diagnostic.location:
        properties += [
            f"file={_github_property(loc.file)}",
            f"line={loc.line}",
            f"col={loc.column}",
        ]
    properties.append(f"title={_github_property(f'reconciler {diagnostic.code}')}")
    return f"::{command} {','.join(properties)}::{_github_data(clean(diagnostic.message))}"


def to_github(diagnostics: Sequence[Diagnostic], files: int, documents: int) -> str:
    """One annotation per diagnostic, then the summary as a plain log line."""
    lines = [annotation(diagnostic) for diagnostic in diagnostics]
    lines.append(summary_line(diagnostics, files, documents))
    return "\n".join(lines) + "\n"
