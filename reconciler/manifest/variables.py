"""``${VAR}`` substitution in manifest strings.

Variables come from the selected environment's ``vars``, then ``--var-file`` files, then
``--var K=V`` (later sources win). ``$${X}`` writes a literal ``${X}``. Only values are
substituted, never keys. An undefined variable is reported at the string that uses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.manifest.yaml_loader import PathKey

VAR_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
VAR_NAME_RE = re.compile(rf"^{VAR_NAME}$")
REFERENCE_RE = re.compile(r"\$(\$?)\{([^}]*)\}")

Problem = tuple[PathKey, str, str]
"""Where (the path of the string), a diagnostic code, and the message."""


def substitute(data: Any, variables: Mapping[str, str]) -> tuple[Any, list[Problem]]:
    """A copy of ``data`` with every ``${NAME}`` replaced, and the references that failed.

    An undefined or malformed reference is left as written, so later checks still see a string.
    """
    problems: list[Problem] = []

    def walk(value: Any, path: PathKey) -> Any:
        if isinstance(value, str):
            return _substitute_string(value, path) if "${" in value else value
        if isinstance(value, dict):
            return {key: walk(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, (*path, index)) for index, item in enumerate(value)]
        return value

    def _substitute_string(text: str, path: PathKey) -> str:
        def replace(match: re.Match[str]) -> str:
            escaped, name = match.group(1), match.group(2)
            if escaped:
                return "${" + name + "}"
            if not VAR_NAME_RE.match(name):
                problems.append(
                    (path, "invalid-variable", f"invalid variable reference '${{{name}}}'")
                )
                return match.group(0)
            if name not in variables:
                message = (
                    f"undefined variable '{name}' (define it in the environment's vars, "
                    "or pass --var or --var-file)"
                )
                problems.append((path, "undefined-variable", message))
                return match.group(0)
            return variables[name]

        # Every reference ends at a "}": past the last one there is none to find. Searching only
        # up to it keeps the search linear (each "${" with no "}" after it would otherwise scan
        # to the end of the string: minutes for a string of a few hundred thousand "${").
        end = text.rfind("}") + 1
        return REFERENCE_RE.sub(replace, text[:end]) + text[end:]

    return walk(data, ()), problems


def scalar_to_text(value: Any) -> str:
    """How a variable's YAML value is written into a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
