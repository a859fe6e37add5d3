"""Rule-set XML codec: exact round trips, canonical output, refusal of shapes it does not know."""

import json
import uuid
from typing import Any

import pytest

from reconciler.mapping.rulexml import (
    HIT_POLICY_CLASSIFY,
    HIT_POLICY_ROUTE,
    OPERATORS,
    Decoded,
    RuleXmlError,
    decode,
    encode,
)
from reconciler.models.routing import CONTEXT_FIELDS, Operator

NAMESPACE = uuid.UUID("8d6c1c2e-52a4-4c8e-9f0c-3f3a9e8f6d10")
QUEUES = {name: str(uuid.uuid5(NAMESPACE, f"Queue/{name}")) for name in "abcdefg"}
QUEUE_NAMES = {guid: name for name, guid in QUEUES.items()}
NL = {"field": "facebook.locale", "op": "beginsWith", "value": "nl"}
EN = {"field": "facebook.locale", "op": "beginsWith", "value": "en"}
VIP = {"field": "conversation.msdyn_customer_tier", "op": "equals", "value": 1}


def rule_id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"Rule/{name}"))


def queue_id(name: str) -> str:
    return QUEUES[name]


def queue_name(guid: str) -> str:
    return QUEUE_NAMES.get(guid, f"<{guid}>")


def to_xml(rules: list[dict[str, Any]], hit_policy: str = HIT_POLICY_ROUTE) -> str:
    return encode(rules, hit_policy=hit_policy, rule_id=rule_id, queue_id=queue_id)


def round_trip(rules: list[dict[str, Any]], hit_policy: str = HIT_POLICY_ROUTE) -> Decoded:
    """Decode what was encoded; the JSON (types and key order included) must come back exactly."""
    xml = to_xml(rules, hit_policy)
    decoded = decode(xml, queue_name=queue_name)
    # json.dumps tells 1 from 1.0 from True and keeps key order, unlike ==.
    assert json.dumps(decoded.rules) == json.dumps(rules)
    assert decoded.hit_policy == hit_policy
    assert decoded.rule_ids == [rule_id(rule["name"]) for rule in rules]
    assert to_xml(decoded.rules, hit_policy) == xml
    return decoded


def route(when: Any, name: str = "r") -> dict[str, Any]:
    return {"name": name, "when": when, "routeTo": "a"}


def leaf(op: str, *value: Any, field: Any = "facebook.locale") -> dict[str, Any]:
    condition: dict[str, Any] = {"field": field, "op": op}
    if value:
        condition["value"] = value[0]
    return condition


# --- round trips --------------------------------------------------------------------------


def test_operator_table_covers_every_manifest_operator() -> None:
    assert set(OPERATORS) == {str(op) for op in Operator}
    assert len(set(OPERATORS.values())) == len(OPERATORS)


@pytest.mark.parametrize(
    "condition",
    [
        leaf("equals", "nl-NL"),
        leaf("notEquals", 5),
        leaf("contains", "nl"),
        leaf("notContains", "en"),
        leaf("beginsWith", "nl"),
        leaf("endsWith", "NL"),
        leaf("in", ["nl-NL", "nl-BE"]),
        leaf("notIn", [1, 2, 3]),
        leaf("isNull"),
        leaf("isNotNull"),
        leaf("greaterThan", 2.5),
        leaf("lessThan", -3),
    ],
    ids=lambda condition: condition["op"],
)
def test_every_operator_round_trips(condition: dict[str, Any]) -> None:
    xml = to_xml([route(condition)])
    assert f'<condition operator="{OPERATORS[condition["op"]]}">' in xml
    round_trip([route(condition)])


def test_unary_operators_write_no_rhs_and_list_operators_one_per_item() -> None:
    xml = to_xml([route({"all": [leaf("isNull"), leaf("in", ["x", "y", "z"])]})])
    assert '<condition operator="null"><lhs type="attribute">' in xml
    assert "msdyn_locale</lhs></condition>" in xml
    assert xml.count('<rhs type="staticvalue" datatype="string">') == 3


