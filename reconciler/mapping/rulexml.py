"""The rule-set XML of Dataverse column ``msdyn_rulesetdefinition``, both ways.

Rules travel in JSON form, the manifest's own shape (``reconciler.models.routing``)::

    {"name": "Dutch", "when": {"field": "context.Language", "op": "equals", "value": "nl"},
     "routeTo": "dutch"}

and are written only with what real orgs hold (``reconciler.mapping.rulegrammar``, each
spelling with its source; docs/routing-xml.md), on one line, no declaration::

    <decision hit-policy="all" version="1"><rules>
      <rule id="GUID" name="Dutch">
        <logical operator="AND">                   every condition sits in one AND group
          <condition operator="==">                 a nested any: <logical operator="OR">
            <lhs type="attribute">liveworkitemcontext.Language</lhs>
            <rhs type="staticvalue">nl</rhs>         untyped text
          </condition>
        </logical>
        <action><setattribute>
          <lhs type="attribute">assign_to.queue</lhs>
          <rhs type="staticvalue">QUEUE-GUID</rhs>
        </setattribute></action>
      </rule>
    </rules></decision>

A rule without ``when`` has no condition (it always matches). A split writes
``<upsertrecords><target>percentagebaseddistribution</target><records>`` with a ``<record>``
per queue; a classification writes a ``<setattribute>`` per output.

Reading is generous: conditions with or without their ``<logical>`` group, before or after
``<action>``, nested groups, GUIDs in braces or any case, ``in`` lists. A rule that cannot be
said in a manifest (skills, overflow actions, a value with a unit, a relationship path) is
reported by name with the reason, never guessed at: ``Decoded.unreadable``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.mapping import conditions
from reconciler.mapping import rulegrammar as g

_IDENTIFIER = re.compile(g.IDENTIFIER)
_GUID = re.compile(
    r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?"
)
_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_PLAIN = re.compile(
    "[\x20\x21\x23-\x25\x27-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*"
)
"""Text with no character to escape (& < > " and the whitespace kept as references)."""
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
# ">" stays as it is in attributes: real rules write operator=">" and operator=">=" (VRT).
_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", '"': "&quot;", "\r": "&#13;", "\n": "&#10;", "\t": "&#9;"}
)

_OP_BY_SPELLING = {spelling: op for op, spelling in g.OPERATORS.items()}
_FIELD_TO_LHS = {
    f"{context}.{name}": f"{g.CHANNEL_CONTEXTS[context]}.{column}"
    for context, columns in g.CHANNEL_FIELDS.items()
    for name, column in columns.items()
}
_LHS_TO_FIELD = {lhs: field for field, lhs in _FIELD_TO_LHS.items()}
CONVERSATION = "conversation"
CONTEXT = "context"


class RuleXmlError(ValueError):
    """Rules or rule-set XML of a shape this codec does not understand."""


class _Unreadable(Exception):
    """One rule that cannot be said in a manifest; the reason names what it holds."""


@dataclass(frozen=True)
class Decoded:
    hit_policy: str
    rules: list[dict[str, Any]]
    """JSON form, canonical (``reconciler.mapping.conditions``), rule ids dropped."""
    rule_ids: list[str]
    """The id attribute of each readable rule, in order."""
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """``(rule name, why)`` for each rule a manifest cannot say."""


