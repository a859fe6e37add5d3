"""OData query options the emulator understands, compiled to SQLite.

``$filter`` grammar (what Dataverse accepts for the columns we emulate)::

    expr    := and ("or" and)*
    and     := unary ("and" unary)*
    unary   := "not" unary | "(" expr ")" | func | compare
    func    := ("contains" | "startswith" | "endswith") "(" name "," string ")"
    compare := name op literal          op: eq ne gt ge lt le
    literal := 'string' (with '' for a quote) | number | true | false | null | GUID | date-time

The compiled SQL uses only ``?`` parameters for values and quoted, metadata-checked column
names, so a filter can never inject SQL.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.dataverse.tables import Column, Type
from reconciler.emulator.faults import QUERY_ERROR, EmulatorError, bad_request, unknown_property

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\b
    | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
    | (?P<number>-?\d+(?:\.\d+)?)\b
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_COMPARE = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_FUNCTIONS = {"contains", "startswith", "endswith"}
_TEXT_TYPES = (Type.STRING, Type.MEMO)
MAX_DEPTH = 100
MAX_CONDITIONS = 500
"""The most comparisons and functions one ``$filter`` may hold: the emulator's own cap, not a
documented Dataverse limit (Microsoft documents none for ``$filter``; only the URL's length is
capped, at 32,768 characters: ``app.MAX_URL_CHARS``). A filter compiles to one SQL expression
whose depth grows with its conditions, and SQLite refuses one deeper than 1000
(https://www.sqlite.org/limits.html, SQLITE_MAX_EXPR_DEPTH): 500 conditions stay well under it
(and/or nested in parentheses some 30 deep overflow SQLite's parser first: ``app`` answers that
as a 400 too). The reconciler's own largest filter holds 50 (``reconciler.state.ledger``'s
``CHECKED_AT_ONCE`` ids joined with ``or``)."""
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

Resolver = Callable[[str], Column | None]


def query_error(message: str) -> EmulatorError:
    return bad_request(QUERY_ERROR, message)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    at: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise query_error(f"Syntax error at position {position} in $filter.")
        kind = match.lastgroup
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    return tokens


@dataclass(frozen=True)
class Sql:
    where: str
    params: tuple[Any, ...]


class _Parser:
    def __init__(self, text: str, resolve: Resolver, type_name: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.resolve = resolve
        self.type_name = type_name
        self.depth = 0
        self.conditions = 0

    # -- token helpers -------------------------------------------------------------------
    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self) -> _Token:
        token = self._peek()
        if token is None:
            raise query_error("Unexpected end of $filter.")
        self.index += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "name" and token.text == word:
            self.index += 1
            return True
        return False

    def _expect(self, text: str) -> None:
        token = self._next()
        if token.text != text:
            raise query_error(f"Syntax error: expected '{text}' at position {token.at} in $filter.")

    # -- grammar -------------------------------------------------------------------------
    def parse(self) -> Sql:
        result = self._or()
        extra = self._peek()
        if extra is not None:
            raise query_error(f"Syntax error at position {extra.at} in $filter: {_shown(extra)}.")
        return result

    def _or(self) -> Sql:
        return self._chain(self._and, "or", "OR")

    def _and(self) -> Sql:
        return self._chain(self._unary, "and", "AND")

    def _chain(self, part: Callable[[], Sql], word: str, sql_word: str) -> Sql:
        parts = [part()]
        while self._keyword(word):
            parts.append(part())
        if len(parts) == 1:
            return parts[0]
        return Sql(
            f" {sql_word} ".join(f"({p.where})" for p in parts),
            tuple(v for p in parts for v in p.params),
        )

    def _unary(self) -> Sql:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise query_error(f"The $filter nests deeper than {MAX_DEPTH} levels.")
        try:
            return self._unary_inner()
        finally:
            self.depth -= 1

    def _unary_inner(self) -> Sql:
        if self._keyword("not"):
            inner = self._unary()
            return Sql(f"NOT ({inner.where})", inner.params)
        token = self._peek()
        if token is not None and token.text == "(":
            self.index += 1
            inner = self._or()
            self._expect(")")
            return inner
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise query_error(
                f"The $filter holds more than {MAX_CONDITIONS} conditions, the most this "
                "emulator accepts; split the query."
            )
        if token is not None and token.kind == "name" and token.text in _FUNCTIONS:
            return self._function()
        return self._compare()

    def _column(self) -> Column:
        token = self._next()
        if token.kind != "name":
            raise query_error(
                f"Syntax error at position {token.at} in $filter: expected a property name."
            )
        column = self.resolve(token.text)
        if column is None:
            raise unknown_property(self.type_name, token.text)
        return column

    def _function(self) -> Sql:
        name = self._next().text
        self._expect("(")
        column = self._column()
        self._expect(",")
        literal = self._next()
        self._expect(")")
        if column.type not in _TEXT_TYPES or literal.kind != "string":
            raise query_error(f"The function '{name}' needs a string property and a string value.")
        value = _unquote(literal.text).casefold().replace("\\", "\\\\").replace("%", "\\%")
        value = value.replace("_", "\\_")
        pattern = {"contains": f"%{value}%", "startswith": f"{value}%", "endswith": f"%{value}"}
        return Sql(f"casefold(\"{column.name}\") LIKE ? ESCAPE '\\'", (pattern[name],))

    def _compare(self) -> Sql:
        column = self._column()
        operator = self._next()
        if operator.kind != "name" or operator.text not in _COMPARE:
            raise query_error(
                f"Syntax error at position {operator.at} in $filter: "
                f"expected a comparison operator, found {_shown(operator)}."
            )
        literal = self._next()
        quoted = f'"{column.name}"'
        if literal.kind == "name" and literal.text == "null":
            if operator.text not in ("eq", "ne"):
                raise query_error("null can only be compared with eq or ne.")
            return Sql(f"{quoted} IS {'' if operator.text == 'eq' else 'NOT '}NULL", ())
        value = literal_value(column, literal.kind, literal.text)
        if column.type in _TEXT_TYPES:
            return Sql(f"casefold({quoted}) {_COMPARE[operator.text]} ?", (value.casefold(),))
        return Sql(f"{quoted} {_COMPARE[operator.text]} ?", (value,))


def _shown(token: _Token) -> str:
    """A token for an error message; string literals are not echoed (they may be secrets)."""
    return "a string literal" if token.kind == "string" else f"'{token.text[:40]}'"


def _unquote(text: str) -> str:
    return text[1:-1].replace("''", "'")


def literal_value(column: Column, kind: str, text: str) -> Any:
    """The SQLite value a filter literal stands for, checked against the column type."""

    def incompatible() -> EmulatorError:
        return query_error(
            f"A binary operator with incompatible types was detected. Found operand types "
            f"'{column.type.value}' and a {kind} literal for property '{column.name}'."
        )

    if column.type in _TEXT_TYPES:
        if kind != "string":
            raise incompatible()
        return _unquote(text)
    if column.type in (Type.GUID, Type.LOOKUP):
        if kind != "guid":
            raise incompatible()
        return text.lower()
    if column.type is Type.BOOL:
        if kind != "name" or text not in ("true", "false"):
            raise incompatible()
        return 1 if text == "true" else 0
    if column.type in (Type.INT, Type.CHOICE):
        if kind != "number" or "." in text or not INT32_MIN <= int(text) <= INT32_MAX:
            raise incompatible()
        return int(text)
    if column.type is Type.DATETIME and kind == "datetime":
        return text
    raise incompatible()


def compile_filter(text: str, resolve: Resolver, type_name: str) -> Sql:
    return _Parser(text, resolve, type_name).parse()


def compile_orderby(text: str, resolve: Resolver, type_name: str) -> list[tuple[Column, bool]]:
    """``a asc, b desc`` as (column, descending) pairs."""
    order: list[tuple[Column, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise query_error(f"The $orderby expression '{text}' is not valid.")
        column = resolve(words[0])
        if column is None:
            raise unknown_property(type_name, words[0])
        order.append((column, len(words) == 2 and words[1] == "desc"))
    return order


def parse_select(text: str, resolve: Resolver, type_name: str) -> list[Column]:
    columns: list[Column] = []
    for name in (n.strip() for n in text.split(",")):
        column = resolve(name)
        if column is None:
            raise unknown_property(type_name, name)
        if column not in columns:
            columns.append(column)
    return columns


# -- $expand -------------------------------------------------------------------------------
_EXPAND_ITEM = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<ref>/\$ref)?(?:\((?P<options>.*)\))?", re.S
)


@dataclass(frozen=True)
class ExpandItem:
    """One item of ``$expand``: ``navigation``, ``navigation/$ref`` or ``navigation(<options>)``
    with its options (``$select=a,b;$filter=…``: join-tables.md, "Separate each option with a
    semicolon") as given, unchecked."""

    navigation: str
    options: dict[str, str]
    ref: bool = False


def parse_expand(text: str) -> list[ExpandItem]:
    items: list[ExpandItem] = []
    for part in _split_outside(text, ","):
        match = _EXPAND_ITEM.fullmatch(part.strip())
        if match is None:
            raise query_error(
                "The $expand expression is not valid: give navigation properties, each "
                "optionally followed by its options in parentheses, separated by commas."
            )
        options: dict[str, str] = {}
        if match["options"] is not None:
            for option in _split_outside(match["options"], ";"):
                name, equals, value = option.strip().partition("=")
                if not equals or not name.startswith("$"):
                    raise query_error(
                        f"The options of the $expand of '{match['name']}' are not valid: give "
                        "$option=value pairs separated by semicolons."
                    )
                if name in options:
                    raise query_error(
                        f"The option {name} is given more than once in the $expand of "
                        f"'{match['name']}'."
                    )
                options[name] = value
        items.append(ExpandItem(match["name"], options, match["ref"] is not None))
    return items


def _split_outside(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` where it stands outside parentheses and string literals."""
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted  # '' inside a literal toggles twice: still inside
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                break
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth != 0 or quoted:
        raise query_error("The $expand expression has unbalanced parentheses or quotes.")
    parts.append(text[start:])
    return parts


# -- paging --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PageCursor:
    """Where the next page starts: after a primary key (default order) or at an offset."""

    after: str | None = None
    offset: int = 0

    def encode(self) -> str:
        data = {"after": self.after} if self.after is not None else {"offset": self.offset}
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> PageCursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            after, offset = data.get("after"), data.get("offset", 0)
            if (
                (after is None or isinstance(after, str))
                and isinstance(offset, int)
                and 0 <= offset <= INT32_MAX
            ):
                return cls(after, offset)
        except (binascii.Error, ValueError, AttributeError, UnicodeDecodeError):
            pass
        raise query_error("The $skiptoken is not valid; follow @odata.nextLink verbatim.")
