"""Rule-set XML codec: what it writes is what real orgs hold; what real orgs hold it reads.

The fixtures under tests/fixtures/realorg/rulesets/ are modelled on real exports (each names its
source); the grammar check below is built from them, not from the codec.
"""

import json
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from realgrammar import RULES

from reconciler.mapping import conditions
from reconciler.mapping import rulegrammar as g
from reconciler.mapping.conditions import canonical_rule
from reconciler.mapping.rulexml import Decoded, RuleXmlError, decode, encode

REALORG = Path(__file__).parents[1] / "fixtures" / "realorg" / "rulesets"
NAMESPACE = uuid.UUID("8d6c1c2e-52a4-4c8e-9f0c-3f3a9e8f6d10")
QUEUES = {name: str(uuid.uuid5(NAMESPACE, f"Queue/{name}")) for name in "abcdefg"}
QUEUE_NAMES = {guid: name for name, guid in QUEUES.items()}
NL = {"field": "context.Language", "op": "equals", "value": "nl"}
EN = {"field": "facebook.locale", "op": "equals", "value": "en_US"}
VIP = {"field": "conversation.msdyn_priorityscore", "op": "greaterThan", "value": 10}


def rule_id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"Rule/{name}"))


def queue_name(guid: str) -> str:
    return QUEUE_NAMES.get(guid, f"<{guid}>")


def to_xml(rules: list[dict[str, Any]], hit_policy: str = g.HIT_POLICY_ROUTE) -> str:
    return encode(rules, hit_policy=hit_policy, rule_id=rule_id, queue_id=QUEUES.__getitem__)


def round_trip(rules: list[dict[str, Any]], hit_policy: str = g.HIT_POLICY_ROUTE) -> Decoded:
    """Decoding what was encoded gives the canonical rules back, and encodes the same XML."""
    xml = to_xml(rules, hit_policy)
    decoded = decode(xml, queue_name=queue_name)
    # json.dumps tells 1 from 1.0 from True and keeps key order, unlike ==.
    assert json.dumps(decoded.rules) == json.dumps([canonical_rule(r) for r in rules])
    assert decoded.unreadable == []
    assert decoded.hit_policy == hit_policy
    assert decoded.rule_ids == [rule_id(rule["name"]) for rule in rules]
    assert to_xml(decoded.rules, hit_policy) == xml
    return decoded


def route(when: Any = None, name: str = "r", to: Any = "a") -> dict[str, Any]:
    rule: dict[str, Any] = {"name": name, "routeTo": to}
    if when is not None:
        rule["when"] = when
    return rule


def leaf(op: str, *value: Any, field: str = "facebook.locale") -> dict[str, Any]:
    condition: dict[str, Any] = {"field": field, "op": op}
    if value:
        condition["value"] = value[0]
    return condition


# --- the grammar real orgs hold, taken from the fixtures (tests/realgrammar.py) -------------

assert_in_real_grammar = RULES.check
SEEN = RULES.attributes


def test_the_fixtures_show_the_grammar_the_codec_writes() -> None:
    operators = {value for tag, key, value in SEEN if tag == "condition" and key == "operator"}
    assert operators >= {"==", ">", ">=", "not-null", "in"}
    assert ("logical", "operator", "OR") in SEEN
    assert not any(key == "datatype" for _, key, _ in SEEN)


EXAMPLES = [
    route(leaf("equals", "Jan de Vries", field="facebook.customerName"), "vip"),
    route(
        {
            "any": [
                NL,
                leaf("in", ["Europe/Amsterdam", "Europe/Brussels"], field="facebook.timezone"),
            ]
        },
        "dutch",
    ),
    route(VIP, "split", [{"queue": "a", "percent": 60}, {"queue": "b", "percent": 40}]),
    route({"all": [NL, {"not": VIP}, {"not": leaf("isNull")}]}, "negated"),
    route(leaf("lessOrEqual", 2.5, field="conversation.msdyn_waittime"), "le"),
    route(leaf("contains", "vip", field="context.Segment"), "contains"),
    route(None, "always", "c"),
]


