"""Pydantic validation errors → diagnostics at the exact ``file:line:column``.

Error locations use manifest keys (aliases) and list indexes, plus tags that name union
members (``<leaf>``, ``function-after[...]``). Walking the location alongside the document's
data keeps the parts that exist in the data and drops the rest, which gives the manifest path.

Messages name the offending value (``spec.priority: must be at least 1, not 0``), shortened and
with control characters escaped, except in a secret's place (a ``fromEnv``/``fromFile``
reference, or a literal written where one belongs): a value there is never shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.diagnostics import Diagnostic, did_you_mean, error
from reconciler.manifest.yaml_loader import PathKey, SourceDocument
from reconciler.render.style import clean

VALUE_MAX_LENGTH = 60
"""Longer values are shown shortened, ending in "…"."""

_CODES = {
    "missing": "missing-field",
    "extra_forbidden": "unknown-field",
    "literal_error": "invalid-choice",
    "enum": "invalid-choice",
    "string_too_long": "string-too-long",
    "too_long": "too-many-items",
}

_MESSAGES = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "date_type": "must be a date (YYYY-MM-DD)",
    "date_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "must be a date (YYYY-MM-DD) without a time",
    "uuid_type": "must be a GUID",
    "uuid_parsing": "must be a GUID",
    "string_too_short": "must not be empty",
    "union_tag_invalid": "is not one of the accepted forms",
}

_SECRET_KEYS = frozenset({"fromEnv", "fromFile"})
"""The keys of a secret reference (``FromEnv``, ``FromFile``): a schema node that has them is a
secret's place."""


def format_path(path: PathKey) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[PathKey, Any]:
    """The part of ``loc`` that exists in ``data``, and the value found there."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_mapping = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
            path.append(part)
    return tuple(path), node


def _expand(schema: dict[str, Any], root: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "$ref" in schema:
        yield from _expand(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root)
        return
    yield schema
    for combinator in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(combinator, []):
            yield from _expand(branch, root)


@cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="validation")


def _walk(model: type[BaseModel], path: PathKey) -> Iterator[list[dict[str, Any]]]:
    """The schema nodes at each step of ``path`` (manifest keys and list indexes), from the
    root; unions and ``$ref`` expanded."""
    root = _schema(model)
    nodes = list(_expand(root, root))
    yield nodes
    for part in path:
        following: list[dict[str, Any]] = []
        for node in nodes:
            if isinstance(part, int):
                if isinstance(node.get("items"), dict):
                    following.append(node["items"])
            elif part in node.get("properties", {}):
                following.append(node["properties"][part])
            elif isinstance(node.get("additionalProperties"), dict):
                following.append(node["additionalProperties"])
        nodes = [n for top in following for n in _expand(top, root)]
        yield nodes


def _known_keys(model: type[BaseModel], path: PathKey) -> list[str]:
    """The keys the schema allows at ``path`` (for "did you mean" hints)."""
    *_, nodes = _walk(model, path)
    return sorted({key for node in nodes for key in node.get("properties", {})})


def is_secret_place(model: type[BaseModel], path: PathKey) -> bool:
    """Whether ``path`` is, or lies inside, a secret reference of ``model``: a value written
    there is a secret (or the name of one) and never shown."""
    return any(
        _SECRET_KEYS & set(node.get("properties", {}))
        for nodes in _walk(model, path)
        for node in nodes
    )


def describe(value: Any) -> str:
    """A value as a message names it: ``'soon'`` (shortened, escaped), ``0``, ``true``, or
    what it is (``a mapping``) when it is not a single value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        text = str(value)
        if len(text) > VALUE_MAX_LENGTH:
            text = text[: VALUE_MAX_LENGTH - 1] + "…"
        return f"'{clean(text)}'" if isinstance(value, str) else clean(text)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "an empty value"


def with_value(message: str, value: Any, secret: bool) -> str:
    """``must be X`` → ``must be X, not 'V'``; ``is not X`` → ``'V' is not X``. A secret's
    value is never named."""
    if message.startswith("is "):
        return f"{'the value' if secret else describe(value)} {message}"
    if message.startswith("must ") and not secret:
        return f"{message}, not {describe(value)}"
    return message


def _message(err: Any, name: str, value: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        hint = f" ({ctx['hint']})" if "hint" in ctx else ""
        return f"missing required field '{name}'{hint}"
    if kind == "extra_forbidden":
        return f"unknown field '{name}'"
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected', 'one of the allowed values')}"
    if kind == "string_too_long":
        length = f" (is {len(value)})" if isinstance(value, str) else ""
        return f"must be at most {ctx['max_length']} characters{length}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("greater than", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("less than", "lt"),
        }[kind]
        return f"must be {words[0]} {ctx[words[1]]}"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern')}"
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    message = str(err["msg"])
    message = message.removeprefix("Value error, ")
    if message.startswith("Input should"):
        message = "should" + message[len("Input should") :]
    return message


def model_diagnostics(
    exc: ValidationError, source: SourceDocument, model: type[BaseModel]
) -> list[Diagnostic]:
    """One diagnostic per pydantic error, located in ``source``."""
    out: list[Diagnostic] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err["loc"])
        path, value = data_path(source.data, loc)
        kind = err["type"]
        if loc[-1:] == ("[key]",) and path:  # a mapping's key is wrong, not its value
            value = path[-1]
        name = str(loc[-1]) if loc else ""
        message = _message(err, name, value)
        if kind not in ("missing", "extra_forbidden", "string_too_long"):
            message = with_value(message, value, is_secret_place(model, path))
        shown = format_path(path)
        if kind == "extra_forbidden":
            message += did_you_mean(name, _known_keys(model, path[:-1]), cutoff=0.75)
            shown = format_path(path[:-1])
        elif kind == "missing" and path[-1:] == (name,):
            # The key is written but empty (``spec:``): point at it, name it once.
            shown = format_path(path[:-1])
        code = _CODES.get(kind, kind if "-" in kind else "invalid-value")
        text = f"{shown}: {message}" if shown else message
        out.append(error(code, text, source.location(path)))
    return out
