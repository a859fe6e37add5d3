"""A safe YAML loader that remembers where every value came from.

Documents are composed into nodes by PyYAML and then built into plain Python values here, so
that each mapping entry and sequence item gets its ``line:column`` recorded under its path
(``("spec", "rules", 2, "routeTo")``). Later stages look positions up by the same paths that
pydantic reports in its errors.

Scalars resolve as in YAML 1.2's core schema: only ``true``/``false`` are booleans (``no`` and
``on`` stay strings), ``0123`` is the integer 123, dates stay strings. Anchors, aliases and
``<<`` merge keys work; duplicate keys, recursive aliases and alias expansion out of proportion
to the document (an "alias bomb") are refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from reconciler.diagnostics import Diagnostic, Location, error

PathKey = tuple[str | int, ...]

MAX_DEPTH = 64
# An alias may expand to at most this many nodes beyond ten times the nodes written.
ALIAS_EXPANSION_ALLOWANCE = 10_000

_TAG = "tag:yaml.org,2002:"
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")


class _CoreResolver(BaseResolver):
    """Implicit typing per the YAML 1.2 core schema (no YAML 1.1 surprises)."""


_CoreResolver.add_implicit_resolver(_TAG + "bool", _BOOL_RE, list("tTfF"))
_CoreResolver.add_implicit_resolver(_TAG + "int", _INT_RE, list("-+0123456789"))
_CoreResolver.add_implicit_resolver(_TAG + "float", _FLOAT_RE, list("-+0123456789."))
_CoreResolver.add_implicit_resolver(_TAG + "null", _NULL_RE, ["~", "n", "N", ""])
_CoreResolver.add_implicit_resolver(_TAG + "merge", re.compile(r"^<<$"), ["<"])


class _PythonComposer(Reader, Scanner, Parser, Composer, _CoreResolver):
    """PyYAML's pure-Python scanner and parser."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _CoreResolver.__init__(self)


_Composer: Callable[[str], Any] = _PythonComposer
if yaml.__with_libyaml__:  # pragma: no branch - the wheels on PyPI ship libyaml
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    class _LibyamlComposer(Composer, CParser, _CoreResolver):
        """libyaml's scanner and parser (15x faster) under PyYAML's Python composer.

        libyaml's own composer recurses in C and crashes on hostile nesting; the Python one
        raises RecursionError, which becomes a diagnostic.
        """

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            _CoreResolver.__init__(self)

    _Composer = _LibyamlComposer