@pytest.mark.parametrize(
    "when",
    [
        NL,
        {"all": [NL]},
        {"all": [NL, VIP]},
        {"any": [NL, EN]},
        {"not": NL},
        {"not": {"any": [NL, EN]}},
        {"all": [{"any": [{"not": {"all": [NL, VIP]}}, EN]}, {"not": {"not": VIP}}]},
        {"any": [{"all": [{"any": [NL, {"not": EN}]}, VIP]}, {"all": [EN]}]},
    ],
    ids=["leaf", "all-one", "all", "any", "not", "not-any", "nested-1", "nested-2"],
)
def test_every_condition_shape_round_trips_without_adding_wrappers(when: dict[str, Any]) -> None:
    round_trip([route(when)])


def test_a_leaf_when_is_a_bare_condition_in_the_rule() -> None:
    xml = to_xml([route(NL)])
    assert "<logical" not in xml
    assert '<rule id="' in xml
    assert '"><condition operator="begins-with">' in xml


@pytest.mark.parametrize(
    ("field", "lhs"),
    [
        *(
            (f"facebook.{name}", f"msdyn_facebookengagementctx.msdyn_{name.lower()}")
            for name in CONTEXT_FIELDS["facebook"]
        ),
        *(
            (
                f"googleBusinessMessages.{name}",
                f"msdyn_ocgooglebusinessmessagesengagementctx.msdyn_{name.lower()}",
            )
            for name in CONTEXT_FIELDS["googleBusinessMessages"]
        ),
        ("conversation.msdyn_channel", "msdyn_ocliveworkitem.msdyn_channel"),
        ("conversation.CustomerTier_2", "msdyn_ocliveworkitem.CustomerTier_2"),
        ("conversation._x", "msdyn_ocliveworkitem._x"),
    ],
)
def test_every_field_context_round_trips(field: str, lhs: str) -> None:
    rules = [route(leaf("equals", "v", field=field))]
    assert f'<lhs type="attribute">{lhs}</lhs>' in to_xml(rules)
    round_trip(rules)


@pytest.mark.parametrize(
    ("value", "datatype"),
    [
        ("plain", "string"),
        ("42", "string"),
        ("4.5", "string"),
        ("true", "string"),
        ("", "string"),
        ("  spaced out  ", "string"),
        ("\nline one\nline two\n", "string"),
        ("crlf\r\nand\ttab\r", "string"),
        ("ünïcødé 日本語 🎉", "string"),
        ("&<>\"' &amp; ]]> <![CDATA[x]]>", "string"),
        (0, "integer"),
        (-7, "integer"),
        (10**30, "integer"),
        (1.5, "decimal"),
        (-0.25, "decimal"),
        (3.0, "decimal"),
        (1e20, "decimal"),
        (1e-05, "decimal"),
        (0.1 + 0.2, "decimal"),
        (True, "boolean"),
        (False, "boolean"),
    ],
    ids=repr,
)
def test_every_value_type_round_trips_exactly(value: Any, datatype: str) -> None:
    rules = [route(leaf("equals", value))]
    assert f'datatype="{datatype}"' in to_xml(rules)
    decoded = round_trip(rules)
    assert type(decoded.rules[0]["when"]["value"]) is type(value)


@pytest.mark.parametrize("op", ["in", "notIn"])
@pytest.mark.parametrize(
    "values",
    [
        ["nl-NL"],
        ["a", "b", "c"],
        [1, 2],
        [1.5, -2.0],
        [True, False],
        ["1", 1, 1.0, True, "", " x "],
    ],
    ids=["one", "strings", "ints", "decimals", "bools", "mixed"],
)
def test_lists_round_trip_item_by_item(op: str, values: list[Any]) -> None:
    decoded = round_trip([route(leaf(op, values))])
    assert [type(v) for v in decoded.rules[0]["when"]["value"]] == [type(v) for v in values]


def test_route_to_one_queue_round_trips_through_the_callbacks() -> None:
    xml = to_xml([{"name": "r", "when": NL, "routeTo": "b"}])
    target = '<lhs type="attribute">assign_to.queue</lhs>'
    assert f'{target}<rhs type="staticvalue">{QUEUES["b"]}</rhs>' in xml
    round_trip([{"name": "r", "when": NL, "routeTo": "b"}])


def test_split_over_five_queues_round_trips() -> None:
    split = [{"queue": q, "percent": p} for q, p in zip("abcde", [40, 25, 15, 10, 10], strict=True)]
    xml = to_xml([{"name": "split", "when": NL, "routeTo": split}])
    assert f'<rhs type="percentage"><allocation queue="{QUEUES["a"]}" percent="40"/>' in xml
    assert xml.count("<allocation ") == 5
    round_trip([{"name": "split", "when": NL, "routeTo": split}])