def test_what_the_writer_emits_is_made_of_what_real_orgs_hold() -> None:
    assert_in_real_grammar(to_xml(EXAMPLES))
    classify = [
        {
            "name": "c",
            "when": NL,
            "set": {"Segment": "gold", "conversation.msdyn_priorityscore": 20},
        }
    ]
    assert_in_real_grammar(to_xml(classify, g.HIT_POLICY_CLASSIFY))


@pytest.mark.parametrize("op", sorted(g.OPERATORS))
def test_each_of_the_eight_operators_is_written_as_seen_and_round_trips(op: str) -> None:
    condition = leaf(op) if op in g.UNARY else leaf(op, "x")
    xml = to_xml([route(condition)])
    written = ET.fromstring(xml).find(".//condition")
    assert written is not None
    assert written.get("operator") == g.OPERATORS[op]
    assert ("<" in g.OPERATORS[op]) == ("&lt;" in xml)  # ">" stays literal, as real rules have it
    assert_in_real_grammar(xml)
    round_trip([route(condition)])


# --- canonical form: not, in, groups, values ----------------------------------------------


@pytest.mark.parametrize(
    ("when", "canonical"),
    [
        ({"not": leaf("equals", "a")}, leaf("notEquals", "a")),
        ({"not": leaf("greaterThan", 1)}, leaf("lessOrEqual", 1)),
        ({"not": leaf("lessThan", 1)}, leaf("greaterOrEqual", 1)),
        ({"not": leaf("isNull")}, leaf("isNotNull")),
        ({"not": {"not": NL}}, NL),
        (
            {"not": {"any": [NL, EN]}},
            {
                "all": [
                    leaf("notEquals", "nl", field="context.Language"),
                    leaf("notEquals", "en_US"),
                ]
            },
        ),
        (
            {"not": {"all": [NL, EN]}},
            {
                "any": [
                    leaf("notEquals", "nl", field="context.Language"),
                    leaf("notEquals", "en_US"),
                ]
            },
        ),
        (leaf("in", ["a", "b"]), {"any": [leaf("equals", "a"), leaf("equals", "b")]}),
        (leaf("notIn", ["a", "b"]), {"all": [leaf("notEquals", "a"), leaf("notEquals", "b")]}),
        ({"not": leaf("in", ["a"])}, leaf("notEquals", "a")),
        ({"all": [NL]}, NL),
        ({"all": [NL, {"all": [EN, VIP]}]}, {"all": [NL, EN, VIP]}),
        ({"any": [{"all": [NL, EN]}, VIP]}, {"any": [{"all": [NL, EN]}, VIP]}),
    ],
)
def test_conditions_are_written_in_their_one_canonical_form(when: Any, canonical: Any) -> None:
    assert canonical_rule(route(when))["when"] == canonical
    decoded = round_trip([route(when)])
    assert decoded.rules[0]["when"] == canonical


def test_values_are_untyped_text_read_back_as_the_same_text() -> None:
    values = ["20", 20, "007", 2.5, "2.50", True, "true", "", " x ", "-0", 10**30, "1e3"]
    xml = to_xml([route({"any": [leaf("equals", v) for v in values]})])
    assert "datatype" not in xml
    texts = [rhs.text or "" for rhs in ET.fromstring(xml).iter("rhs")]
    assert texts[: len(values)] == [
        "20",
        "20",
        "007",
        "2.5",
        "2.50",
        "true",
        "true",
        "",
        " x ",
        "-0",
        str(10**30),
        "1e3",
    ]
    read = decode(xml, queue_name=queue_name).rules[0]["when"]["any"]
    assert [c["value"] for c in read] == [
        20,
        20,
        "007",
        2.5,
        "2.50",
        True,
        True,
        "",
        " x ",
        "-0",
        10**30,
        "1e3",
    ]


