"""The rule-set and contract XML real orgs hold: every spelling the reconciler writes, with
the public source that shows it (docs/routing-xml.md explains the grammar as a whole).

Microsoft documents no grammar for ``msdyn_rulesetdefinition`` or ``msdyn_contractdefinition``.
What is written here was seen in exports of real orgs; anything else is refused by
``validate`` rather than guessed. Sources (full list in docs/routing-xml.md):

ALM
    ``microsoft/Dynamics365-Apps-Samples``, ``customer-service/omnichannel/alm-template-pipeline/
    solutions/boilerplate/Solution/`` (a solution exported from a real org by Microsoft):
    ``msdyn_decisionrulesets/new_9bac34a9602647249d9cec11de974d82/msdyn_rulesetdefinition.xml``
    (route to queue), ``.../new_372c5a8dfe7b4417832eb0ae044f580a/msdyn_rulesetdefinition.xml``
    (work classification), ``msdyn_decisioncontracts/new_316ca32a_7dfd_4848_aa47_ced2461a671f/
    msdyn_contractdefinition.xml`` (a workstream's contract), and the ``msdyn_decisionruleset.xml``
    beside each rule set (type, authoring mode, contracts).
VRT
    ``ameijers/PrometheanCCaaSToolbox``, ``tools/visual-routing-tester/tests/ruleXml.test.ts``
    @ff34b8c7aaa14cea5b0b2627b1da51bae72d2607: rule sets "captured verbatim from a real
    Dynamics 365 Contact Center environment"; ``src/dataverse.ts`` @aa0742679f7dcb61ce170bafce317
    fb34cc7a4e4 (its operator list).
PPTB
    ``victorsolaya/pptb-contact-center-map``, ``src/rules.test.mjs``
    @af7d182a99081c00ccd318137a511217df0e16d6 (``<logical operator="OR">`` inside AND).

The fixtures under ``tests/fixtures/realorg/`` are modelled on these exports; a test checks that
everything the writer emits for the examples is made only of what they show.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# --- the envelope ---------------------------------------------------------------------------

DECISION: Final = "decision"
"""``<decision hit-policy=".." version="1"><rules><rule id=".." name="..">``: ALM, VRT."""
VERSION: Final = "1"
HIT_POLICY_ROUTE: Final = "all"
"""Route-to-queue sets: ALM ``new_9bac…``, every VRT route-to-queue capture."""
HIT_POLICY_CLASSIFY: Final = "first"
"""Work classification sets: ALM ``new_372c…``, VRT ``ENRICHMENT_HIT_FIRST``."""
HIT_POLICIES: Final = (HIT_POLICY_ROUTE, HIT_POLICY_CLASSIFY)

# --- conditions -----------------------------------------------------------------------------

LOGICAL_AND: Final = "AND"
"""``<logical operator="AND">`` around a rule's conditions: ALM, VRT (nested twice in
``PERCENTAGE_DISTRIBUTION``)."""
LOGICAL_OR: Final = "OR"
"""``<logical operator="OR">`` nested in an AND group: PPTB ``src/rules.test.mjs`` (3p)."""

OPERATORS: Final[Mapping[str, str]] = {
    # manifest op → <condition operator="..">, each as a real export shows it
    "equals": "==",  # VRT PERCENTAGE_DISTRIBUTION, ENRICHMENT_HIT_FIRST
    "notEquals": "!=",  # VRT src/dataverse.ts operator list
    "greaterThan": ">",  # VRT CONDITIONAL_QUEUE_ASSIGN
    "lessThan": "<",  # VRT src/dataverse.ts operator list
    "greaterOrEqual": ">=",  # VRT MULTI_RULE_PREQUEUE_OVERFLOW, IN_QUEUE_OVERFLOW_WITH_UNIT
    "lessOrEqual": "<=",  # VRT src/dataverse.ts operator list
    "contains": "contains",  # VRT src/dataverse.ts operator list
    "isNotNull": "not-null",  # ALM new_9bac… and new_372c…; VRT overflow captures
}
"""The eight operators a rule is written with. No export shows a spelling for notContains,
beginsWith, endsWith or isNull; ``in``/``notIn`` are written as groups of ``==``/``!=``."""
WRITABLE: Final = ", ".join([*OPERATORS, "in", "notIn"]) + " (isNull only under not)"
"""The operators a manifest can use, in words, for messages."""
UNARY: Final = frozenset({"isNotNull", "isNull"})
LIST_OPERATORS: Final = frozenset({"in", "notIn"})

NEGATION: Final[Mapping[str, str]] = {
    "equals": "notEquals",
    "notEquals": "equals",
    "greaterThan": "lessOrEqual",
    "lessOrEqual": "greaterThan",
    "lessThan": "greaterOrEqual",
    "greaterOrEqual": "lessThan",
    "isNull": "isNotNull",
    "isNotNull": "isNull",
    "contains": "notContains",
    "notContains": "contains",
    "beginsWith": "notBeginsWith",
    "endsWith": "notEndsWith",
    "in": "notIn",
    "notIn": "in",
}
"""``not`` is pushed down to the leaves (docs/spec.md §2): no export shows a NOT group."""

READ_ONLY_OPERATORS: Final = frozenset({"in"})
"""Read, never written: ``<condition operator="in">`` with ``<rhs type="multistaticvalues">``
(PPTB ``src/rules.test.mjs``, an assignment rule); read as ``any`` of ``equals``."""

LHS_ATTRIBUTE: Final = "attribute"
"""``<lhs type="attribute">entity.attribute</lhs>``: ALM, VRT."""
RHS_STATIC: Final = "staticvalue"
"""``<rhs type="staticvalue">text</rhs>``, untyped (no ``datatype`` attribute): ALM, VRT."""
RHS_LIST: Final = "multistaticvalues"
"""``<rhs type="multistaticvalues"><value>..</value>..</rhs>``: PPTB (read only)."""
RHS_UNIT: Final = "unit"
"""``<rhs type="staticvalue" unit="seconds">30</rhs>``: VRT IN_QUEUE_OVERFLOW_WITH_UNIT. Read; a
rule using it is reported, since a manifest value has no unit."""

# --- what a condition or an output names ----------------------------------------------------

IDENTIFIER: Final = r"[A-Za-z_][A-Za-z0-9_]*"
"""An attribute or variable name after its entity (``liveworkitemcontext.PreferredLanguage``,
``msdyn_ocliveworkitem.msdyn_createdon``), as in every export."""
CONVERSATION_ENTITY: Final = "msdyn_ocliveworkitem"
"""Conversation attributes: ``msdyn_ocliveworkitem.msdyn_createdon`` (ALM, VRT conditions),
``msdyn_ocliveworkitem.msdyn_priorityscore`` (VRT, a classification output)."""
CONTEXT_KEY: Final = "liveworkitemcontext"
"""Context variables: ``liveworkitemcontext.PreferredLanguage`` (VRT), declared in the
contract's ``<complex key="liveworkitemcontext">`` (ALM)."""
CHANNEL_CONTEXTS: Final[Mapping[str, str]] = {
    "facebook": "msdyn_facebookengagementctx",
    "googleBusinessMessages": "msdyn_ocgooglebusinessmessagesengagementctx",
}
"""Channel engagement context tables (MicrosoftDocs/dynamics-365-customer-engagement ``ce/
customer-service/develop/reference/entities/msdyn_facebookengagementctx.md`` and
``msdyn_ocgooglebusinessmessagesengagementctx.md``). Addressed as ``<table>.<column>`` and
declared in the contract as the ALM contract declares ``msdyn_livechatengagementctx`` for its
chat workstream: derived from that pattern, not seen for these two channels
(docs/routing-xml.md, "Channel fields")."""
CHAT_CONTEXT: Final = "msdyn_livechatengagementctx"
"""The chat channel's engagement context, as the ALM contract declares it (read, so a chat
workstream's contract is told from ours)."""
CHANNEL_FIELDS: Final[Mapping[str, Mapping[str, str]]] = {
    "facebook": {
        "customerName": "msdyn_customername",
        "locale": "msdyn_locale",
        "timezone": "msdyn_timezone",
        "userPageScopedId": "msdyn_userpagescopedid",
    },
    "googleBusinessMessages": {
        "entryPoint": "msdyn_entrypoint",
        "placeId": "msdyn_placeid",
        "resolvedLocale": "msdyn_resolvedlocale",
        "userDeviceLocale": "msdyn_userdevicelocale",
    },
}
"""The columns of those tables (the same table references; String, 100 characters)."""

