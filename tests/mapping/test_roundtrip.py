"""Rows → manifest → rows: what the target holds comes back column for column.

The target below is written by hand, in Dataverse read form (lookups as ``_column_value``), for
a small org that uses every option the manifests know. Each row is read in manifest terms
(``from_row``), the records are assembled into manifest documents (``to_manifests``), the
documents are written as YAML and loaded through the real ``validate`` pipeline, turned into
desired records (``desired_records``, secrets from the environment the export names) and written
back as rows (``to_row``). Every kind must give identical rows on every column it writes.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.dataverse import tables as t
from reconciler.export.text import dump
from reconciler.mapping import contractxml, rulexml
from reconciler.mapping import kinds as k
from reconciler.mapping import rulegrammar as g
from reconciler.mapping.conditions import canonical_rule
from reconciler.mapping.desired import desired_records
from reconciler.mapping.fields import MappingError, Resolver, Row, body
from reconciler.mapping.manifests import Assembled, Found, to_manifests
from reconciler.mapping.records import Record
from reconciler.mapping.values import Sensitive, record_id
from reconciler.models.common import ENV_NAME_PATTERN, parse_duration
from reconciler.plan.secrets import SecretResolver
from reconciler.validate.pipeline import Options, Report, validate

NS = uuid.UUID("1b7e4a52-9c0d-4f3e-8a61-2d5c7b9e0f14")
LANG_NL = "5a0e8d1c-0000-4000-8000-000000000413"  # msdyn_oclanguage rows of the org
LANG_EN = "5a0e8d1c-0000-4000-8000-000000000409"
LANG_DE = "5a0e8d1c-0000-4000-8000-000000000407"
LANGUAGES = {"nl-NL": LANG_NL, "en-US": LANG_EN, "de-DE": LANG_DE}
OUTPUT_CONTRACT = "7c3f0a9e-1d2b-4e5f-9a8b-0c1d2e3f4a5b"  # msdyn_demandqueueidentificationoutput


def rid(address: str) -> str:
    return record_id(NS, address)


def unique(address: str) -> str:
    return "rcn_" + rid(address).replace("-", "")


# --- the target, in read form -----------------------------------------------------------------

# Secrets the target holds; none of them may appear in an exported manifest.
FB_CONTOSO_SECRET = "c0ntoso-app-secret-7f3a9b"
FB_FABRIKAM_SECRET = "fabr1kam-app-secret-22e1"
PAGE_NL_TOKEN = "EAAGcontosoNLpageTokenZZ9x8w7v6u5t4s3r2q1p"
PAGE_SPARE_TOKEN = "EAAGcontosoSPAREpageTokenAA1b2c3d4e5f"
PAGE_EN_TOKEN = "EAAGfabrikamENpageTokenQQ0a9s8d7f6g"
GBM_PARTNER_TOKEN = "gbm-partner-client-token-5d4c3b2a"
GBM_AGENT_A_TOKEN = "gbm-agent-a-client-token-0f9e8d"
GBM_AGENT_C_TOKEN = "gbm-agent-c-client-token-7a6b5c"
PRIVATE_KEY_BODY = base64.b64encode(bytes(range(256)) * 8).decode("ascii")
KEY_FILE = (
    json.dumps(
        {
            "type": "service_account",
            "project_id": "contoso-gbm",
            "private_key_id": "3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e",
            "private_key": "-----BEGIN PRIVATE KEY-----\n"
            + "\n".join(PRIVATE_KEY_BODY[i : i + 64] for i in range(0, len(PRIVATE_KEY_BODY), 64))
            + "\n-----END PRIVATE KEY-----\n",
            "client_email": "bm-partner@contoso-gbm.iam.gserviceaccount.com",
            "client_id": "104857600123456789012",
            "token_uri": "https://oauth2.googleapis.com/token",
        },
        indent=2,
    )
    + "\n"
)
KEY_BASE64 = base64.b64encode(KEY_FILE.encode("utf-8")).decode("ascii")
SECRETS = (
    FB_CONTOSO_SECRET,
    FB_FABRIKAM_SECRET,
    PAGE_NL_TOKEN,
    PAGE_SPARE_TOKEN,
    PAGE_EN_TOKEN,
    GBM_PARTNER_TOKEN,
    GBM_AGENT_A_TOKEN,
    GBM_AGENT_C_TOKEN,
    KEY_BASE64,
    KEY_BASE64[:4000],
    KEY_BASE64[4000:],
    KEY_FILE,
    PRIVATE_KEY_BODY[:64],
)


# Users of the org (systemuser) by id → sign-in name (domainname).
ADA, GRACE = "7d1e0a52-0000-4000-8000-00000000ada0", "7d1e0a52-0000-4000-8000-0000000064ce"
USERS = {ADA: "ada@contoso.com", GRACE: "Grace@Contoso.com"}


def queue(key: str, /, **columns: Any) -> tuple[str, Row]:
    address = f"Queue/{key}"
    return address, {"queueid": rid(address), "msdyn_isomnichannelqueue": True, **columns}


QUEUES = dict(
    [
        queue(
            "vip-support",
            name="VIP Support",
            msdyn_queuetype=192350000,  # messaging
            msdyn_priority=1,
            msdyn_assignmentstrategy=192350000,  # highest capacity
            queueviewtype=0,  # public
            msdyn_maxqueuesize=50,
            description="Customers on the VIP plan",
            # Its members, as a single-level $expand of queuemembership_association reads them
            # (PAD-Q in reconciler.dataverse.tables).
            queuemembership_association=[{"systemuserid": ADA}, {"systemuserid": GRACE}],
        ),
        queue(
            "general",
            name="general",
            msdyn_queuetype=192350000,
            msdyn_priority=5,
            msdyn_assignmentstrategy=192350001,  # round robin
            queueviewtype=1,  # private
            msdyn_maxqueuesize=None,
            description=None,
        ),
        queue(
            "dutch",
            name="Dutch",
            msdyn_queuetype=192350000,
            msdyn_priority=2,
            msdyn_assignmentstrategy=192350003,  # longest idle
            queueviewtype=0,
            msdyn_maxqueuesize=0,
            description="Nederlandstalige klanten",
        ),
        queue(
            "claims",
            name="Claims",
            msdyn_queuetype=192350001,  # record
            msdyn_priority=3,
            msdyn_assignmentstrategy=192350003,
            queueviewtype=1,
            msdyn_maxqueuesize=200,
            description=None,
        ),
        queue(
            "phone",
            name="Phone",
            msdyn_queuetype=192350002,  # voice
            msdyn_priority=None,  # optional: a manifest without one neither writes nor compares it
            msdyn_assignmentstrategy=192350001,
            queueviewtype=0,
            msdyn_maxqueuesize=None,
            description="Calls: 'quoted', \"double\" & <angled>",
        ),
    ]
)

FB_CONTOSO = "FacebookAccount/contoso-facebook"
FB_FABRIKAM = "FacebookAccount/fabrikam"
FACEBOOK_ACCOUNTS = {
    FB_CONTOSO: {
        "msdyn_ocfbapplicationid": rid(FB_CONTOSO),
        "msdyn_name": "Contoso Facebook",
        "msdyn_fbapplicationid": "1234567890123456",
        "msdyn_fbapplicationsecret": FB_CONTOSO_SECRET,
    },
    FB_FABRIKAM: {
        "msdyn_ocfbapplicationid": rid(FB_FABRIKAM),
        "msdyn_name": "fabrikam",
        "msdyn_fbapplicationid": "0987654321",  # leading zero: must stay a string in YAML
        "msdyn_fbapplicationsecret": FB_FABRIKAM_SECRET,
    },
}

PAGE_NL = f"{FB_CONTOSO}/Contoso NL"
PAGE_SPARE = f"{FB_CONTOSO}/Contoso Spare"
PAGE_EN = f"{FB_FABRIKAM}/Fabrikam EN"
FACEBOOK_PAGES = {
    PAGE_NL: {
        "msdyn_ocfbpageid": rid(PAGE_NL),
        "msdyn_fbpagename": "Contoso NL",
        "msdyn_fbpageid": "100200300400500",
        "msdyn_fbpageaccesstoken": PAGE_NL_TOKEN,
        "_msdyn_ocfbapplicationid_value": rid(FB_CONTOSO),
        "_msdyn_liveworkstreamid_value": rid("Workstream/facebook-nl"),
        "_msdyn_ocwidgetlanguage_value": LANG_NL,
        "msdyn_enablefileattachmentsforcustomers": True,
        "msdyn_enablefileattachmentsforagents": True,
        "msdyn_enablehumanagenttag": True,
        "msdyn_postconversationsurveyenable": False,
    },
    PAGE_SPARE: {
        "msdyn_ocfbpageid": rid(PAGE_SPARE),
        "msdyn_fbpagename": "Contoso Spare",
        "msdyn_fbpageid": "100200300400501",
        "msdyn_fbpageaccesstoken": PAGE_SPARE_TOKEN,
        "_msdyn_ocfbapplicationid_value": rid(FB_CONTOSO),
        "_msdyn_liveworkstreamid_value": None,
        "_msdyn_ocwidgetlanguage_value": None,
        "msdyn_enablefileattachmentsforcustomers": False,
        "msdyn_enablefileattachmentsforagents": False,
        "msdyn_enablehumanagenttag": False,
        "msdyn_postconversationsurveyenable": False,
    },
    PAGE_EN: {
        "msdyn_ocfbpageid": rid(PAGE_EN),
        "msdyn_fbpagename": "Fabrikam EN",
        "msdyn_fbpageid": "0700800900",
        "msdyn_fbpageaccesstoken": PAGE_EN_TOKEN,
        "_msdyn_ocfbapplicationid_value": rid(FB_FABRIKAM),
        "_msdyn_liveworkstreamid_value": rid("Workstream/facebook-en"),
        "_msdyn_ocwidgetlanguage_value": LANG_EN,
        "msdyn_enablefileattachmentsforcustomers": False,
        "msdyn_enablefileattachmentsforagents": False,
        "msdyn_enablehumanagenttag": False,
        "msdyn_postconversationsurveyenable": False,
    },
}

GBM = "GoogleBusinessMessagesAccount/contoso-gbm"
GBM_ACCOUNTS = {
    GBM: {
        "msdyn_ocgooglebusinessmessagespartneraccountid": rid(GBM),
        "msdyn_name": "Contoso GBM",
        "msdyn_partneraccountid": "contoso-partner-01",
        "msdyn_partneraccountclienttoken": GBM_PARTNER_TOKEN,
        "msdyn_credentialfilename": "service-account.json",
        "msdyn_base64credentialfilestring": KEY_BASE64[:4000],
        "msdyn_base64credentialfilestringcontd": KEY_BASE64[4000:],
    }
}

AGENT_A = f"{GBM}/Store A"
AGENT_B = f"{GBM}/Store B"
AGENT_C = f"{GBM}/Store C"
GBM_AGENTS = {
    AGENT_A: {
        "msdyn_ocgooglebusinessmessagesagentaccountid": rid(AGENT_A),
        "msdyn_name": "Store A",
        "msdyn_agentid": "agent-a-0001",
        "msdyn_brandid": "brand-contoso",
        "msdyn_agentaccountclienttoken": GBM_AGENT_A_TOKEN,
        "_msdyn_ocgbmpartneraccount_value": rid(GBM),
        "_msdyn_liveworkstreamid_value": rid("Workstream/gbm-store-a"),
        "_msdyn_ocwidgetlanguage_value": LANG_NL,
        "msdyn_enablefileattachmentsforcustomers": True,
        "msdyn_enablefileattachmentsforagents": False,
        "msdyn_enableagentoverride": True,
        "msdyn_postconversationsurveyenable": False,
    },
    AGENT_B: {
        "msdyn_ocgooglebusinessmessagesagentaccountid": rid(AGENT_B),
        "msdyn_name": "Store B",
        "msdyn_agentid": "agent-b-0002",
        "msdyn_brandid": "brand-contoso",
        "msdyn_agentaccountclienttoken": None,
        "_msdyn_ocgbmpartneraccount_value": rid(GBM),
        "_msdyn_liveworkstreamid_value": rid("Workstream/gbm-store-b"),
        "_msdyn_ocwidgetlanguage_value": LANG_EN,
        "msdyn_enablefileattachmentsforcustomers": False,
        "msdyn_enablefileattachmentsforagents": True,
        "msdyn_enableagentoverride": False,
        "msdyn_postconversationsurveyenable": False,
    },
    AGENT_C: {
        "msdyn_ocgooglebusinessmessagesagentaccountid": rid(AGENT_C),
        "msdyn_name": "Store C",
        "msdyn_agentid": "agent-c-0003",
        "msdyn_brandid": "brand-fabrikam",
        "msdyn_agentaccountclienttoken": GBM_AGENT_C_TOKEN,
        "_msdyn_ocgbmpartneraccount_value": rid(GBM),
        "_msdyn_liveworkstreamid_value": None,
        "_msdyn_ocwidgetlanguage_value": None,
        "msdyn_enablefileattachmentsforcustomers": False,
        "msdyn_enablefileattachmentsforagents": False,
        "msdyn_enableagentoverride": False,
        "msdyn_postconversationsurveyenable": False,
    },
}


def workstream(name: str, **columns: Any) -> tuple[str, Row]:
    address = f"Workstream/{name}"
    return address, {
        "msdyn_liveworkstreamid": rid(address),
        "_msdyn_routingcontractid_value": rid(f"{address}/contract"),
        "msdyn_capacityformat": 192350000,  # unit-based
        "msdyn_direction": 0,  # inbound
        "msdyn_mode": 717210001,  # simplified
        "msdyn_conversationmode": 192350001,  # persistent
        **columns,
    }


WORKSTREAMS = dict(
    [
        workstream(
            "facebook-nl",
            msdyn_name="Facebook NL",
            msdyn_streamsource=192330000,  # Facebook
            _msdyn_defaultqueue_value=rid("Queue/general"),
            msdyn_workdistributionmode=192350000,  # push
            msdyn_capacityrequired=10,
            msdyn_maxconcurrentconnection=3,
            msdyn_enableagentaffinity=True,
            msdyn_autocloseafterinactivity=2880,
            msdyn_allowedpresences="192360000,192360001",
            msdyn_enableautomatedmessages=True,
        ),
        workstream(
            "facebook-en",
            msdyn_name="facebook-en",
            msdyn_streamsource=192330000,
            _msdyn_defaultqueue_value=rid("Queue/vip-support"),
            msdyn_workdistributionmode=192350000,
            msdyn_capacityrequired=0,
            msdyn_maxconcurrentconnection=1,
            msdyn_enableagentaffinity=False,
            msdyn_autocloseafterinactivity=None,
            msdyn_allowedpresences=None,
            msdyn_enableautomatedmessages=False,
        ),
        workstream(
            "gbm-store-a",
            msdyn_name="GBM Store A",
            msdyn_streamsource=192450001,  # Google's Business Messages
            _msdyn_defaultqueue_value=rid("Queue/dutch"),
            msdyn_workdistributionmode=192350001,  # pick
            msdyn_capacityrequired=5,
            msdyn_maxconcurrentconnection=2,
            msdyn_enableagentaffinity=False,
            msdyn_autocloseafterinactivity=90,
            msdyn_allowedpresences="192360000,192360001,192360002,192360003,192360004",
            msdyn_enableautomatedmessages=True,
        ),
        workstream(
            "web-chat",
            msdyn_name="Web chat",
            msdyn_streamsource=192360000,  # Live chat
            _msdyn_defaultqueue_value=rid("Queue/general"),
            msdyn_workdistributionmode=192350000,
            msdyn_capacityformat=192360000,  # profile-based, as ALM's chat workstreams
            msdyn_capacityrequired=None,
            msdyn_maxconcurrentconnection=4,
            msdyn_enableagentaffinity=False,
            msdyn_autocloseafterinactivity=None,
            msdyn_allowedpresences=None,
            msdyn_enableautomatedmessages=True,
            msdyn_conversationmode=192350000,  # live, as the widget's (ALM's chat workstreams)
        ),
        workstream(
            "gbm-store-b",
            msdyn_name="GBM Store B",
            msdyn_streamsource=192450001,
            _msdyn_defaultqueue_value=rid("Queue/general"),
            msdyn_workdistributionmode=192350000,
            msdyn_capacityrequired=1,
            msdyn_maxconcurrentconnection=1,
            msdyn_enableagentaffinity=True,
            msdyn_autocloseafterinactivity=720,
            msdyn_allowedpresences="192360003",
            msdyn_enableautomatedmessages=True,
        ),
    ]
)

# Rule sets in manifest terms (JSON form), each with its workstream, type and display name.
# Written with every form a manifest may use (``not``, ``in``, ``notIn``); the XML holds their
# canonical form (docs/routing-xml.md), which is what reading it back gives.
TIER = {"field": "conversation.msdyn_customer_tier", "op": "equals", "value": 1}
RULE_SETS_JSON: dict[str, tuple[str, str, str, list[dict[str, Any]]]] = {
    "fb-nl-triage": (
        "facebook-nl",
        "classification",
        "Facebook NL triage",
        [
            {
                "name": "VIP",
                "when": TIER,
                "set": {"Tier": "vip", "conversation.msdyn_priorityscore": 1},
            },
            {
                "name": "Dutch speakers",
                "when": {
                    "any": [
                        {"field": "facebook.locale", "op": "contains", "value": "nl"},
                        {"field": "facebook.locale", "op": "in", "value": ["fy-NL", "nl-BE"]},
                    ]
                },
                "set": {"Language": "nl"},
            },
        ],
    ),
    "fb-nl-flags": (
        "facebook-nl",
        "classification",
        "fb-nl-flags",
        [
            {
                "name": "Known",
                "when": {"not": {"field": "facebook.customerName", "op": "isNull"}},
                "set": {"Known": True},
            }
        ],
    ),
    "fb-nl-routing": (
        "facebook-nl",
        "route-to-queue",
        "Facebook NL routing",
        [
            {
                "name": "VIP first",
                "when": {
                    "all": [
                        {"field": "context.Tier", "op": "equals", "value": "vip"},
                        {"not": {**TIER, "op": "lessThan"}},
                    ]
                },
                "routeTo": "vip-support",
            },
            {
                "name": "Dutch split",
                "when": {"field": "context.Language", "op": "equals", "value": "nl"},
                "routeTo": [{"queue": "dutch", "percent": 70}, {"queue": "general", "percent": 30}],
            },
            {"name": "Everyone else", "routeTo": "general"},
        ],
    ),
    "fb-en-classify": (
        "facebook-en",
        "classification",
        "Facebook EN classify",
        [
            {
                "name": "Scored",
                "when": {"field": "facebook.userPageScopedId", "op": "notEquals", "value": "0"},
                "set": {"Region": "en", "Score": 2.5},
            },
            {
                "name": "Short wait",
                "when": {
                    "not": {
                        "field": "conversation.msdyn_waittime",
                        "op": "greaterOrEqual",
                        "value": 30,
                    }
                },
                "set": {"Region": "fast"},
            },
        ],
    ),
    "gbm-a-routing": (
        "gbm-store-a",
        "route-to-queue",
        "GBM store A routing",
        [
            {
                "name": "Maps",
                "when": {
                    "field": "googleBusinessMessages.entryPoint",
                    "op": "equals",
                    "value": "PLACESHEET",
                },
                "routeTo": "dutch",
            },
            {
                "name": "Big spenders",
                "when": {
                    "all": [
                        {"field": "conversation.msdyn_spend", "op": "greaterThan", "value": 1000},
                        {
                            "not": {
                                "field": "googleBusinessMessages.placeId",
                                "op": "notIn",
                                "value": ["007", "42"],
                            }
                        },
                    ]
                },
                "routeTo": "vip-support",
            },
            {
                "name": "Small spenders",
                "when": {"field": "conversation.msdyn_spend", "op": "lessOrEqual", "value": 10.5},
                "routeTo": "general",
            },
        ],
    ),
}
# Classification sets run first, in name order; the route-to-queue set last.
STEP_ORDER = {
    "fb-nl-flags": 1,
    "fb-nl-triage": 2,
    "fb-nl-routing": 3,
    "fb-en-classify": 1,
    "gbm-a-routing": 1,
}
# Each workstream's context variables (all text: the only type a contract is seen to declare):
# those its classification rules set, and one no rule uses.
CONTEXT_VARIABLES = {
    "facebook-nl": ["Known", "Language", "Tier"],
    "facebook-en": ["Region", "Score"],
    "gbm-store-a": [],
    "gbm-store-b": ["StoreCode"],
    "web-chat": ["Topic"],
}
# The engagement context a contract declares, by the workstream's msdyn_streamsource.
CHANNEL_CONTEXT = {
    192330000: g.CHANNEL_CONTEXTS["facebook"],
    192450001: g.CHANNEL_CONTEXTS["googleBusinessMessages"],
    192360000: g.CHAT_CONTEXT,
}


def rule_set(name: str) -> tuple[str, Row]:
    address = f"RoutingRuleSet/{name}"
    ws, kind, display, rules = RULE_SETS_JSON[name]
    route = kind == "route-to-queue"
    xml = rulexml.encode(
        rules,
        hit_policy="all" if route else "first",
        rule_id=lambda rule: record_id(uuid.UUID(rid(address)), f"rules/{rule}"),
        queue_id=lambda queue: rid(f"Queue/{queue}"),
    )
    return address, {
        "msdyn_decisionrulesetid": rid(address),
        "msdyn_name": display,
        "msdyn_uniquename": unique(address),
        "msdyn_authoringmode": 192350000,
        "msdyn_isinputcollection": False,
        "_msdyn_inputcontractid_value": rid(f"Workstream/{ws}/contract"),
        # Declarative for both kinds; the output contract tells them apart (docs/routing-xml.md).
        "msdyn_rulesettype": k.RULE_SET_DECLARATIVE,
        "_msdyn_outputcontractid_value": OUTPUT_CONTRACT
        if route
        else rid(f"Workstream/{ws}/contract"),
        "msdyn_rulesetdefinition": xml,
    }


RULE_SETS = dict(rule_set(name) for name in RULE_SETS_JSON)

CONTRACTS = {
    f"Workstream/{ws}/contract": {
        "msdyn_decisioncontractid": rid(f"Workstream/{ws}/contract"),
        "msdyn_name": f"Workstream/{ws}/contract",
        "msdyn_uniquename": unique(f"Workstream/{ws}/contract"),
        "msdyn_contractdefinition": contractxml.encode(
            CHANNEL_CONTEXT[WORKSTREAMS[f"Workstream/{ws}"]["msdyn_streamsource"]],
            dict.fromkeys(variables, "text"),
        ),
    }
    for ws, variables in CONTEXT_VARIABLES.items()
}

CONTEXT_VARIABLE_ROWS = {
    f"Workstream/{ws}/context.{name}": {
        "msdyn_ocliveworkstreamcontextvariableid": rid(f"Workstream/{ws}/context.{name}"),
        "msdyn_name": name,
        "msdyn_datatype": 192350000,  # text
        "_msdyn_liveworkstreamid_value": rid(f"Workstream/{ws}"),
    }
    for ws, variables in CONTEXT_VARIABLES.items()
    for name in variables
}

ROUTING_CONFIGURATIONS = {
    f"Workstream/{ws}/routing": {
        "msdyn_routingconfigurationid": rid(f"Workstream/{ws}/routing"),
        "msdyn_name": f"Workstream/{ws}/routing",
        "msdyn_uniquename": unique(f"Workstream/{ws}/routing"),
        "_msdyn_liveworkstreamid_value": rid(f"Workstream/{ws}"),
        "msdyn_isactiveconfiguration": True,
    }
    for ws in CONTEXT_VARIABLES
}

ROUTING_STEPS = {
    f"RoutingRuleSet/{name}/step": {
        "msdyn_routingconfigurationstepid": rid(f"RoutingRuleSet/{name}/step"),
        "msdyn_name": f"RoutingRuleSet/{name}/step",
        "msdyn_uniquename": unique(f"RoutingRuleSet/{name}/step"),
        "_msdyn_routingconfigurationid_value": rid(f"Workstream/{ws}/routing"),
        "_msdyn_rulesetid_value": rid(f"RoutingRuleSet/{name}"),
        "msdyn_steporder": STEP_ORDER[name],
        "msdyn_type": 192350002 if kind == "route-to-queue" else 192350000,
    }
    for name, (ws, kind, _display, _rules) in RULE_SETS_JSON.items()
}

WIDGET = "Workstream/web-chat/widget"
CHAT_WIDGETS = {
    WIDGET: {
        "msdyn_livechatconfigid": rid(WIDGET),
        "msdyn_name": "Web chat",  # named after its workstream when created
        "_msdyn_liveworkstreamid_value": rid("Workstream/web-chat"),
        "msdyn_widgettitle": "Let's chat",
        "_msdyn_ocwidgetlanguage_value": LANG_EN,
        "msdyn_widgetposition": 192236011,  # bottom left
        "msdyn_conversationmode": 192350000,  # live
        "msdyn_enablefileattachmentsforcustomers": True,
        "msdyn_enablefileattachmentsforagents": False,
    }
}
WIDGET_DOMAINS = {
    f"{WIDGET}/domain:{host}": {
        "msdyn_livechatwidgetlocationid": rid(f"{WIDGET}/domain:{host}"),
        "msdyn_name": host,
        "msdyn_domainvalue": host,
        "msdyn_ruletype": 100000000,  # Include
        "_msdyn_livechatconfigid_value": rid(WIDGET),
    }
    for host in ("shop.contoso.com", "www.contoso.com")
}

# Capacity profiles (REF-CP) and the rows giving the chat workstream two of them (REF-LWCP),
# named as the admin center names them (ALM).
CAPACITY_PROFILES = {
    f"CapacityProfile/{name}": {
        "msdyn_capacityprofileid": rid(f"CapacityProfile/{name}"),
        "msdyn_name": display,
        "msdyn_uniquename": unique(f"CapacityProfile/{name}"),
        "msdyn_defaultmaxunits": units,
        "msdyn_blockassignment": block,
        "msdyn_resetduration": reset,
    }
    for name, display, units, block, reset in (
        ("chat-profile", "Chat profile", 3, False, 192350000),
        ("vip-profile", "VIP profile", 1, True, 192350001),
    )
}
WORKSTREAM_PROFILES = {
    f"Workstream/web-chat/capacity:{name}": {
        "msdyn_liveworkstreamcapacityprofileid": rid(f"Workstream/web-chat/capacity:{name}"),
        "msdyn_name": f"{display}-{rid(f'CapacityProfile/{name}')}",
        "_msdyn_workstream_id_value": rid("Workstream/web-chat"),
        "_msdyn_capacityprofile_id_value": rid(f"CapacityProfile/{name}"),
    }
    for name, display in (("chat-profile", "Chat profile"), ("vip-profile", "VIP profile"))
}

TARGET: dict[str, dict[str, Row]] = {
    "Queue": QUEUES,
    "FacebookAccount": FACEBOOK_ACCOUNTS,
    "GoogleBusinessMessagesAccount": GBM_ACCOUNTS,
    "DecisionContract": CONTRACTS,
    "Workstream": WORKSTREAMS,
    "ContextVariable": CONTEXT_VARIABLE_ROWS,
    "RoutingRuleSet": RULE_SETS,
    "RoutingConfiguration": ROUTING_CONFIGURATIONS,
    "RoutingStep": ROUTING_STEPS,
    "FacebookPage": FACEBOOK_PAGES,
    "GoogleBusinessMessagesAgent": GBM_AGENTS,
    "ChatWidget": CHAT_WIDGETS,
    "ChatWidgetDomain": WIDGET_DOMAINS,
    "CapacityProfile": CAPACITY_PROFILES,
    "WorkstreamCapacityProfile": WORKSTREAM_PROFILES,
}


# --- the round trip ---------------------------------------------------------------------------


def read_resolver() -> Resolver:
    resolver = Resolver(
        NS, languages=dict(LANGUAGES), output_contract=OUTPUT_CONTRACT, users=dict(USERS)
    )
    for rows in TARGET.values():
        for address in rows:
            resolver.add(address, rid(address))
    return resolver


def read(target: dict[str, dict[str, Row]], resolver: Resolver) -> list[Found]:
    """Every row in manifest terms; a workstream's context variables come from its
    ``msdyn_ocliveworkstreamcontextvariable`` rows, in name order (as export reads them)."""
    variables: dict[str, dict[str, Any]] = {}
    for row in sorted(target.get("ContextVariable", {}).values(), key=lambda r: r["msdyn_name"]):
        fields = k.CONTEXT_VARIABLE.from_row(row, resolver)
        variables.setdefault(f"Workstream/{fields['workstream']}", {})[fields["name"]] = fields[
            "type"
        ]
    found = []
    for kind, rows in target.items():
        for address, row in rows.items():
            fields = k.BY_NAME[kind].from_row(row, resolver)
            if kind == "Workstream":
                fields["contextVariables"] = variables.get(address, {})
            found.append(Found(k.BY_NAME[kind], address, fields))
    return found


def found_records() -> list[Found]:
    return read(TARGET, read_resolver())


def environ_for(assembled: Assembled) -> dict[str, str]:
    """The environment a plan of the exported manifests needs: each variable's value as the
    user would set it (the key file's text for the service account key, which the resolver
    sends as base64)."""
    environ = {}
    for name, value in assembled.secrets.items():
        text = value.reveal()
        if name.endswith("_SERVICEACCOUNTKEY"):
            text = base64.b64decode(text, validate=True).decode("utf-8")
        environ[name] = text
    return environ


def write_resolver(records: list[Record]) -> Resolver:
    resolver = Resolver(
        NS, languages=dict(LANGUAGES), output_contract=OUTPUT_CONTRACT, users=dict(USERS)
    )
    for record in records:
        resolver.add(record.address, record_id(NS, record.address))
    return resolver


@dataclass
class RoundTrip:
    found: list[Found]
    assembled: Assembled
    yaml_text: str
    report: Report
    records: list[Record]
    secret_problems: list[Any]
    rows: dict[str, dict[str, Row]]
    """Regenerated rows: kind → id → row."""


def round_trip(folder: Path) -> RoundTrip:
    found = found_records()
    assembled = to_manifests(found)
    text = dump(assembled.documents)
    (folder / "exported.yaml").write_text(text, encoding="utf-8")
    report = validate(Options(paths=[str(folder)]))
    secrets = SecretResolver(environ_for(assembled))
    records = desired_records(report.documents, secrets)
    resolver = write_resolver(records)
    rows: dict[str, dict[str, Row]] = {kind.name: {} for kind in k.KINDS}
    for record in records:
        if record.present:
            row = record.kind.to_row(record.fields, record.address, resolver, create=True)
            rows[record.kind.name][row[record.kind.table.primary_key]] = row
    return RoundTrip(found, assembled, text, report, records, list(secrets.problems), rows)


@pytest.fixture(scope="module")
def trip(tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    return round_trip(tmp_path_factory.mktemp("exported"))


# --- the target itself is what the docs say ---------------------------------------------------


def test_target_rows_have_derived_ids_and_every_column_a_query_reads() -> None:
    for kind_name, rows in TARGET.items():
        kind = k.BY_NAME[kind_name]
        for address, row in rows.items():
            assert row[kind.table.primary_key] == rid(address), address
            missing = set(kind.select) - {"modifiedon"} - set(row)
            assert not missing, f"{address} lacks {sorted(missing)}"
            expanded = {f.relation.name for f in kind.fields if f.relation is not None}
            unknown = [c for c in row if kind.table.by_read_name(c) is None and c not in expanded]
            assert not unknown, f"{address}: {unknown} are not columns of {kind.table.logical_name}"
    assert set(TARGET) == {kind.name for kind in k.KINDS}
    assert len(KEY_BASE64) > 4000  # the key needs both columns


def test_target_covers_every_option_value() -> None:
    queues = QUEUES.values()
    assert {r["msdyn_queuetype"] for r in queues} == set(k.QUEUE_TYPES.values())
    assert {r["msdyn_assignmentstrategy"] for r in queues} == set(k.ASSIGNMENT.values())
    assert {r["queueviewtype"] for r in queues} == set(k.VISIBILITY.values())
    streams = WORKSTREAMS.values()
    assert {r["msdyn_streamsource"] for r in streams} == set(k.CHANNELS.values())
    assert {r["msdyn_workdistributionmode"] for r in streams} == set(k.DISTRIBUTION.values())
    # Every rule set is Declarative, as real orgs hold both kinds; the contracts tell the kind.
    assert {r["msdyn_rulesettype"] for r in RULE_SETS.values()} == {k.RULE_SET_DECLARATIVE}
    kinds = {k.rule_set_type(r, read_resolver()) for r in RULE_SETS.values()}
    assert kinds == {"route-to-queue", "classification"}
    assert {r["msdyn_type"] for r in ROUTING_STEPS.values()} == set(k.STEP_TYPES.values())
    # Text is the one type a contract is seen to declare (docs/routing-xml.md).
    types = {r["msdyn_datatype"] for r in CONTEXT_VARIABLE_ROWS.values()}
    assert types == {k.VARIABLE_TYPES["text"]}
    assert {r["msdyn_priority"] is None for r in queues} == {True, False}


def test_target_rules_use_the_eight_operators_in_every_form_a_manifest_has() -> None:
    """The rules are written with every manifest form (``not``, ``in``, ``notIn``), and their
    canonical form uses each of the eight operators real orgs hold, and no other."""
    written = [rule for *_rest, rules in RULE_SETS_JSON.values() for rule in rules]
    forms = {
        key
        for rule in written
        for node in _walk(rule.get("when"))
        if isinstance(node, dict)
        for key in node
    }
    assert {"all", "any", "not"} <= forms
    ops = {
        node["op"]
        for rule in written
        for node in _walk(rule.get("when"))
        if isinstance(node, dict) and "op" in node
    }
    assert {"in", "notIn"} <= ops
    canonical = [canonical_rule(rule) for rule in written]
    leaves = {
        node["op"]
        for rule in canonical
        for node in _walk(rule.get("when"))
        if isinstance(node, dict) and "op" in node
    }
    assert leaves == set(g.OPERATORS)
    assert any("when" not in rule for rule in written)  # a rule that always matches
    outputs = {key for rule in written for key in rule.get("set", {})}
    assert any(key.startswith("conversation.") for key in outputs)
    declared = {f"{ws}/{name}" for ws, names in CONTEXT_VARIABLES.items() for name in names}
    for ws, _kind, _display, rules in RULE_SETS_JSON.values():
        for rule in rules:
            for key in rule.get("set", {}):
                assert key.startswith("conversation.") or f"{ws}/{key}" in declared, key


# --- rows → manifests → rows ------------------------------------------------------------------


def test_exported_manifests_validate_without_errors(trip: RoundTrip) -> None:
    assert [str(d) for d in trip.report.errors] == []
    # Only the retired channel is worth a word: the GBM account and its two workstreams.
    assert {d.code for d in trip.report.warnings} <= {"retired-channel"}
    kinds = [document.kind for document in trip.report.documents]
    assert sorted(kinds) == sorted(
        ["Queue"] * 5
        + ["FacebookAccount"] * 2
        + ["GoogleBusinessMessagesAccount"]
        + ["CapacityProfile"] * 2
        + ["Workstream"] * 5
        + ["RoutingRuleSet"] * 5
    )
    assert trip.report.document_count == len(trip.assembled.documents)


def test_exported_secrets_resolve_from_the_environment(trip: RoundTrip) -> None:
    assert trip.secret_problems == []
    # Every secret the target holds is a variable, each named once, each a valid name.
    assert len(trip.assembled.secrets) == 9
    for name in trip.assembled.secrets:
        assert re.match(ENV_NAME_PATTERN, name), name
    revealed = {value.reveal() for value in trip.assembled.secrets.values()}
    assert KEY_BASE64 in revealed
    assert PAGE_SPARE_TOKEN in revealed
    assert GBM_AGENT_C_TOKEN in revealed


@pytest.mark.parametrize("kind", [kind.name for kind in k.KINDS])
def test_round_trip_gives_identical_rows(trip: RoundTrip, kind: str) -> None:
    record_kind = k.BY_NAME[kind]
    original = {row[record_kind.table.primary_key]: row for row in TARGET[kind].values()}
    regenerated = trip.rows[kind]
    assert sorted(regenerated) == sorted(original)
    # A relationship is no column: it is written with $ref (test_members_come_back below).
    written = {c for f in record_kind.fields if f.relation is None for c in f.columns}
    for row_id, row in regenerated.items():
        # The mapping writes every column it reads, and only columns the target row has; a
        # queue's priority only when the manifest gives one (the target's is null here).
        unset = {"msdyn_priority"} if original[row_id].get("msdyn_priority", 0) is None else set()
        # A profile-based workstream's units are neither written nor compared.
        if original[row_id].get("msdyn_capacityformat") == 192360000:
            unset.add("msdyn_capacityrequired")
        assert written - unset <= set(row), sorted(written - unset - set(row))
        assert not unset & set(row), sorted(unset & set(row))
        assert set(row) <= set(original[row_id]), sorted(set(row) - set(original[row_id]))
        assert not {f.relation.name for f in record_kind.fields if f.relation} & set(row)
        assert row == {column: original[row_id][column] for column in row}


def test_no_record_is_absent_and_every_record_is_in_the_target(trip: RoundTrip) -> None:
    assert all(record.present for record in trip.records)
    addresses = {address for rows in TARGET.values() for address in rows}
    assert {record.address for record in trip.records} == addresses


def test_export_leaves_defaults_out(trip: RoundTrip) -> None:
    documents = {(d["kind"], d["metadata"]["name"]): d["spec"] for d in trip.assembled.documents}
    assert documents["Queue", "general"] == {
        "priority": 5,
        "assignment": "round-robin",
        "visibility": "private",
    }
    assert documents["Queue", "claims"] == {
        "displayName": "Claims",
        "type": "record",
        "priority": 3,
        "assignment": "longest-idle",
        "visibility": "private",
        "maxSize": 200,
    }
    assert documents["Queue", "dutch"]["maxSize"] == 0  # zero is not "unset"
    assert "priority" not in documents["Queue", "phone"]  # null: the manifest says none
    assert "displayName" not in documents["FacebookAccount", "fabrikam"]
    assert documents["Workstream", "facebook-en"] == {
        "channel": "facebook",
        "fallbackQueue": "vip-support",
        "distribution": {"mode": "push"},
        "automatedMessages": False,
        "contextVariables": {"Region": "text", "Score": "text"},
        "facebook": {"account": "fabrikam", "page": "Fabrikam EN", "language": "en-US"},
    }
    nl = documents["Workstream", "facebook-nl"]
    assert nl["autoCloseAfterInactivity"] == "2d"
    assert nl["facebook"] == {
        "account": "contoso-facebook",
        "page": "Contoso NL",
        "language": "nl-NL",
        "fileAttachments": {"customer": True, "agent": True},
        "humanAgentMessageTag": True,
    }
    assert documents["Workstream", "gbm-store-a"]["autoCloseAfterInactivity"] == "90m"
    assert documents["Workstream", "gbm-store-b"]["autoCloseAfterInactivity"] == "12h"
    agents = documents["GoogleBusinessMessagesAccount", "contoso-gbm"]["agents"]
    assert [("clientToken" in agent) for agent in agents] == [True, False, True]
    assert "contextVariables" not in documents["Workstream", "gbm-store-a"]  # none: a default
    assert documents["Workstream", "gbm-store-b"]["contextVariables"] == {"StoreCode": "text"}
    # Rules come back in the one form the XML holds them in (json.dumps tells 1 from True).
    for name, (_ws, _kind, _display, rules) in RULE_SETS_JSON.items():
        exported = documents["RoutingRuleSet", name]["rules"]
        assert json.dumps(exported) == json.dumps([canonical_rule(rule) for rule in rules]), name
    # That form, spelled out: in → any of equals (spliced into its any), not pushed down to
    # the leaves, values as the text they are written as ("007" stays text, "42" reads as 42).
    triage = documents["RoutingRuleSet", "fb-nl-triage"]["rules"]
    assert triage[1]["when"] == {
        "any": [
            {"field": "facebook.locale", "op": "contains", "value": "nl"},
            {"field": "facebook.locale", "op": "equals", "value": "fy-NL"},
            {"field": "facebook.locale", "op": "equals", "value": "nl-BE"},
        ]
    }
    flags = documents["RoutingRuleSet", "fb-nl-flags"]["rules"]
    assert flags == [
        {
            "name": "Known",
            "when": {"field": "facebook.customerName", "op": "isNotNull"},
            "set": {"Known": True},
        }
    ]
    routing = documents["RoutingRuleSet", "fb-nl-routing"]["rules"]
    assert routing[0]["when"]["all"][1] == {
        "field": "conversation.msdyn_customer_tier",
        "op": "greaterOrEqual",
        "value": 1,
    }
    assert routing[2] == {"name": "Everyone else", "routeTo": "general"}
    classify = documents["RoutingRuleSet", "fb-en-classify"]["rules"]
    assert classify[1]["when"] == {
        "field": "conversation.msdyn_waittime",
        "op": "lessThan",
        "value": 30,
    }
    gbm = documents["RoutingRuleSet", "gbm-a-routing"]["rules"]
    assert gbm[1]["when"]["all"][1] == {
        "any": [
            {"field": "googleBusinessMessages.placeId", "op": "equals", "value": "007"},
            {"field": "googleBusinessMessages.placeId", "op": "equals", "value": 42},
        ]
    }


def test_export_never_contains_a_secret_value(trip: RoundTrip) -> None:
    for value in SECRETS:
        assert value not in trip.yaml_text
        assert value not in json.dumps(trip.assembled.documents)
    references = re.findall(r"fromEnv: (\S+)", trip.yaml_text)
    assert sorted(references) == sorted(trip.assembled.secrets)


def test_round_trip_is_stable(tmp_path: Path, trip: RoundTrip) -> None:
    """Exporting the same target twice writes the same text."""
    assert round_trip(tmp_path).yaml_text == trip.yaml_text


# --- single fields, read from rows --------------------------------------------------------------


def test_body_binds_lookups_to_entity_sets() -> None:
    row = {
        "msdyn_liveworkstreamid": rid("Workstream/x"),
        "msdyn_name": "x",
        "_msdyn_defaultqueue_value": rid("Queue/general"),
        "_msdyn_routingcontractid_value": None,
    }
    assert body(t.TABLES[t.WORKSTREAM], row) == {
        "msdyn_liveworkstreamid": rid("Workstream/x"),
        "msdyn_name": "x",
        "msdyn_defaultqueue@odata.bind": f"/queues({rid('Queue/general')})",
        "msdyn_routingcontractid@odata.bind": None,
    }
    page = body(t.TABLES[t.FB_PAGE], FACEBOOK_PAGES[PAGE_NL])
    assert page["msdyn_ocwidgetlanguage@odata.bind"] == f"/msdyn_oclanguages({LANG_NL})"
    assert (
        page["msdyn_ocfbapplicationid@odata.bind"] == f"/msdyn_ocfbapplications({rid(FB_CONTOSO)})"
    )
    assert not any(key.startswith("_") for key in page)


@pytest.mark.parametrize(
    ("kind", "column", "path"),
    [
        (k.QUEUE, "msdyn_assignmentstrategy", "assignment"),
        (k.QUEUE, "msdyn_queuetype", "type"),
        (k.QUEUE, "queueviewtype", "visibility"),
        (k.WORKSTREAM, "msdyn_streamsource", "channel"),
        (k.WORKSTREAM, "msdyn_workdistributionmode", "distribution.mode"),
        (k.CONTEXT_VARIABLE, "msdyn_datatype", "type"),
    ],
)
def test_unknown_option_value_reads_as_its_number(
    kind: k.RecordKind, column: str, path: str
) -> None:
    row = dict(next(iter(TARGET[kind.name].values())))
    row[column] = 192359999
    assert kind.from_row(row, read_resolver())[path] == "<192359999>"
    row[column] = None
    assert kind.from_row(row, read_resolver())[path] is None


def test_a_rule_sets_kind_is_read_from_its_contracts_not_its_type_column() -> None:
    resolver = read_resolver()
    route = RULE_SETS["RoutingRuleSet/gbm-a-routing"]
    classify = RULE_SETS["RoutingRuleSet/fb-en-classify"]
    assert k.RULE_SET.from_row(route, resolver)["type"] == "route-to-queue"
    assert k.RULE_SET.from_row(classify, resolver)["type"] == "classification"
    # Another type is no kind a manifest has; it reads as its label, or its number.
    for number, label in [
        (192350001, "<ML model based>"),
        (192350003, "<Intelligent Conversation Distribution>"),
        (192359999, "<type 192359999>"),
        (None, "<no type>"),
    ]:
        row = {**route, "msdyn_rulesettype": number}
        assert k.RULE_SET.from_row(row, resolver)["type"] == label
    # Declarative, but writing neither the queue-identification contract nor its input.
    elsewhere = {**route, "_msdyn_outputcontractid_value": rid("Workstream/facebook-nl/contract")}
    assert k.RULE_SET.from_row(elsewhere, resolver)["type"] == "<Declarative>"
    # Written, the type column is Declarative for both kinds.
    for row in (route, classify):
        fields = k.RULE_SET.from_row(row, resolver)
        address = next(a for a, r in RULE_SETS.items() if r is row)
        written = k.RULE_SET.to_row(fields, address, resolver, create=False)
        assert written["msdyn_rulesettype"] == k.RULE_SET_DECLARATIVE


def test_a_contract_is_read_as_what_manifests_say_of_it() -> None:
    """Our contract is the ALM workstream contract with the channel's engagement context in
    its chat channel's place; any layout of it reads the same; what manifests cannot say
    leaves it as it is, and what the first version wrote is rewritten."""
    resolver = read_resolver()
    row = CONTRACTS["Workstream/facebook-nl/contract"]
    fields = k.CONTRACT.from_row(row, resolver)
    assert fields == {
        "channel": "facebook",
        "contextVariables": {"Known": "text", "Language": "text", "Tier": "text"},
    }
    alm = (
        Path(__file__).parents[1]
        / "fixtures"
        / "realorg"
        / "contracts"
        / "alm-test-chat-workstream-contract.xml"
    ).read_text(encoding="utf-8")
    alm = alm[alm.index("-->") + 3 :].strip()
    ours = contractxml.encode("msdyn_livechatengagementctx", {"ALMTestChatQuestionTwo": "text"})
    # Ours, element for element, is the ALM contract (its second variable aside).
    real = [
        (e.tag, dict(e.attrib))
        for e in rulexml.parse(alm).iter()
        if e.get("name") != "ALMTestChatQuestionOne"
    ]
    assert [(e.tag, dict(e.attrib)) for e in rulexml.parse(ours).iter()] == real
    # Laid out as the export holds it (indented, ``<entity ... />``): the same.
    laid_out = row["msdyn_contractdefinition"].replace("><", ">\n  <").replace("/>", " />")
    assert laid_out != row["msdyn_contractdefinition"]
    assert k.CONTRACT.from_row({**row, "msdyn_contractdefinition": laid_out}, resolver) == fields
    gbm = k.CONTRACT.from_row(CONTRACTS["Workstream/gbm-store-a/contract"], resolver)
    assert gbm == {"channel": "google-business-messages", "contextVariables": {}}
    # What manifests cannot say makes the contract left as it is (rewriting would lose it).
    number = row["msdyn_contractdefinition"].replace(
        'data-type="string"/>', 'data-type="integer"/>', 1
    )
    read = k.CONTRACT.from_row({**row, "msdyn_contractdefinition": number}, resolver)
    assert read["contextVariables"] == (
        "its context variable 'Known' is of data-type 'integer', which manifests cannot declare"
    )
    assert isinstance(read["contextVariables"], k.Unreadable)
    contact = row["msdyn_contractdefinition"].replace(
        "<complex", '<entity logical-name="contact" key="contact"/><complex', 1
    )
    read = k.CONTRACT.from_row({**row, "msdyn_contractdefinition": contact}, resolver)
    assert read["channel"] == "it declares entity 'contact', which manifests cannot say"
    # The first version's own contract is rewritten, not left as it is.
    legacy = '<contract><attribute name="language" type="string"/></contract>'
    read = k.CONTRACT.from_row({**row, "msdyn_contractdefinition": legacy}, resolver)
    assert read == {"channel": k.LEGACY, "contextVariables": k.LEGACY}
    assert not isinstance(read["channel"], k.Unreadable)


def test_custom_assignment_strategy_has_no_manifest_word() -> None:
    row = {**QUEUES["Queue/general"], "msdyn_assignmentstrategy": 192350002}  # custom
    assert k.QUEUE.from_row(row, read_resolver())["assignment"] == "<192350002>"


def test_unknown_lookup_id_reads_as_the_id() -> None:
    stranger = "0b9a8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"
    resolver = read_resolver()
    row = {**WORKSTREAMS["Workstream/facebook-nl"], "_msdyn_defaultqueue_value": stranger}
    assert k.WORKSTREAM.from_row(row, resolver)["fallbackQueue"] == f"<{stranger}>"
    # An id of ours that is not a queue is no queue name either.
    wrong_kind = rid("Workstream/facebook-en")
    row["_msdyn_defaultqueue_value"] = wrong_kind
    assert k.WORKSTREAM.from_row(row, resolver)["fallbackQueue"] == f"<{wrong_kind}>"
    # A contract that is not its workstream's: the suffix must match too.
    row["_msdyn_routingcontractid_value"] = rid("Workstream/facebook-en/routing")
    expected = f"<{rid('Workstream/facebook-en/routing')}>"
    assert k.WORKSTREAM.from_row(row, resolver)["routingContract"] == expected
    page = {**FACEBOOK_PAGES[PAGE_NL], "_msdyn_ocwidgetlanguage_value": stranger}
    assert k.FACEBOOK_PAGE.from_row(page, resolver)["facebook.language"] == f"<{stranger}>"
    # A queue outside the project in a rule reads as its id as well.
    maps = {"field": "googleBusinessMessages.entryPoint", "op": "equals", "value": "MAPS"}
    xml = rulexml.encode(
        [{"name": "r", "when": maps, "routeTo": "elsewhere"}],
        hit_policy="all",
        rule_id=lambda name: rid(name),
        queue_id=lambda _name: stranger,
    )
    rules = k.RULE_SET.from_row(
        {**RULE_SETS["RoutingRuleSet/gbm-a-routing"], "msdyn_rulesetdefinition": xml}, resolver
    )["rules"]
    assert rules[0]["routeTo"] == f"<{stranger}>"


def test_null_boolean_reads_as_the_column_default() -> None:
    resolver = read_resolver()
    row = {
        **WORKSTREAMS["Workstream/facebook-nl"],
        "msdyn_enableautomatedmessages": None,
        "msdyn_enableagentaffinity": None,
    }
    fields = k.WORKSTREAM.from_row(row, resolver)
    assert fields["automatedMessages"] is True
    assert fields["distribution.agentAffinity"] is False
    page = dict.fromkeys(
        (
            "msdyn_enablefileattachmentsforcustomers",
            "msdyn_enablefileattachmentsforagents",
            "msdyn_enablehumanagenttag",
        )
    )
    fields = k.FACEBOOK_PAGE.from_row({**FACEBOOK_PAGES[PAGE_NL], **page}, resolver)
    assert fields["facebook.fileAttachments.customer"] is False
    assert fields["facebook.humanAgentMessageTag"] is False
    # And the defaults agree with the table's column defaults.
    columns = t.TABLES[t.WORKSTREAM].columns
    assert columns["msdyn_enableautomatedmessages"].default is True
    assert columns["msdyn_enableagentaffinity"].default is False


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (2880, "2d"),
        (1440, "1d"),
        (720, "12h"),
        (60, "1h"),
        (1500, "25h"),
        (90, "90m"),
        (1, "1m"),
        (2881, "2881m"),
        (None, None),
    ],
)
def test_duration_reads_in_the_shortest_exact_unit(minutes: int | None, text: str | None) -> None:
    row = {**WORKSTREAMS["Workstream/facebook-nl"], "msdyn_autocloseafterinactivity": minutes}
    fields = k.WORKSTREAM.from_row(row, read_resolver())
    assert fields["autoCloseAfterInactivity"] == text
    back = k.WORKSTREAM.to_row(fields, "Workstream/facebook-nl", read_resolver(), create=False)
    assert back["msdyn_autocloseafterinactivity"] == minutes


@pytest.mark.parametrize(
    ("stored", "words"),
    [
        ("192360004,192360000,192360003", ["available", "away", "offline"]),
        ("192360003, 192360001,192360003", ["busy", "away"]),
        ("192369999,192360002", ["busy-dnd", "<192369999>"]),
        ("", []),
        (None, None),
    ],
)
def test_allowed_presences_read_in_option_order(
    stored: str | None, words: list[str] | None
) -> None:
    row = {**WORKSTREAMS["Workstream/facebook-nl"], "msdyn_allowedpresences": stored}
    assert k.WORKSTREAM.from_row(row, read_resolver())["allowedPresences"] == words


def test_allowed_presences_write_in_option_order() -> None:
    fields = {"allowedPresences": ["offline", "available", "busy"]}
    row = k.WORKSTREAM.to_row(fields, "Workstream/facebook-nl", read_resolver(), create=False)
    assert row["msdyn_allowedpresences"] == "192360000,192360001,192360004"


def test_service_account_key_joins_both_columns() -> None:
    fields = k.GBM_ACCOUNT.from_row(GBM_ACCOUNTS[GBM], read_resolver())
    key = fields["serviceAccountKey"]
    assert isinstance(key, Sensitive)
    assert key.reveal() == KEY_BASE64
    assert KEY_BASE64 not in repr(fields)
    # One column is enough for a short key; the second then reads as empty.
    short = {**GBM_ACCOUNTS[GBM], "msdyn_base64credentialfilestringcontd": None}
    assert (
        k.GBM_ACCOUNT.from_row(short, read_resolver())["serviceAccountKey"].reveal()
        == (KEY_BASE64[:4000])
    )
    # Neither column: no key at all.
    empty = {**short, "msdyn_base64credentialfilestring": None}
    assert k.GBM_ACCOUNT.from_row(empty, read_resolver())["serviceAccountKey"] is None


def test_service_account_key_splits_at_4000_characters() -> None:
    fields = {"serviceAccountKey": Sensitive("A" * 4000)}
    row = k.GBM_ACCOUNT.to_row(fields, GBM, read_resolver(), create=False)
    assert row["msdyn_base64credentialfilestring"] == "A" * 4000
    assert row["msdyn_base64credentialfilestringcontd"] is None
    row = k.GBM_ACCOUNT.to_row({"serviceAccountKey": None}, GBM, read_resolver(), create=False)
    assert row["msdyn_base64credentialfilestring"] is None
    assert row["msdyn_base64credentialfilestringcontd"] is None


def test_secrets_read_as_sensitive_values() -> None:
    resolver = read_resolver()
    rows = [
        (k.FACEBOOK_ACCOUNT, FACEBOOK_ACCOUNTS[FB_CONTOSO], "applicationSecret"),
        (k.FACEBOOK_PAGE, FACEBOOK_PAGES[PAGE_NL], "accessToken"),
        (k.GBM_ACCOUNT, GBM_ACCOUNTS[GBM], "clientToken"),
        (k.GBM_AGENT, GBM_AGENTS[AGENT_A], "clientToken"),
    ]
    for kind, row, path in rows:
        value = kind.from_row(row, resolver)[path]
        assert isinstance(value, Sensitive)
        assert value.reveal() in SECRETS
    assert k.GBM_AGENT.from_row(GBM_AGENTS[AGENT_B], resolver)["clientToken"] is None


def test_unreadable_xml_reads_as_a_marker_not_a_value() -> None:
    resolver = read_resolver()
    route = RULE_SETS["RoutingRuleSet/gbm-a-routing"]
    value = k.RULE_SET.from_row({**route, "msdyn_rulesetdefinition": "<decision"}, resolver)[
        "rules"
    ]
    assert isinstance(value, k.Unreadable)
    assert value.startswith("malformed XML")
    empty = {**route, "msdyn_rulesetdefinition": None}
    assert k.RULE_SET.from_row(empty, resolver)["rules"] == []
    # One rule a manifest cannot say makes the whole field unreadable, naming that rule: the
    # relationship path of a real capture (VRT ENRICHMENT_HIT_FIRST, tests/fixtures/realorg/).
    path = "msdyn_ocliveworkitem.msdyn_customer_msdyn_ocliveworkitem_contact.contactid"
    xml = route["msdyn_rulesetdefinition"].replace("msdyn_ocliveworkitem.msdyn_spend", path, 1)
    assert xml != route["msdyn_rulesetdefinition"]
    value = k.RULE_SET.from_row({**route, "msdyn_rulesetdefinition": xml}, resolver)["rules"]
    # (The path is shown cut to 60 characters.)
    assert value == k.Unreadable(
        f"rule 'Big spenders': it tests '{path[:57]}...', which manifests cannot name"
    )
    # The hit policy of the other kind is named first.
    first = route["msdyn_rulesetdefinition"].replace('hit-policy="all"', 'hit-policy="first"')
    value = k.RULE_SET.from_row({**route, "msdyn_rulesetdefinition": first}, resolver)["rules"]
    assert value == k.Unreadable("hit-policy 'first' in a route-to-queue rule set")
    contract = CONTRACTS["Workstream/facebook-nl/contract"]
    for xml in ('<!DOCTYPE x [<!ENTITY a "b">]><contract/>', "<contract>", "<decision/>"):
        fields = k.CONTRACT.from_row({**contract, "msdyn_contractdefinition": xml}, resolver)
        for path in ("channel", "contextVariables"):
            assert isinstance(fields[path], k.Unreadable), (xml, path)
    none = {**contract, "msdyn_contractdefinition": None}
    assert k.CONTRACT.from_row(none, resolver) == {"channel": None, "contextVariables": {}}


def test_values_that_cannot_be_written_name_the_problem() -> None:
    resolver = read_resolver()
    page = k.FACEBOOK_PAGE.from_row(FACEBOOK_PAGES[PAGE_NL], resolver)
    with pytest.raises(MappingError, match=r"language fr-FR is not available .*de-DE, en-US"):
        k.FACEBOOK_PAGE.to_row({**page, "facebook.language": "fr-FR"}, PAGE_NL, resolver)
    queue = k.QUEUE.from_row(QUEUES["Queue/general"], resolver)
    with pytest.raises(MappingError, match="assignment: unknown value '<192350002>'"):
        k.QUEUE.to_row({**queue, "assignment": "<192350002>"}, "Queue/general", resolver)
    stream = k.WORKSTREAM.from_row(WORKSTREAMS["Workstream/facebook-nl"], resolver)
    with pytest.raises(MappingError, match="Queue/nowhere is not a record of this project"):
        k.WORKSTREAM.to_row(
            {**stream, "fallbackQueue": "nowhere"}, "Workstream/facebook-nl", resolver
        )
    route = k.RULE_SET.from_row(RULE_SETS["RoutingRuleSet/gbm-a-routing"], resolver)
    # Rules and contracts are written only as real orgs hold them (docs/routing-xml.md).
    rules = [{"name": "Dutch", "when": {**TIER, "op": "beginsWith"}, "routeTo": "dutch"}]
    with pytest.raises(rulexml.RuleXmlError, match="operator 'beginsWith' cannot be written"):
        k.RULE_SET.to_row({**route, "rules": rules}, "RoutingRuleSet/gbm-a-routing", resolver)
    address = "Workstream/facebook-nl/contract"
    contract = k.CONTRACT.from_row(CONTRACTS[address], resolver)
    with pytest.raises(MappingError, match="context variable 'Tier' is of type 'number'"):
        k.CONTRACT.to_row({**contract, "contextVariables": {"Tier": "number"}}, address, resolver)
    resolver.output_contract = None
    with pytest.raises(MappingError, match="msdyn_demandqueueidentificationoutput"):
        k.RULE_SET.to_row(route, "RoutingRuleSet/gbm-a-routing", resolver)


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_exported_documents_are_plain_data(trip: RoundTrip) -> None:
    for document in trip.assembled.documents:
        for value in _walk(document):
            assert value is None or isinstance(value, str | int | float | bool | list | dict)


# --- bugs -------------------------------------------------------------------------------------


def _export(target: dict[str, dict[str, Row]], folder: Path) -> tuple[Assembled, Report]:
    """Export ``target`` (rows by kind and address) and validate what was written."""
    resolver = read_resolver()
    for rows in target.values():
        for address in rows:
            resolver.add(address, rid(address))
    assembled = to_manifests(read(target, resolver))
    (folder / "exported.yaml").write_text(dump(assembled.documents), encoding="utf-8")
    return assembled, validate(Options(paths=[str(folder)]))


def _page(account: str, name: str, token: str, page_id: str) -> tuple[str, Row]:
    """An unlinked page of ``account``."""
    address = f"{account}/{name}"
    row = {
        **FACEBOOK_PAGES[PAGE_SPARE],
        "msdyn_ocfbpageid": rid(address),
        "msdyn_fbpagename": name,
        "msdyn_fbpageid": page_id,
        "msdyn_fbpageaccesstoken": token,
        "_msdyn_ocfbapplicationid_value": rid(account),
    }
    return address, row


def test_export_helper_validates_a_clean_target(tmp_path: Path) -> None:
    assembled, report = _export(TARGET, tmp_path)
    assert report.errors == []
    assert len(assembled.secrets) == 9


def test_secret_variable_names_are_ascii_for_any_page_name(tmp_path: Path) -> None:
    pages = {**FACEBOOK_PAGES, **dict([_page(FB_FABRIKAM, "Café Noord", "token-one", "555")])}
    assembled, report = _export({**TARGET, "FacebookPage": pages}, tmp_path)
    invalid = [name for name in assembled.secrets if not re.match(ENV_NAME_PATTERN, name)]
    assert invalid == []
    assert [str(d) for d in report.errors] == []


def test_distinct_secrets_get_distinct_variables(tmp_path: Path) -> None:
    pages = dict(
        [
            _page(FB_CONTOSO, "Store A", "token-one", "556"),
            _page(FB_CONTOSO, "Store-A", "token-two", "557"),
        ]
    )
    assembled, _ = _export({**TARGET, "FacebookPage": {**FACEBOOK_PAGES, **pages}}, tmp_path)
    spec = next(
        d["spec"] for d in assembled.documents if d["metadata"]["name"] == "contoso-facebook"
    )
    names = [page["accessToken"]["fromEnv"] for page in spec["pages"]]
    assert len(set(names)) == len(names), names
    values = {value.reveal() for value in assembled.secrets.values()}
    assert {"token-one", "token-two"} <= values


def test_auto_close_of_zero_is_taken_by_the_table_but_not_said_by_a_manifest() -> None:
    # The table reference gives MinValue 0 (tables.py, DEV-WS); what 0 means in the product
    # is not documented, so a manifest's duration must be more than zero.
    column = t.TABLES[t.WORKSTREAM].columns["msdyn_autocloseafterinactivity"]
    assert column.minimum == 0
    with pytest.raises(ValueError, match="longer than zero"):
        parse_duration("0m")


def test_members_come_back_by_sign_in_name(trip: RoundTrip) -> None:
    """A queue's members are read by sign-in name, exported, and desired again as they were
    (they are written with $ref, not as a column: apply.writer)."""
    (record,) = [r for r in trip.records if r.address == "Queue/vip-support"]
    assert record.fields["members"] == ["ada@contoso.com", "Grace@Contoso.com"]
    others = [r for r in trip.records if r.kind is k.QUEUE and r.address != "Queue/vip-support"]
    assert all("members" not in r.fields for r in others)  # none: left as they are
    assert "  members:\n  - ada@contoso.com\n  - Grace@Contoso.com\n" in trip.yaml_text
