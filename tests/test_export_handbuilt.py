"""Acceptance: an org built by hand through the emulator's Web API, exported, then planned.

The org below is written the way the admin center (or any Dataverse tool) writes one: plain
``POST /api/data/v9.2/<entity set>`` requests against ``reconciler emulator serve``, records
with random ids (none derived from a namespace), odd display names, and every option value the
manifests know. The routing chain is built as real orgs hold it (docs/routing-xml.md, and the
exports under tests/fixtures/realorg/): per workstream a decision contract in the ALM export's
shape declaring the workstream's channel context and its context variables (each also a
``msdyn_ocliveworkstreamcontextvariable`` row), an active routing configuration, rule sets of
type Declarative whose contracts tell their kind, their XML laid out as exported (with only the
eight operators, untyped values, GUIDs bare or braced, in any case), and one step per rule set
(classification steps first, in the order of the rule set names' slugs, the route-to-queue
step last).

Then the real CLI runs: ``reconciler export`` writes the manifests, and ``reconciler plan`` on
them, with the secret variables the README names set in the environment, writes no record: every
record is ``adopt``, without field changes (none was made from a namespace, and the target holds
no ledger of the export's).
Rows the manifests cannot express (a live chat workstream, rule sets holding a rule no manifest
can say: skills, a relationship path, an unknown element; a queue with a custom assignment
strategy) are listed with the reason, naming the rule, and never changed. The seeded default
queue, which has no priority, is exported because a workstream falls back to it. A second
export writes the same bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pytest
import yaml
from served import API, Served

from reconciler.dataverse.tables import TABLES
from reconciler.export.exporter import Export, build_export, default_namespace
from reconciler.export.exporter import variable_values as export_variables
from reconciler.export.files import manifest_files
from reconciler.mapping import kinds as k
from reconciler.mapping import rulegrammar as g
from reconciler.mapping import rulexml
from reconciler.mapping.conditions import canonical_rule
from reconciler.plan.identity import slug
from reconciler.state.reader import Snapshot, read_snapshot
from reconciler.targets import connect, parse_target

TIMEOUT = 60.0
TOKEN = "handbuilt-bearer-token"
RNG_SEED = 20240607
MARK = "MARKER"

# --- the org, as requests -----------------------------------------------------------------------


@dataclass
class Org:
    """What was written, by a short key: entity set, id and the body sent."""

    url: str
    rng: random.Random
    rows: dict[str, tuple[str, str, dict[str, Any]]] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    """Secrets stored in the org, as a user sets them (``row key/field`` → value)."""
    leaks: list[str] = field(default_factory=list)
    """Further forms of secrets (base64, halves) that may appear in no output either."""
    languages: dict[str, str] = field(default_factory=dict)
    output_contract: str = ""
    default_messaging_queue: str = ""

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def secret(self, key: str, path: str) -> str:
        """A marker secret for field ``path`` of row ``key``, remembered as ``key/path``."""
        value = f"{MARK}-{key}-{path}-{self.rng.getrandbits(64):016x}"
        self.secrets[f"{key}/{path}"] = value
        return value

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {TOKEN}",
            "Accept": "application/json",
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
        }

    def get(self, path: str, **params: str) -> dict[str, Any]:
        answer = httpx.get(
            f"{self.url}{API}{path}",
            params=params or None,
            headers=self.headers(),
            timeout=TIMEOUT,
            trust_env=False,
        )
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data

    def post(self, key: str, entity_set: str, primary_key: str, body: dict[str, Any]) -> str:
        """Create a row with a random id; ``key`` names it in the test."""
        assert key not in self.rows, key
        record_id = self.new_id()
        answer = httpx.post(
            f"{self.url}{API}{entity_set}",
            json={primary_key: record_id, **body},
            headers=self.headers(),
            timeout=TIMEOUT,
            trust_env=False,
        )
        assert answer.status_code == 204, (key, answer.status_code, answer.text)
        assert record_id in answer.headers["OData-EntityId"]
        self.rows[key] = (entity_set, record_id, body)
        return record_id

    def id(self, key: str) -> str:
        return self.rows[key][1]

    def bind(self, key: str) -> str:
        entity_set, record_id, _ = self.rows[key]
        return f"/{entity_set}({record_id})"

    def read(self, key: str) -> dict[str, Any]:
        entity_set, record_id, _ = self.rows[key]
        return self.get(f"{entity_set}({record_id})")


def _queue(org: Org, key: str, name: str, **columns: Any) -> None:
    org.post(
        key,
        "queues",
        "queueid",
        {"name": name, "msdyn_isomnichannelqueue": True, **columns},
    )


MESSAGING, RECORD, VOICE = 192350000, 192350001, 192350002
HIGHEST, ROUND_ROBIN, CUSTOM, LONGEST_IDLE = 192350000, 192350001, 192350002, 192350003
FACEBOOK, GBM, LIVE_CHAT = 192330000, 192450001, 192360000
PUSH, PICK = 192350000, 192350001
DECLARATIVE = k.RULE_SET_DECLARATIVE  # msdyn_rulesettype of both kinds (docs/routing-xml.md)
TEXT = k.VARIABLE_TYPES["text"]  # msdyn_ocliveworkstreamcontextvariable.msdyn_datatype
ALL_PRESENCES = "192360000,192360001,192360002,192360003,192360004"

LONG_QUEUE = (
    "Escalations for enterprise customers whose contracts include the premium support add-on"
)
LONG_WORKSTREAM = (
    "Google Business Messages for every store in the Benelux region, weekdays and weekends"
)

# Rule sets: key → (workstream key, type, display name, rules in JSON form with queue keys).
# Written with every form a manifest has (``not``, ``in``, ``notIn``, nested groups, a rule
# with no ``when``); once ``not`` is pushed down and ``in`` spelled out, each of the eight
# operators real orgs hold is used (docs/routing-xml.md). Classification rules set context
# variables of their workstream (bare names) or conversation attributes.
TIER = {"field": "conversation.msdyn_customer_tier", "op": "equals", "value": 1}
RULE_SETS: dict[str, tuple[str, str, str, list[dict[str, Any]]]] = {
    "fb1-zeta": (
        "ws-fb1",
        "classification",
        "Zeta triage «VIP»",
        [
            {
                "name": "VIP",
                "when": TIER,
                "set": {"Tier": "vip", "conversation.msdyn_priorityscore": 1},
            },
            {
                "name": "Dutch speakers: ${NOT_A_VAR}",
                "when": {
                    "any": [
                        {"field": "facebook.locale", "op": "contains", "value": "nl"},
                        {"field": "facebook.locale", "op": "in", "value": ["fy-NL", "nl-BE"]},
                    ]
                },
                "set": {"Language": "nl", "Score": 2.5, "Vip": False},
            },
        ],
    ),
    "fb1-alpha": (
        "ws-fb1",
        "classification",
        "# Alpha flags",
        [
            {
                "name": "Known",
                "when": {"not": {"field": "facebook.customerName", "op": "isNull"}},
                "set": {"Known": True},
            },
            {
                "name": "Business customers",
                "when": {
                    "all": [
                        {
                            "any": [
                                {
                                    "field": "facebook.customerName",
                                    "op": "contains",
                                    "value": "B.V.",
                                },
                                {
                                    "field": "facebook.customerName",
                                    "op": "contains",
                                    "value": " GmbH",
                                },
                            ]
                        },
                        {
                            "not": {
                                "field": "facebook.timezone",
                                "op": "notIn",
                                "value": ["Europe/Amsterdam", "Europe/Brussels", "Europe/Berlin"],
                            }
                        },
                        {
                            "not": {
                                "field": "conversation.msdyn_spend",
                                "op": "lessThan",
                                "value": 100,
                            }
                        },
                    ]
                },
                "set": {"Segment": "b2b", "Weight": 0.75},
            },
        ],
    ),
    "fb1-route": (
        "ws-fb1",
        "route-to-queue",
        "Routing \u2013 België",
        [
            {
                "name": "VIP first",
                "when": {
                    "all": [
                        {"field": "context.Tier", "op": "equals", "value": "vip"},
                        {
                            "not": {
                                "field": "conversation.msdyn_waittime",
                                "op": "greaterThan",
                                "value": 60,
                            }
                        },
                    ]
                },
                "routeTo": "q-belgie",
            },
            {
                "name": "Dutch split",
                "when": {"field": "context.Language", "op": "equals", "value": "nl"},
                "routeTo": [
                    {"queue": "q-belgie", "percent": 70},
                    {"queue": "q-support-bang", "percent": 20},
                    {"queue": "q-support", "percent": 10},
                ],
            },
            {
                "name": "Page users",
                "when": {
                    "field": "facebook.userPageScopedId",
                    "op": "notEquals",
                    "value": "0",
                },
                "routeTo": "q-cjk",
            },
            {"name": "Everyone else", "routeTo": "q-support"},
        ],
    ),
    "fb2-triage": (
        "ws-fb2",
        "route-to-queue",
        "Triage!",
        [
            {
                "name": "Big spenders",
                "when": {"field": "conversation.msdyn_spend", "op": "greaterThan", "value": 1000},
                "routeTo": "q-support-bang",
            },
            {
                "name": "Small spenders",
                "when": {"field": "conversation.msdyn_spend", "op": "lessThan", "value": 10.5},
                "routeTo": "q-null",
            },
        ],
    ),
    "gbm1-classify": (
        "ws-gbm1",
        "classification",
        "triage",
        [
            {
                "name": "From Maps",
                "when": {
                    "field": "googleBusinessMessages.entryPoint",
                    "op": "equals",
                    "value": "PLACESHEET",
                },
                "set": {"Region": "eu", "Weight": 3, "Maps": True},
            },
            {
                "name": "German devices",
                "when": {
                    "any": [
                        {
                            "field": "googleBusinessMessages.userDeviceLocale",
                            "op": "contains",
                            "value": "de",
                        },
                        {
                            "field": "googleBusinessMessages.resolvedLocale",
                            "op": "in",
                            "value": ["de-DE", "de-AT", "de-CH"],
                        },
                    ]
                },
                "set": {"Region": "dach", "Weight": 1.5},
            },
        ],
    ),
    "gbm1-route": (
        "ws-gbm1",
        "route-to-queue",
        "🤖 Bot routing",
        [
            {
                "name": "Place",
                "when": {"field": "googleBusinessMessages.placeId", "op": "isNotNull"},
                "routeTo": [
                    {"queue": "q-emoji", "percent": 50},
                    {"queue": "q-null", "percent": 50},
                ],
            },
            {
                "name": "DACH",
                "when": {"field": "context.Region", "op": "equals", "value": "dach"},
                "routeTo": "q-var",
            },
        ],
    ),
    "gbm2-empty": ("ws-gbm2", "classification", "Nothing yet", []),
    "live-route": (
        "ws-live",
        "route-to-queue",
        "Live chat routing",
        [{"name": "All", "when": TIER, "routeTo": "q-belgie"}],
    ),
}
# Each workstream's context variables, in the order its contract declares them (the admin
# center keeps no order: the ALM contract lists QuestionTwo before QuestionOne). Those its
# classification rules set, and for ws-gbm2 one no rule uses.
CONTEXT_VARIABLES = {
    "ws-fb1": ["Weight", "Vip", "Tier", "Segment", "Score", "Language", "Known"],
    "ws-gbm1": ["Weight", "Region", "Maps"],
    "ws-gbm2": ["StoreCode"],
    "ws-chat": ["Topic"],
}
# Rule sets the reconciler cannot read, as real orgs hold them: key → (workstream key, type,
# display name, XML, the exact reason export gives for skipping it).
UNKNOWN_XML = (
    '<decision hit-policy="all" version="1"><rules><rule id="r1" name="Scripted">'
    '<script language="js">route()</script></rule></rules></decision>'
)
REALORG = Path(__file__).parent / "fixtures" / "realorg"


def realorg(folder: str, fixture: str) -> str:
    """A file of tests/fixtures/realorg/ as the org holds it: its source comment dropped."""
    text = (REALORG / folder / fixture).read_text(encoding="utf-8")
    return text[text.index("-->") + 3 :].lstrip("\n")


UNREADABLE: dict[str, tuple[str, str, str, str, str]] = {
    "fb3-unknown": (
        "ws-fb3",
        "route-to-queue",
        "Scripted routing",
        UNKNOWN_XML,
        "its rules cannot be said in a manifest: rule 'Scripted': unknown element <script> in "
        "<rule>",
    ),
    "fb3-skills": (
        "ws-fb3",
        "classification",
        "Skills",
        realorg("rulesets", "alm-chat-work-classification-two-characteristics.xml"),
        "its rules cannot be said in a manifest: rule 'ALM Chat Work Classification Rule': it "
        "attaches skills (msdyn_ocliveworkitemcharacteristic), which manifests cannot say",
    ),
    "fb3-contact": (
        "ws-fb3",
        "classification",
        "Contact priority",
        realorg("rulesets", "vrt-classification-priorityscore-by-contact.xml"),
        "its rules cannot be said in a manifest: rule 'rule2': it tests "
        "'msdyn_ocliveworkitem.msdyn_customer_msdyn_ocliveworkitem_...', which manifests "
        "cannot name",
    ),
}
# The channel engagement context each channel's contract declares (docs/routing-xml.md).
CHANNEL_CONTEXTS = {
    FACEBOOK: g.CHANNEL_CONTEXTS["facebook"],
    GBM: g.CHANNEL_CONTEXTS["googleBusinessMessages"],
    LIVE_CHAT: "msdyn_livechatengagementctx",
}


def as_exported(xml: str) -> str:
    """XML laid out as the ALM export and the VRT captures hold it: two spaces of indentation
    per level, an element without children on one line, ``<empty />``, ``>`` left as it is
    in attributes (``operator=">="``)."""

    def lines(element: ET.Element, depth: int) -> list[str]:
        pad = "  " * depth
        attrs = "".join(
            f' {key}="{escape(value, {chr(34): "&quot;"}).replace("&gt;", ">")}"'
            for key, value in element.attrib.items()
        )
        if len(element):
            inner = [line for child in element for line in lines(child, depth + 1)]
            return [f"{pad}<{element.tag}{attrs}>", *inner, f"{pad}</{element.tag}>"]
        if element.text:
            return [f"{pad}<{element.tag}{attrs}>{escape(element.text)}</{element.tag}>"]
        return [f"{pad}<{element.tag}{attrs} />"]

    return "\n".join(lines(ET.fromstring(xml), 0))


def contract_xml(source: int, variables: list[str]) -> str:
    """A workstream's contract as the admin center writes it: the ALM workstream contract
    (tests/fixtures/realorg/contracts/), with the workstream's channel context in its live
    chat context's place (docs/routing-xml.md) and its context variables."""
    context = CHANNEL_CONTEXTS[source]
    entities = "".join(
        f'<entity logical-name="{name}" key="{name}"'
        + (' is-collection="true"' if collection else "")
        + "/>"
        for name, collection in (
            ("msdyn_ocliveworkitem", False),
            ("msdyn_effortpredictionresult", False),
            (context, False),
            ("msdyn_ocliveworkitemcharacteristic", True),
            ("msdyn_ocliveworkitemcapacityprofile", True),
        )
    )
    declared = "".join(f'<variable name="{n}" data-type="string"/>' for n in variables)
    complex_ = f'<complex key="liveworkitemcontext">{declared}</complex>' if variables else ""
    return as_exported(f'<contract version="1">{entities}{complex_}</contract>')