def _show(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


# --- encode -------------------------------------------------------------------------------


def encode(
    rules: Sequence[Mapping[str, Any]],
    *,
    hit_policy: str,
    rule_id: Callable[[str], str],
    queue_id: Callable[[str], str],
) -> str:
    """The XML for ``rules``; ``rule_id(name)`` and ``queue_id(name)`` give GUIDs.

    Written as text directly (no element tree): a plan encodes every rule set it compares, and
    building elements to serialize them cost more than the rest of planning.
    """
    if hit_policy not in g.HIT_POLICIES:
        raise RuleXmlError(f"unknown hit policy {hit_policy!r}; use one of {g.HIT_POLICIES}")
    inner = "".join([_encode_rule(rule, rule_id, queue_id) for rule in rules])
    return _element(
        g.DECISION,
        {"hit-policy": hit_policy, "version": g.VERSION},
        _element("rules", {}, inner),
    )


def _keys(obj: object, what: str, required: set[str], optional: set[str]) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise RuleXmlError(f"{what} must be a mapping, not {type(obj).__name__}")
    for key in obj:
        if key not in required | optional:
            raise RuleXmlError(f"unknown key {key!r} in {what}")
    for key in sorted(required):
        if key not in obj:
            raise RuleXmlError(f"{what} has no {key!r}")
    return obj


def _encode_rule(obj: object, rule_id: Callable[[str], str], queue_id: Callable[[str], str]) -> str:
    rule = _keys(obj, "a rule", {"name"}, {"when", "routeTo", "set"})
    name = rule["name"]
    if not isinstance(name, str) or not name:
        raise RuleXmlError("a rule name must be a non-empty string")
    if ("routeTo" in rule) == ("set" in rule):
        raise RuleXmlError(f"rule {name!r} needs exactly one of 'routeTo' and 'set'")
    try:
        canonical = conditions.canonical_rule(rule)
    except conditions.ConditionError as exc:
        raise RuleXmlError(f"rule {name!r}: {exc}") from None
    when = ""
    if "when" in canonical:
        condition = canonical["when"]
        inner = (
            "".join([_encode_condition(c) for c in condition["all"]])
            if "all" in condition
            else _encode_condition(condition)
        )
        when = _element("logical", {"operator": g.LOGICAL_AND}, inner)
    if "routeTo" in canonical:
        action = _encode_route(canonical["routeTo"], queue_id)
    else:
        outputs = canonical["set"]
        if not outputs:
            raise RuleXmlError(f"rule {name!r} sets no output")
        action = "".join(
            [_setattribute(_output_lhs(key), _static(value)) for key, value in outputs.items()]
        )
    return _element(
        "rule", {"id": rule_id(name), "name": name}, when + _element("action", {}, action)
    )


def _encode_route(route: object, queue_id: Callable[[str], str]) -> str:
    if isinstance(route, str):
        return _setattribute(g.ROUTE_TARGET, _static(queue_id(route)))
    if not isinstance(route, list | tuple) or not route:
        raise RuleXmlError("'routeTo' must be a queue name or a non-empty list of allocations")
    records = []
    for item in route:
        entry = _keys(item, "a 'routeTo' allocation", {"queue", "percent"}, set())
        queue, percent = entry["queue"], entry["percent"]
        if not isinstance(queue, str) or isinstance(percent, bool) or not isinstance(percent, int):
            raise RuleXmlError("a 'routeTo' allocation needs a queue name and an integer percent")
        records.append(
            _element(
                "record",
                {},
                # VRT PERCENTAGE_DISTRIBUTION writes the queue ids of a split in braces.
                _setattribute(g.SPLIT_QUEUE, _static("{" + queue_id(queue) + "}"))
                + _setattribute(g.SPLIT_PERCENT, _static(percent)),
            )
        )
    return _element(
        "upsertrecords",
        {},
        _element("target", {}, g.SPLIT_TARGET) + _element("records", {}, "".join(records)),
    )


def _encode_condition(condition: Mapping[str, Any]) -> str:
    for kind, operator in (("all", g.LOGICAL_AND), ("any", g.LOGICAL_OR)):
        if kind in condition:
            children = "".join([_encode_condition(child) for child in condition[kind]])
            return _element("logical", {"operator": operator}, children)
    op = condition["op"]
    spelling = g.OPERATORS.get(op)
    if spelling is None:
        raise RuleXmlError(
            f"operator {op!r} cannot be written: no real org was seen to hold a spelling for "
            f"it (the operators that can be: {g.WRITABLE})"
        )
    parts = _element("lhs", {"type": g.LHS_ATTRIBUTE}, _text_of(_field_to_lhs(condition["field"])))
    if op not in g.UNARY:
        parts += _static(condition["value"])
    return _element("condition", {"operator": spelling}, parts)


def _field_to_lhs(field: object) -> str:
    if isinstance(field, str):
        if field in _FIELD_TO_LHS:
            return _FIELD_TO_LHS[field]
        context, _, name = field.partition(".")
        if context == CONVERSATION and _IDENTIFIER.fullmatch(name):
            return f"{g.CONVERSATION_ENTITY}.{name}"
        if context == CONTEXT and _IDENTIFIER.fullmatch(name):
            return f"{g.CONTEXT_KEY}.{name}"
    raise RuleXmlError(f"unknown field {field!r}")


def _output_lhs(key: object) -> str:
    """A classification output: a context variable by its bare name, or ``conversation.x``."""
    if isinstance(key, str):
        context, _, name = key.partition(".")
        if context == CONVERSATION and _IDENTIFIER.fullmatch(name):
            return f"{g.CONVERSATION_ENTITY}.{name}"
        if _IDENTIFIER.fullmatch(key):
            return f"{g.CONTEXT_KEY}.{key}"
    raise RuleXmlError(f"unknown output {key!r}: use a context variable or conversation.<attr>")


def _static(value: object) -> str:
    """A static value; ``value`` is canonical already (``_encode_rule`` checked it)."""
    return _element("rhs", {"type": g.RHS_STATIC}, _text_of(conditions.value_text(value)))


def _setattribute(target: str, rhs: str) -> str:
    return _element(
        "setattribute", {}, _element("lhs", {"type": g.LHS_ATTRIBUTE}, _text_of(target)) + rhs
    )


def _element(tag: str, attrib: dict[str, str], inner: str) -> str:
    """``<tag a="v">inner</tag>``, or ``<tag a="v"/>`` when ``inner`` (already XML) is empty."""
    attrs = "".join([f' {k}="{_escape(v, _ATTR_ESCAPES)}"' for k, v in attrib.items()])
    return f"<{tag}{attrs}>{inner}</{tag}>" if inner else f"<{tag}{attrs}/>"


def _text_of(text: str) -> str:
    """Character data, escaped."""
    return _escape(text, _TEXT_ESCAPES)


def _escape(text: str, table: dict[int, str]) -> str:
    if _PLAIN.fullmatch(text):  # most text: nothing to escape, nothing to refuse
        return text
    bad = _NOT_XML_CHAR.search(text)
    if bad:
        raise RuleXmlError(f"character U+{ord(bad.group()):04X} cannot be stored in XML")
    return text.translate(table)


# --- decode -------------------------------------------------------------------------------


def parse(xml: str) -> ET.Element:
    """The root element of XML read from the target (no DOCTYPE or entity declarations)."""
    if _DECLARATION.search(xml):
        raise RuleXmlError("DOCTYPE and ENTITY declarations are refused")
    try:
        return ET.fromstring(xml)
    except ET.ParseError as exc:
        raise RuleXmlError(f"malformed XML: {exc}") from None


def written_by_an_earlier_version(xml: str) -> bool:
    """Whether rule-set XML holds a spelling only the reconciler's first version wrote
    (``rulegrammar.LEGACY_OPERATORS`` and the rest): rewritten, not left as it is."""
    try:
        root = parse(xml)
    except RuleXmlError:
        return False
    for element in root.iter():
        operator = element.get("operator") if element.tag == "condition" else None
        # "in" with a multistaticvalues list is a real spelling (PPTB); with one value per
        # <rhs datatype=..> it was the first version's.
        lists = {rhs.get("type") for rhs in element.iter("rhs")}
        if operator in g.LEGACY_OPERATORS and (operator != "in" or g.RHS_LIST not in lists):
            return True
        if element.tag == "logical" and element.get("operator") == g.LEGACY_LOGICAL:
            return True
        if element.tag == "rhs" and (
            g.LEGACY_DATATYPE in element.attrib or element.get("type") == g.LEGACY_RHS_TYPE
        ):
            return True
        if element.tag == "lhs" and (element.text or "").startswith(g.LEGACY_OUTPUT_PREFIX):
            return True
    return False


def decode(xml: str, *, queue_name: Callable[[str], str]) -> Decoded:
    """Rules in JSON form from rule-set XML; ``queue_name(guid)`` names each queue (the GUID
    lower-case, without braces)."""
    root = parse(xml)
    if root.tag != g.DECISION:
        raise RuleXmlError(f"expected <{g.DECISION}>, found <{root.tag}>")
    hit_policy, version = _attrs(root, "hit-policy", "version")
    if hit_policy not in g.HIT_POLICIES:
        raise RuleXmlError(f"unknown hit-policy {_show(hit_policy)}")
    if version != g.VERSION:
        raise RuleXmlError(f"unsupported <{g.DECISION}> version {_show(version)}")
    containers = _children(root, "rules")
    if len(containers) != 1:
        raise RuleXmlError(f"<{g.DECISION}> needs one <rules>, found {len(containers)}")
    decoded = Decoded(hit_policy=hit_policy, rules=[], rule_ids=[])
    for position, element in enumerate(_children(containers[0], "rule"), start=1):
        name = element.get("name") or f"#{position}"  # a rule is reported by its name
        try:
            rule_id, written = _attrs(element, "id", "name")
            rule = _decode_rule(element, written, queue_name)
        except (_Unreadable, RuleXmlError) as exc:
            decoded.unreadable.append((name, str(exc)))
            continue
        except RecursionError:
            decoded.unreadable.append((name, "its conditions nest too deep"))
            continue
        decoded.rules.append(rule)
        decoded.rule_ids.append(rule_id)
    return decoded


def _attrs(element: ET.Element, *names: str, optional: tuple[str, ...] = ()) -> list[str]:
    for key in element.attrib:
        if key not in names and key not in optional:
            raise RuleXmlError(f"unknown attribute {key!r} on <{element.tag}>")
    for name in names:
        if name not in element.attrib:
            raise RuleXmlError(f"<{element.tag}> has no {name} attribute")
    return [element.attrib[name] for name in names]


def _children(element: ET.Element, *tags: str) -> list[ET.Element]:
    """The child elements, all of the given tags, with nothing but whitespace between them."""
    for child in element:
        if child.tag not in tags:
            raise RuleXmlError(f"unknown element <{child.tag}> in <{element.tag}>")
    if any(text.strip() for text in [element.text or "", *(c.tail or "" for c in element)]):
        raise RuleXmlError(f"unexpected text in <{element.tag}>")
    return list(element)


def _text(element: ET.Element) -> str:
    if len(element):
        raise RuleXmlError(f"unknown element <{element[0].tag}> in <{element.tag}>")
    return element.text or ""


def _decode_rule(
    element: ET.Element, name: str, queue_name: Callable[[str], str]
) -> dict[str, Any]:
    if not name:
        raise RuleXmlError("a <rule> has an empty name")
    body = _children(element, "logical", "condition", "action")
    actions = [child for child in body if child.tag == "action"]
    if len(actions) != 1:
        raise RuleXmlError(f"it needs one <action>, found {len(actions)}")
    # Conditions straight under <rule> are one AND group (VRT IN_QUEUE_OVERFLOW_WITH_UNIT).
    tests = [_decode_condition(child) for child in body if child.tag != "action"]
    rule: dict[str, Any] = {"name": name}
    if tests:
        rule["when"] = tests[0] if len(tests) == 1 else {"all": tests}
    key, then = _decode_action(actions[0], queue_name)
    rule[key] = then
    return conditions.canonical_rule(rule)  # decoded rules are well formed: it cannot fail


def _decode_condition(element: ET.Element) -> dict[str, Any]:
    (operator,) = _attrs(element, "operator")
    if element.tag == "condition":
        return _decode_leaf(element, operator)
    kind = {g.LOGICAL_AND: "all", g.LOGICAL_OR: "any"}.get(operator)
    if kind is None:
        raise _Unreadable(f"it uses <logical operator={operator!r}>, which manifests cannot say")
    children = [_decode_condition(c) for c in _children(element, "logical", "condition")]
    if not children:
        raise RuleXmlError(f'empty <logical operator="{operator}">')
    return {kind: children}


def _decode_leaf(element: ET.Element, operator: str) -> dict[str, Any]:
    parts = _children(element, "lhs", "rhs")
    if not parts or parts[0].tag != "lhs" or any(p.tag != "rhs" for p in parts[1:]):
        raise RuleXmlError("a <condition> needs one <lhs> followed by its <rhs>")
    leaf: dict[str, Any] = {"field": _lhs_to_field(_lhs(parts[0]))}
    values = parts[1:]
    if operator in g.READ_ONLY_OPERATORS and len(values) == 1:
        leaf.update(op="in", value=_read_list(values[0]))
        return leaf
    op = _OP_BY_SPELLING.get(operator)
    if op is None:
        raise _Unreadable(
            f"its condition operator {_show(operator)} is not one the reconciler knows"
        )
    leaf["op"] = op
    if op in g.UNARY:
        if values:
            raise RuleXmlError(f'<condition operator="{operator}"> takes no <rhs>')
    elif len(values) != 1:
        raise RuleXmlError(
            f'<condition operator="{operator}"> needs one <rhs>, found {len(values)}'
        )
    else:
        leaf["value"] = _read_static(values[0])
    return leaf


def _lhs(element: ET.Element) -> str:
    (kind,) = _attrs(element, "type")
    if kind != g.LHS_ATTRIBUTE:
        raise _Unreadable(f"its <lhs> is of type {_show(kind)}")
    return _text(element).strip()


def _lhs_to_field(lhs: str) -> str:
    if lhs in _LHS_TO_FIELD:
        return _LHS_TO_FIELD[lhs]
    entity, _, attribute = lhs.partition(".")
    if _IDENTIFIER.fullmatch(attribute):
        if entity == g.CONVERSATION_ENTITY:
            return f"{CONVERSATION}.{attribute}"
        if entity == g.CONTEXT_KEY:
            return f"{CONTEXT}.{attribute}"
    raise _Unreadable(f"it tests {_show(lhs)}, which manifests cannot name")


def _read_static(element: ET.Element) -> conditions.Scalar:
    kind, *_ = _attrs(element, "type", optional=(g.RHS_UNIT,))
    if kind != g.RHS_STATIC:
        raise _Unreadable(f"it compares with a value of type {_show(kind)}")
    if g.RHS_UNIT in element.attrib:
        unit = element.attrib[g.RHS_UNIT]
        raise _Unreadable(f"it compares with a value in {_show(unit)}, which manifests cannot say")
    return conditions.from_text(_text(element))


def _read_list(element: ET.Element) -> list[conditions.Scalar]:
    (kind,) = _attrs(element, "type")
    if kind != g.RHS_LIST:
        raise _Unreadable(f"its 'in' condition compares with a value of type {_show(kind)}")
    values = [conditions.from_text(_text(value)) for value in _children(element, "value")]
    if not values:
        raise RuleXmlError(f'<rhs type="{g.RHS_LIST}"> holds no <value>')
    for value in element:
        _attrs(value)
    return values


def _setattributes(element: ET.Element) -> list[tuple[str, ET.Element]]:
    pairs = []
    for setattribute in _children(element, "setattribute"):
        parts = _children(setattribute, "lhs", "rhs")
        if [p.tag for p in parts] != ["lhs", "rhs"]:
            raise RuleXmlError("a <setattribute> needs one <lhs> then one <rhs>")
        pairs.append((_lhs(parts[0]), parts[1]))
    return pairs


def _decode_action(element: ET.Element, queue_name: Callable[[str], str]) -> tuple[str, Any]:
    body = _children(element, "setattribute", "upsertrecords")
    if any(child.tag == "upsertrecords" for child in body):
        if len(body) != 1:
            raise _Unreadable("its action mixes <upsertrecords> with other writes")
        return "routeTo", _decode_split(body[0], queue_name)
    pairs = _setattributes(element)
    if not pairs:
        raise RuleXmlError("its <action> is empty")
    if any(target == g.ROUTE_TARGET for target, _ in pairs):
        if len(pairs) != 1:
            raise _Unreadable(f"its action writes {g.ROUTE_TARGET} and more")
        return "routeTo", queue_name(_guid(pairs[0][1]))
    outputs: dict[str, conditions.Scalar] = {}
    for target, rhs in pairs:
        entity, _, attribute = target.partition(".")
        if entity == g.CONTEXT_KEY and _IDENTIFIER.fullmatch(attribute):
            key = attribute
        elif entity == g.CONVERSATION_ENTITY and _IDENTIFIER.fullmatch(attribute):
            key = f"{CONVERSATION}.{attribute}"
        else:
            raise _Unreadable(f"it writes {_show(target)}, which manifests cannot name")
        if key in outputs:
            raise RuleXmlError(f"it writes {_show(target)} twice")
        outputs[key] = _read_static(rhs)
    return "set", outputs


def _guid(rhs: ET.Element) -> str:
    text = str(_read_static(rhs))
    match = _GUID.fullmatch(text.strip())
    if match is None:
        raise RuleXmlError(f"{_show(text)} is not a record id")
    return match.group(1).lower()


def _decode_split(element: ET.Element, queue_name: Callable[[str], str]) -> list[dict[str, Any]]:
    parts = _children(element, "target", "records")
    if [p.tag for p in parts] != ["target", "records"]:
        raise RuleXmlError("an <upsertrecords> needs one <target> then one <records>")
    target = _text(parts[0]).strip()
    if target == g.SKILLS_TARGET:
        raise _Unreadable(f"it attaches skills ({g.SKILLS_TARGET}), which manifests cannot say")
    if target != g.SPLIT_TARGET:
        raise _Unreadable(f"it writes records of {_show(target)}, which manifests cannot say")
    split = []
    for record in _children(parts[1], "record"):
        values = dict(_setattributes(record))
        if set(values) != {g.SPLIT_QUEUE, g.SPLIT_PERCENT} or len(record) != 2:
            raise RuleXmlError(
                f"a <record> of a split needs {g.SPLIT_QUEUE} and {g.SPLIT_PERCENT}, once each"
            )
        percent = _read_static(values[g.SPLIT_PERCENT])
        if isinstance(percent, bool) or not isinstance(percent, int):
            raise RuleXmlError(f"the percentage {percent!r} is not a whole number")
        split.append({"queue": queue_name(_guid(values[g.SPLIT_QUEUE])), "percent": percent})
    if not split:
        raise RuleXmlError(f"<{g.SPLIT_TARGET}> holds no <record>")
    return split
