"""Diagnostics: one problem found in the manifests, pointing at ``file:line:column``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Location:
    """A 1-based position in a manifest file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    location: Location | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def with_suffix(self, suffix: str) -> Diagnostic:
        return replace(self, message=f"{self.message} {suffix}")

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity}: {self.message}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location or Location("", 0, 0)
        return (loc.file, loc.line, loc.column, self.code, self.message)


def error(code: str, message: str, location: Location | None = None) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, location)


def warning(code: str, message: str, location: Location | None = None) -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, message, location)


def sorted_unique(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics in file order, each reported once."""
    return sorted(set(diagnostics), key=Diagnostic.sort_key)


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or nothing."""
    # Only choices whose length allows a ratio of ``cutoff`` (it is at most 2 * shorter / sum):
    # difflib indexes every character of the word first, seconds for a word of megabytes.
    others = [
        choice
        for choice in choices
        if choice != word and 2 * min(len(choice), len(word)) >= cutoff * (len(choice) + len(word))
    ]
    if not others:
        return ""
    close = difflib.get_close_matches(word, others, n=1, cutoff=cutoff)
    return f"; did you mean '{close[0]}'?" if close else ""


def article(noun: str) -> str:
    """``noun`` with its indefinite article: ``a page``, ``an allowed domain``."""
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"