def _rule_xml(org: Org, kind: str, rules: list[dict[str, Any]], shout: bool) -> str:
    """Rules as the admin center writes them: laid out as exported, with GUIDs of its own
    for the rules; ``shout`` writes queue GUIDs in braces and upper case, as real captures
    show GUIDs in any case (docs/routing-xml.md, "What we read")."""
    xml = rulexml.encode(
        rules,
        hit_policy=g.HIT_POLICY_ROUTE if kind == "route-to-queue" else g.HIT_POLICY_CLASSIFY,
        rule_id=lambda _name: org.new_id(),
        queue_id=org.id,
    )
    if shout:
        for entity_set, queue, _ in org.rows.values():
            if entity_set == "queues":
                braced = "{" + queue.upper() + "}"
                xml = xml.replace("{" + queue + "}", queue).replace(queue, braced)
    return as_exported(xml)


def _unique_name(org: Org, prefix: str) -> str:
    return f"{prefix}_{org.rng.getrandbits(48):012x}"


def _workstream(org: Org, key: str, name: str, source: int, fallback: str, **columns: Any) -> None:
    """A workstream with its decision contract (declaring its context variables, each also a
    ``msdyn_ocliveworkstreamcontextvariable`` row) and active routing configuration."""
    variables = CONTEXT_VARIABLES.get(key, [])
    org.post(
        f"{key}/contract",
        "msdyn_decisioncontracts",
        "msdyn_decisioncontractid",
        {
            "msdyn_name": f"Contract {org.rng.getrandbits(32):08x}",
            "msdyn_uniquename": _unique_name(org, "new_contract"),
            "msdyn_contractdefinition": (
                # The widgetless live chat workstream holds the ALM contract as exported.
                realorg("contracts", "alm-chat-workstream-contract.xml")
                if key == "ws-live"
                else contract_xml(source, variables)
            ),
        },
    )
    org.post(
        key,
        "msdyn_liveworkstreams",
        "msdyn_liveworkstreamid",
        {
            "msdyn_name": name,
            "msdyn_streamsource": source,
            "msdyn_defaultqueue@odata.bind": fallback,
            "msdyn_routingcontractid@odata.bind": org.bind(f"{key}/contract"),
            "msdyn_capacityformat": 192350000,
            "msdyn_direction": 0,
            "msdyn_mode": 717210001,
            "msdyn_conversationmode": 192350001,
            **columns,
        },
    )
    for variable in [*variables, *(["Name"] if key == "ws-live" else [])]:
        org.post(
            f"{key}/context.{variable}",
            "msdyn_ocliveworkstreamcontextvariables",
            "msdyn_ocliveworkstreamcontextvariableid",
            {
                "msdyn_name": variable,
                "msdyn_datatype": TEXT,
                "msdyn_liveworkstreamid@odata.bind": org.bind(key),
            },
        )
    org.post(
        f"{key}/routing",
        "msdyn_routingconfigurations",
        "msdyn_routingconfigurationid",
        {
            "msdyn_name": f"{name[:60]} routing",
            "msdyn_uniquename": _unique_name(org, "new_routing"),
            "msdyn_liveworkstreamid@odata.bind": org.bind(key),
            "msdyn_isactiveconfiguration": True,
        },
    )