def test_a_rule_without_when_has_no_condition_and_always_matches() -> None:
    xml = to_xml([route(None, "always")])
    assert re.search(r'<rule id="[^"]+" name="always"><action>', xml)
    assert "<logical" not in xml
    round_trip([route(None, "always")])


def test_a_split_is_written_as_percentagebaseddistribution_records() -> None:
    split = [{"queue": "a", "percent": 60}, {"queue": "b", "percent": 40}]
    xml = to_xml([route(None, "s", split)])
    assert "<upsertrecords><target>percentagebaseddistribution</target><records><record>" in xml
    queue = QUEUES["a"]
    assert f'queuedetails.queueid</lhs><rhs type="staticvalue">{{{queue}}}</rhs>' in xml
    assert (
        '<lhs type="attribute">queuedetails.percentage</lhs><rhs type="staticvalue">60</rhs>' in xml
    )
    round_trip([route(None, "s", split)])


def test_classification_outputs_are_context_variables_or_conversation_attributes() -> None:
    rules = [{"name": "c", "set": {"Segment": "gold", "conversation.msdyn_priorityscore": 20}}]
    xml = to_xml(rules, g.HIT_POLICY_CLASSIFY)
    assert '<decision hit-policy="first" version="1">' in xml
    assert '<lhs type="attribute">liveworkitemcontext.Segment</lhs>' in xml
    assert '<lhs type="attribute">msdyn_ocliveworkitem.msdyn_priorityscore</lhs>' in xml
    round_trip(rules, g.HIT_POLICY_CLASSIFY)


@pytest.mark.parametrize(
    "when",
    [
        leaf("beginsWith", "nl"),
        leaf("endsWith", "nl"),
        leaf("notContains", "nl"),
        leaf("isNull"),
        {"not": leaf("contains", "nl")},
        {"not": leaf("isNotNull")},
    ],
)
def test_an_operator_with_no_real_spelling_is_refused_naming_the_writable_ones(when: Any) -> None:
    with pytest.raises(RuleXmlError, match=r"cannot be written.*==|cannot be written.*equals"):
        to_xml([route(when)])


# --- reading what real orgs hold ----------------------------------------------------------


def real(name: str) -> str:
    return (REALORG / name).read_text(encoding="utf-8")


def test_reads_an_unconditional_route_with_a_bare_guid() -> None:
    decoded = decode(real("vrt-rtq-unconditional-default-queue.xml"), queue_name=queue_name)
    assert decoded.rules == [
        {
            "name": "Route to Default Contoso Queue",
            "routeTo": "<c8b65393-839f-f111-aaad-70a8a5b10059>",
        }
    ]
    assert decoded.rule_ids == ["3fd4c1aa-7e5a-4373-add7-f8d304b91867"]


def test_reads_a_comparison_in_a_logical_group() -> None:
    decoded = decode(real("vrt-rtq-createdon-greater-than.xml"), queue_name=queue_name)
    assert decoded.rules[0]["when"] == {
        "field": "conversation.msdyn_createdon",
        "op": "greaterThan",
        "value": "2026-08-01T00:00:00Z",
    }


def test_reads_a_split_over_braced_guids_and_nested_groups() -> None:
    names = {
        "c8b65393-839f-f111-aaad-70a8a5b10059": "general",
        "e11e9f11-2bad-f111-aaac-70a8a5b10059": "overflow",
    }
    decoded = decode(
        real("vrt-rtq-percentage-split-context-variable.xml"), queue_name=names.__getitem__
    )
    assert decoded.rules == [
        {
            "name": "Route to Default Contoso Queue",
            "when": {"field": "context.PreferredLanguage", "op": "equals", "value": "NL"},
            "routeTo": [{"queue": "general", "percent": 80}, {"queue": "overflow", "percent": 20}],
        }
    ]


