"""Rules in canonical form: what the rule XML can say, and what reading it back gives.

A manifest may write a condition several ways (``not``, ``in``, one-item groups); the XML has
one spelling for each meaning (``reconciler.mapping.rulegrammar``). Both sides of a plan are
compared in this canonical form, so a rule written either way plans as no change:

- ``not`` is pushed down to the leaves (De Morgan; ``equals`` ↔ ``notEquals``, ``greaterThan``
  ↔ ``lessOrEqual``, ``isNull`` ↔ ``isNotNull``…);
- ``in`` / ``notIn`` become ``any`` of ``equals`` / ``all`` of ``notEquals``;
- a group of one condition is that condition; a group inside a group of its own kind is
  spliced into it;
- values are compared as the text the XML holds (it has no types): ``"20"`` and ``20`` are
  one value, read back as ``20``; ``"007"`` stays text.

Leaves whose operator has no spelling after this (``beginsWith``, ``contains`` under ``not``,
a bare ``isNull``…) stay as they are: ``unwritable`` finds them for ``validate``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.mapping import rulegrammar as g

Path = tuple[str | int, ...]
Scalar = str | int | float | bool

_INTEGER = re.compile(r"-?[1-9][0-9]{0,999}|0")
_DECIMAL = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")


class ConditionError(ValueError):
    """A condition of a shape no manifest can have (JSON from an unchecked source)."""


def value_text(value: object) -> str:
    """The text a static value is written as (the XML is untyped)."""
    if isinstance(value, bool):  # before int: a bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return value
    raise ConditionError(f"unsupported value {value!r}: use a string, integer, number or bool")


def from_text(text: str) -> Scalar:
    """A static value read back: a number or a bool where writing it gives the same text."""
    if text in ("true", "false"):
        return text == "true"
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        number = float(text)
        if math.isfinite(number) and repr(number) == text:
            return number
    return text


def canonical_value(value: object) -> Scalar:
    return from_text(value_text(value))


def _kind(condition: Mapping[str, Any]) -> str:
    for key in ("all", "any", "not"):
        if key in condition:
            return key
    return "leaf"


def normalise(condition: Mapping[str, Any], negate: bool = False) -> dict[str, Any]:
    """``condition`` in canonical form (see the module docstring)."""
    if not isinstance(condition, Mapping):
        raise ConditionError(f"a condition must be a mapping, not {type(condition).__name__}")
    kind = _kind(condition)
    if kind == "not":
        return normalise(condition["not"], not negate)
    if kind in ("all", "any"):
        children = condition[kind]
        if not isinstance(children, list | tuple) or not children:
            raise ConditionError(f"{kind!r} needs a non-empty list of conditions")
        group = {"all": "any", "any": "all"}[kind] if negate else kind
        return _group(group, [normalise(child, negate) for child in children])
    op = condition.get("op")
    if not isinstance(op, str):
        raise ConditionError(f"a condition needs an operator, not {op!r}")
    if negate:
        op = g.NEGATION.get(op, f"not {op}")
    field = condition.get("field")
    if op in g.LIST_OPERATORS:
        values = condition.get("value")
        if not isinstance(values, list | tuple) or not values:
            raise ConditionError(f"{op!r} needs a non-empty list as value")
        each = "equals" if op == "in" else "notEquals"
        leaves = [{"field": field, "op": each, "value": canonical_value(v)} for v in values]
        return _group("any" if op == "in" else "all", leaves)
    leaf: dict[str, Any] = {"field": field, "op": op}
    if op not in g.UNARY:
        leaf["value"] = canonical_value(condition.get("value"))
    return leaf


def _group(kind: str, children: list[dict[str, Any]]) -> dict[str, Any]:
    flat: list[dict[str, Any]] = []
    for child in children:
        flat.extend(child[kind] if _kind(child) == kind else [child])
    return flat[0] if len(flat) == 1 else {kind: flat}


def canonical_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A rule (JSON form) with its condition and values in canonical form."""
    out: dict[str, Any] = {"name": rule["name"]}
    if rule.get("when") is not None:
        out["when"] = normalise(rule["when"])
    if "routeTo" in rule:
        out["routeTo"] = rule["routeTo"]
    if "set" in rule:
        outputs = rule["set"]
        if not isinstance(outputs, Mapping):
            raise ConditionError(f"'set' of rule {rule['name']!r} must be a mapping")
        out["set"] = {key: canonical_value(value) for key, value in outputs.items()}
    return out


def unwritable(condition: Mapping[str, Any], path: Path = ()) -> Iterator[tuple[Path, str, str]]:
    """``(path of the leaf's op, the op the manifest writes, the op that would be written)``
    for every leaf whose operator, once ``not`` is pushed down, has no spelling a real org was
    seen to hold."""
    yield from _unwritable(condition, path, False)


def _unwritable(
    condition: Mapping[str, Any], path: Path, negate: bool
) -> Iterator[tuple[Path, str, str]]:
    kind = _kind(condition)
    if kind == "not":
        yield from _unwritable(condition["not"], (*path, "not"), not negate)
    elif kind in ("all", "any"):
        for index, child in enumerate(condition[kind]):
            yield from _unwritable(child, (*path, kind, index), negate)
    else:
        written = str(condition.get("op"))
        op = g.NEGATION.get(written, f"not {written}") if negate else written
        if op not in g.OPERATORS and op not in g.LIST_OPERATORS:
            yield (*path, "op"), written, op