def _rule_sets(org: Org, workstream: str, shout: bool = False) -> None:
    """The rule sets of ``workstream`` (readable, then those of ``UNREADABLE``) and their
    steps, in the order the admin center runs them. Every set is Declarative; its output
    contract tells its kind (the ALM export's ``msdyn_decisionruleset.xml``)."""
    mine = [
        (key, kind, display, _rule_xml(org, kind, rules, shout))
        for key, (ws, kind, display, rules) in RULE_SETS.items()
        if ws == workstream
    ]
    mine += [
        (key, kind, display, xml)
        for key, (ws, kind, display, xml, _why) in UNREADABLE.items()
        if ws == workstream
    ]
    mine.sort(key=lambda item: (item[1] == "route-to-queue", slug(item[2])))
    for order, (key, kind, display, xml) in enumerate(mine, start=1):
        route = kind == "route-to-queue"
        org.post(
            key,
            "msdyn_decisionrulesets",
            "msdyn_decisionrulesetid",
            {
                "msdyn_name": display,
                "msdyn_uniquename": _unique_name(org, "new_ruleset"),
                "msdyn_authoringmode": 192350000,
                "msdyn_isinputcollection": False,
                "msdyn_rulesettype": DECLARATIVE,
                "msdyn_rulesetdefinition": xml,
                "msdyn_inputcontractid@odata.bind": org.bind(f"{workstream}/contract"),
                "msdyn_outputcontractid@odata.bind": (
                    f"/msdyn_decisioncontracts({org.output_contract})"
                    if route
                    else org.bind(f"{workstream}/contract")
                ),
            },
        )
        org.post(
            f"{key}/step",
            "msdyn_routingconfigurationsteps",
            "msdyn_routingconfigurationstepid",
            {
                "msdyn_name": f"Step {order}",
                "msdyn_uniquename": _unique_name(org, "new_step"),
                "msdyn_routingconfigurationid@odata.bind": org.bind(f"{workstream}/routing"),
                "msdyn_rulesetid@odata.bind": org.bind(key),
                "msdyn_steporder": order,
                "msdyn_type": k.STEP_TYPES[kind],
            },
        )


def _key_file(org: Org) -> str:
    """A service account key whose base64 needs both credential columns (> 4000 characters)."""
    body = base64.b64encode(org.rng.randbytes(2400)).decode("ascii")
    return (
        json.dumps(
            {
                "type": "service_account",
                "project_id": "contoso-gbm",
                "private_key_id": f"{MARK}-key-id-{org.rng.getrandbits(64):016x}",
                "private_key": "-----BEGIN PRIVATE KEY-----\n"
                + "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
                + "\n-----END PRIVATE KEY-----\n",
                "client_email": "bm-partner@contoso-gbm.iam.gserviceaccount.com",
            },
            indent=2,
        )
        + "\n"
    )


