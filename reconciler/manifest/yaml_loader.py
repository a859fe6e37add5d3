"""A safe YAML loader that remembers where every value came from.

PyYAML's parser (libyaml's when present) turns the text into events, and the events of each
document are built into plain Python values here (no node tree), so that each mapping entry and
sequence item gets its ``line:column`` recorded under its path
(``("spec", "rules", 2, "routeTo")``). Later stages look positions up by the same paths that
pydantic reports in its errors.

Scalars resolve as in YAML 1.2's core schema: only ``true``/``false`` are booleans (``no`` and
``on`` stay strings), ``0123`` is the integer 123, dates stay strings. Anchors, aliases and
``<<`` merge keys work; duplicate keys, recursive aliases and alias expansion out of proportion
to the document (an "alias bomb") are refused.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner, ScannerError

from reconciler.diagnostics import Diagnostic, Location, error

PathKey = tuple[str | int, ...]

MAX_DEPTH = 64
# Longer integer literals are refused: Python will not convert more than 4,300 decimal digits
# (``sys.get_int_max_str_digits``), and no manifest value is anywhere near this long.
MAX_INT_LENGTH = 1_000
# An alias may expand to at most this many nodes beyond ten times the nodes written.
ALIAS_EXPANSION_ALLOWANCE = 10_000
# ... and its strings to at most this many characters beyond ten times the file's length (a
# megabyte string aliased ten thousand times is a small file but ten gigabytes of values).
ALIAS_TEXT_ALLOWANCE = 1_000_000

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


_SURROGATE_RE = re.compile("[\ud800-\udfff]")

_NOT_PLAIN_RE = re.compile(r"^[-+.0-9~]|^(?:true|false|null|yes|no|on|off|y|n)$", re.IGNORECASE)


def needs_quotes(text: str) -> bool:
    """Whether a string written plain could read back as something else: this loader reads
    YAML 1.2 (``1e3`` is a number), PyYAML writes 1.1 (``yes`` is a boolean there), so writers
    (``export.text``, the plan's YAML) quote what either could take for a number, a boolean or
    null."""
    return _NOT_PLAIN_RE.match(text) is not None


class _PythonParser(Reader, Scanner, Parser, _CoreResolver):
    """PyYAML's pure-Python scanner and parser: a stream of events."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _CoreResolver.__init__(self)

    def scan_flow_scalar_non_spaces(self, double: bool, start_mark: Any) -> list[str]:
        """As libyaml does, refuse an escape of a lone surrogate (``"\\ud800"``): no UTF-8
        output can carry it, so printing it in a diagnostic would fail."""
        chunks: list[str] = super().scan_flow_scalar_non_spaces(double, start_mark)
        if double and any(_SURROGATE_RE.search(chunk) for chunk in chunks):
            raise ScannerError(
                "while parsing a quoted scalar",
                start_mark,
                "found invalid Unicode character escape code",
                self.get_mark(),
            )
        return chunks


_Parser: Callable[[str], Any] = _PythonParser
if yaml.__with_libyaml__:  # pragma: no branch - the wheels on PyPI ship libyaml
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    _Parser = CParser
    """libyaml's scanner and parser, about 10x faster. Only its events are used: its composer
    recurses in C and crashes on hostile nesting; events are built into values here."""


class _FilePositions:
    """Where the values of a file's documents are, found by reading the file again the first
    time a position is asked for: most runs never ask (positions serve diagnostics), and kept
    for every value of a 10,000-record project they are 80 MB."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.found: dict[int, dict[PathKey, tuple[int, int]]] | None = None

    def of(self, index: int) -> dict[PathKey, tuple[int, int]]:
        if self.found is None:
            again = load_text(self.text, self.file, record=True)
            self.found = {document.index: document.positions for document in again.documents}
            self.text = ""
        return self.found.get(index, {})


@dataclass
class SourceDocument:
    """One YAML document: its plain data and the position of every value in it."""

    file: str
    index: int
    data: Any
    recorded: dict[PathKey, tuple[int, int]] | None = field(default=None, repr=False, compare=False)
    """Positions by path; None until first asked for (then found by ``source``)."""
    uses_variables: bool = True
    """False when the file has no ``${``: substitution can skip the document."""
    source: _FilePositions | None = field(default=None, repr=False, compare=False)

    @property
    def positions(self) -> dict[PathKey, tuple[int, int]]:
        if self.recorded is None:
            self.recorded = self.source.of(self.index) if self.source is not None else {}
        return self.recorded

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

    def __init__(self, code: str, message: str, event: Event) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.event = event


def _position(event: Event) -> tuple[int, int]:
    mark: Any = event.start_mark  # parser events always carry their marks
    return mark.line + 1, mark.column + 1


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


_IMPLICIT = _CoreResolver.yaml_implicit_resolvers


def _scalar(event: ScalarEvent) -> Any:
    tag, text = event.tag, event.value
    if tag is None or tag == "!":  # "!" (non-specific) makes a string, as YAML 1.2 says
        tag = _TAG + "str"
        if event.tag is None and event.implicit[0]:  # plain: typed by its form (core schema)
            for candidate, form in _IMPLICIT.get(text[:1], ()):
                if form.match(text):
                    tag = candidate
                    break
    if tag == _TAG + "str":
        return text
    form = _EXPLICIT_FORMS.get(tag)
    if form is None:
        raise _DocumentError("yaml-tag", f"unsupported YAML tag {tag!r}", event)
    if not form.match(text):  # only possible with an explicit tag such as !!int
        short = "!!" + tag.removeprefix(_TAG)
        raise _DocumentError("yaml-tag", f"{text!r} is not a valid {short} value", event)
    if tag == _TAG + "null":
        return None
    if tag == _TAG + "bool":
        return text.lower() == "true"
    if tag == _TAG + "int":
        if len(text) > MAX_INT_LENGTH:
            message = f"integer literal of {len(text)} characters is too long to be a value"
            raise _DocumentError("yaml-value", message, event)
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


_TOO_DEEP_MESSAGE = (
    f"document nests deeper than {MAX_DEPTH} levels; the rest of the file is not read"
)

# libyaml 0.2.6 (the one PyYAML 6.0.4's wheels ship) refuses nesting past its own limit of
# 1,000 levels (``yaml_set_max_nest_level``) in its scanner, with these words (context,
# problem). Its scanner reads ahead, so this can come before the builder below has seen even
# the first level; libyaml's limit is higher than ours, so the file nests past ours too.
_LIBYAML_TOO_DEEP = frozenset(
    {
        ("while increasing flow level", "exceeded maximum nesting depth"),
        ("while increasing block level", "exceeded maximum nesting depth"),
    }
)


def _libyaml_too_deep(exc: yaml.YAMLError) -> bool:
    """Whether ``exc`` is libyaml refusing to nest deeper: the same diagnostic as our own
    limit gives, not a syntax error."""
    return isinstance(exc, ScannerError) and (exc.context, exc.problem) in _LIBYAML_TOO_DEEP


class _TooDeep(Exception):
    """The text nests past ``MAX_DEPTH``: the rest of the file is not read."""

    def __init__(self, event: Event) -> None:
        super().__init__("too deep")
        self.event = event


Next = Callable[[], Event]


class _Builder:
    """Builds one document's plain values straight from the parser's events, recording the
    position of every value by path.

    Only what an anchor marks is kept as events, to be built again where an alias names it.
    The recursion is bounded: nothing deeper than ``MAX_DEPTH`` is built.
    """

    def __init__(self, file: str, parser: Any, size: int, record: bool) -> None:
        self.file = file
        self.parser = parser
        self.record = record
        """Whether to keep positions (``load_text(record=True)``)."""
        self.text_limit = ALIAS_TEXT_ALLOWANCE + 10 * size
        self.text_expanded = 0
        self.positions: dict[PathKey, tuple[int, int]] = {}
        self.diagnostics: list[Diagnostic] = []
        self.built = 0
        self.written = 0
        self.merging = 0
        """How many ``<<`` merges enclose the value being built (they do not lengthen paths)."""
        self.anchors: dict[str, list[Event]] = {}
        self.recording: dict[str, list[Event]] = {}
        """Anchors whose value is still being read, and its events so far."""

    def read(self) -> Event:
        """The parser's next event, kept for every anchor being recorded."""
        event: Event = self.parser.get_event()
        for events in self.recording.values():
            events.append(event)
        return event

    def build(self, event: Event, path: PathKey, next_: Next) -> Any:
        live = next_ == self.read
        if type(event) is AliasEvent:
            return self._alias(event, path)
        self.built += 1
        if live:
            self.written += 1
        else:
            if type(event) is ScalarEvent:
                self.text_expanded += len(event.value)
            if self.text_expanded > self.text_limit:
                raise _DocumentError(
                    "alias-bomb",
                    f"aliases expand this document past {self.text_limit} characters; "
                    "refusing it as a possible alias bomb",
                    event,
                )
            if self.built > ALIAS_EXPANSION_ALLOWANCE + 10 * self.written:
                raise _DocumentError(
                    "alias-bomb",
                    f"aliases expand this document past {self.built - 1} values; refusing it "
                    "as a possible alias bomb",
                    event,
                )
        if len(path) > MAX_DEPTH:
            if live:
                raise _TooDeep(event)
            raise _DocumentError(
                "yaml-too-deep", f"document nests deeper than {MAX_DEPTH} levels", event
            )
        anchor = self._anchor(event) if live else None
        if type(event) is ScalarEvent:
            return _scalar(event)
        try:
            if type(event) is SequenceStartEvent:
                return self._sequence(event, path, next_)
            return self._mapping(event, path, next_)
        finally:
            if anchor is not None:
                self.anchors[anchor] = self.recording.pop(anchor)

    def _anchor(self, event: Event) -> str | None:
        """Remember the anchor of an event read from the text: a scalar's at once, a
        collection's events as they are read (until ``build`` has read all of them)."""
        anchor: str | None = getattr(event, "anchor", None)
        if anchor is None:
            return None
        if anchor in self.anchors or anchor in self.recording:
            first = (self.anchors.get(anchor) or self.recording[anchor])[0]
            mark: Any = event.start_mark
            message = f"found duplicate anchor {anchor!r} (first at line {_position(first)[0]})"
            raise ComposerError(None, None, message, mark)
        if type(event) is ScalarEvent:
            self.anchors[anchor] = [event]
        else:
            self.recording[anchor] = [event]
        return anchor

    def _replay(self, alias: Event) -> tuple[Event, Next]:
        """The first event an alias names, and the rest of them."""
        name: str = alias.anchor  # type: ignore[attr-defined]
        if name in self.recording:
            raise _DocumentError("yaml-recursive-alias", "an alias refers to itself", alias)
        events = self.anchors.get(name)
        if events is None:
            mark: Any = alias.start_mark
            raise ComposerError(None, None, f"found undefined alias {name!r}", mark)
        rest = iter(events)
        return next(rest), rest.__next__

    def _alias(self, alias: Event, path: PathKey) -> Any:
        event, rest = self._replay(alias)
        return self.build(event, path, rest)

    def _sequence(self, start: Event, path: PathKey, next_: Next) -> list[Any]:
        _check_tag(start, _TAG + "seq")
        items: list[Any] = []
        while type(event := next_()) is not SequenceEndEvent:
            if type(event) is AliasEvent:
                event, rest = self._replay(event)
            else:
                rest = next_
            item = (*path, len(items))
            if self.record:
                self.positions[item] = _position(event)
            items.append(self.build(event, item, rest))
        return items

    def _mapping(self, start: Event, path: PathKey, next_: Next) -> dict[str, Any]:
        _check_tag(start, _TAG + "map")
        explicit: dict[str, Any] = {}
        merges: list[tuple[dict[str, Any], dict[PathKey, tuple[int, int]]]] = []
        seen: dict[str, Event] = {}
        while type(key := next_()) is not MappingEndEvent:
            if (
                type(key) is ScalarEvent
                and key.value == "<<"
                and ((key.tag is None and key.implicit[0]) or key.tag == _TAG + "merge")
            ):
                merges.append(self._merge(next_(), path, next_))
                continue
            written = key  # where the key is written: an alias's own place, not its anchor's
            if type(key) is AliasEvent:
                key, _ = self._replay(key)
            elif type(key) is ScalarEvent and next_ == self.read:
                self._anchor(key)  # a key may be anchored too (``&k name: 1``, then ``*k : 2``)
            if type(key) is not ScalarEvent:
                raise _DocumentError("yaml-key", "mapping keys must be plain scalars", written)
            name = key.value
            value = next_()
            if name in seen:
                first = _position(seen[name])[0]
                line, column = _position(written)
                self.diagnostics.append(
                    error(
                        "duplicate-key",
                        f"duplicate key {name!r} (first at line {first}); the first value is kept",
                        Location(self.file, line, column),
                    )
                )
                self._apart(value, (*path, name), next_)  # for its anchors and limits only
                continue
            seen[name] = written
            if self.record:
                self.positions[(*path, name)] = _position(written)
            explicit[name] = self.build(value, (*path, name), next_)
        if not merges:
            return explicit
        result: dict[str, Any] = {}
        depth = len(path)
        for merged, positions in merges:
            result.update(merged)
            for at, position in positions.items():
                if at[depth] not in explicit:
                    self.positions[at] = position
        result.update(explicit)
        return result

    def _merge(
        self, value: Event, path: PathKey, next_: Next
    ) -> tuple[dict[str, Any], dict[PathKey, tuple[int, int]]]:
        """A ``<<`` value (a mapping or a list of them) and its positions, kept apart."""
        if self.merging >= MAX_DEPTH:
            raise _DocumentError(
                "yaml-too-deep", f"'<<' merges nest deeper than {MAX_DEPTH} levels", value
            )
        anchor = None
        if type(value) is AliasEvent:
            value, next_ = self._replay(value)
        elif type(value) is SequenceStartEvent and next_ == self.read:
            anchor = self._anchor(value)  # ``<<: &list [...]``: a mapping's is kept by build
        sources = []
        self.merging += 1
        try:
            if type(value) is SequenceStartEvent:
                _check_tag(value, _TAG + "seq")
                while type(item := next_()) is not SequenceEndEvent:
                    event, rest = self._replay(item) if type(item) is AliasEvent else (item, next_)
                    sources.append(self._source(event, path, rest))
            else:
                sources.append(self._source(value, path, next_))
        finally:
            self.merging -= 1
            if anchor is not None and anchor in self.recording:
                self.anchors[anchor] = self.recording.pop(anchor)
        merged: dict[str, Any] = {}
        positions: dict[PathKey, tuple[int, int]] = {}
        for data, found in reversed(sources):  # earlier sources win, so they come last
            merged.update(data)
            positions.update(found)
        return merged, positions

    def _source(
        self, event: Event, path: PathKey, next_: Next
    ) -> tuple[dict[str, Any], dict[PathKey, tuple[int, int]]]:
        if type(event) is not MappingStartEvent:
            raise _DocumentError(
                "yaml-merge", "a '<<' merge takes a mapping or a list of mappings", event
            )
        return self._apart(event, path, next_)

    def _apart(self, event: Event, path: PathKey, next_: Next) -> tuple[Any, dict[PathKey, Any]]:
        """Build a value with its positions kept out of the document's."""
        kept = self.positions
        self.positions = {}
        try:
            return self.build(event, path, next_), self.positions
        finally:
            self.positions = kept


def _check_tag(event: Event, default: str) -> None:
    tag = getattr(event, "tag", None)
    if tag not in (None, "!", default):
        raise _DocumentError("yaml-tag", f"unsupported YAML tag {tag!r}", event)


_LINE_BREAK_RE = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def _yaml_error_location(exc: yaml.YAMLError, file: str, text: str) -> Location:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        if mark.line > 0 and not text.endswith(("\n", "\r", "\x85", "\u2028", "\u2029")):
            # libyaml puts the end of a file that has no final line break on the line after
            # it, which does not exist: point at the end of the last line instead.
            breaks = _LINE_BREAK_RE.split(text)
            if mark.line >= len(breaks):
                return Location(file, len(breaks), len(breaks[-1]) + 1)
        return Location(file, mark.line + 1, mark.column + 1)
    # Reader errors carry a character offset instead of a mark.
    return _offset_location(file, text, getattr(exc, "position", None) or 0)


_TAB_MESSAGE = "invalid YAML: a tab character cannot indent YAML; use spaces"
_UNCLOSED_CONTEXTS = {
    "while parsing a flow sequence": "[",
    "while parsing a flow mapping": "{",
    "while scanning a quoted scalar": "",  # the quote written there
}
_OPENERS = {"[": "'['", "{": "'{'", '"': "double-quoted string", "'": "single-quoted string"}


def _char_at(lines: list[str], mark: Any) -> str:
    """The character at a parser mark (0-based line and column), or ``""`` past the end."""
    if mark is None or mark.line >= len(lines):
        return ""
    line: str = lines[mark.line]
    return line[mark.column : mark.column + 1]


def _first_tab(lines: list[str], mark: Any, noticed: Location) -> Location:
    """Where the tab the parser refused is: at its mark, else the first tab indenting that
    line."""
    if _char_at(lines, mark) != "\t" and mark.line < len(lines):
        line: str = lines[mark.line]
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            return Location(noticed.file, mark.line + 1, indent.index("\t") + 1)
    return noticed


def _closes(lines: list[str], mark: Any) -> bool:
    """Whether the ``[`` or ``{`` at ``mark`` has a matching close bracket further on (quoted
    text and comments skipped): if it has, the parser stopped at something else inside it."""
    depth = 0
    quote = ""
    for number in range(mark.line, len(lines)):
        line = lines[number]
        start = mark.column if number == mark.line else 0
        previous = " "
        column = start
        while column < len(line):
            char = line[column]
            if quote:
                if char == "\\" and quote == '"':
                    column += 1
                elif char == quote:
                    quote = ""
            elif char in "'\"" and (previous.isspace() or previous in "[{,:"):
                quote = char
            elif char == "#" and previous.isspace():
                break
            elif char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
                if depth == 0:
                    return True
            previous = char
            column += 1
    return False


def _syntax_error(exc: yaml.YAMLError, file: str, text: str) -> tuple[Location, str]:
    """Where a syntax error is and what it says, in words about what was written: a tab used
    for indentation says so, at the tab; a ``[``, ``{`` or quote that is never closed is
    reported where it was opened (the parser notices only lines later)."""
    lines = _LINE_BREAK_RE.split(text)
    problem: str = getattr(exc, "problem", None) or ""
    mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    noticed = _yaml_error_location(exc, file, text)
    if mark is not None and (
        "tab character" in problem
        or ("cannot start any token" in problem and _char_at(lines, mark) == "\t")
    ):
        # libyaml: "found a tab character that violates indentation" or "found character
        # that cannot start any token", at the tab (YAML 1.2, 6.1: "tab characters must not
        # be used in indentation", https://yaml.org/spec/1.2.2/#61-indentation-spaces).
        return _first_tab(lines, mark, noticed), _TAB_MESSAGE
    opener = _UNCLOSED_CONTEXTS.get(getattr(exc, "context", None) or "")
    if opener is not None and context_mark is not None:
        written = _char_at(lines, context_mark)
        unclosed = (
            "end of stream" in problem or "document indicator" in problem
            if opener == ""
            else written == opener and not _closes(lines, context_mark)
        )
        if unclosed and written:
            at = (
                "at the end of the file"
                if noticed.line >= len(lines) or "end of stream" in problem
                else f"at line {noticed.line}, column {noticed.column}"
            )
            what = _OPENERS.get(written, "quoted string")
            where = Location(file, context_mark.line + 1, context_mark.column + 1)
            return where, f"invalid YAML: this {what} is never closed (noticed {at})"
    return noticed, _yaml_error_message(exc)


def _yaml_error_message(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        return f"invalid YAML: {context + ', ' if context else ''}{problem}"
    reason = getattr(exc, "reason", None)  # reader errors: a character YAML does not allow
    return f"invalid YAML: {reason or 'unreadable input'}"


def load_text(text: str, file: str, *, record: bool = False) -> LoadResult:
    """Parse every document of one file; problems become diagnostics, never exceptions.

    Positions are found when first asked for (a second reading of ``text``), or while reading
    with ``record``.
    """
    documents: list[SourceDocument] = []
    diagnostics: list[Diagnostic] = []
    index = 0
    uses_variables = "${" in text
    positions = None if record else _FilePositions(text, file)
    parser: Any = None
    try:
        parser = _Parser(text)  # the pure-Python reader checks the characters here
        parser.get_event()  # StreamStartEvent
        while type(parser.get_event()) is DocumentStartEvent:
            builder = _Builder(file, parser, len(text), record)
            root = builder.read()
            if record:
                builder.positions[()] = _position(root)
            try:
                data = builder.build(root, (), builder.read)
            except _DocumentError as exc:
                line, column = _position(exc.event)
                diagnostics.append(error(exc.code, exc.message, Location(file, line, column)))
                while type(parser.get_event()) is not DocumentEndEvent:
                    pass  # the rest of the refused document
            else:
                parser.get_event()  # DocumentEndEvent
                if data is not None:  # an empty document (comments only) is skipped
                    recorded = builder.positions if record else None
                    documents.append(
                        SourceDocument(file, index, data, recorded, uses_variables, positions)
                    )
            diagnostics.extend(builder.diagnostics)
            index += 1
    except yaml.YAMLError as exc:
        if _libyaml_too_deep(exc):
            location = _yaml_error_location(exc, file, text)
            diagnostics.append(error("yaml-too-deep", _TOO_DEEP_MESSAGE, location))
        else:
            location, message = _syntax_error(exc, file, text)
            diagnostics.append(error("yaml-syntax", message, location))
    except RecursionError:  # a safety net: nesting is bounded above, but not every path is
        diagnostics.append(
            error("yaml-too-deep", "document nests too deeply to parse", Location(file, 1, 1))
        )
    except _TooDeep as exc:
        line, column = _position(exc.event)
        diagnostics.append(error("yaml-too-deep", _TOO_DEEP_MESSAGE, Location(file, line, column)))
    finally:
        if parser is not None:
            parser.dispose()
    return LoadResult(documents, diagnostics)


def load_file(path: str, *, regular_only: bool = False) -> LoadResult:
    """Read and parse one manifest file; unreadable or non-UTF-8 files become diagnostics.

    With ``regular_only`` (files found by walking a folder), anything but a regular file is
    refused without reading it: a FIFO named ``x.yaml`` would block forever and a link to
    ``/dev/zero`` would never end. A ``--var-file <(...)`` pipe is still read.
    """
    try:
        raw = _read(path, regular_only)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return LoadResult(
            [], [error("unreadable-file", f"cannot read file: {reason}", Location(path, 1, 1))]
        )
    if raw is None:
        message = "cannot read file: not a regular file"
        return LoadResult([], [error("unreadable-file", message, Location(path, 1, 1))])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = f"file is not UTF-8 text (invalid byte 0x{raw[exc.start]:02x})"
        return LoadResult([], [error("not-utf8", message, _offset_location(path, raw, exc.start))])
    return load_text(text, path)


def _read(path: str, regular_only: bool) -> bytes | None:
    """The file's bytes, or None when ``regular_only`` and it is not a regular file."""
    if not regular_only:
        with open(path, "rb") as handle:
            return handle.read()
    # Non-blocking, so that opening a FIFO returns at once; checked on the open descriptor.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    with open(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        return handle.read()
