"""A document with schema errors, built again from its valid parts, so that its cross-document
checks still run: one ``validate`` run reports the unknown key *and* the dangling fallback queue
of the same document.

The invalid parts are left out, round by round, until the model accepts what is left: an
unknown key is dropped; an invalid value is dropped (then its default applies, or, when it was
required, the mapping that needed it is dropped next); a list is cut before an invalid item,
so the items kept keep their indexes (and their places in the file). The document is
not rebuilt when what it is cannot be read: its envelope (``apiVersion``, ``kind``, ``metadata``
and, unless ``ensure: absent``, ``spec``) must survive whole.

What was left out is recorded as *unreadable* paths: the checks that conclude from something
missing (a page the account does not list, a rule without ``routeTo``) skip them, so a schema
error never becomes a second, made-up problem.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.manifest.yaml_loader import PathKey
from reconciler.validate.model_errors import data_path

MAX_ROUNDS = 8
"""Each round drops what the last validation refused; a dropped required value costs a round
more (its mapping goes next). Nested deeper than this, the document is not rebuilt."""

_KEPT_WHOLE = frozenset({(), ("apiVersion",), ("kind",), ("metadata",), ("metadata", "ensure")})
"""Parts a rebuilt document must not lose: without them it is not the record it says it is
(``ensure`` defaulted would turn a delete into a create)."""


@dataclass(frozen=True)
class Salvaged:
    model: BaseModel
    unreadable: tuple[PathKey, ...]
    """Where invalid values were left out (unknown keys are not: they mean nothing)."""


def salvage(model: type[BaseModel], data: Any, exc: ValidationError) -> Salvaged | None:
    """``model`` built from the parts of ``data`` that ``exc`` does not refuse, or None."""
    data = copy.deepcopy(data)
    unreadable: list[PathKey] = []
    for _ in range(MAX_ROUNDS):
        # Every path found before any is dropped: once a mapping is gone, an error inside it
        # would name the mapping's parent instead.
        errors = exc.errors(include_url=False, include_input=False)
        found = [(data_path(data, tuple(err["loc"]))[0], err["type"]) for err in errors]
        if any(path in _KEPT_WHOLE for path, _ in found):
            return None
        for path, kind in found:
            if _drop(data, path) and kind != "extra_forbidden":
                unreadable.append(path)
        try:
            return Salvaged(model.model_validate(data), tuple(unreadable))
        except ValidationError as again:
            exc = again
    return None


def _drop(data: Any, path: PathKey) -> bool:
    """Drop the key at ``path``, or cut the list before the item at ``path``."""
    found, node = data_path(data, path[:-1])
    if found != path[:-1]:
        return False
    last = path[-1]
    if isinstance(node, dict) and isinstance(last, str) and last in node:
        del node[last]
        return True
    if isinstance(node, list) and isinstance(last, int) and last < len(node):
        del node[last:]
        return True
    return False


def is_unreadable(unreadable: tuple[PathKey, ...], path: PathKey) -> bool:
    """Whether any part of the value at ``path`` was left out (or ``path`` lies in a part
    that was)."""
    return any(p[: len(path)] == path or path[: len(p)] == p for p in unreadable)