def build_org(org: Org) -> None:
    org.languages = {
        row["msdyn_localecode"]: row["msdyn_oclanguageid"]
        for row in org.get("msdyn_oclanguages")["value"]
    }
    (contract,) = org.get(
        "msdyn_decisioncontracts",
        **{"$filter": "msdyn_uniquename eq 'msdyn_demandqueueidentificationoutput'"},
    )["value"]
    org.output_contract = contract["msdyn_decisioncontractid"]
    (default,) = [
        row
        for row in org.get("queues")["value"]
        if row["name"] == "Default messaging queue" and row["msdyn_isdefaultqueue"]
    ]
    org.default_messaging_queue = default["queueid"]
    assert default["msdyn_priority"] is None  # the seed gives it none
    # The org's own queue, not written by the test (no body): a workstream falls back to it.
    org.rows["q-default"] = ("queues", default["queueid"], {})

    # Queues: every type, assignment and visibility; maxSize 0 and null; odd names.
    _queue(
        org,
        "q-belgie",
        "Klantenservice \u2013 België",
        msdyn_queuetype=MESSAGING,
        msdyn_priority=1,
        msdyn_assignmentstrategy=HIGHEST,
        queueviewtype=0,
        msdyn_maxqueuesize=0,
        description="Vlaamse klanten: 'quoted', \"double\" & <angled> ${NOT_A_VAR}\n2nd line",
    )
    _queue(
        org,
        "q-support-bang",
        "Support!",
        msdyn_queuetype=MESSAGING,
        msdyn_priority=2,
        msdyn_assignmentstrategy=ROUND_ROBIN,
        queueviewtype=1,
        msdyn_maxqueuesize=None,
    )
    _queue(
        org,
        "q-support",
        "support",
        msdyn_queuetype=MESSAGING,
        msdyn_priority=3,
        msdyn_assignmentstrategy=LONGEST_IDLE,
        queueviewtype=0,
        msdyn_maxqueuesize=25,
    )
    _queue(
        org, "q-123", "123", msdyn_queuetype=RECORD, msdyn_priority=4,
        msdyn_assignmentstrategy=LONGEST_IDLE, queueviewtype=1,
    )  # fmt: skip
    _queue(
        org, "q-true", "true", msdyn_queuetype=VOICE, msdyn_priority=5,
        msdyn_assignmentstrategy=ROUND_ROBIN, queueviewtype=0, msdyn_maxqueuesize=7,
    )  # fmt: skip
    _queue(
        org, "q-null", "null", msdyn_queuetype=MESSAGING, msdyn_priority=6,
        msdyn_assignmentstrategy=HIGHEST, queueviewtype=0,
    )  # fmt: skip
    _queue(
        org, "q-cjk", "客服", msdyn_queuetype=MESSAGING, msdyn_priority=7,
        msdyn_assignmentstrategy=HIGHEST, queueviewtype=1, description="中文客服",
    )  # fmt: skip
    _queue(
        org, "q-emoji", "🎧 Headsets & “smart” quotes", msdyn_queuetype=MESSAGING,
        msdyn_priority=8, msdyn_assignmentstrategy=ROUND_ROBIN, queueviewtype=0,
    )  # fmt: skip
    _queue(
        org, "q-colon", ": colon", msdyn_queuetype=MESSAGING, msdyn_priority=9,
        msdyn_assignmentstrategy=LONGEST_IDLE, queueviewtype=0,
    )  # fmt: skip
    _queue(
        org, "q-hash", "# hash", msdyn_queuetype=RECORD, msdyn_priority=10,
        msdyn_assignmentstrategy=HIGHEST, queueviewtype=1,
    )  # fmt: skip
    _queue(
        org, "q-var", "${NOT_A_VAR}", msdyn_queuetype=MESSAGING, msdyn_priority=11,
        msdyn_assignmentstrategy=HIGHEST, queueviewtype=0,
    )  # fmt: skip
    _queue(
        org, "q-long", LONG_QUEUE, msdyn_queuetype=MESSAGING, msdyn_priority=12,
        msdyn_assignmentstrategy=ROUND_ROBIN, queueviewtype=0, msdyn_maxqueuesize=1000,
    )  # fmt: skip
    _queue(
        org, "q-long-2", f"{LONG_QUEUE} (backup)", msdyn_queuetype=MESSAGING, msdyn_priority=14,
        msdyn_assignmentstrategy=HIGHEST, queueviewtype=1,
    )  # fmt: skip
    # Not expressible: a custom assignment strategy has no manifest word.
    _queue(
        org, "q-custom", "Custom assignment", msdyn_queuetype=MESSAGING, msdyn_priority=13,
        msdyn_assignmentstrategy=CUSTOM, queueviewtype=0,
    )  # fmt: skip

    # Workstreams, each with its contract and routing configuration, and their rule sets.
    _workstream(
        org, "ws-fb1", "Klantenservice \u2013 België", FACEBOOK, org.bind("q-belgie"),
        msdyn_workdistributionmode=PUSH, msdyn_capacityrequired=10,
        msdyn_maxconcurrentconnection=3, msdyn_enableagentaffinity=True,
        msdyn_autocloseafterinactivity=2880, msdyn_allowedpresences=ALL_PRESENCES,
        msdyn_enableautomatedmessages=True,
    )  # fmt: skip
    _workstream(
        org, "ws-fb2", "Support!", FACEBOOK, org.bind("q-support"),
        msdyn_workdistributionmode=PUSH, msdyn_capacityrequired=0,
        msdyn_maxconcurrentconnection=1, msdyn_enableagentaffinity=False,
        msdyn_autocloseafterinactivity=120, msdyn_allowedpresences="192360003",
        msdyn_enableautomatedmessages=False,
    )  # fmt: skip
    _workstream(
        org, "ws-fb3", "support", FACEBOOK, org.bind("q-null"),
        msdyn_workdistributionmode=PICK, msdyn_capacityrequired=5,
        msdyn_maxconcurrentconnection=2, msdyn_enableagentaffinity=False,
        msdyn_autocloseafterinactivity=45, msdyn_allowedpresences="192360000,192360002",
        msdyn_enableautomatedmessages=True,
    )  # fmt: skip
    _workstream(
        org, "ws-gbm1", "123", GBM, org.bind("q-emoji"),
        msdyn_workdistributionmode=PUSH, msdyn_capacityrequired=1,
        msdyn_maxconcurrentconnection=4, msdyn_enableagentaffinity=True,
        msdyn_autocloseafterinactivity=720, msdyn_allowedpresences="192360001,192360004",
        msdyn_enableautomatedmessages=False,
    )  # fmt: skip
    _workstream(
        org, "ws-gbm2", LONG_WORKSTREAM, GBM, org.bind("q-long"),
        msdyn_workdistributionmode=PICK, msdyn_capacityrequired=0,
        msdyn_maxconcurrentconnection=1, msdyn_enableagentaffinity=False,
        msdyn_autocloseafterinactivity=None, msdyn_allowedpresences=None,
        msdyn_enableautomatedmessages=True,
    )  # fmt: skip
    # Not expressible: a live chat workstream without a widget.
    _workstream(
        org, "ws-live", "Live chat ✨", LIVE_CHAT, org.bind("q-belgie"),
        msdyn_workdistributionmode=PUSH, msdyn_capacityrequired=1,
        msdyn_maxconcurrentconnection=1, msdyn_autocloseafterinactivity=30,
    )  # fmt: skip
    # A live chat workstream with its widget, as ALM's exported ones are (ALM in
    # reconciler.dataverse.tables): a widget named otherwise than its workstream, a domain.
    _workstream(
        org, "ws-chat", "Web chat", LIVE_CHAT, org.bind("q-support"),
        msdyn_workdistributionmode=PUSH, msdyn_capacityrequired=30,
        msdyn_maxconcurrentconnection=2, msdyn_enableagentaffinity=False,
        msdyn_autocloseafterinactivity=2880, msdyn_allowedpresences=None,
        msdyn_enableautomatedmessages=True, msdyn_conversationmode=192350000,
    )  # fmt: skip
    org.post(
        "widget-chat",
        "msdyn_livechatconfigs",
        "msdyn_livechatconfigid",
        {
            "msdyn_name": "ALMChat",
            "msdyn_widgettitle": "Let's chat",
            "msdyn_widgetsubtitle": "We're Online",
            "msdyn_widgetposition": 192236010,
            "msdyn_widgetthemecolor": 19236002,
            "msdyn_conversationmode": 192350000,
            "msdyn_enablefileattachmentsforcustomers": True,
            "msdyn_enablefileattachmentsforagents": True,
            "msdyn_liveworkstreamid@odata.bind": org.bind("ws-chat"),
            "msdyn_ocwidgetlanguage@odata.bind": f"/msdyn_oclanguages({org.languages['en-US']})",
        },
    )
    org.post(
        "domain-chat",
        "msdyn_livechatwidgetlocations",
        "msdyn_livechatwidgetlocationid",
        {
            "msdyn_name": "Contoso web shop",
            "msdyn_domainvalue": "shop.contoso.com",
            "msdyn_ruletype": 100000000,
            "msdyn_livechatconfigid@odata.bind": org.bind("widget-chat"),
        },
    )
    _workstream(
        org, "ws-default", "Falls back to the default queue", FACEBOOK,
        f"/queues({org.default_messaging_queue})",
        msdyn_workdistributionmode=PUSH, msdyn_capacityrequired=1,
        msdyn_maxconcurrentconnection=1,
    )  # fmt: skip
    _rule_sets(org, "ws-fb1")
    _rule_sets(org, "ws-fb2")
    _rule_sets(org, "ws-fb3")
    _rule_sets(org, "ws-gbm1", shout=True)
    _rule_sets(org, "ws-gbm2")
    _rule_sets(org, "ws-live")

    # Facebook: accounts and their pages, each page serving one workstream in a language.
    org.post(
        "fb-contoso",
        "msdyn_ocfbapplications",
        "msdyn_ocfbapplicationid",
        {
            "msdyn_name": 'Contoso "Facebook" 🚀',
            "msdyn_fbapplicationid": "0123456789012345",
            "msdyn_fbapplicationsecret": org.secret("fb-contoso", "applicationSecret"),
        },
    )
    org.post(
        "fb-fabrikam",
        "msdyn_ocfbapplications",
        "msdyn_ocfbapplicationid",
        {
            "msdyn_name": "null",
            "msdyn_fbapplicationid": "987654321",
            "msdyn_fbapplicationsecret": org.secret("fb-fabrikam", "applicationSecret"),
        },
    )
    pages = [
        ("page-belgie", "fb-contoso", "Klantenservice \u2013 België", "100200300400", "ws-fb1",
         "nl-NL", True, False, True),
        ("page-slash", "fb-contoso", "Support / Hulp  ", "0100200300401", "ws-fb2",
         "en-US", False, True, False),
        ("page-spare", "fb-contoso", "123", "100200300402", None, None, False, False, False),
        ("page-cjk", "fb-fabrikam", "客服", "200300400500", "ws-fb3", "de-DE",
         True, True, True),
        ("page-default", "fb-fabrikam", ": colon", "200300400501", "ws-default", "en-US",
         False, False, False),
    ]  # fmt: skip
    for key, account, name, page_id, ws, locale, customer, agent, tag in pages:
        body: dict[str, Any] = {
            "msdyn_fbpagename": name,
            "msdyn_fbpageid": page_id,
            "msdyn_fbpageaccesstoken": org.secret(key, "accessToken"),
            "msdyn_ocfbapplicationid@odata.bind": org.bind(account),
            "msdyn_enablefileattachmentsforcustomers": customer,
            "msdyn_enablefileattachmentsforagents": agent,
            "msdyn_enablehumanagenttag": tag,
            "msdyn_postconversationsurveyenable": False,
        }
        if ws is not None and locale is not None:
            body["msdyn_liveworkstreamid@odata.bind"] = org.bind(ws)
            body["msdyn_ocwidgetlanguage@odata.bind"] = (
                f"/msdyn_oclanguages({org.languages[locale]})"
            )
        org.post(key, "msdyn_ocfbpages", "msdyn_ocfbpageid", body)

    # Google's Business Messages: a partner account with a two-column key, and its agents.
    key_text = _key_file(org)
    key_base64 = base64.b64encode(key_text.encode("utf-8")).decode("ascii")
    assert len(key_base64) > 4000
    org.secrets["gbm-contoso/serviceAccountKey"] = key_text
    org.leaks += [key_base64, key_base64[:4000], key_base64[4000:]]
    org.post(
        "gbm-contoso",
        "msdyn_ocgooglebusinessmessagespartneraccounts",
        "msdyn_ocgooglebusinessmessagespartneraccountid",
        {
            "msdyn_name": "Contoso GBM: true",
            "msdyn_partneraccountid": "007-partner",
            "msdyn_partneraccountclienttoken": org.secret("gbm-contoso", "clientToken"),
            "msdyn_credentialfilename": "contoso-key.json",
            "msdyn_base64credentialfilestring": key_base64[:4000],
            "msdyn_base64credentialfilestringcontd": key_base64[4000:],
        },
    )
    agents = [
        ("agent-a", "Store «A» — Ghent", "agent-a-0001", "brand-contoso", "ws-gbm1", "nl-NL",
         True, True, True, True),
        ("agent-b", "true", "agent-b-0002", "brand-contoso", "ws-gbm2", "en-US",
         False, False, False, False),
    ]  # fmt: skip
    for key, name, agent_id, brand, ws, locale, customer, agent, override, token in agents:
        org.post(
            key,
            "msdyn_ocgooglebusinessmessagesagentaccounts",
            "msdyn_ocgooglebusinessmessagesagentaccountid",
            {
                "msdyn_name": name,
                "msdyn_agentid": agent_id,
                "msdyn_brandid": brand,
                "msdyn_agentaccountclienttoken": org.secret(key, "clientToken") if token else None,
                "msdyn_ocgbmpartneraccount@odata.bind": org.bind("gbm-contoso"),
                "msdyn_liveworkstreamid@odata.bind": org.bind(ws),
                "msdyn_ocwidgetlanguage@odata.bind": f"/msdyn_oclanguages({org.languages[locale]})",
                "msdyn_enablefileattachmentsforcustomers": customer,
                "msdyn_enablefileattachmentsforagents": agent,
                "msdyn_enableagentoverride": override,
                "msdyn_postconversationsurveyenable": False,
            },
        )