# --- actions --------------------------------------------------------------------------------

ROUTE_TARGET: Final = "assign_to.queue"
"""``<setattribute><lhs type="attribute">assign_to.queue</lhs><rhs type="staticvalue">GUID``:
ALM (bare lower-case GUID), VRT (also in braces)."""
SPLIT_TARGET: Final = "percentagebaseddistribution"
SPLIT_QUEUE: Final = "queuedetails.queueid"
SPLIT_PERCENT: Final = "queuedetails.percentage"
"""A percentage split: ``<upsertrecords><target>percentagebaseddistribution</target><records>``
with one ``<record>`` per queue holding ``queuedetails.queueid`` and ``queuedetails.percentage``:
VRT PERCENTAGE_DISTRIBUTION."""
SKILLS_TARGET: Final = "msdyn_ocliveworkitemcharacteristic"
"""Skill attachment (``upsertrecords`` into this table): ALM new_372c…. Read and reported;
manifests do not describe skills."""

# --- the contract ---------------------------------------------------------------------------

CONTRACT_ENTITIES: Final = (
    ("msdyn_ocliveworkitem", False),
    ("msdyn_effortpredictionresult", False),
    (None, False),  # the channel's engagement context stands here
    ("msdyn_ocliveworkitemcharacteristic", True),
    ("msdyn_ocliveworkitemcapacityprofile", True),
)
"""A workstream contract's ``<entity logical-name=".." key=".." [is-collection="true"] />``
elements, in the ALM contract's order (``new_316ca32a…/msdyn_contractdefinition.xml``), where
``msdyn_livechatengagementctx`` is its chat channel's engagement context."""
VARIABLE_TYPES: Final[Mapping[str, str]] = {"text": "string"}
"""``<variable name=".." data-type="string" />`` (ALM). No real export shows how a contract
declares a number or a boolean variable: those are refused by ``validate``."""

# --- what earlier versions of the reconciler wrote ---------------------------------------------

LEGACY_OPERATORS: Final = frozenset(
    {"eq", "ne", "like", "not-like", "begins-with", "ends-with", "in", "not-in", "null", "gt", "lt"}
)
"""Spellings the reconciler's first version guessed (``<condition operator="eq">``, a ``NOT``
group, ``datatype`` attributes, ``<rhs type="percentage">`` splits, ``output.`` outputs,
``<contract><attribute name=".." type="string"/></contract>``; docs/routing-xml.md, "Rules an
earlier version wrote"). No real org holds them, so a rule set or contract written that way is
ours and is rewritten in the real grammar, not left as it is."""
LEGACY_LOGICAL: Final = "NOT"
LEGACY_RHS_TYPE: Final = "percentage"
LEGACY_DATATYPE: Final = "datatype"
LEGACY_OUTPUT_PREFIX: Final = "output."
