"""The exceptions the reconciler raises on purpose.

    ReconcilerError            root: the CLI prints ``error: <message>`` and exits ``exit_code``
    └── UsageError             bad command-line input (unknown --env, malformed --var)

Problems in manifests are not exceptions: they are diagnostics (``reconciler.diagnostics``),
collected so that one run reports all of them. Messages never contain secret values: secrets
are referenced by name, and code that holds a resolved secret keeps it out of every message.
"""

from __future__ import annotations


class ReconcilerError(Exception):
    """Root of every error the reconciler reports to a user."""

    exit_code = 1


class UsageError(ReconcilerError):
    """The command line asked for something that does not exist or is malformed."""