# --- running reconciler ---------------------------------------------------------------------------


def base_environ(**extra: str) -> dict[str, str]:
    """The test's environment without anything that would choose a target or hold a secret."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("RECONCILER_TARGET", "NO_COLOR", "DATAVERSE_TOKEN")
        and not name.startswith(("AZURE_", "FACEBOOKACCOUNT_", "GOOGLEBUSINESSMESSAGESACCOUNT_"))
    }
    return {**env, "PYTHONUNBUFFERED": "1", "DATAVERSE_TOKEN": TOKEN, **extra}


def reconciler(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *map(str, args), "--no-color"],
        capture_output=True,
        text=True,
        env=env or base_environ(),
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".schemas" not in path.relative_to(folder).parts
    }


def documents(folder: Path) -> list[dict[str, Any]]:
    """Every manifest document written under ``folder`` (plain YAML, as any tool reads it)."""
    found: list[dict[str, Any]] = []
    for path in sorted(folder.rglob("*.yaml")):
        if path.name != "reconciler.yaml":
            found += [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc]
    return found


def dump_org(served: Served) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as the Web API returns it (ETags included)."""
    return {
        table.entity_set: sorted(served.rows(table.entity_set), key=lambda r: r[table.primary_key])
        for table in TABLES.values()
    }


@dataclass
class Handbuilt:
    org: Org
    served: Served
    root: Path
    before: dict[str, list[dict[str, Any]]]
    """The whole org right after it was built."""

    @property
    def out(self) -> Path:
        return self.root / "export"


@pytest.fixture(scope="module")
def handbuilt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Handbuilt]:
    root = tmp_path_factory.mktemp("handbuilt")
    with Served(root / "org.db", "--token", TOKEN, token=TOKEN) as served:
        org = Org(served.url, random.Random(RNG_SEED))
        build_org(org)
        yield Handbuilt(org, served, root, dump_org(served))


@pytest.fixture(scope="module")
def exported(handbuilt: Handbuilt) -> subprocess.CompletedProcess[str]:
    done = reconciler("export", "--out", handbuilt.out, "--target", handbuilt.org.url)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def export(handbuilt: Handbuilt, exported: subprocess.CompletedProcess[str]) -> Export:
    """The same export, built in-process from a snapshot of the org (for its variables)."""

    async def snapshot() -> Snapshot:
        async with connect(parse_target(handbuilt.org.url), {"DATAVERSE_TOKEN": TOKEN}) as client:
            return await read_snapshot(client)

    taken = asyncio.run(snapshot())
    project = yaml.safe_load((handbuilt.out / "reconciler.yaml").read_text("utf-8"))
    namespace = uuid.UUID(project["namespace"])
    assert namespace == default_namespace(taken.organization_id)
    return build_export(taken, namespace)


# --- what the export must say ---------------------------------------------------------------------

QUEUE_KEYS = [
    "q-belgie", "q-support-bang", "q-support", "q-123", "q-true", "q-null", "q-cjk", "q-emoji",
    "q-colon", "q-hash", "q-var", "q-long", "q-long-2",
]  # fmt: skip
WORKSTREAM_KEYS = ["ws-fb1", "ws-fb2", "ws-fb3", "ws-gbm1", "ws-gbm2", "ws-chat"]
EXPORTED = {
    # The seeded default queue has no priority, and a manifest needs none: it is exported
    # because ws-default falls back to it.
    "Queue": [*QUEUE_KEYS, "q-default"],
    "FacebookAccount": ["fb-contoso", "fb-fabrikam"],
    "GoogleBusinessMessagesAccount": ["gbm-contoso"],
    "Workstream": [*WORKSTREAM_KEYS, "ws-default"],
    "RoutingRuleSet": [key for key, (ws, *_rest) in RULE_SETS.items() if ws != "ws-live"],
}
EXPORTED_CHILDREN = {
    "FacebookPage": ["page-belgie", "page-slash", "page-spare", "page-cjk", "page-default"],
    "GoogleBusinessMessagesAgent": ["agent-a", "agent-b"],
    "ChatWidget": ["widget-chat"],
    "ChatWidgetDomain": ["domain-chat"],
}
# Rows the manifests cannot express: (kind, row key, name, the reason export gives).
SKIPPED = [
    (
        "Queue",
        "q-custom",
        "Custom assignment",
        "the manifests cannot hold it: spec.assignment: must be 'highest-capacity', "
        "'round-robin' or 'longest-idle', not '<192350002>'",
    ),
    (
        "Workstream",
        "ws-live",
        "Live chat ✨",
        "no chat widget serves it (a workstream manifest names the one that does)",
    ),
    (
        "RoutingRuleSet",
        "live-route",
        "Live chat routing",
        "it needs Workstream/live-chat, which is not exported",
    ),
    *[
        ("RoutingRuleSet", key, display, reason)
        for key, (_ws, _kind, display, _xml, reason) in UNREADABLE.items()
    ],
]
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
GUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def skipped_id(org: Org, key: str) -> str:
    return org.id(key)


def _is_leaf(node: Any) -> bool:
    return isinstance(node, dict) and "op" in node


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def expected_environ(org: Org, folder: Path) -> dict[str, str]:
    """The variables the exported files name, each set to the secret the org holds there: found
    from the files and what the test wrote, without the exporter's help."""
    by_id = {record_id: key for key, (_, record_id, _) in org.rows.items()}
    by_child = {
        body.get("msdyn_fbpageid") or body.get("msdyn_agentid"): key
        for key, (entity_set, _, body) in org.rows.items()
        if entity_set in ("msdyn_ocfbpages", "msdyn_ocgooglebusinessmessagesagentaccounts")
    }
    environ: dict[str, str] = {}

    def take(reference: Any, key: str, path: str) -> None:
        assert reference == {"fromEnv": reference["fromEnv"]}, reference
        assert reference["fromEnv"] not in environ
        environ[reference["fromEnv"]] = org.secrets[f"{key}/{path}"]

    for document in documents(folder):
        spec, key = document["spec"], by_id[document["metadata"]["id"]]
        if document["kind"] == "FacebookAccount":
            take(spec["applicationSecret"], key, "applicationSecret")
            for page in spec.get("pages", []):
                take(page["accessToken"], by_child[page["pageId"]], "accessToken")
        elif document["kind"] == "GoogleBusinessMessagesAccount":
            take(spec["clientToken"], key, "clientToken")
            take(spec["serviceAccountKey"], key, "serviceAccountKey")
            for agent in spec.get("agents", []):
                if "clientToken" in agent:
                    take(agent["clientToken"], by_child[agent["agentId"]], "clientToken")
    return environ