@dataclass
class SourceDocument:
    """One YAML document: its plain data and the position of every value in it."""

    file: str
    index: int
    data: Any
    positions: dict[PathKey, tuple[int, int]] = field(repr=False)
    uses_variables: bool = True
    """False when the file has no ``${``: substitution can skip the document."""

    def location(self, path: Sequence[str | int] = ()) -> Location:
        """The position of ``path``, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key not in self.positions and key:
            key = key[:-1]
        line, column = self.positions.get(key, (1, 1))
        return Location(self.file, line, column)


@dataclass
class LoadResult:
    documents: list[SourceDocument]
    diagnostics: list[Diagnostic]


class _DocumentError(Exception):
    """Stops building one document (alias bomb, recursion, nesting, bad tag)."""

    def __init__(self, code: str, message: str, node: Node) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.node = node


def _position(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _offset_location(file: str, content: str | bytes, offset: int) -> Location:
    """The 1-based line and column of a character (or byte) offset in ``content``."""
    newline: Any = "\n" if isinstance(content, str) else b"\n"
    line_start = content.rfind(newline, 0, offset) + 1
    return Location(file, content.count(newline, 0, offset) + 1, offset - line_start + 1)


_EXPLICIT_FORMS = {
    _TAG + "null": _NULL_RE,
    _TAG + "bool": _BOOL_RE,
    _TAG + "int": _INT_RE,
    _TAG + "float": _FLOAT_RE,
}


def _scalar(node: ScalarNode) -> Any:
    tag, text = node.tag, node.value
    if tag == _TAG + "str":
        return text
    form = _EXPLICIT_FORMS.get(tag)
    if form is None:
        raise _DocumentError("yaml-tag", f"unsupported YAML tag {tag!r}", node)
    if not form.match(text):  # only possible with an explicit tag such as !!int
        short = "!!" + tag.removeprefix(_TAG)
        raise _DocumentError("yaml-tag", f"{text!r} is not a valid {short} value", node)
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        return text.lower() == "true"
    if tag == _TAG + "int":
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    return float(text)


class _Builder:
    """Builds plain values from one document's nodes, recording positions by path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[PathKey, tuple[int, int]] = {}
        self.diagnostics: list[Diagnostic] = []
        self.built = 0
        self.distinct: set[int] = set()
        self.active: set[int] = set()

    def build(self, node: Node, path: PathKey) -> Any:
        self.built += 1
        self.distinct.add(id(node))
        if self.built > ALIAS_EXPANSION_ALLOWANCE + 10 * len(self.distinct):
            raise _DocumentError(
                "alias-bomb",
                f"aliases expand this document past {self.built - 1} values; refusing it as "
                "a possible alias bomb",
                node,
            )
        if len(path) > MAX_DEPTH:
            raise _DocumentError(
                "yaml-too-deep", f"document nests deeper than {MAX_DEPTH} levels", node
            )
        if isinstance(node, ScalarNode):
            return _scalar(node)
        if id(node) in self.active:
            raise _DocumentError("yaml-recursive-alias", "an alias refers to itself", node)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node, path)
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self.active.discard(id(node))
        raise _DocumentError("yaml-tag", "unsupported YAML node", node)  # pragma: no cover

    def _sequence(self, node: SequenceNode, path: PathKey) -> list[Any]:
        if node.tag != _TAG + "seq":
            raise _DocumentError("yaml-tag", f"unsupported YAML tag {node.tag!r}", node)
        items = []
        for index, child in enumerate(node.value):
            self.positions[(*path, index)] = _position(child)
            items.append(self.build(child, (*path, index)))
        return items

    def _mapping(self, node: MappingNode, path: PathKey) -> dict[str, Any]:
        if node.tag != _TAG + "map":
            raise _DocumentError("yaml-tag", f"unsupported YAML tag {node.tag!r}", node)
        result: dict[str, Any] = {}
        explicit: list[tuple[ScalarNode, Node]] = []
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merges.append(value_node)
            elif isinstance(key_node, ScalarNode):
                explicit.append((key_node, value_node))
            else:
                raise _DocumentError("yaml-key", "mapping keys must be plain scalars", key_node)
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            # Earlier sources win over later ones, so apply them last.
            for source in reversed(sources):
                if not isinstance(source, MappingNode):
                    raise _DocumentError(
                        "yaml-merge", "a '<<' merge takes a mapping or a list of mappings", source
                    )
                result.update(self.build(source, path))
        seen: dict[str, ScalarNode] = {}
        for key_node, value_node in explicit:
            key = key_node.value
            if key in seen:
                first = seen[key].start_mark.line + 1
                line, column = _position(key_node)
                self.diagnostics.append(
                    error(
                        "duplicate-key",
                        f"duplicate key {key!r} (first at line {first}); the first value is kept",
                        Location(self.file, line, column),
                    )
                )
                continue
            seen[key] = key_node
            self.positions[(*path, key)] = _position(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result


def _compose_all(text: str) -> Iterator[Node | None]:
    composer: Any = _Composer(text)
    try:
        while composer.check_node():
            yield composer.get_node()
    finally:
        composer.dispose()


def _yaml_error_location(exc: yaml.YAMLError, file: str, text: str) -> Location:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return Location(file, mark.line + 1, mark.column + 1)
    # Reader errors carry a character offset instead of a mark.
    return _offset_location(file, text, getattr(exc, "position", None) or 0)


def _yaml_error_message(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        return f"invalid YAML: {context + ', ' if context else ''}{problem}"
    reason = getattr(exc, "reason", None)  # reader errors: a character YAML does not allow
    return f"invalid YAML: {reason or 'unreadable input'}"


def load_text(text: str, file: str) -> LoadResult:
    """Parse every document of one file; problems become diagnostics, never exceptions."""
    documents: list[SourceDocument] = []
    diagnostics: list[Diagnostic] = []
    index = 0
    uses_variables = "${" in text
    try:
        for root in _compose_all(text):
            if root is None:  # pragma: no cover - composer yields nodes only
                continue
            builder = _Builder(file)
            builder.positions[()] = _position(root)
            try:
                data = builder.build(root, ())
            except _DocumentError as exc:
                line, column = _position(exc.node)
                diagnostics.append(error(exc.code, exc.message, Location(file, line, column)))
            else:
                if data is not None:  # an empty document (comments only) is skipped
                    documents.append(
                        SourceDocument(file, index, data, builder.positions, uses_variables)
                    )
            diagnostics.extend(builder.diagnostics)
            index += 1
    except yaml.YAMLError as exc:
        diagnostics.append(
            error("yaml-syntax", _yaml_error_message(exc), _yaml_error_location(exc, file, text))
        )
    except RecursionError:
        diagnostics.append(
            error("yaml-too-deep", "document nests too deeply to parse", Location(file, 1, 1))
        )
    return LoadResult(documents, diagnostics)


def load_file(path: str) -> LoadResult:
    """Read and parse one manifest file; unreadable or non-UTF-8 files become diagnostics."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return LoadResult(
            [], [error("unreadable-file", f"cannot read file: {reason}", Location(path, 1, 1))]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = f"file is not UTF-8 text (invalid byte 0x{raw[exc.start]:02x})"
        return LoadResult([], [error("not-utf8", message, _offset_location(path, raw, exc.start))])
    return load_text(text, path)
