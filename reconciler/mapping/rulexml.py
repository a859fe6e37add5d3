"""The rule-set XML of Dataverse column ``msdyn_rulesetdefinition``, both ways.

Rules travel in JSON form, the manifest's own shape (``reconciler.models.routing``)::

    {"name": "Dutch", "when": {"field": "facebook.locale", "op": "beginsWith", "value": "nl"},
     "routeTo": "dutch"}

and are stored as canonical XML (docs/domain.md §3), written on one line, no declaration::

    <decision hit-policy="all" version="1"><rules>
      <rule id="GUID" name="Dutch">
        <logical operator="AND">                     all / any / not: AND / OR / NOT
          <condition operator="begins-with">         a leaf `when` stands here bare
            <lhs type="attribute">msdyn_facebookengagementctx.msdyn_locale</lhs>
            <rhs type="staticvalue" datatype="string">nl</rhs>   one per item for in / notIn
          </condition>
        </logical>
        <action><setattribute>
          <lhs type="attribute">assign_to.queue</lhs>
          <rhs type="staticvalue">QUEUE-GUID</rhs>
        </setattribute></action>
      </rule>
    </rules></decision>

A split writes ``<rhs type="percentage"><allocation queue="GUID" percent="70"/>...</rhs>``; a
classification writes one ``<setattribute>`` per output, its lhs ``output.KEY``, its rhs a typed
static value. Choices no public source settled are the tables marked UNCONFIRMED below.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.models.routing import (
    CONTEXT_FIELDS,
    CONVERSATION_CONTEXT,
    LIST_OPERATORS,
    UNARY_OPERATORS,
)

HIT_POLICY_ROUTE = "all"  # route-to-queue sets (domain.md §3)
HIT_POLICY_CLASSIFY = "first"  # classification sets
HIT_POLICIES = (HIT_POLICY_ROUTE, HIT_POLICY_CLASSIFY)
VERSION = "1"
ROUTE_TARGET = "assign_to.queue"

# UNCONFIRMED: operator names of <condition operator="...">, by manifest op.
OPERATORS: dict[str, str] = {
    "equals": "eq",
    "notEquals": "ne",
    "contains": "like",
    "notContains": "not-like",
    "beginsWith": "begins-with",
    "endsWith": "ends-with",
    "in": "in",
    "notIn": "not-in",
    "isNull": "null",
    "isNotNull": "not-null",
    "greaterThan": "gt",
    "lessThan": "lt",
}
# UNCONFIRMED (only AND is seen in an export): <logical operator="..."> by combinator.
LOGICAL: dict[str, str] = {"all": "AND", "any": "OR", "not": "NOT"}
# UNCONFIRMED: the entity of each field context.
ENTITIES: dict[str, str] = {
    "facebook": "msdyn_facebookengagementctx",
    "googleBusinessMessages": "msdyn_ocgooglebusinessmessagesengagementctx",
    CONVERSATION_CONTEXT: "msdyn_ocliveworkitem",
}
# UNCONFIRMED: facebook / GBM attributes are this prefix + the lowercased field name;
# conversation attributes are written as they are.
ATTRIBUTE_PREFIX = "msdyn_"
# UNCONFIRMED: the datatype attribute of a static value.
STRING, INTEGER, DECIMAL, BOOLEAN = "string", "integer", "decimal", "boolean"
OUTPUT_PREFIX = "output."  # UNCONFIRMED: lhs of a classification output
PERCENTAGE = "percentage"  # UNCONFIRMED: rhs type of a split, holding <allocation> elements

_FIELD_TO_LHS = {
    f"{context}.{name}": f"{ENTITIES[context]}.{ATTRIBUTE_PREFIX}{name.lower()}"
    for context, names in CONTEXT_FIELDS.items()
    for name in names
}
_LHS_TO_FIELD = {lhs: field for field, lhs in _FIELD_TO_LHS.items()}
_OP_BY_NAME = {name: op for op, name in OPERATORS.items()}
_KIND_BY_LOGICAL = {name: kind for kind, name in LOGICAL.items()}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTEGER = re.compile(r"-?[0-9]{1,1000}")
_DECIMAL = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")
_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_PLAIN = re.compile(
    "[\x20\x21\x23-\x25\x27-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*"
)
"""Text with no character to escape (& < > " and the whitespace kept as references)."""
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = _TEXT_ESCAPES | str.maketrans({'"': "&quot;", "\n": "&#10;", "\t": "&#9;"})

Scalar = str | int | float | bool


class RuleXmlError(ValueError):
    """Rules or rule-set XML of a shape this codec does not understand."""


@dataclass(frozen=True)
class Decoded:
    hit_policy: str
    rules: list[dict[str, Any]]
    """JSON form, as ``encode`` received them (rule ids dropped)."""
    rule_ids: list[str]
    """The id attribute of each rule, in order."""


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
    """Canonical XML for ``rules``; ``rule_id(name)`` and ``queue_id(name)`` give GUIDs.

    Written as text directly (no element tree): a plan encodes every rule set it compares, and
    building elements to serialize them cost more than the rest of planning.
    """
    if hit_policy not in HIT_POLICIES:
        raise RuleXmlError(f"unknown hit policy {hit_policy!r}; use one of {HIT_POLICIES}")
    inner = "".join([_encode_rule(rule, rule_id, queue_id) for rule in rules])
    return _element(
        "decision", {"hit-policy": hit_policy, "version": VERSION}, _element("rules", {}, inner)
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
    rule = _keys(obj, "a rule", {"name", "when"}, {"routeTo", "set"})
    name = rule["name"]
    if not isinstance(name, str) or not name:
        raise RuleXmlError("a rule name must be a non-empty string")
    if ("routeTo" in rule) == ("set" in rule):
        raise RuleXmlError(f"rule {name!r} needs exactly one of 'routeTo' and 'set'")
    when = _encode_condition(rule["when"])
    if "routeTo" in rule:
        action = _setattribute(ROUTE_TARGET, _encode_route(rule["routeTo"], queue_id))
    else:
        outputs = rule["set"]
        if not isinstance(outputs, Mapping):
            raise RuleXmlError(f"'set' of rule {name!r} must be a mapping of outputs to values")
        parts = []
        for key, value in outputs.items():
            if not isinstance(key, str) or not key:
                raise RuleXmlError(f"output names of rule {name!r} must be non-empty strings")
            parts.append(_setattribute(OUTPUT_PREFIX + key, _static(value)))
        action = "".join(parts)
    return _element(
        "rule", {"id": rule_id(name), "name": name}, when + _element("action", {}, action)
    )


def _encode_route(route: object, queue_id: Callable[[str], str]) -> str:
    if isinstance(route, str):
        return _element("rhs", {"type": "staticvalue"}, _text_of(queue_id(route)))
    if not isinstance(route, list | tuple) or not route:
        raise RuleXmlError("'routeTo' must be a queue name or a non-empty list of allocations")
    parts = []
    for item in route:
        entry = _keys(item, "a 'routeTo' allocation", {"queue", "percent"}, set())
        queue, percent = entry["queue"], entry["percent"]
        if not isinstance(queue, str) or isinstance(percent, bool) or not isinstance(percent, int):
            raise RuleXmlError("a 'routeTo' allocation needs a queue name and an integer percent")
        parts.append(
            _element("allocation", {"queue": queue_id(queue), "percent": str(percent)}, "")
        )
    return _element("rhs", {"type": PERCENTAGE}, "".join(parts))


def _encode_condition(condition: object) -> str:
    if not isinstance(condition, Mapping):
        raise RuleXmlError(f"a condition must be a mapping, not {type(condition).__name__}")
    for kind, operator in LOGICAL.items():
        if kind in condition:
            inner = _keys(condition, f"a {kind!r} condition", {kind}, set())[kind]
            if kind == "not":
                children = _encode_condition(inner)
            elif isinstance(inner, list | tuple) and inner:
                children = "".join([_encode_condition(child) for child in inner])
            else:
                raise RuleXmlError(f"{kind!r} needs a non-empty list of conditions")
            return _element("logical", {"operator": operator}, children)
    op = condition.get("op")
    if not isinstance(op, str) or op not in OPERATORS:
        raise RuleXmlError(f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    required = {"field", "op"} if op in UNARY_OPERATORS else {"field", "op", "value"}
    leaf = _keys(condition, f"an {op!r} condition", required, set())
    parts = [_element("lhs", {"type": "attribute"}, _text_of(_field_to_lhs(leaf["field"])))]
    if op in LIST_OPERATORS:
        values = leaf["value"]
        if not isinstance(values, list | tuple) or not values:
            raise RuleXmlError(f"{op!r} needs a non-empty list as value")
        parts += [_static(value) for value in values]
    elif op not in UNARY_OPERATORS:
        parts.append(_static(leaf["value"]))
    return _element("condition", {"operator": OPERATORS[op]}, "".join(parts))


def _field_to_lhs(field: object) -> str:
    if isinstance(field, str):
        if field in _FIELD_TO_LHS:
            return _FIELD_TO_LHS[field]
        context, _, attribute = field.partition(".")
        if context == CONVERSATION_CONTEXT and _IDENTIFIER.fullmatch(attribute):
            return f"{ENTITIES[CONVERSATION_CONTEXT]}.{attribute}"
    raise RuleXmlError(f"unknown field {field!r}")


def _static(value: object) -> str:
    if isinstance(value, bool):  # before int: a bool is an int
        datatype, text = BOOLEAN, "true" if value else "false"
    elif isinstance(value, int):
        datatype, text = INTEGER, str(value)
    elif isinstance(value, float) and math.isfinite(value):
        datatype, text = DECIMAL, repr(value)
    elif isinstance(value, str):
        datatype, text = STRING, value
    else:
        raise RuleXmlError(f"unsupported value {value!r}: use a string, integer, number or bool")
    return _element("rhs", {"type": "staticvalue", "datatype": datatype}, _text_of(text))


def _setattribute(target: str, rhs: str) -> str:
    return _element(
        "setattribute", {}, _element("lhs", {"type": "attribute"}, _text_of(target)) + rhs
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


def decode(xml: str, *, queue_name: Callable[[str], str]) -> Decoded:
    """Rules in JSON form from rule-set XML; ``queue_name(guid)`` names each queue."""
    if _DECLARATION.search(xml):
        raise RuleXmlError("DOCTYPE and ENTITY declarations are refused")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise RuleXmlError(f"malformed XML: {exc}") from None
    if root.tag != "decision":
        raise RuleXmlError(f"expected <decision>, found <{root.tag}>")
    hit_policy, version = _attrs(root, "hit-policy", "version")
    if hit_policy not in HIT_POLICIES:
        raise RuleXmlError(f"unknown hit-policy {_show(hit_policy)}")
    if version != VERSION:
        raise RuleXmlError(f"unsupported <decision> version {_show(version)}")
    containers = _children(root, "rules")
    if len(containers) != 1:
        raise RuleXmlError(f"<decision> needs one <rules>, found {len(containers)}")
    rules, rule_ids = [], []
    for element in _children(containers[0], "rule"):
        rule_id, name = _attrs(element, "id", "name")
        try:
            rules.append(_decode_rule(element, name, queue_name))
        except RecursionError:
            raise RuleXmlError(f"the conditions of rule {_show(name)} nest too deep") from None
        rule_ids.append(rule_id)
    return Decoded(hit_policy=hit_policy, rules=rules, rule_ids=rule_ids)


def _attrs(element: ET.Element, *names: str) -> list[str]:
    for key in element.attrib:
        if key not in names:
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
    actions = sum(child.tag == "action" for child in body)
    if actions != 1:
        raise RuleXmlError(f"rule {_show(name)} needs one <action>, found {actions}")
    if len(body) != 2:
        raise RuleXmlError(f"rule {_show(name)} needs one condition, found {len(body) - 1}")
    if body[0].tag == "action":
        raise RuleXmlError(f"rule {_show(name)}: the condition must come before <action>")
    key, then = _decode_action(body[1], queue_name)
    return {"name": name, "when": _decode_condition(body[0]), key: then}


def _decode_condition(element: ET.Element) -> dict[str, Any]:
    (operator,) = _attrs(element, "operator")
    if element.tag == "condition":
        return _decode_leaf(element, operator)
    kind = _KIND_BY_LOGICAL.get(operator)
    if kind is None:
        raise RuleXmlError(f"unknown <logical> operator {_show(operator)}")
    children = [_decode_condition(child) for child in _children(element, "logical", "condition")]
    if kind == "not":
        if len(children) != 1:
            raise RuleXmlError(f'<logical operator="NOT"> needs one child, found {len(children)}')
        return {"not": children[0]}
    if not children:
        raise RuleXmlError(f'empty <logical operator="{operator}">')
    return {kind: children}


def _decode_leaf(element: ET.Element, operator: str) -> dict[str, Any]:
    op = _OP_BY_NAME.get(operator)
    if op is None:
        raise RuleXmlError(f"unknown <condition> operator {_show(operator)}")
    parts = _children(element, "lhs", "rhs")
    if not parts or [p.tag for p in parts] != ["lhs"] + ["rhs"] * (len(parts) - 1):
        raise RuleXmlError("a <condition> needs one <lhs> followed by its <rhs> values")
    leaf: dict[str, Any] = {"field": _lhs_to_field(_lhs(parts[0])), "op": op}
    values = [_read_static(part) for part in parts[1:]]
    if op in UNARY_OPERATORS:
        if values:
            raise RuleXmlError(f'<condition operator="{operator}"> takes no <rhs>')
    elif op in LIST_OPERATORS:
        if not values:
            raise RuleXmlError(f'<condition operator="{operator}"> needs at least one <rhs>')
        leaf["value"] = values
    elif len(values) != 1:
        raise RuleXmlError(
            f'<condition operator="{operator}"> needs one <rhs>, found {len(values)}'
        )
    else:
        leaf["value"] = values[0]
    return leaf


def _lhs(element: ET.Element) -> str:
    (kind,) = _attrs(element, "type")
    if kind != "attribute":
        raise RuleXmlError(f"unknown <lhs> type {_show(kind)}")
    return _text(element)


def _lhs_to_field(lhs: str) -> str:
    if lhs in _LHS_TO_FIELD:
        return _LHS_TO_FIELD[lhs]
    entity, _, attribute = lhs.partition(".")
    if entity == ENTITIES[CONVERSATION_CONTEXT] and _IDENTIFIER.fullmatch(attribute):
        return f"{CONVERSATION_CONTEXT}.{attribute}"
    raise RuleXmlError(f"unknown entity or attribute {_show(lhs)} in <lhs>")


def _read_static(element: ET.Element) -> Scalar:
    kind, datatype = _attrs(element, "type", "datatype")
    if kind != "staticvalue":
        raise RuleXmlError(f"unknown <rhs> type {_show(kind)}")
    text = _text(element)
    if datatype == STRING:
        return text
    if datatype == BOOLEAN:
        if text not in ("true", "false"):
            raise RuleXmlError(f"boolean value {_show(text)} is neither true nor false")
        return text == "true"
    if datatype == INTEGER:
        return _integer(text)
    if datatype == DECIMAL:
        number = float(text) if _DECIMAL.fullmatch(text) else math.nan
        if not math.isfinite(number):
            raise RuleXmlError(f"decimal value {_show(text)} is not a finite number")
        return number
    raise RuleXmlError(f"unknown datatype {_show(datatype)}")


def _integer(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise RuleXmlError(f"integer value {_show(text)} is not an integer")
    return int(text)


def _decode_action(element: ET.Element, queue_name: Callable[[str], str]) -> tuple[str, Any]:
    pairs = []
    for setattribute in _children(element, "setattribute"):
        parts = _children(setattribute, "lhs", "rhs")
        if [p.tag for p in parts] != ["lhs", "rhs"]:
            raise RuleXmlError("a <setattribute> needs one <lhs> then one <rhs>")
        pairs.append((_lhs(parts[0]), parts[1]))
    if any(target == ROUTE_TARGET for target, _ in pairs):
        if len(pairs) != 1:
            raise RuleXmlError(f"{ROUTE_TARGET} must be the only <setattribute> of an <action>")
        return "routeTo", _decode_route(pairs[0][1], queue_name)
    outputs: dict[str, Scalar] = {}
    for target, rhs in pairs:
        key = target.removeprefix(OUTPUT_PREFIX)
        if key == target or not key:
            raise RuleXmlError(f"unknown <setattribute> target {_show(target)}")
        if key in outputs:
            raise RuleXmlError(f"output {_show(key)} is set twice")
        outputs[key] = _read_static(rhs)
    return "set", outputs


def _decode_route(rhs: ET.Element, queue_name: Callable[[str], str]) -> Any:
    (kind,) = _attrs(rhs, "type")
    if kind == "staticvalue":
        guid = _text(rhs)
        if not guid:
            raise RuleXmlError(f"<rhs> of {ROUTE_TARGET} holds no queue id")
        return queue_name(guid)
    if kind != PERCENTAGE:
        raise RuleXmlError(f"unknown <rhs> type {_show(kind)} for {ROUTE_TARGET}")
    split = []
    for allocation in _children(rhs, "allocation"):
        _children(allocation)
        queue, percent = _attrs(allocation, "queue", "percent")
        split.append({"queue": queue_name(queue), "percent": _integer(percent)})
    if not split:
        raise RuleXmlError(f'<rhs type="{PERCENTAGE}"> holds no <allocation>')
    return split