def test_classification_outputs_round_trip_in_order_with_their_types() -> None:
    outputs = {"language": "Dutch", "score": 3, "weight": 0.75, "vip": True, "note": " 7 "}
    rules = [
        {"name": "classify", "when": NL, "set": outputs},
        {"name": "none", "when": EN, "set": {}},
    ]
    xml = to_xml(rules, HIT_POLICY_CLASSIFY)
    assert xml.startswith('<decision hit-policy="first" version="1">')
    assert xml.index("output.language") < xml.index("output.score") < xml.index("output.note")
    decoded = round_trip(rules, HIT_POLICY_CLASSIFY)
    assert list(decoded.rules[0]["set"]) == list(outputs)


def test_many_rules_keep_their_order_and_ids() -> None:
    rules = [
        route(NL, name="Dutch speakers"),
        {"name": "split", "when": {"any": [EN, VIP]}, "routeTo": [{"queue": "c", "percent": 100}]},
        route({"not": VIP}, name="everyone else"),
    ]
    decoded = round_trip(rules)
    assert decoded.rule_ids == [
        rule_id("Dutch speakers"),
        rule_id("split"),
        rule_id("everyone else"),
    ]


@pytest.mark.parametrize(
    "name", ["Dutch speakers", "  spaced  ", "two\nlines\r\n", 'a&b<c>"d"\t', "ü🎉"]
)
def test_rule_names_round_trip(name: str) -> None:
    round_trip([route(NL, name=name)])


@pytest.mark.parametrize("hit_policy", [HIT_POLICY_ROUTE, HIT_POLICY_CLASSIFY])
def test_an_empty_rule_set_round_trips(hit_policy: str) -> None:
    assert (
        to_xml([], hit_policy)
        == f'<decision hit-policy="{hit_policy}" version="1"><rules/></decision>'
    )
    assert round_trip([], hit_policy).rules == []


# --- canonical output ---------------------------------------------------------------------


def test_encoding_is_canonical() -> None:
    rules = [{"name": "Dutch", "when": {"all": [NL]}, "routeTo": "a"}]
    assert encode(rules, hit_policy="all", rule_id=lambda _: "R1", queue_id=lambda _: "Q1") == (
        '<decision hit-policy="all" version="1"><rules><rule id="R1" name="Dutch">'
        '<logical operator="AND"><condition operator="begins-with">'
        '<lhs type="attribute">msdyn_facebookengagementctx.msdyn_locale</lhs>'
        '<rhs type="staticvalue" datatype="string">nl</rhs></condition></logical>'
        '<action><setattribute><lhs type="attribute">assign_to.queue</lhs>'
        '<rhs type="staticvalue">Q1</rhs></setattribute></action></rule></rules></decision>'
    )


def test_encoding_is_deterministic_and_stable_through_decode() -> None:
    rules = [
        route({"all": [NL, {"not": leaf("in", [1, "1", 1.0])}]}, name="x"),
        {
            "name": "y",
            "when": VIP,
            "routeTo": [{"queue": "a", "percent": 50}, {"queue": "b", "percent": 50}],
        },
    ]
    first = to_xml(rules)
    assert to_xml(rules) == first
    assert to_xml(decode(first, queue_name=queue_name).rules) == first


# --- decoding by hand-written XML ---------------------------------------------------------

SAMPLE = f"""<?xml version="1.0" encoding="utf-8"?>
<decision hit-policy="all" version="1">
  <rules>
    <!-- written by hand, as an export shows it -->
    <rule id="11111111-2222-3333-4444-555555555555" name="Dutch speakers">
      <logical operator="AND">
        <condition operator="begins-with">
          <lhs type="attribute">msdyn_facebookengagementctx.msdyn_locale</lhs>
          <rhs type="staticvalue" datatype="string">nl</rhs>
        </condition>
        <condition operator="not-null">
          <lhs type="attribute">msdyn_ocliveworkitem.msdyn_customer</lhs>
        </condition>
      </logical>
      <action>
        <setattribute>
          <lhs type="attribute">assign_to.queue</lhs>
          <rhs type="staticvalue">{QUEUES["a"]}</rhs>
        </setattribute>
      </action>
    </rule>
    <rule id="66666666-7777-8888-9999-000000000000" name="split">
      <condition operator="in">
        <lhs type="attribute">msdyn_ocgooglebusinessmessagesengagementctx.msdyn_entrypoint</lhs>
        <rhs type="staticvalue" datatype="string">maps</rhs>
        <rhs type="staticvalue" datatype="integer">7</rhs>
      </condition>
      <action><setattribute>
        <lhs type="attribute">assign_to.queue</lhs>
        <rhs type="percentage">
          <allocation queue="{QUEUES["b"]}" percent="70"/>
          <allocation queue="aaaaaaaa-0000-0000-0000-000000000000" percent="30"></allocation>
        </rhs>
      </setattribute></action>
    </rule>
  </rules>
</decision>
"""


