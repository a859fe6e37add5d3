"""Terminal colour: on for terminals; off with ``--no-color``, ``NO_COLOR``, ``TERM=dumb`` or a
pipe; ``FORCE_COLOR`` colours a pipe too (CI logs that show colour). ``--no-color`` and
``NO_COLOR`` win over ``FORCE_COLOR``: a request for no colour is never overridden
(https://no-color.org/, https://force-color.org/)."""

from __future__ import annotations

import os
from typing import TextIO

from reconciler.render import neutral

_CODES = {"red": "31", "yellow": "33", "green": "32", "cyan": "36", "bold": "1", "dim": "2"}


def use_color(stream: TextIO, no_color: bool = False) -> bool:
    if no_color or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, style: str, enabled: bool) -> str:
    return f"\033[{_CODES[style]}m{text}\033[0m" if enabled else text


def clean(text: str) -> str:
    """Control and invisible characters escaped (``\\x1b``, ``\\n``, ``\\u202e``), and no
    CI runner's command left in it (``##vso[`` printed ``\\u0023#vso[``, see ``neutral``)."""
    if not text.isprintable():
        text = "".join(
            char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
            for char in text
        )
    return neutral.text(text)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
