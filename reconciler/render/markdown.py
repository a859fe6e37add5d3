"""Text placed in GitHub-flavoured markdown so that no value can break out of where it lands:
markdown and HTML characters escaped, ``|`` escaped in table cells, code spans longer than any
run of backticks inside them.

Names and values from manifests and orgs go in code spans (``code``): GitHub makes nothing
inside one a link, a mention, an image or HTML. Escaping (``text``) is for the tool's own words:
it keeps ``*`` or ``<`` literal, but GitHub still links a bare ``https://...`` or ``www.``
(the autolink extension, https://github.github.com/gfm/#autolinks-extension-) and notifies an
``@name`` in plain text.
"""

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
    """An inline code span that no backtick in ``value`` can end early: its fence is one
    backtick longer than the longest run inside (https://spec.commonmark.org/0.31.2/#code-spans).
    Newlines and other controls are escaped (``clean``), so the span stays on its line."""
    value = clean(value)
    if not value:  # `` is no code span: it would pair with a later fence
        return "` `"
    ticks = "`" * (longest_backticks(value) + 1)
    # A space each side when the value starts or ends with a backtick (which would join the
    # fence), or starts and ends with a space (one each side would be stripped).
    spaced = value.startswith(" ") and value.endswith(" ") and value.strip(" ")
    pad = " " if value.startswith("`") or value.endswith("`") or spaced else ""
    return f"{ticks}{pad}{value}{pad}{ticks}"


def clip(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, ``…`` saying so (before it is put in a span)."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def cell(markdown: str) -> str:
    """A table cell: GFM splits cells at every ``|`` not written ``\\|``, even in code."""
    return markdown.replace("|", "\\|")


def table(header: Sequence[str], table_rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(item) for item in row) + " |" for row in table_rows]