def test_a_hand_written_sample_decodes() -> None:
    decoded = decode(SAMPLE, queue_name=queue_name)
    assert decoded.hit_policy == "all"
    assert decoded.rule_ids == [
        "11111111-2222-3333-4444-555555555555",
        "66666666-7777-8888-9999-000000000000",
    ]
    assert decoded.rules == [
        {
            "name": "Dutch speakers",
            "when": {
                "all": [
                    {"field": "facebook.locale", "op": "beginsWith", "value": "nl"},
                    {"field": "conversation.msdyn_customer", "op": "isNotNull"},
                ]
            },
            "routeTo": "a",
        },
        {
            "name": "split",
            "when": {
                "field": "googleBusinessMessages.entryPoint",
                "op": "in",
                "value": ["maps", 7],
            },
            "routeTo": [
                {"queue": "b", "percent": 70},
                {"queue": "<aaaaaaaa-0000-0000-0000-000000000000>", "percent": 30},
            ],
        },
    ]


def test_queues_go_through_the_callbacks() -> None:
    seen: list[str] = []

    def ids(name: str) -> str:
        seen.append(name)
        return f"guid-of-{name}"

    split = [{"queue": "x", "percent": 60}, {"queue": "y", "percent": 40}]
    rules = [route(NL, name="one") | {"routeTo": "w"}, route(EN, name="two") | {"routeTo": split}]
    xml = encode(rules, hit_policy="all", rule_id=lambda name: f"id-{name}", queue_id=ids)
    assert seen == ["w", "x", "y"]
    decoded = decode(xml, queue_name=lambda guid: f"<{guid}>")
    assert decoded.rules[0]["routeTo"] == "<guid-of-w>"
    assert decoded.rules[1]["routeTo"] == [
        {"queue": "<guid-of-x>", "percent": 60},
        {"queue": "<guid-of-y>", "percent": 40},
    ]
    assert decoded.rule_ids == ["id-one", "id-two"]


# --- refusals -----------------------------------------------------------------------------

LHS = '<lhs type="attribute">msdyn_facebookengagementctx.msdyn_locale</lhs>'
STR = '<rhs type="staticvalue" datatype="string">nl</rhs>'
COND = f'<condition operator="eq">{LHS}{STR}</condition>'
ACTION = (
    '<action><setattribute><lhs type="attribute">assign_to.queue</lhs>'
    '<rhs type="staticvalue">Q</rhs></setattribute></action>'
)


def doc(body: str, head: str = 'hit-policy="all" version="1"') -> str:
    return f"<decision {head}><rules>{body}</rules></decision>"


def rule(inner: str, attrs: str = 'id="R" name="n"') -> str:
    return doc(f"<rule {attrs}>{inner}</rule>")


def leaf_xml(operator: str, *parts: str) -> str:
    return rule(f'<condition operator="{operator}">{"".join(parts)}</condition>{ACTION}')


def value_xml(datatype: str, text: str) -> str:
    return leaf_xml("eq", LHS, f'<rhs type="staticvalue" datatype="{datatype}">{text}</rhs>')


def action_xml(*setattributes: str) -> str:
    return rule(f"{COND}<action>{''.join(setattributes)}</action>")


def setattr_xml(target: str, rhs: str) -> str:
    return f'<setattribute><lhs type="attribute">{target}</lhs>{rhs}</setattribute>'


def output(key: str, text: str = "x") -> str:
    return setattr_xml(f"output.{key}", f'<rhs type="staticvalue" datatype="string">{text}</rhs>')