def workstream_name(folder: Path, record_id: str) -> str:
    """The metadata name the export gave the workstream of ``record_id``."""
    (name,) = [
        d["metadata"]["name"]
        for d in documents(folder)
        if d["kind"] == "Workstream" and d["metadata"]["id"] == record_id
    ]
    return str(name)


def assert_no_secret(org: Org, text: str, where: str) -> None:
    assert MARK not in text, f"a secret marker leaked into {where}"
    for value in [*org.secrets.values(), *org.leaks]:
        assert value not in text, f"a secret leaked into {where}"


# --- the org --------------------------------------------------------------------------------------


def test_the_org_is_built_by_hand_with_every_option_value(handbuilt: Handbuilt) -> None:
    org = handbuilt.org
    written = {key: body for key, (_, _, body) in org.rows.items()}
    queues = [written[key] for key in [*QUEUE_KEYS, "q-custom"]]
    assert {q["msdyn_queuetype"] for q in queues} == set(k.QUEUE_TYPES.values())
    assert {q["msdyn_assignmentstrategy"] for q in queues} >= set(k.ASSIGNMENT.values())
    assert {q["queueviewtype"] for q in queues} == set(k.VISIBILITY.values())
    assert {q.get("msdyn_maxqueuesize") for q in queues} >= {0, None}
    streams = [written[key] for key in WORKSTREAM_KEYS]
    assert {w["msdyn_streamsource"] for w in streams} == set(k.CHANNELS.values())
    assert {w["msdyn_workdistributionmode"] for w in streams} == set(k.DISTRIBUTION.values())
    assert {w["msdyn_capacityrequired"] > 0 for w in streams} == {True, False}
    assert {w["msdyn_enableagentaffinity"] for w in streams} == {True, False}
    assert {w["msdyn_enableautomatedmessages"] for w in streams} == {True, False}
    assert {w["msdyn_autocloseafterinactivity"] for w in streams} == {2880, 120, 45, 720, None}
    presences = {p for w in streams for p in (w["msdyn_allowedpresences"] or "").split(",") if p}
    assert presences == {str(value) for value in k.PRESENCES.values()}
    kinds = {kind for _ws, kind, _name, _rules in RULE_SETS.values()}
    assert kinds == {"route-to-queue", "classification"}
    # Every rule set is Declarative, as real orgs hold both kinds.
    rule_sets = [written[key] for key in [*RULE_SETS, *UNREADABLE]]
    assert {r["msdyn_rulesettype"] for r in rule_sets} == {DECLARATIVE}
    conditions = [
        rule["when"]
        for _ws, _kind, _name, rules in RULE_SETS.values()
        for rule in rules
        if "when" in rule
    ]
    leaves = [node for when in conditions for node in walk(when) if _is_leaf(node)]
    assert {leaf["op"] for leaf in leaves} > set(g.LIST_OPERATORS)
    # Once not is pushed down and in spelled out, the eight operators real orgs hold.
    canonical = [
        canonical_rule(rule) for _ws, _kind, _name, rules in RULE_SETS.values() for rule in rules
    ]
    ops = {node["op"] for rule in canonical for node in walk(rule.get("when")) if _is_leaf(node)}
    assert ops == set(g.OPERATORS)
    assert any("when" not in rule for rule in canonical)  # a rule that always matches
    combinators = {
        key
        for when in conditions
        for node in walk(when)
        if isinstance(node, dict)
        for key in node
        if key in ("all", "any", "not")
    }
    assert combinators == {"all", "any", "not"}
    values = {
        type(value)
        for _ws, _kind, _name, rules in RULE_SETS.values()
        for rule in rules
        for value in rule.get("set", {}).values()
    }
    assert values == {str, int, float, bool}
    # Classification outputs: the workstream's context variables, or a conversation attribute.
    for ws, _kind, _name, rules in RULE_SETS.values():
        for rule in rules:
            for output in rule.get("set", {}):
                assert output.startswith("conversation.") or output in CONTEXT_VARIABLES[ws]
    tested = {
        (ws, node["field"].removeprefix("context."))
        for ws, _kind, _name, rules in RULE_SETS.values()
        for rule in rules
        for node in walk(rule.get("when"))
        if _is_leaf(node) and node["field"].startswith("context.")
    }
    assert tested
    assert all(name in CONTEXT_VARIABLES[ws] for ws, name in tested)
    variables = [key for key in written if "/context." in key]
    assert len(variables) == sum(map(len, CONTEXT_VARIABLES.values())) + 1  # + ws-live's
    assert {written[key]["msdyn_datatype"] for key in variables} == {TEXT}
    splits = [rule for *_r, rules in RULE_SETS.values() for rule in rules if "routeTo" in rule]
    assert {isinstance(rule["routeTo"], list) for rule in splits} == {True, False}


def test_rules_and_contracts_are_laid_out_as_real_exports_hold_them(handbuilt: Handbuilt) -> None:
    """The layout the test writes is the real one, byte for byte (tests/fixtures/realorg/);
    and what it writes is made of what real orgs hold: the eight operators, untyped values,
    GUIDs bare or braced, the ALM contract's entities."""
    for fixture in (
        "alm-chat-route-to-queue.xml",
        "vrt-rtq-percentage-split-context-variable.xml",
        "vrt-inqueue-overflow-bare-conditions-unit-seconds.xml",
    ):
        real = realorg("rulesets", fixture)
        assert as_exported(re.sub(r">\s+<", "><", real)) == real, fixture
    real = realorg("contracts", "alm-chat-workstream-contract.xml")
    assert contract_xml(LIVE_CHAT, ["Name"]) == real
    org = handbuilt.org
    spellings = set(g.OPERATORS.values())
    for key in RULE_SETS:
        xml = org.rows[key][2]["msdyn_rulesetdefinition"]
        root = ET.fromstring(xml)
        assert "datatype" not in xml, key
        assert {c.get("operator") for c in root.iter("condition")} <= spellings, key
        assert {group.get("operator") for group in root.iter("logical")} <= {"AND", "OR"}, key
        # Queue GUIDs: bare and lower case for a route (ALM), in braces in a split (VRT);
        # for ws-gbm1 all in braces and upper case (real captures show both, any case).
        for setattribute in root.iter("setattribute"):
            target, value = setattribute.findtext("lhs"), setattribute.findtext("rhs") or ""
            if target in (g.ROUTE_TARGET, g.SPLIT_QUEUE):
                shouted = RULE_SETS[key][0] == "ws-gbm1"
                braced = shouted or target == g.SPLIT_QUEUE
                assert re.fullmatch(GUID, value.strip("{}")), value
                assert value.startswith("{") is braced, (key, value)
                assert (value == value.upper()) is shouted, (key, value)
    contract = org.rows["ws-fb1/contract"][2]["msdyn_contractdefinition"]
    assert (
        '<entity logical-name="msdyn_facebookengagementctx" key="msdyn_facebookengagementctx" />'
        in contract
    )
    assert '    <variable name="Weight" data-type="string" />' in contract


# --- export ---------------------------------------------------------------------------------------


