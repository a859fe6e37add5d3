"""Manifest documents as YAML text that reads back as exactly the same data.

The loader reads YAML 1.2 (``0123`` and ``1e3`` are numbers there, ``yes`` is a string) while
PyYAML writes YAML 1.1, so any string that could be read as something else is quoted. Strings
holding ``${`` are escaped as ``$${`` so variable substitution gives them back unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from reconciler.manifest.variables import REFERENCE_RE
from reconciler.manifest.yaml_loader import needs_quotes

# libyaml's emitter when PyYAML has it (five times faster; the same text, tested).
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True  # the same condition used twice is written twice, never as an anchor


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style: str | None = None
    if "\n" in value:
        style = "|"  # PyYAML falls back to quoting when a block cannot hold the text exactly
    elif needs_quotes(value):
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def escape_variables(data: Any) -> Any:
    """``data`` with every ``${...}`` substitution would replace written ``$${...}``, which it
    gives back as written (a lone ``${`` stays as it is; keys are never substituted)."""
    if isinstance(data, str):
        return REFERENCE_RE.sub(lambda match: "$" + match.group(0), data)
    if isinstance(data, dict):
        return {key: escape_variables(value) for key, value in data.items()}
    if isinstance(data, list):
        return [escape_variables(item) for item in data]
    return data


def dump(documents: Sequence[dict[str, Any]]) -> str:
    """YAML for ``documents``, one ``---`` separated document each."""
    return yaml.dump_all(
        [escape_variables(document) for document in documents],
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        explicit_start=True,
        width=100,
    )