def split_xml(*allocations: str) -> str:
    return action_xml(
        setattr_xml("assign_to.queue", f'<rhs type="percentage">{"".join(allocations)}</rhs>')
    )


BAD_XML = [
    ('<!DOCTYPE d [<!ENTITY e "x">]><decision/>', "DOCTYPE and ENTITY declarations are refused"),
    ("<!doctype decision><decision/>", "DOCTYPE and ENTITY"),
    ("<decision", "malformed XML"),
    ("", "malformed XML"),
    ("<decision></rules>", "malformed XML: mismatched tag"),
    ("<rules/>", "expected <decision>, found <rules>"),
    (doc("", 'hit-policy="all" version="1" lang="en"'), "unknown attribute 'lang' on <decision>"),
    (doc("", 'version="1"'), "<decision> has no hit-policy attribute"),
    (doc("", 'hit-policy="all"'), "<decision> has no version attribute"),
    (doc("", 'hit-policy="any" version="1"'), "unknown hit-policy 'any'"),
    (doc("", 'hit-policy="all" version="2"'), "unsupported <decision> version '2'"),
    ('<decision hit-policy="all" version="1"/>', "<decision> needs one <rules>, found 0"),
    ('<decision hit-policy="all" version="1"><rules/><rules/></decision>', "found 2"),
    (
        '<decision hit-policy="all" version="1"><rules/><meta/></decision>',
        "unknown element <meta> in <decision>",
    ),
    (doc("text"), "unexpected text in <rules>"),
    (doc("<rule/>"), "<rule> has no id attribute"),
    (rule(COND + ACTION, 'id="R"'), "<rule> has no name attribute"),
    (rule(COND + ACTION, 'id="R" name=""'), "a <rule> has an empty name"),
    (rule(COND + ACTION, 'id="R" name="n" enabled="1"'), "unknown attribute 'enabled' on <rule>"),
    (rule(COND), "rule 'n' needs one <action>, found 0"),
    (rule(COND + ACTION + ACTION), "rule 'n' needs one <action>, found 2"),
    (rule(COND + COND + ACTION), "rule 'n' needs one condition, found 2"),
    (rule(ACTION), "rule 'n' needs one condition, found 0"),
    (rule(ACTION + COND), "the condition must come before <action>"),
    (rule(COND + "<note/>" + ACTION), "unknown element <note> in <rule>"),
    (rule(COND + "tail" + ACTION), "unexpected text in <rule>"),
    (rule(f'<logical operator="XOR">{COND}</logical>{ACTION}'), "unknown <logical> operator 'XOR'"),
    (rule(f"<logical>{COND}</logical>{ACTION}"), "<logical> has no operator attribute"),
    (
        rule(f'<logical operator="NOT">{COND}{COND}</logical>{ACTION}'),
        'operator="NOT"> needs one child, found 2',
    ),
    (
        rule(f'<logical operator="NOT"></logical>{ACTION}'),
        'operator="NOT"> needs one child, found 0',
    ),
    (rule(f'<logical operator="AND"></logical>{ACTION}'), 'empty <logical operator="AND">'),
    (rule(f'<logical operator="OR"/>{ACTION}'), 'empty <logical operator="OR">'),
    (rule(f'<logical operator="AND">x{COND}</logical>{ACTION}'), "unexpected text in <logical>"),
    (
        rule(f'<logical operator="AND"><rhs/></logical>{ACTION}'),
        "unknown element <rhs> in <logical>",
    ),
    (leaf_xml("approx", LHS, STR), "unknown <condition> operator 'approx'"),
    (leaf_xml("equals", LHS, STR), "unknown <condition> operator 'equals'"),
    (leaf_xml("eq"), "a <condition> needs one <lhs> followed by its <rhs> values"),
    (leaf_xml("eq", STR, LHS), "needs one <lhs> followed by its <rhs> values"),
    (leaf_xml("eq", LHS, LHS, STR), "needs one <lhs> followed by its <rhs> values"),
    (leaf_xml("eq", LHS, STR, "<value/>"), "unknown element <value> in <condition>"),
    (leaf_xml("eq", '<lhs type="staticvalue">x</lhs>', STR), "unknown <lhs> type 'staticvalue'"),
    (leaf_xml("eq", "<lhs>x</lhs>", STR), "<lhs> has no type attribute"),
    (
        leaf_xml("eq", '<lhs type="attribute">account.name</lhs>', STR),
        "unknown entity or attribute 'account.name'",
    ),
    (
        leaf_xml("eq", '<lhs type="attribute">msdyn_facebookengagementctx.msdyn_email</lhs>', STR),
        "unknown entity or attribute 'msdyn_facebookengagementctx.msdyn_email'",
    ),
    (
        leaf_xml("eq", '<lhs type="attribute">msdyn_ocliveworkitem.1st</lhs>', STR),
        "unknown entity or attribute",
    ),
    (
        leaf_xml("eq", '<lhs type="attribute">msdyn_ocliveworkitem.</lhs>', STR),
        "unknown entity or attribute",
    ),
    (
        leaf_xml("eq", '<lhs type="attribute">msdyn_locale</lhs>', STR),
        "unknown entity or attribute",
    ),
    (leaf_xml("eq", '<lhs type="attribute"><b>x</b></lhs>', STR), "unknown element <b> in <lhs>"),
    (
        leaf_xml("eq", LHS, '<rhs type="dynamic" datatype="string">x</rhs>'),
        "unknown <rhs> type 'dynamic'",
    ),
    (leaf_xml("eq", LHS, '<rhs type="staticvalue">x</rhs>'), "<rhs> has no datatype attribute"),
    (
        leaf_xml("eq", LHS, '<rhs type="staticvalue" datatype="string" x="1">x</rhs>'),
        "unknown attribute 'x' on <rhs>",
    ),
    (value_xml("date", "2024-01-01"), "unknown datatype 'date'"),
    (value_xml("integer", "1.5"), "integer value '1.5' is not an integer"),
    (value_xml("integer", ""), "integer value '' is not an integer"),
    (value_xml("integer", "+1"), "is not an integer"),
    (value_xml("integer", " 1"), "is not an integer"),
    (value_xml("integer", "1_000"), "is not an integer"),
    (value_xml("integer", "١٢"), "is not an integer"),
    (value_xml("boolean", "yes"), "boolean value 'yes' is neither true nor false"),
    (value_xml("boolean", "True"), "neither true nor false"),
    (value_xml("boolean", "1"), "neither true nor false"),
    (value_xml("decimal", "abc"), "decimal value 'abc' is not a finite number"),
    (value_xml("decimal", "inf"), "is not a finite number"),
    (value_xml("decimal", "nan"), "is not a finite number"),
    (value_xml("decimal", "1e999"), "is not a finite number"),
    (value_xml("decimal", "1_0.5"), "is not a finite number"),
    (leaf_xml("null", LHS, STR), '<condition operator="null"> takes no <rhs>'),
    (leaf_xml("not-null", LHS, STR), '<condition operator="not-null"> takes no <rhs>'),
    (leaf_xml("in", LHS), '<condition operator="in"> needs at least one <rhs>'),
    (leaf_xml("not-in", LHS), '<condition operator="not-in"> needs at least one <rhs>'),
    (leaf_xml("eq", LHS), '<condition operator="eq"> needs one <rhs>, found 0'),
    (leaf_xml("gt", LHS, STR, STR), '<condition operator="gt"> needs one <rhs>, found 2'),
    (action_xml("<set/>"), "unknown element <set> in <action>"),
    (
        action_xml('<setattribute><lhs type="attribute">output.x</lhs></setattribute>'),
        "needs one <lhs> then one <rhs>",
    ),
    (
        action_xml(setattr_xml("assign_to.agent", STR)),
        "unknown <setattribute> target 'assign_to.agent'",
    ),
    (action_xml(setattr_xml("language", STR)), "unknown <setattribute> target 'language'"),
    (action_xml(output("")), "unknown <setattribute> target 'output.'"),
    (action_xml(output("lang"), output("lang", "y")), "output 'lang' is set twice"),
    (action_xml(output("lang", "x<b/>y")), "unknown element <b> in <rhs>"),
    (
        action_xml(setattr_xml("assign_to.queue", '<rhs type="staticvalue">Q</rhs>'), output("x")),
        "assign_to.queue must be the only <setattribute>",
    ),
    (
        action_xml(setattr_xml("assign_to.queue", '<rhs type="staticvalue"></rhs>')),
        "<rhs> of assign_to.queue holds no queue id",
    ),
    (
        action_xml(setattr_xml("assign_to.queue", '<rhs type="dynamic">Q</rhs>')),
        "unknown <rhs> type 'dynamic' for assign_to.queue",
    ),
    (action_xml(setattr_xml("assign_to.queue", STR)), "unknown attribute 'datatype' on <rhs>"),
    (split_xml(), '<rhs type="percentage"> holds no <allocation>'),
    (split_xml('<allocation queue="Q"/>'), "<allocation> has no percent attribute"),
    (split_xml('<allocation queue="Q" percent="x"/>'), "integer value 'x' is not an integer"),
    (
        split_xml('<allocation queue="Q" percent="5" weight="1"/>'),
        "unknown attribute 'weight' on <allocation>",
    ),
    (
        split_xml('<allocation queue="Q" percent="5">x</allocation>'),
        "unexpected text in <allocation>",
    ),
    (
        split_xml('<allocation queue="Q" percent="5"><q/></allocation>'),
        "unknown element <q> in <allocation>",
    ),
    (split_xml("<queue/>"), "unknown element <queue> in <rhs>"),
]