def test_export_writes_a_manifest_for_every_row_it_can_express(
    handbuilt: Handbuilt, exported: subprocess.CompletedProcess[str], export: Export
) -> None:
    org, out = handbuilt.org, handbuilt.out
    assert sorted(folder_bytes(out)) == [
        "README.md",
        "facebook-accounts.yaml",
        "google-business-messages-accounts.yaml",
        "queues.yaml",
        "reconciler.yaml",
        "routing/123.yaml",
        "routing/google-business-messages-for-every-store-in-the-benelux-region.yaml",
        "routing/klantenservice-belgie.yaml",
        # ws-fb2's: "Support!" and ws-fb3's "support" slug alike; which is "support-2" goes
        # by their random ids. ws-fb3 has no rule set the export writes, so no file.
        f"routing/{workstream_name(out, org.id('ws-fb2'))}.yaml",
        "workstreams.yaml",
    ]
    assert {workstream_name(out, org.id(key)) for key in ("ws-fb2", "ws-fb3")} == {
        "support",
        "support-2",
    }
    found = documents(out)
    # Every document adopts its row by id: nothing was made from a namespace.
    by_kind: dict[str, list[str]] = {}
    for document in found:
        by_kind.setdefault(document["kind"], []).append(document["metadata"]["id"])
        assert NAME.match(document["metadata"]["name"]), document["metadata"]
    assert {kind: sorted(ids) for kind, ids in by_kind.items()} == {
        kind: sorted(org.id(key) for key in keys) for kind, keys in EXPORTED.items()
    }
    names = {(d["kind"], d["metadata"]["id"]): d["metadata"]["name"] for d in found}
    for kind in EXPORTED:
        assert len({n for (kd, _), n in names.items() if kd == kind}) == len(EXPORTED[kind])
    # Names that slug the same are made unique; names with nothing to slug get the kind's word.
    assert {names["Queue", org.id("q-support")], names["Queue", org.id("q-support-bang")]} == {
        "support",
        "support-2",
    }
    assert names["Queue", org.id("q-cjk")] == "queue"
    assert names["Queue", org.id("q-123")] == "123"
    assert names["Queue", org.id("q-true")] == "true"
    assert names["Queue", org.id("q-var")] == "not-a-var"
    long_names = {names["Queue", org.id("q-long")], names["Queue", org.id("q-long-2")]}
    # Cut to 63 characters, the same slug: the second is cut shorter to make room for "-2".
    cut = "escalations-for-enterprise-customers-whose-contracts-include-th"
    assert long_names == {cut, f"{cut[:61].rstrip('-')}-2"}
    assert {names["RoutingRuleSet", org.id(key)] for key in ("fb2-triage", "gbm1-classify")} == {
        "triage",
        "triage-2",
    }
    # Pages and agents are written under their accounts, with their own names.
    pages = [
        (page["name"], page["pageId"])
        for d in found
        if d["kind"] == "FacebookAccount"
        for page in d["spec"].get("pages", [])
    ]
    agents = [
        (agent["name"], agent["agentId"])
        for d in found
        if d["kind"] == "GoogleBusinessMessagesAccount"
        for agent in d["spec"].get("agents", [])
    ]
    bodies = {key: body for key, (_, _, body) in org.rows.items()}
    assert sorted(pages) == sorted(
        (bodies[key]["msdyn_fbpagename"], bodies[key]["msdyn_fbpageid"])
        for key in EXPORTED_CHILDREN["FacebookPage"]
    )
    assert sorted(agents) == sorted(
        (bodies[key]["msdyn_name"], bodies[key]["msdyn_agentid"])
        for key in EXPORTED_CHILDREN["GoogleBusinessMessagesAgent"]
    )
    # Odd text comes back as written; "${" is escaped so no variable is substituted.
    text = "".join(path.read_text("utf-8") for path in sorted(out.rglob("*.yaml")))
    assert "$${NOT_A_VAR}" in text
    assert "${NOT_A_VAR}" not in text.replace("$${NOT_A_VAR}", "")
    specs = {(d["kind"], d["metadata"]["id"]): d["spec"] for d in found}
    assert specs["Queue", org.id("q-belgie")]["displayName"] == "Klantenservice \u2013 België"
    assert specs["Queue", org.id("q-belgie")]["maxSize"] == 0
    assert "maxSize" not in specs["Queue", org.id("q-support-bang")]
    assert specs["Queue", org.id("q-emoji")]["displayName"] == "🎧 Headsets & “smart” quotes"
    closes = {
        specs["Workstream", org.id(key)].get("autoCloseAfterInactivity")
        for key in EXPORTED["Workstream"]
    }
    assert closes == {"2d", "2h", "45m", "12h", None}
    fb1 = specs["Workstream", org.id("ws-fb1")]
    assert fb1["distribution"] == {
        "mode": "push",
        "capacity": {"units": 10},
        "maxConcurrency": 3,
        "agentAffinity": True,
    }
    assert fb1["facebook"]["page"] == "Klantenservice \u2013 België"
    assert specs["Workstream", org.id("ws-fb2")]["facebook"]["page"] == "Support / Hulp  "
    # The seeded default queue is written without the priority it does not have.
    default = specs["Queue", org.id("q-default")]
    assert "priority" not in default
    assert specs["Workstream", org.id("ws-default")]["fallbackQueue"] == "default-messaging-queue"
    # Context variables come from their rows (in name order), whatever order the contract has.
    for key in EXPORTED["Workstream"]:
        variables = specs["Workstream", org.id(key)].get("contextVariables", {})
        assert variables == dict.fromkeys(sorted(CONTEXT_VARIABLES.get(key, [])), "text"), key
    # Rules come back as the XML holds them, in the form a manifest writes them (not pushed
    # down, in spelled out), whatever the layout and the GUIDs' case and braces.
    queue_names = {key: names["Queue", org.id(key)] for key in QUEUE_KEYS}
    for key, (_ws, _kind, display, rules) in RULE_SETS.items():
        if key != "live-route":
            spec = specs["RoutingRuleSet", org.id(key)]
            assert spec.get("displayName", names["RoutingRuleSet", org.id(key)]) == display
            canonical = [canonical_rule(rule) for rule in rules]
            expected = json.loads(json.dumps(canonical).replace("${", "$${"))
            for rule in expected:
                route = rule.get("routeTo")
                if isinstance(route, str):
                    rule["routeTo"] = queue_names[route]
                elif isinstance(route, list):
                    for share in route:
                        share["queue"] = queue_names[share["queue"]]
            assert json.dumps(spec["rules"]) == json.dumps(expected), key
    alpha = specs["RoutingRuleSet", org.id("fb1-alpha")]["rules"]
    assert alpha[0]["when"] == {"field": "facebook.customerName", "op": "isNotNull"}
    assert alpha[1]["when"]["all"][1:] == [
        {
            "any": [
                {"field": "facebook.timezone", "op": "equals", "value": "Europe/Amsterdam"},
                {"field": "facebook.timezone", "op": "equals", "value": "Europe/Brussels"},
                {"field": "facebook.timezone", "op": "equals", "value": "Europe/Berlin"},
            ]
        },
        {"field": "conversation.msdyn_spend", "op": "greaterOrEqual", "value": 100},
    ]
    # The in-process export of the same org is what the command wrote.
    for path, text in manifest_files(export).items():
        assert (out / path).read_text("utf-8") == text
    records = sum(len(keys) for keys in [*EXPORTED.values(), *EXPORTED_CHILDREN.values()])
    assert export.records == records
    assert f"({records} records)" in exported.stdout


def test_rows_the_manifests_cannot_express_are_skipped_and_listed(
    handbuilt: Handbuilt, exported: subprocess.CompletedProcess[str], export: Export
) -> None:
    org, out = handbuilt.org, handbuilt.out
    warnings = [line for line in exported.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == len(SKIPPED), exported.stderr
    assert all(line.startswith("warning: skipped ") for line in warnings), warnings
    readme = (out / "README.md").read_text("utf-8")
    listed = readme.split("\n## Not exported\n", 1)[1].strip().splitlines()
    listed = [line for line in listed if line.startswith("- ")]
    assert len(listed) == len(SKIPPED), listed
    yaml_text = "".join(path.read_text("utf-8") for path in sorted(out.rglob("*.yaml")))
    for kind, key, name, reason in SKIPPED:
        record_id = skipped_id(org, key)
        (warning,) = [line for line in warnings if f"({record_id})" in line]
        assert warning == f"warning: skipped {kind} {name!r} ({record_id}): {reason}"
        (item,) = [line for line in listed if f"(`{record_id}`)" in line]
        # Markdown escapes aside (a backslash before a character), the reason as it is.
        unescaped = re.sub(r"\\(.)", r"\1", item)
        assert unescaped == f"- {kind} `{name}` (`{record_id}`): {reason}", item
        assert record_id not in yaml_text, f"{kind} {name!r} was skipped, yet written"
    assert sorted((s.kind, s.id) for s in export.skipped) == sorted(
        (kind, skipped_id(org, key)) for kind, key, _name, _reason in SKIPPED
    )
    # The seeded queues nothing exported uses are neither written nor listed.
    for row in handbuilt.before["queues"]:
        if row["msdyn_isdefaultqueue"] and row["queueid"] != org.default_messaging_queue:
            assert row["queueid"] not in readme + yaml_text
            assert row["name"] not in readme + yaml_text
    assert f"{len(SKIPPED)} records not exported: listed in" in exported.stdout


def test_secrets_are_fromenv_references_and_never_values(
    handbuilt: Handbuilt, exported: subprocess.CompletedProcess[str], export: Export
) -> None:
    org, out = handbuilt.org, handbuilt.out
    for path, data in folder_bytes(out).items():
        assert_no_secret(org, data.decode("utf-8"), path)
    assert_no_secret(org, exported.stdout + exported.stderr, "the output of export")
    environ = expected_environ(org, out)
    # Every secret of every exported row has its variable, and nothing else is a reference.
    exported_secrets = {
        secret
        for secret in org.secrets
        if secret.split("/")[0]
        in {key for keys in [*EXPORTED.values(), *EXPORTED_CHILDREN.values()] for key in keys}
    }
    assert sorted(environ.values()) == sorted(org.secrets[secret] for secret in exported_secrets)
    references = [
        node
        for d in documents(out)
        for node in walk(d)
        if isinstance(node, dict) and "fromEnv" in node
    ]
    assert len(references) == len(environ) == 10
    readme = (out / "README.md").read_text("utf-8")
    for name in environ:
        assert f"| `{name}` |" in readme
    # What the exporter says to set is what the org holds.
    assert export_variables(export) == environ


# --- plan -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planned(
    handbuilt: Handbuilt, exported: subprocess.CompletedProcess[str]
) -> subprocess.CompletedProcess[str]:
    env = base_environ(**expected_environ(handbuilt.org, handbuilt.out))
    return reconciler(
        "plan",
        handbuilt.out,
        "--target",
        handbuilt.org.url,
        "--format",
        "json",
        "--detailed-exitcode",
        env=env,
    )