def test_reads_the_alm_route_to_queue_set() -> None:
    decoded = decode(real("alm-chat-route-to-queue.xml"), queue_name=queue_name)
    assert decoded.hit_policy == "all"
    assert decoded.rules[0]["when"] == {"field": "conversation.msdyn_createdon", "op": "isNotNull"}
    assert str(decoded.rules[0]["routeTo"]).startswith("<")
    assert decoded.unreadable == []


def test_reads_a_classification_setting_a_conversation_attribute() -> None:
    decoded = decode(real("vrt-classification-priorityscore-by-contact.xml"), queue_name=queue_name)
    assert decoded.hit_policy == "first"
    # Its condition follows a relationship from the conversation to a contact: no manifest
    # field names that, so the rule is reported by name, never guessed at.
    assert decoded.rules == []
    [(name, why)] = decoded.unreadable
    assert name == "rule2"
    assert why.startswith("it tests 'msdyn_ocliveworkitem.msdyn_customer_msdyn_ocliveworkitem")
    assert why.endswith("which manifests cannot name")


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("alm-chat-work-classification-two-characteristics.xml", "attaches skills"),
        ("vrt-prequeue-overflow-two-rules.xml", "tests 'queue_prequeue."),
        ("vrt-inqueue-overflow-bare-conditions-unit-seconds.xml", "tests 'queue_inqueue."),
    ],
)
def test_rules_manifests_cannot_say_are_reported_by_name(fixture: str, reason: str) -> None:
    decoded = decode(real(fixture), queue_name=queue_name)
    assert decoded.rules == []
    assert decoded.unreadable
    assert all(reason in why for _, why in decoded.unreadable)


def test_bare_conditions_after_the_action_are_one_and_group_and_a_unit_is_reported() -> None:
    xml = real("vrt-inqueue-overflow-bare-conditions-unit-seconds.xml").replace(
        "overflow.lapsedwaittimeoverflow", "liveworkitemcontext.Overflow"
    )
    xml = re.sub(
        r"<setattribute>\s*<lhs type=\"attribute\">overflowaction.*?</setattribute>",
        "",
        xml,
        flags=re.S,
    )
    xml = xml.replace("queue_inqueue.lapsedwaittime", "msdyn_ocliveworkitem.msdyn_waittime")
    decoded = decode(xml, queue_name=queue_name)
    assert decoded.unreadable == [
        ("Rule1", "it compares with a value in 'seconds', which manifests cannot say")
    ]
    decoded = decode(xml.replace(' unit="seconds"', ""), queue_name=queue_name)
    assert decoded.rules == [
        {
            "name": "Rule1",
            "when": {
                "all": [
                    {"field": "conversation.msdyn_waittime", "op": "isNotNull"},
                    {"field": "conversation.msdyn_waittime", "op": "greaterOrEqual", "value": 30},
                ]
            },
            "set": {"Overflow": True},
        }
    ]


def test_reads_or_nested_in_and_upper_case_braced_guids_and_reports_the_rest() -> None:
    xml = real("pptb-rtq-or-nested-in-and-context-variables.xml").replace(
        "<decision>", '<decision hit-policy="all" version="1">'
    )
    guid = "ad696126-1c64-f111-a825-7ced8d2c35f6"
    decoded = decode(
        xml.replace("x.y", "msdyn_ocliveworkitem.msdyn_title"),
        queue_name={guid: "jane"}.__getitem__,
    )
    assert decoded.rules == [
        {
            "name": "Advisor - Jane Doe",
            "when": {
                "all": [
                    {
                        "field": "context.advisorEmail",
                        "op": "equals",
                        "value": "jane.doe@CONTOSO.COM",
                    },
                    {
                        "any": [
                            {"field": "context.segment", "op": "equals", "value": "Premium"},
                            {"field": "conversation.msdyn_title", "op": "isNotNull"},
                        ]
                    },
                ]
            },
            "routeTo": "jane",
        }
    ]
    assert decoded.unreadable == [("route to agent", "unknown element <orderby> in <action>")]


