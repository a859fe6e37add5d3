"""Diagnostics as compiler-style text lines or as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reconciler.diagnostics import Diagnostic, Severity
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


def to_json(diagnostics: Sequence[Diagnostic], files: int, documents: int) -> str:
    def item(d: Diagnostic) -> dict[str, Any]:
        loc = d.location
        return {
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "severity": str(d.severity),
            "code": d.code,
            "message": d.message,
        }

    errors = sum(1 for d in diagnostics if d.is_error)
    payload = {
        "diagnostics": [item(d) for d in diagnostics],
        "summary": {
            "files": files,
            "documents": documents,
            "errors": errors,
            "warnings": len(diagnostics) - errors,
        },
    }
    return json.dumps(payload, indent=2) + "\n"