@pytest.mark.parametrize(("xml", "message"), BAD_XML, ids=[m for _, m in BAD_XML])
def test_decode_refuses_what_it_does_not_understand(xml: str, message: str) -> None:
    with pytest.raises(RuleXmlError) as caught:
        decode(xml, queue_name=queue_name)
    assert message in str(caught.value)


def test_errors_are_value_errors_and_never_quote_the_whole_document() -> None:
    huge = "y" * 10_000
    with pytest.raises(ValueError, match="boolean value 'yyy") as caught:
        decode(value_xml("boolean", huge), queue_name=queue_name)
    assert len(str(caught.value)) < 150
    with pytest.raises(RuleXmlError) as parse_error:
        decode(doc(huge + "<"), queue_name=queue_name)
    assert huge not in str(parse_error.value)


def test_an_entity_bomb_is_refused_before_parsing() -> None:
    bomb = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
    with pytest.raises(RuleXmlError, match="DOCTYPE and ENTITY"):
        decode(bomb + "<decision>&lol2;</decision>", queue_name=queue_name)


BAD_RULES: list[tuple[Any, str]] = [
    ("not a rule", "a rule must be a mapping, not str"),
    ({"name": "r", "when": NL, "routeto": "a"}, "unknown key 'routeto' in a rule"),
    ({"name": "r", "routeTo": "a"}, "a rule has no 'when'"),
    ({"when": NL, "routeTo": "a"}, "a rule has no 'name'"),
    ({"name": "", "when": NL, "routeTo": "a"}, "a rule name must be a non-empty string"),
    ({"name": 3, "when": NL, "routeTo": "a"}, "a rule name must be a non-empty string"),
    ({"name": "r", "when": NL}, "rule 'r' needs exactly one of 'routeTo' and 'set'"),
    (
        {"name": "r", "when": NL, "routeTo": "a", "set": {}},
        "needs exactly one of 'routeTo' and 'set'",
    ),
    (route(NL) | {"routeTo": 5}, "'routeTo' must be a queue name or a non-empty list"),
    (route(NL) | {"routeTo": []}, "'routeTo' must be a queue name or a non-empty list"),
    (route(NL) | {"routeTo": ["a"]}, "a 'routeTo' allocation must be a mapping"),
    (route(NL) | {"routeTo": [{"queue": "a"}]}, "a 'routeTo' allocation has no 'percent'"),
    (
        route(NL) | {"routeTo": [{"queue": "a", "percent": True}]},
        "needs a queue name and an integer percent",
    ),
    (route(NL) | {"routeTo": [{"queue": "a", "percent": "70"}]}, "an integer percent"),
    (route(NL) | {"routeTo": [{"queue": 1, "percent": 70}]}, "needs a queue name"),
    ({"name": "r", "when": NL, "set": ["language"]}, "'set' of rule 'r' must be a mapping"),
    (
        {"name": "r", "when": NL, "set": {"": 1}},
        "output names of rule 'r' must be non-empty strings",
    ),
    (
        {"name": "r", "when": NL, "set": {1: 1}},
        "output names of rule 'r' must be non-empty strings",
    ),
    ({"name": "r", "when": NL, "set": {"x": None}}, "unsupported value None"),
    ({"name": "r", "when": NL, "set": {"x": [1]}}, "unsupported value [1]"),
    (route("nl"), "a condition must be a mapping, not str"),
    (route({"all": [NL], "field": "x"}), "unknown key 'field' in a 'all' condition"),
    (route({"all": []}), "'all' needs a non-empty list of conditions"),
    (route({"any": NL}), "'any' needs a non-empty list of conditions"),
    (route({"not": [NL]}), "a condition must be a mapping, not list"),
    (route({"field": "facebook.locale", "op": "like", "value": "x"}), "unknown operator 'like'"),
    (route({"field": "facebook.locale", "value": "x"}), "unknown operator None"),
    (route({"field": "facebook.locale", "op": ["in"], "value": "x"}), "unknown operator ['in']"),
    (route({"op": "equals", "value": "x"}), "an 'equals' condition has no 'field'"),
    (route(leaf("equals")), "an 'equals' condition has no 'value'"),
    (route(leaf("isNull", None)), "unknown key 'value' in an 'isNull' condition"),
    (route(leaf("isNotNull", "x")), "unknown key 'value' in an 'isNotNull' condition"),
    (route(leaf("equals", "x") | {"negate": True}), "unknown key 'negate'"),
    (route(leaf("equals", "x", field="facebook.email")), "unknown field 'facebook.email'"),
    (route(leaf("equals", "x", field="facebook.Locale")), "unknown field 'facebook.Locale'"),
    (route(leaf("equals", "x", field="twitter.handle")), "unknown field 'twitter.handle'"),
    (route(leaf("equals", "x", field="conversation.1st")), "unknown field 'conversation.1st'"),
    (route(leaf("equals", "x", field="conversation.")), "unknown field 'conversation.'"),
    (route(leaf("equals", "x", field="conversation.a.b")), "unknown field 'conversation.a.b'"),
    (route(leaf("equals", "x", field=3)), "unknown field 3"),
    (route(leaf("in", "x")), "'in' needs a non-empty list as value"),
    (route(leaf("notIn", [])), "'notIn' needs a non-empty list as value"),
    (route(leaf("in", [["x"]])), "unsupported value ['x']"),
    (route(leaf("equals", None)), "unsupported value None"),
    (route(leaf("equals", ["x"])), "unsupported value ['x']"),
    (route(leaf("equals", {"x": 1})), "unsupported value {'x': 1}"),
    (route(leaf("greaterThan", float("nan"))), "unsupported value nan"),
    (route(leaf("lessThan", float("inf"))), "unsupported value inf"),
    (route(leaf("equals", "nul\x00")), "character U+0000 cannot be stored in XML"),
    (route(leaf("equals", "\ud800")), "character U+D800 cannot be stored in XML"),
    (route(NL, name="bell\x07"), "character U+0007 cannot be stored in XML"),
    ({"name": "r", "when": NL, "set": {"x\x1f": 1}}, "character U+001F"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_RULES, ids=[m for _, m in BAD_RULES])
def test_encode_refuses_rules_it_does_not_understand(bad: Any, message: str) -> None:
    with pytest.raises(RuleXmlError) as caught:
        to_xml([bad])
    assert message in str(caught.value)


def test_encode_refuses_an_unknown_hit_policy() -> None:
    with pytest.raises(RuleXmlError, match="unknown hit policy 'any'"):
        encode([], hit_policy="any", rule_id=rule_id, queue_id=queue_id)


@pytest.mark.parametrize(
    ("char", "in_text", "in_attribute"),
    [
        ("&", "&amp;", "&amp;"),
        ("<", "&lt;", "&lt;"),
        (">", "&gt;", "&gt;"),
        ('"', '"', "&quot;"),
        ("\r", "&#13;", "&#13;"),
        ("\n", "\n", "&#10;"),
        ("\t", "\t", "&#9;"),
        ("'", "'", "'"),
        ("=", "=", "="),
        ("é", "é", "é"),
    ],
)
def test_text_and_attributes_are_escaped_exactly(
    char: str, in_text: str, in_attribute: str
) -> None:
    name = f"a{char}b"
    xml = to_xml([{"name": name, "when": leaf("equals", name), "routeTo": "a"}])
    assert f'name="a{in_attribute}b"' in xml
    assert f'datatype="string">a{in_text}b</rhs>' in xml
    assert decode(xml, queue_name=queue_name).rules[0]["name"] == name