def test_reads_an_in_list_as_any_of_equals() -> None:
    fragment = real("pptb-assignment-presence-in-multistaticvalues-fragment.xml")
    condition = re.search(r"<condition.*</condition>", fragment, re.S)
    assert condition is not None
    body = condition.group().replace(
        "agent.basePresenceStatus", "msdyn_ocliveworkitem.msdyn_status"
    )
    action = to_xml([route(None, "m")]).split("<action>")[1].split("</action>")[0]
    xml = to_xml([]).replace(
        "<rules/>", f'<rules><rule id="m" name="m">{body}<action>{action}</action></rule></rules>'
    )
    assert decode(xml, queue_name=queue_name).rules[0]["when"] == {
        "any": [
            {"field": "conversation.msdyn_status", "op": "equals", "value": 192360001},
            {"field": "conversation.msdyn_status", "op": "equals", "value": 192360000},
        ]
    }


def test_an_unknown_logical_operator_or_condition_operator_is_reported_by_rule() -> None:
    xml = to_xml([route(NL, "one"), route(EN, "two")])
    context = '<condition operator="=="><lhs type="attribute">liveworkitemcontext'
    xml = xml.replace(f'<logical operator="AND">{context}', f'<logical operator="NOT">{context}')
    xml = xml.replace(
        'operator="=="><lhs type="attribute">msdyn_facebook',
        'operator="begins-with"><lhs type="attribute">msdyn_facebook',
    )
    decoded = decode(xml, queue_name=queue_name)
    assert decoded.rules == []
    assert [name for name, _ in decoded.unreadable] == ["one", "two"]
    assert "'NOT'" in decoded.unreadable[0][1]
    assert "'begins-with'" in decoded.unreadable[1][1]


# --- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("not xml", "malformed XML"),
        ('<!DOCTYPE d [<!ENTITY e "x">]><decision/>', "DOCTYPE"),
        ("<rules/>", "expected <decision>"),
        ('<decision hit-policy="some" version="1"><rules/></decision>', "hit-policy"),
        ('<decision hit-policy="all" version="2"><rules/></decision>', "version"),
        ('<decision hit-policy="all" version="1"/>', "one <rules>"),
    ],
)
def test_a_set_of_unknown_shape_is_refused_whole(xml: str, message: str) -> None:
    with pytest.raises(RuleXmlError, match=message):
        decode(xml, queue_name=queue_name)


