"""Text placed in GitHub-flavoured markdown so that no value can break out of where it lands:
markdown and HTML characters escaped, ``|`` escaped in table cells, code spans longer than any
run of backticks inside them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from reconciler.render.style import clean

_MARKDOWN = re.compile(r"([\\`*_\[\]~<>&])")
# What starts a list, heading or quote when it leads a block: ``- x``, ``1. x``, ``# x``.
_LEADING = re.compile(r"^(?:\d+(?=[.)])|(?=[-+#=]))")
_BACKTICKS = re.compile(r"`+")


def text(value: str) -> str:
    """Plain text in a paragraph or table cell: markdown and HTML characters escaped."""
    return _LEADING.sub(lambda match: match.group() + "\\", _MARKDOWN.sub(r"\\\1", clean(value)), 1)


def longest_backticks(value: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(value)), default=0)


def code(value: str) -> str:
    """An inline code span that no backtick in ``value`` can end early."""
    value = clean(value)
    ticks = "`" * (longest_backticks(value) + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{ticks}{pad}{value}{pad}{ticks}"


def cell(markdown: str) -> str:
    """A table cell: GFM splits cells at every ``|`` not written ``\\|``, even in code."""
    return markdown.replace("|", "\\|")


def table(header: Sequence[str], table_rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(item) for item in row) + " |" for row in table_rows]
