"""The exceptions the reconciler raises on purpose.

    ReconcilerError            root: the CLI prints ``error: <message>`` and exits 1
    ├── UsageError             bad command-line input (unknown --env, malformed --var)
    └── ManifestError          manifests could not be loaded or are invalid; carries diagnostics

Messages never contain secret values: secrets are referenced by name, and code that holds a
resolved secret keeps it out of every message it builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.diagnostics import Diagnostic


class ReconcilerError(Exception):
    """Root of every error the reconciler reports to a user."""

    exit_code = 1


class UsageError(ReconcilerError):
    """The command line asked for something that does not exist or is malformed."""


class ManifestError(ReconcilerError):
    """Manifests failed to load or validate; ``diagnostics`` lists every problem found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        errors = sum(1 for d in self.diagnostics if d.is_error)
        super().__init__(f"{errors} error(s) in the manifests")