def test_text_is_escaped_and_characters_xml_cannot_hold_are_refused() -> None:
    hostile = "a<b>&\"c'\n\t\r"
    round_trip([route(leaf("equals", hostile), name=hostile)])
    with pytest.raises(RuleXmlError, match="U\\+0000"):
        to_xml([route(leaf("equals", "a\x00b"))])


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"name": "x", "routeTo": "a", "set": {"A": 1}}], "exactly one"),
        ([{"name": "x"}], "exactly one"),
        ([{"name": "", "routeTo": "a"}], "non-empty"),
        ([{"name": "x", "routeTo": "a", "extra": 1}], "unknown key"),
        ([route(leaf("equals", "a", field="nowhere.x"))], "unknown field"),
        ([route(leaf("equals", None))], "unsupported value"),
        ([{"name": "x", "set": {"a.b": 1}}], "unknown output"),
        ([route(None, to=[{"queue": "a", "percent": "5"}])], "integer percent"),
        ([route(None, to=[])], "non-empty list"),
    ],
)
def test_malformed_rules_are_refused(rules: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(RuleXmlError, match=message):
        to_xml(rules)


LHS = '<lhs type="attribute">msdyn_ocliveworkitem.msdyn_title</lhs>'
RHS = '<rhs type="staticvalue">x</rhs>'
ROUTE = (
    '<action><setattribute><lhs type="attribute">assign_to.queue</lhs>'
    f'<rhs type="staticvalue">{QUEUES["a"]}</rhs></setattribute></action>'
)
SPLIT = (
    "<action><upsertrecords><target>percentagebaseddistribution</target><records>{}"
    "</records></upsertrecords></action>"
)


def _share(queue: str = "{" + QUEUES["a"] + "}", percent: str = "100") -> str:
    return (
        '<record><setattribute><lhs type="attribute">queuedetails.queueid</lhs>'
        f'<rhs type="staticvalue">{queue}</rhs></setattribute><setattribute>'
        '<lhs type="attribute">queuedetails.percentage</lhs>'
        f'<rhs type="staticvalue">{percent}</rhs></setattribute></record>'
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (f'<condition operator="==">{LHS}{RHS}</condition>', "it needs one <action>, found 0"),
        (ROUTE + ROUTE, "it needs one <action>, found 2"),
        (f'<logical operator="AND"/>{ROUTE}', 'empty <logical operator="AND">'),
        (f'<condition operator="==">{RHS}{LHS}</condition>{ROUTE}', "one <lhs> followed by"),
        (f'<condition operator="not-null">{LHS}{RHS}</condition>{ROUTE}', "takes no <rhs>"),
        (
            f'<condition operator="==">{LHS}{RHS}{RHS}</condition>{ROUTE}',
            "needs one <rhs>, found 2",
        ),
        (f'<condition operator="==">{LHS}</condition>{ROUTE}', "needs one <rhs>, found 0"),
        (
            f'<condition operator="=="><lhs type="constant">x</lhs>{RHS}</condition>{ROUTE}',
            "its <lhs> is of type 'constant'",
        ),
        (
            f'<condition operator="==">{LHS}<rhs type="attribute">y</rhs></condition>{ROUTE}',
            "compares with a value of type 'attribute'",
        ),
        (
            f'<condition operator="in">{LHS}<rhs type="staticvalue">x</rhs></condition>{ROUTE}',
            "its 'in' condition compares with a value of type 'staticvalue'",
        ),
        (
            f'<condition operator="in">{LHS}<rhs type="multistaticvalues"/></condition>{ROUTE}',
            "holds no <value>",
        ),
        (
            f'<condition operator="==" extra="1">{LHS}{RHS}</condition>{ROUTE}',
            "unknown attribute 'extra' on <condition>",
        ),
        (f"<condition>{LHS}{RHS}</condition>{ROUTE}", "<condition> has no operator attribute"),
        (
            f'<condition operator="==">{LHS}{RHS}</condition>text{ROUTE}',
            "unexpected text in <rule>",
        ),
        (
            f'<condition operator="=="><lhs type="attribute">a<b/></lhs>{RHS}</condition>{ROUTE}',
            "unknown element <b> in <lhs>",
        ),
        ("<action/>", "its <action> is empty"),
        ("<action><setattribute>" + LHS + "</setattribute></action>", "one <lhs> then one <rhs>"),
        (
            ROUTE.replace("</action>", f"<setattribute>{LHS}{RHS}</setattribute></action>"),
            "writes assign_to.queue and more",
        ),
        (
            ROUTE.replace(QUEUES["a"], "not-a-guid"),
            "'not-a-guid' is not a record id",
        ),
        (
            '<action><setattribute><lhs type="attribute">liveworkitemcontext.A</lhs>'
            + RHS
            + '</setattribute><setattribute><lhs type="attribute">liveworkitemcontext.A</lhs>'
            + RHS
            + "</setattribute></action>",
            "writes 'liveworkitemcontext.A' twice",
        ),
        (
            SPLIT.format(_share()).replace("</upsertrecords>", "</upsertrecords><setattribute/>"),
            "mixes <upsertrecords> with other writes",
        ),
        (SPLIT.format("").replace("percentagebaseddistribution", "x"), "records of 'x'"),
        (SPLIT.format(""), "holds no <record>"),
        (
            "<action><upsertrecords><records/><target>percentagebaseddistribution</target>"
            "</upsertrecords></action>",
            "one <target> then one <records>",
        ),
        (SPLIT.format(_share(percent="fifty")), "the percentage 'fifty' is not a whole number"),
        (
            SPLIT.format(_share().replace("queuedetails.percentage", "queuedetails.queueid")),
            "needs queuedetails.queueid and queuedetails.percentage, once each",
        ),
    ],
)
def test_a_malformed_rule_is_reported_by_name_with_what_is_wrong(body: str, reason: str) -> None:
    good = to_xml([route(None, "good")])
    xml = good.replace("</rules>", f'<rule id="x" name="bad">{body}</rule></rules>')
    decoded = decode(xml, queue_name=queue_name)
    assert [rule["name"] for rule in decoded.rules] == ["good"]
    [(name, why)] = decoded.unreadable
    assert name == "bad"
    assert reason in why


