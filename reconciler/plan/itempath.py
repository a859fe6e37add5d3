"""Paths of the items of a named list (a rule set's rules): ``rules[VIP customers].routeTo``.

A plan names a rule by its name, not its position (docs/spec.md §5): inserting a rule is one
added rule, not every later rule changed. The name sits between the brackets as it is written
when it cannot be mistaken for anything else; otherwise it is written as a JSON string, quotes
included: a name holding ``[``, ``]``, ``.``, ``"`` or ``\\``, a character that is not
printable, space at either end, no character at all, or only digits (``rules[2]`` is the
third item: the form a list whose names are not unique is diffed in, by position). So
``rules[a.b]`` is never written: that rule is ``rules["a.b"]``, and ``rules["2"]`` is the rule
named ``2``. ``split`` reads a path back.
"""

from __future__ import annotations

import json
import re

_BARE = re.compile(r"[^\[\].\"\\]+")
_DECODER = json.JSONDecoder()


def item(path: str, key: str | int) -> str:
    """The path of the item named ``key`` (a name) or at ``key`` (an index) in list ``path``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    bare = (
        _BARE.fullmatch(key) is not None
        and key.isprintable()
        and key == key.strip()
        and not key.isdigit()
    )
    return f"{path}[{key if bare else json.dumps(key, ensure_ascii=False)}]"


def split(path: str) -> tuple[str, str | int, str] | None:
    """``rules[VIP customers].routeTo`` → ``("rules", "VIP customers", "routeTo")``,
    ``rules[2]`` → ``("rules", 2, "")``; None when ``path`` names no item of a list."""
    top, bracket, rest = path.partition("[")
    if not bracket:
        return None
    if rest.startswith('"'):
        try:
            key, end = _DECODER.raw_decode(rest)
        except json.JSONDecodeError:
            return None
        if not isinstance(key, str) or not rest.startswith("]", end):
            return None
        rest = rest[end + 1 :]
    else:
        inside, closed, rest = rest.partition("]")
        if not closed or not inside:
            return None
        key = int(inside) if inside.isdigit() else inside
    if rest and not rest.startswith("."):
        return None
    return top, key, rest[1:]