def test_plan_of_the_export_only_adopts(
    handbuilt: Handbuilt, planned: subprocess.CompletedProcess[str], export: Export
) -> None:
    # Adoptions are changes (to the ledger): exit 2, but no record is written.
    assert planned.returncode == 2, planned.stdout[-2000:] + planned.stderr
    plan = json.loads(planned.stdout)
    changes = plan["changes"]
    assert [c["address"] for c in changes if c["action"] != "adopt"] == []
    workstreams, rule_sets = len(EXPORTED["Workstream"]), len(EXPORTED["RoutingRuleSet"])
    variables = sum(len(CONTEXT_VARIABLES.get(key, [])) for key in EXPORTED["Workstream"])
    # Each exported record, plus each workstream's contract, routing and context variables,
    # each rule set's step.
    total = export.records + 2 * workstreams + variables + rule_sets
    assert total == 73
    assert plan["summary"] == {
        "create": 0,
        "update": 0,
        "replace": 0,
        "delete": 0,
        "adopt": total,
        "noop": 0,
        "conflict": 0,
    }
    kinds: dict[str, int] = {}
    for change in changes:
        kinds[change["kind"]] = kinds.get(change["kind"], 0) + 1
        assert change["fields"] == []
        assert change["adopted"] is True
    assert kinds == {
        **{kind: len(keys) for kind, keys in EXPORTED.items()},
        **{kind: len(keys) for kind, keys in EXPORTED_CHILDREN.items()},
        "DecisionContract": workstreams,
        "ContextVariable": variables,
        "RoutingConfiguration": workstreams,
        "RoutingStep": rule_sets,
    }
    # The adoptions are of the rows the test wrote: every one of them is in the plan, by id,
    # but for the skipped rows and what hangs under them (contract, routing, variables, step).
    planned_ids = {c["id"] for c in changes}
    skipped_keys = {s[1] for s in SKIPPED}
    for key, (_, record_id, _) in handbuilt.org.rows.items():
        skipped = key.split("/")[0] in skipped_keys
        assert (record_id in planned_ids) is not skipped, key
    assert plan["target"]["organization_id"] == export.organization_id
    # The target holds no ledger of the export's namespace yet: the first apply writes one.
    assert {w["code"] for w in plan["warnings"]} == {"retired-channel", "ledger-new"}
    assert plan["ledger"]["found"] is False
    assert_no_secret(handbuilt.org, planned.stdout + planned.stderr, "the output of plan")


def test_plan_in_the_exported_folder_uses_its_environment(
    handbuilt: Handbuilt, exported: subprocess.CompletedProcess[str]
) -> None:
    """``reconciler.yaml`` names the target: a plan in the folder needs no --target."""
    env = base_environ(**expected_environ(handbuilt.org, handbuilt.out))
    done = reconciler("plan", "--env", "default", "--detailed-exitcode", env=env, cwd=handbuilt.out)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr
    # The same target as with --target: every record adopted, none written.
    assert "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 73 to adopt." in (
        done.stdout
    ), done.stdout
    assert handbuilt.org.url in (handbuilt.out / "reconciler.yaml").read_text("utf-8")
    assert_no_secret(handbuilt.org, done.stdout + done.stderr, "the output of plan")


def test_plan_compares_the_secrets_it_is_given(
    handbuilt: Handbuilt, exported: subprocess.CompletedProcess[str]
) -> None:
    """Adoptions without field changes are not for want of comparing: one wrong secret is one
    sensitive field difference (in that record's adoption), and a missing one an error naming
    the variable, never a value."""
    org = handbuilt.org
    environ = expected_environ(org, handbuilt.out)
    page = org.secrets["page-slash/accessToken"]
    (variable,) = [name for name, value in environ.items() if value == page]
    wrong = f"{MARK}-wrong-{org.rng.getrandbits(32):08x}"
    args = ("plan", handbuilt.out, "--target", org.url, "--format", "json", "--detailed-exitcode")
    done = reconciler(*args, env=base_environ(**{**environ, variable: wrong}))
    assert done.returncode == 2, done.stderr
    plan = json.loads(done.stdout)
    assert {c["action"] for c in plan["changes"]} == {"adopt"}
    (change,) = [c for c in plan["changes"] if c["fields"]]
    assert change["address"] == "FacebookAccount/contoso-facebook/Support / Hulp  "
    (changed,) = change["fields"]
    shown = {key: changed[key] for key in ("path", "before", "after", "sensitive")}
    assert shown == {"path": "accessToken", "before": None, "after": None, "sensitive": True}
    assert changed["source"] == f"env:{variable}"
    assert wrong not in done.stdout + done.stderr
    assert_no_secret(org, done.stdout + done.stderr, "the output of plan")
    missing = {name: value for name, value in environ.items() if name != variable}
    done = reconciler(*args, env=base_environ(**missing))
    assert done.returncode == 1
    assert f"environment variable {variable} is not set" in done.stderr
    assert_no_secret(org, done.stdout + done.stderr, "the output of plan")


# --- again ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported_again(
    handbuilt: Handbuilt, exported: subprocess.CompletedProcess[str]
) -> tuple[dict[str, bytes], subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The files of the first export; a second export into a fresh folder; a third into the
    folder of the first."""
    first = folder_bytes(handbuilt.out)
    fresh = reconciler("export", "--out", handbuilt.root / "again", "--target", handbuilt.org.url)
    same = reconciler("export", "--out", handbuilt.out, "--target", handbuilt.org.url)
    return first, fresh, same


def test_exporting_twice_gives_byte_identical_files(
    handbuilt: Handbuilt,
    exported: subprocess.CompletedProcess[str],
    exported_again: tuple[
        dict[str, bytes], subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]
    ],
) -> None:
    first, fresh, same = exported_again
    assert fresh.returncode == 0, fresh.stderr
    assert same.returncode == 0, same.stderr
    assert folder_bytes(handbuilt.root / "again") == first
    assert folder_bytes(handbuilt.out) == first
    # Into the same folder: nothing written, nothing removed, every file reported unchanged.
    assert "  wrote " not in same.stdout
    assert "  removed " not in same.stdout
    assert f"  {len(first)} files unchanged\n" in same.stdout
    # The same skips, reported the same way.
    assert fresh.stderr == same.stderr == exported.stderr
    assert_no_secret(
        handbuilt.org, fresh.stdout + fresh.stderr + same.stdout + same.stderr, "export"
    )


def test_export_and_plan_leave_every_row_as_it_was_written(
    handbuilt: Handbuilt,
    planned: subprocess.CompletedProcess[str],
    exported_again: tuple[
        dict[str, bytes], subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]
    ],
) -> None:
    """Neither command writes: the whole org, ETags included, is as the test built it; and the
    skipped rows hold exactly what was sent for them."""
    assert planned.returncode == 2  # adoptions only: plan writes nothing, not even the ledger
    assert dump_org(handbuilt.served) == handbuilt.before
    org = handbuilt.org
    # The seeded default queue keeps the priority it does not have.
    assert org.read("q-default")["msdyn_priority"] is None
    for kind, key, name, _reason in SKIPPED:
        _, record_id, body = org.rows[key]
        row = org.read(key)
        assert row[k.BY_NAME[kind].table.primary_key] == record_id
        assert row[k.BY_NAME[kind].table.primary_name] == name
        for column, value in body.items():
            if column.endswith("@odata.bind"):
                bound = None if value is None else value[value.index("(") + 1 : -1]
                assert row[f"_{column.removesuffix('@odata.bind')}_value"] == bound, (key, column)
            else:
                assert row[column] == value, (key, column)