def test_a_rule_without_a_name_or_an_id_is_reported_by_its_place() -> None:
    xml = to_xml([route(None, "good"), route(None, "second")])
    assert decode(xml.replace('name="good"', 'name=""'), queue_name=queue_name).unreadable == [
        ("#1", "a <rule> has an empty name")
    ]
    no_id = re.sub(r'<rule id="[^"]*" name="second"', '<rule name="second"', xml)
    decoded = decode(no_id, queue_name=queue_name)
    assert [rule["name"] for rule in decoded.rules] == ["good"]
    assert decoded.unreadable == [("second", "<rule> has no id attribute")]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: encode([], hit_policy="some", rule_id=rule_id, queue_id=str), "hit policy"),
        (lambda: to_xml(["not a rule"]), "a rule must be a mapping"),
        (lambda: to_xml([{"routeTo": "a"}]), "a rule has no 'name'"),
        (lambda: to_xml([{"name": "c", "set": {}}], g.HIT_POLICY_CLASSIFY), "sets no output"),
        (lambda: to_xml([route({"all": []})]), "non-empty list"),
    ],
)
def test_rules_of_a_shape_no_manifest_has_are_refused(call: Any, message: str) -> None:
    with pytest.raises(RuleXmlError, match=message):
        call()


def test_an_action_writing_what_no_manifest_names_is_reported() -> None:
    body = (
        '<action><setattribute><lhs type="attribute">overflow.x</lhs>'
        + RHS
        + "</setattribute></action>"
    )
    xml = to_xml([]).replace("<rules/>", f'<rules><rule id="x" name="o">{body}</rule></rules>')
    assert decode(xml, queue_name=queue_name).unreadable == [
        ("o", "it writes 'overflow.x', which manifests cannot name")
    ]


def test_conditions_nesting_past_the_interpreter_are_reported_not_raised() -> None:
    depth = 5000
    body = '<logical operator="AND">' * depth + f'<condition operator="not-null">{LHS}</condition>'
    body += "</logical>" * depth + ROUTE
    xml = to_xml([]).replace("<rules/>", f'<rules><rule id="x" name="deep">{body}</rule></rules>')
    assert decode(xml, queue_name=queue_name).unreadable == [
        ("deep", "its conditions nest too deep")
    ]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("x", "a condition must be a mapping"),
        ({"all": []}, "'all' needs a non-empty list"),
        ({"field": "f"}, "needs an operator"),
        ({"field": "f", "op": "in", "value": []}, "'in' needs a non-empty list"),
    ],
)
def test_conditions_of_no_manifest_shape_are_refused(condition: Any, message: str) -> None:
    with pytest.raises(conditions.ConditionError, match=message):
        conditions.normalise(condition)


def test_outputs_must_be_a_mapping() -> None:
    with pytest.raises(conditions.ConditionError, match="must be a mapping"):
        conditions.canonical_rule({"name": "c", "set": ["x"]})
