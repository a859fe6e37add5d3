"""What real orgs hold, read in manifest terms: the rows and XML of tests/fixtures/realorg/.

Each fixture names its source (the ALM export, VRT captures, PPTB tests); see its README.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.mapping import contractxml
from reconciler.mapping import kinds as k
from reconciler.mapping.fields import Resolver
from reconciler.mapping.rulexml import RuleXmlError, decode, written_by_an_earlier_version

REALORG = Path(__file__).parents[1] / "fixtures" / "realorg"
OUTPUT_CONTRACT = "00000000-0000-0000-0000-00000000c0de"  # the placeholder the rows use


def rows(entity_set: str) -> list[dict[str, Any]]:
    data = json.loads((REALORG / "rows" / f"{entity_set}.json").read_text(encoding="utf-8"))
    return [{k: v for k, v in row.items() if k != "_source"} for row in data["value"]]


def resolver() -> Resolver:
    found = Resolver(output_contract=OUTPUT_CONTRACT)
    for row in rows("msdyn_liveworkstreams"):
        address = f"Workstream/{row['msdyn_liveworkstreamid'][:8]}"
        found.add(address, row["msdyn_liveworkstreamid"])
        found.add(f"{address}/contract", row["_msdyn_routingcontractid_value"])
    return found


def test_the_kind_of_each_real_rule_set_is_read_from_its_contracts() -> None:
    kinds = {
        row["msdyn_name"]: k.rule_set_type(row, resolver())
        for row in rows("msdyn_decisionrulesets")
    }
    assert kinds == {
        "ALM Test Chat Work Classification Ruleset": "classification",
        "ALM Chat Work Classification": "classification",
        "ALM Chat Route To Queue": "route-to-queue",
        "ALM Test Chat Route-to-queues Ruleset": "route-to-queue",
    }
    assert {row["msdyn_rulesettype"] for row in rows("msdyn_decisionrulesets")} == {
        k.RULE_SET_DECLARATIVE
    }


def test_real_rule_set_rows_read_in_manifest_terms() -> None:
    found = resolver()
    read = {
        row["msdyn_name"]: k.RULE_SET.from_row(row, found) for row in rows("msdyn_decisionrulesets")
    }
    route = read["ALM Chat Route To Queue"]
    assert route["type"] == "route-to-queue"
    assert route["outputContract"] == k.QUEUE_OUTPUT
    assert route["rules"] == [
        {
            "name": "ALM Rule 1",
            "when": {"field": "conversation.msdyn_createdon", "op": "isNotNull"},
            "routeTo": "<bbc3a88b-901f-f011-9989-00224803a19b>",
        }
    ]
    # The ALM classification sets attach skills: said by rule name, never guessed at.
    skills = read["ALM Chat Work Classification"]
    assert skills["type"] == "classification"
    assert isinstance(skills["rules"], k.Unreadable)
    assert "rule 'ALM Chat Work Classification Rule': it attaches skills" in skills["rules"]


def test_real_steps_and_routing_configurations_read_in_manifest_terms() -> None:
    steps = {
        row["msdyn_steporder"]: row["msdyn_type"] for row in rows("msdyn_routingconfigurationsteps")
    }
    assert steps == {1: k.STEP_TYPES["classification"], 2: k.STEP_TYPES["route-to-queue"]}
    for row in rows("msdyn_routingconfigurations"):
        assert k.ROUTING_CONFIGURATION.from_row(row, resolver())["active"] is True


@pytest.mark.parametrize(
    "path", sorted((REALORG / "contracts").glob("*.xml")), ids=lambda p: p.name
)
def test_real_contracts_read_as_their_variables(path: Path) -> None:
    contract = contractxml.decode(path.read_text(encoding="utf-8"))
    assert contract.channel_contexts == ("msdyn_livechatengagementctx",)
    assert contract.variables
    assert set(contract.variables.values()) == {"text"}


def test_a_real_contract_row_reads_as_its_channel_and_variables() -> None:
    row = next(
        r for r in rows("msdyn_decisioncontracts") if "Name" in r["msdyn_contractdefinition"]
    )
    read = k.CONTRACT.from_row(row, resolver())
    assert read["contextVariables"] == {"Name": "text"}
    assert read["channel"] == "chat"  # a chat workstream's contract: the chat channel's context


def test_what_we_write_for_a_contract_reads_back_the_same() -> None:
    xml = contractxml.encode("msdyn_facebookengagementctx", {"Language": "text", "Segment": "text"})
    real = (REALORG / "contracts" / "alm-test-chat-workstream-contract.xml").read_text()
    ours = contractxml.decode(xml)
    assert ours.variables == {"Language": "text", "Segment": "text"}
    assert ours.channel_contexts == ("msdyn_facebookengagementctx",)
    # The same elements and attributes as the real one, the channel's context swapped in.
    swapped = real.replace("msdyn_livechatengagementctx", "msdyn_facebookengagementctx")
    assert contractxml.decode(swapped).channel_contexts == ours.channel_contexts
    assert "<complex" not in contractxml.encode("msdyn_facebookengagementctx", {})


@pytest.mark.parametrize(
    ("variables", "message"),
    [({"Score": "number"}, "no real export shows"), ({"a b": "text"}, "not a context variable")],
)
def test_a_contract_we_cannot_write_is_refused(variables: dict[str, str], message: str) -> None:
    with pytest.raises(RuleXmlError, match=message):
        contractxml.encode(None, variables)


@pytest.mark.parametrize("path", sorted((REALORG / "rulesets").glob("*.xml")), ids=lambda p: p.name)
def test_every_real_rule_set_is_read_or_its_rules_reported_by_name(path: Path) -> None:
    xml = path.read_text(encoding="utf-8")
    if "<decision" not in xml or 'version="1"' not in xml:
        pytest.skip("a hand-written fragment without the <decision> envelope (see its comment)")
    decoded = decode(xml, queue_name=lambda guid: f"<{guid}>")
    names = [rule["name"] for rule in decoded.rules] + [name for name, _ in decoded.unreadable]
    assert sorted(names) == sorted(re.findall(r"<rule id=\"[^\"]*\" name=\"([^\"]*)\"", xml))
    assert all(why for _, why in decoded.unreadable)


@pytest.mark.parametrize("path", sorted((REALORG / "rulesets").glob("*.xml")), ids=lambda p: p.name)
def test_no_real_rule_set_is_taken_for_one_the_first_version_wrote(path: Path) -> None:
    # Only what the first version guessed is rewritten; what real orgs hold is left as it is.
    assert not written_by_an_earlier_version(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "xml",
    [
        '<condition operator="eq"/>',
        '<condition operator="begins-with"/>',
        '<logical operator="NOT"/>',
        '<rhs type="staticvalue" datatype="string">x</rhs>',
        '<rhs type="percentage"><allocation queue="q" percent="100"/></rhs>',
        '<lhs type="attribute">output.language</lhs>',
    ],
)
def test_what_the_first_version_wrote_is_told_from_real_rules(xml: str) -> None:
    assert written_by_an_earlier_version(f'<decision hit-policy="all" version="1">{xml}</decision>')
