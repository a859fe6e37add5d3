"""The Dataverse tables the reconciler manages: what ``$metadata`` tells about each table.

Every fact here cites its public source by key. The keys (Microsoft Learn pages in
``MicrosoftDocs/dynamics-365-customer-engagement``, at the commit read):

    DEV-WS    ce/developer/reference/entities/msdyn_liveworkstream.md
              @13744220ba5ade462ccea77e5b535772f5ce7468
    DEV-RC    ce/developer/reference/entities/msdyn_routingconfiguration.md
              @c55de32e78271ab8ce82a563c4290ae2c9312540
    DEV-STEP  ce/developer/reference/entities/msdyn_routingconfigurationstep.md
              @4cb042ff705814123a437f5c71b7d3cbf0664b92
    DEV-RS    ce/developer/reference/entities/msdyn_decisionruleset.md
              @029760a1cac0ed6b102341889b0f7464e1b51ec0
    ENT-RS    ce/customer-service/develop/reference/entities/msdyn_decisionruleset.md
              @e15c846ebdeaa631104db2d3abb9b07700f89dee
    DEV-DC    ce/developer/reference/entities/msdyn_decisioncontract.md
              @d6fd2a007a61e224bdb330269aa1bc9c505dcf35
    DEV-Q     ce/developer/reference/entities/queue.md
              @c55de32e78271ab8ce82a563c4290ae2c9312540
    DEV-CV    ce/developer/reference/entities/msdyn_ocliveworkstreamcontextvariable.md
              @69d734cd59edd7e8ee6f408b828cdfe1db2bfe61 (the same @f7ae5d03…; the old-format
              page under ce/customer-service/develop/reference/entities/ @01969140… agrees)
    ENT-FBP   ce/customer-service/develop/reference/entities/msdyn_ocfbpage.md
              @a5f498d2eabc660453e90a5095a7ba155828af33 (generated format, with relationships)
    ENT-GBMA  ce/customer-service/develop/reference/entities/
              msdyn_ocgooglebusinessmessagesagentaccount.md
              @b9738223cc21f3f3f2cbf06f7eacd5b1dd2dd96b
    NOTE      MicrosoftDocs/powerapps-docs
              powerapps-docs/developer/data-platform/reference/entities/annotation.md
              @000a09f9f35ada4cd52c89e8e4f4a54611a0dec0 (the Note table of every Dataverse org)
    FS-LCC    ce/field-service/developer/reference/entities/msdyn_livechatconfig.md
              @320ce7a1daa879576d003ad8642f34ab34a6fa36 (the chat widget; the newest generated
              format, with the relationships)
    FS-LCWL   ce/field-service/developer/reference/entities/msdyn_livechatwidgetlocation.md
              @bf2f124316bbce4d5b41475cea132c3b081a9f53 (a widget's allowed domains)
    CS-LWS    ce/customer-service/develop/reference/entities/msdyn_liveworkstream.md
              @01969140c10ba661dfe21abcc8b14a10a332a37e (lists the channel options of
              msdyn_streamsource)
    REF-CP    ce/developer/reference/entities/msdyn_capacityprofile.md
              @f7ae5d039bb192ee99b8f5e2884dab1752f32862 (the older page under
              ce/customer-service/develop/reference/entities/ @01969140… agrees, and marks
              msdyn_uniquename IsValidForUpdate False)
    REF-LWCP  ce/developer/reference/entities/msdyn_liveworkstreamcapacityprofile.md
              @a336f096f5a82a07b78dc6d4f80978d1fcf4d918 (a workstream's capacity profile: a
              table of its own with two lookups, not an N:N relationship)
    SYSUSER   MicrosoftDocs/powerapps-docs
              powerapps-docs/developer/data-platform/reference/entities/systemuser.md
              @06570acda9b264783a6b7732e4ce286ea3d3c45f
    PAD-Q     MicrosoftDocs/powerapps-docs
              powerapps-docs/developer/data-platform/reference/entities/queue.md
              @09770ae52bc4e33adeeff181ee79ecd690d615f2 (its Many-to-Many relationships)
    ALM       microsoft/Dynamics365-Apps-Samples @a585d08a1db601ceda0c4547453c82a5705777ac
              customer-service/omnichannel/alm-template-pipeline/solutions/boilerplate
              (an exported solution: real org data); its build/config/
              QueueToSystemUserLinkage.ps1 adds queue members

A lookup's ``on_delete`` is the ``Delete`` entry of its relationship's ``CascadeConfiguration``
in the referencing table's page; its navigation property is the relationship's
``ReferencingEntityNavigationPropertyName``. Choices no public source settled are marked
UNCONFIRMED here, in one place. Column lengths shared with manifest validation come from
``reconciler.models.limits``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum

from reconciler.models import limits


class Type(Enum):
    STRING = "Edm.String"
    MEMO = "Edm.String (memo)"
    INT = "Edm.Int32"
    BOOL = "Edm.Boolean"
    GUID = "Edm.Guid"
    DATETIME = "Edm.DateTimeOffset"
    CHOICE = "Picklist"
    CHOICES = "MultiSelectPicklist"
    LOOKUP = "Lookup"


class OnDelete(Enum):
    """What deleting the referenced record does to a row that points at it."""

    CASCADE = "cascade"  # parental relationship: the child goes too
    REMOVE_LINK = "remove-link"  # the lookup is cleared
    RESTRICT = "restrict"  # the delete is refused while the reference exists


@dataclass(frozen=True)
class Column:
    name: str
    type: Type
    max_length: int | None = None
    options: frozenset[int] = frozenset()
    minimum: int | None = None
    maximum: int | None = None
    target: str | None = None  # lookups: logical name of the referenced table
    navigation: str | None = None  # lookups: navigation property used with @odata.bind
    on_delete: OnDelete = OnDelete.REMOVE_LINK
    secret: bool = False  # field-secured: never logged
    output: bool = False  # generated by the service, read-only for clients
    create_only: bool = False  # valid on create, refused when changed by an update
    default: object = None

    @property
    def read_name(self) -> str:
        """The property name rows carry on read (``_x_value`` for lookups)."""
        return f"_{self.name}_value" if self.type is Type.LOOKUP else self.name


@dataclass(frozen=True)
class Table:
    logical_name: str
    entity_set: str
    primary_key: str
    primary_name: str
    columns: Mapping[str, Column] = field(default_factory=dict)

    def lookups(self) -> Iterator[Column]:
        return (c for c in self.columns.values() if c.type is Type.LOOKUP)

    def by_navigation(self, name: str) -> Column | None:
        for column in self.lookups():
            if column.navigation == name:
                return column
        return None

    def by_read_name(self, name: str) -> Column | None:
        """A column by the name a query uses: ``name``, or ``_x_value`` for a lookup (as in
        Dataverse, a lookup's own name is a navigation property, not a queryable column)."""
        if name.startswith("_") and name.endswith("_value"):
            column = self.columns.get(name[1:-6])
            return column if column is not None and column.type is Type.LOOKUP else None
        column = self.columns.get(name)
        return None if column is None or column.type is Type.LOOKUP else column


# Columns every table has. ``versionnumber`` backs the ETag.
STATE_ACTIVE, STATE_INACTIVE = 0, 1
STATUS_FOR_STATE = {STATE_ACTIVE: 1, STATE_INACTIVE: 2}
SYSTEM_COLUMNS = ("versionnumber", "createdon", "modifiedon")


def _common(primary_key: str) -> dict[str, Column]:
    return {
        primary_key: Column(primary_key, Type.GUID),
        "statecode": Column("statecode", Type.CHOICE, options=frozenset({0, 1}), default=0),
        "statuscode": Column("statuscode", Type.CHOICE, options=frozenset({1, 2}), default=1),
        "versionnumber": Column("versionnumber", Type.INT, output=True),
        "createdon": Column("createdon", Type.DATETIME, output=True),
        "modifiedon": Column("modifiedon", Type.DATETIME, output=True),
    }


def _s(name: str, length: int = 100, **kw: object) -> Column:
    return Column(name, Type.STRING, max_length=length, **kw)  # type: ignore[arg-type]


def _memo(name: str, length: int, **kw: object) -> Column:
    return Column(name, Type.MEMO, max_length=length, **kw)  # type: ignore[arg-type]


def _b(name: str, default: bool = False) -> Column:
    return Column(name, Type.BOOL, default=default)


def _i(name: str, minimum: int | None = None, maximum: int | None = None) -> Column:
    return Column(name, Type.INT, minimum=minimum, maximum=maximum)


def _c(name: str, *values: int, **kw: object) -> Column:
    return Column(name, Type.CHOICE, options=frozenset(values), **kw)  # type: ignore[arg-type]


def _l(name: str, target: str, on_delete: OnDelete, navigation: str | None = None) -> Column:
    """A lookup: its navigation property has the column's name (the
    ``ReferencingEntityNavigationPropertyName`` of every relationship below, in its source)
    unless ``navigation`` says otherwise (navigation properties are case-sensitive)."""
    return Column(
        name, Type.LOOKUP, target=target, navigation=navigation or name, on_delete=on_delete
    )


def _table(
    logical: str,
    entity_set: str,
    primary_key: str,
    primary_name: str,
    *columns: Column,
    stateful: bool = True,
) -> Table:
    """``stateful``: the table has ``statecode``/``statuscode`` (a note has neither: NOTE)."""
    cols = _common(primary_key)
    if not stateful:
        del cols["statecode"], cols["statuscode"]
    cols.update({c.name: c for c in columns})
    return Table(logical, entity_set, primary_key, primary_name, cols)


# Option values, sources as marked.
# DEV-Q lists 192350000 Messaging and 192350001 Entity. UNCONFIRMED: 192350002 (voice) is in no
# source read; kept because manifests can ask for a voice queue.
QUEUE_TYPES = (192350000, 192350001, 192350002)
# DEV-Q: Omnichannel Assignment, Round Robin, Custom Assignment Configuration, Longest Idle,
# No Assignment.
ASSIGNMENT = (192350000, 192350001, 192350002, 192350003, 192350005)
# DEV-WS lists 192350000 Entity Records only; CS-LWS lists the channels: 192330000 Facebook,
# 192360000 Live chat (ALM's chat workstreams hold it), 192450001 Google's Business Messages,
# 192300000 WhatsApp, 192350002 Custom. UNCONFIRMED: 19241000 (Teams) as written here.
STREAM_SOURCES = (192330000, 192450001, 192360000, 192300000, 19241000, 192350000, 192350002)
DISTRIBUTION = (192350000, 192350001)  # DEV-WS: Push, Pick
CAPACITY_FORMAT = (192350000, 192360000)  # DEV-WS: Unit based, Profile based
PRESENCES = (192360000, 192360001, 192360002, 192360003, 192360004)  # DEV-WS msdyn_allowedpresences
DIRECTION = (0, 1, 2, 3, 4)  # DEV-WS: Inbound, Outbound, Direct Inbound/Outbound, ProactiveOutbound
# CS-LWS and FS-LCC msdyn_conversationmode: 192350000 Live Chat, 192350001 Persistent Chat (on
# the workstream and on the widget; ALM's chat workstreams and widgets hold 192350000).
CONVERSATION_MODE = (192350000, 192350001)
WIDGET_POSITIONS = (192236010, 192236011)  # FS-LCC msdyn_widgetposition: Bottom right, left
# FS-LCC msdyn_widgetthemecolor: Red, Blue (the default), Green, Black, Orange, Pink, Grey, Violet,
# Brown, Clay, Purple, Teal: named colours, no hex value documented.
WIDGET_THEME_COLORS = (
    19236001,
    19236002,
    19236003,
    19236004,
    *range(192350001, 192350008),
    192360017,
)
WIDGET_RULE_TYPES = (100000000, 100000001)  # FS-LCWL msdyn_ruletype: Include, Exclude
WORKSTREAM_MODE = (717210000, 717210001)  # DEV-WS msdyn_mode: Legacy (the default), Simplified
SURVEY_MODE = (192350000, 192350001)  # ENT-FBP: insert survey in conversation, send survey link
# DEV-STEP msdyn_type: Enrichment, Skill identification, Queue identification, Agent Group
# identification. ALM: classification steps are 192350000, route-to-queue steps 192350002.
STEP_TYPES = (192350000, 192350001, 192350002, 192350003)
# DEV-RS msdyn_rulesettype: Declarative, ML model based, Dataverse Components, Intelligent
# Conversation Distribution. ALM: both of a workstream's rule sets are 192350000.
RULESET_TYPES = (192350000, 192350001, 192350002, 192350003)
AUTHORING_MODES = (192350000,)  # DEV-RS msdyn_authoringmode: the one option, Decision list
XML_LENGTH = 1_048_576  # DEV-RS msdyn_rulesetdefinition, DEV-DC msdyn_contractdefinition (Memo)
# DEV-CV msdyn_datatype: Text, Number, Entity Reference. No source shows a boolean option.
CONTEXT_VARIABLE_TYPES = (192350000, 192350001, 192350100)
# REF-CP msdyn_resetduration: 192350000 Immediate (the default), 192350001 Daily (the admin
# center's "End of day"); ALM's exported profile holds 192350000.
RESET_DURATIONS = (192350000, 192350001)

LANGUAGE = "msdyn_oclanguage"
QUEUE = "queue"
CONTRACT = "msdyn_decisioncontract"
RULESET = "msdyn_decisionruleset"
WORKSTREAM = "msdyn_liveworkstream"
ROUTING_CONFIGURATION = "msdyn_routingconfiguration"
ROUTING_STEP = "msdyn_routingconfigurationstep"
CONTEXT_VARIABLE = "msdyn_ocliveworkstreamcontextvariable"
FB_APPLICATION = "msdyn_ocfbapplication"
FB_PAGE = "msdyn_ocfbpage"
GBM_PARTNER = "msdyn_ocgooglebusinessmessagespartneraccount"
GBM_AGENT = "msdyn_ocgooglebusinessmessagesagentaccount"
CHAT_WIDGET = "msdyn_livechatconfig"
WIDGET_LOCATION = "msdyn_livechatwidgetlocation"
CAPACITY_PROFILE = "msdyn_capacityprofile"
WORKSTREAM_CAPACITY_PROFILE = "msdyn_liveworkstreamcapacityprofile"
SYSTEM_USER = "systemuser"
ANNOTATION = "annotation"
NOTE_TEXT_LENGTH = 100_000  # NOTE: notetext, Memo, MaxLength 100000


def _survey() -> tuple[Column, ...]:
    """ENT-FBP's survey columns (UNCONFIRMED for GBM agents: the same columns are assumed)."""
    return (
        _b("msdyn_postconversationsurveyenable"),
        _c("msdyn_postconversationsurveymode", *SURVEY_MODE),
        _s("msdyn_postconversationsurveymessagetext", 200),  # ENT-FBP: MaxLength 200
    )


_TABLES = (
    # UNCONFIRMED: the language table's column lengths come from no table reference.
    _table(
        LANGUAGE,
        "msdyn_oclanguages",
        "msdyn_oclanguageid",
        "msdyn_languagename",
        _s("msdyn_languagename"),
        _s("msdyn_localecode", 20),
        _i("msdyn_localeid", 0),
    ),
    _table(
        QUEUE,
        "queues",
        "queueid",
        "name",
        _s("name", limits.QUEUE_NAME),
        _memo("description", limits.QUEUE_DESCRIPTION),
        _b("msdyn_isomnichannelqueue"),  # DEV-Q: default False
        _c("msdyn_queuetype", *QUEUE_TYPES, create_only=True),
        _c("queueviewtype", 0, 1, default=0),
        _i("msdyn_priority", 1),  # DEV-Q: MinValue 1
        _c("msdyn_assignmentstrategy", *ASSIGNMENT),
        _i("msdyn_maxqueuesize", 0),  # DEV-Q: MinValue 0
        Column("msdyn_isdefaultqueue", Type.BOOL, output=True, default=False),
    ),
    _table(
        CONTRACT,
        "msdyn_decisioncontracts",
        "msdyn_decisioncontractid",
        "msdyn_name",
        _s("msdyn_name", 200),  # DEV-DC: MaxLength 200
        _s("msdyn_uniquename", 256),  # DEV-DC: MaxLength 256
        _memo("msdyn_contractdefinition", XML_LENGTH),
    ),
    _table(
        RULESET,
        "msdyn_decisionrulesets",
        "msdyn_decisionrulesetid",
        "msdyn_name",
        _s("msdyn_name", limits.RULE_SET_NAME),  # DEV-RS: MaxLength 200
        _s("msdyn_uniquename", 256),  # DEV-RS, ENT-RS: MaxLength 256
        _s("msdyn_description", 500),  # DEV-RS: String, MaxLength 500
        _memo("msdyn_rulesetdefinition", XML_LENGTH),
        _c("msdyn_rulesettype", *RULESET_TYPES),
        _c("msdyn_authoringmode", *AUTHORING_MODES),
        _b("msdyn_isinputcollection"),  # DEV-RS: default False
        # DEV-RS: both contract relationships are Delete: RemoveLink.
        _l("msdyn_inputcontractid", CONTRACT, OnDelete.REMOVE_LINK),
        _l("msdyn_outputcontractid", CONTRACT, OnDelete.REMOVE_LINK),
    ),
    _table(
        WORKSTREAM,
        "msdyn_liveworkstreams",
        "msdyn_liveworkstreamid",
        "msdyn_name",
        _s("msdyn_name", limits.WORKSTREAM_NAME),  # DEV-WS: MaxLength 100
        _c("msdyn_streamsource", *STREAM_SOURCES, create_only=True),
        _c("msdyn_workdistributionmode", *DISTRIBUTION, create_only=True),
        _c("msdyn_capacityformat", *CAPACITY_FORMAT),
        _i("msdyn_capacityrequired", 0),  # DEV-WS: MinValue 0
        _i("msdyn_maxconcurrentconnection", 1),  # DEV-WS: MinValue 1
        # DEV-WS: MinValue 0. UNCONFIRMED: its unit (no source says; minutes fit ALM's 2880).
        _i("msdyn_autocloseafterinactivity", 0),
        Column("msdyn_allowedpresences", Type.CHOICES, options=frozenset(PRESENCES)),
        # DEV-WS: msdyn_liveworkstream_defaultqueue_Queue and msdyn_liveworkstream_
        # decisioncontractid are Delete: RemoveLink.
        _l("msdyn_defaultqueue", QUEUE, OnDelete.REMOVE_LINK),
        _l("msdyn_routingcontractid", CONTRACT, OnDelete.REMOVE_LINK),
        _b("msdyn_enableautomatedmessages", default=True),  # DEV-WS: default True
        _b("msdyn_enableagentaffinity"),  # DEV-WS: default False
        _c("msdyn_direction", *DIRECTION, default=0),
        _c("msdyn_mode", *WORKSTREAM_MODE),
        _c("msdyn_conversationmode", *CONVERSATION_MODE),
    ),
    _table(
        ROUTING_CONFIGURATION,
        "msdyn_routingconfigurations",
        "msdyn_routingconfigurationid",
        "msdyn_name",
        _s("msdyn_name"),  # DEV-RC: MaxLength 100
        _s("msdyn_uniquename", 128),  # DEV-RC: MaxLength 128
        # DEV-RC: msdyn_liveworkstream_msdyn_routingconfiguration_liveworkstreamid is Delete:
        # RemoveLink (a deleted workstream leaves its routing configuration behind).
        _l("msdyn_liveworkstreamid", WORKSTREAM, OnDelete.REMOVE_LINK),
        _b("msdyn_isactiveconfiguration"),
    ),
    _table(
        ROUTING_STEP,
        "msdyn_routingconfigurationsteps",
        "msdyn_routingconfigurationstepid",
        "msdyn_name",
        _s("msdyn_name"),  # DEV-STEP: MaxLength 100
        _s("msdyn_uniquename", 128),  # DEV-STEP: MaxLength 128
        # DEV-STEP: both relationships are Delete: RemoveLink.
        _l("msdyn_routingconfigurationid", ROUTING_CONFIGURATION, OnDelete.REMOVE_LINK),
        _l("msdyn_rulesetid", RULESET, OnDelete.REMOVE_LINK),
        _i("msdyn_steporder"),  # DEV-STEP: Integer, any value
        _c("msdyn_type", *STEP_TYPES),
    ),
    _table(
        CONTEXT_VARIABLE,
        "msdyn_ocliveworkstreamcontextvariables",  # DEV-CV: EntitySetName
        "msdyn_ocliveworkstreamcontextvariableid",  # DEV-CV: PrimaryIdAttribute
        "msdyn_name",  # DEV-CV: PrimaryNameAttribute
        _s("msdyn_name"),  # DEV-CV: MaxLength 100
        _s("msdyn_displayname"),  # DEV-CV: MaxLength 100
        _c("msdyn_datatype", *CONTEXT_VARIABLE_TYPES),
        _s("msdyn_entitylogicalname"),  # DEV-CV: MaxLength 100 (entity-reference variables)
        _s("msdyn_relationshipname"),  # DEV-CV: MaxLength 100 (entity-reference variables)
        # DEV-CV: four flags described "(Currently Unused)", with these defaults.
        _b("msdyn_isdisplayable", default=True),
        _b("msdyn_islist"),
        _b("msdyn_ismodifiable", default=True),
        _b("msdyn_issystemdefined"),
        # DEV-CV: msdyn_msdyn_liveworkstream_msdyn_ocliveworkstreamcontextvariable_
        # liveworkstreamid is Delete: RemoveLink.
        _l("msdyn_liveworkstreamid", WORKSTREAM, OnDelete.REMOVE_LINK),
    ),
    # UNCONFIRMED: the Facebook application's column lengths come from no table reference read.
    _table(
        FB_APPLICATION,
        "msdyn_ocfbapplications",
        "msdyn_ocfbapplicationid",
        "msdyn_name",
        _s("msdyn_name", limits.FB_ACCOUNT_NAME),
        _s("msdyn_fbapplicationid", limits.FB_APPLICATION_ID),
        _s("msdyn_fbapplicationsecret", 100, secret=True),
        _s("msdyn_fbcallbackuri", 1000, output=True),
        _s("msdyn_fbverifytoken", 100, output=True, secret=True),
    ),
    _table(
        FB_PAGE,
        "msdyn_ocfbpages",
        "msdyn_ocfbpageid",
        "msdyn_fbpagename",  # ENT-FBP: PrimaryNameAttribute
        _s("msdyn_fbpagename", limits.FB_PAGE_NAME),  # ENT-FBP: MaxLength 100
        _s("msdyn_fbpageid", limits.FB_PAGE_ID),  # ENT-FBP: MaxLength 100
        _s("msdyn_fbpageaccesstoken", 500, secret=True),  # ENT-FBP: MaxLength 500
        # ENT-FBP: msdyn_msdyn_ocfbapplication_msdyn_ocfbpage is Delete: Cascade (the pages go
        # with their app); msdyn_msdyn_liveworkstream_msdyn_ocfbpage is Delete: Restrict (a
        # workstream a page points at cannot be deleted); msdyn_msdyn_oclanguage_msdyn_ocfbpage_
        # facebookpagelanguage is Delete: RemoveLink.
        _l("msdyn_ocfbapplicationid", FB_APPLICATION, OnDelete.CASCADE),
        _l("msdyn_liveworkstreamid", WORKSTREAM, OnDelete.RESTRICT),
        _l("msdyn_ocwidgetlanguage", LANGUAGE, OnDelete.REMOVE_LINK),
        _b("msdyn_enablefileattachmentsforcustomers"),  # ENT-FBP: default False
        _b("msdyn_enablefileattachmentsforagents"),  # ENT-FBP: default False
        _b("msdyn_enablehumanagenttag"),  # ENT-FBP: default False
        *_survey(),
    ),
    # UNCONFIRMED: the partner account's column lengths come from no table reference read.
    _table(
        GBM_PARTNER,
        "msdyn_ocgooglebusinessmessagespartneraccounts",
        "msdyn_ocgooglebusinessmessagespartneraccountid",
        "msdyn_name",
        _s("msdyn_name", limits.GBM_ACCOUNT_NAME),
        _s("msdyn_partneraccountid", limits.GBM_PARTNER_ID),
        _s("msdyn_partneraccountclienttoken", 500, secret=True),
        _s("msdyn_credentialfilename", 100),
        _memo("msdyn_base64credentialfilestring", 4000, secret=True),
        _memo("msdyn_base64credentialfilestringcontd", 4000, secret=True),
        _s("msdyn_googlebusinessmessagescallbackurl", 1000, output=True),
    ),
    _table(
        GBM_AGENT,
        "msdyn_ocgooglebusinessmessagesagentaccounts",
        "msdyn_ocgooglebusinessmessagesagentaccountid",
        "msdyn_name",
        _s("msdyn_name", limits.GBM_AGENT_FIELD),
        _s("msdyn_agentid", limits.GBM_AGENT_FIELD),
        _s("msdyn_brandid", limits.GBM_AGENT_FIELD),
        _s("msdyn_agentaccountclienttoken", 500, secret=True),
        # ENT-GBMA: the partner account, workstream and language relationships are all
        # Delete: RemoveLink (an agent survives its account, unlinked).
        _l("msdyn_ocgbmpartneraccount", GBM_PARTNER, OnDelete.REMOVE_LINK),
        _l("msdyn_liveworkstreamid", WORKSTREAM, OnDelete.REMOVE_LINK),
        _l("msdyn_ocwidgetlanguage", LANGUAGE, OnDelete.REMOVE_LINK),
        _b("msdyn_enableagentoverride"),
        _b("msdyn_enablefileattachmentsforagents"),
        _b("msdyn_enablefileattachmentsforcustomers"),
        *_survey(),
    ),
    # FS-LCC: EntitySetName msdyn_livechatconfigs, PrimaryIdAttribute msdyn_livechatconfigid,
    # PrimaryNameAttribute msdyn_name. Only the columns ALM's exported widgets hold are modelled
    # (and the two the service generates).
    _table(
        CHAT_WIDGET,
        "msdyn_livechatconfigs",
        "msdyn_livechatconfigid",
        "msdyn_name",
        _s("msdyn_name", limits.WIDGET_TEXT),  # FS-LCC: MaxLength 100
        _s("msdyn_widgettitle", limits.WIDGET_TEXT),  # FS-LCC: MaxLength 100
        _s("msdyn_widgetsubtitle", limits.WIDGET_TEXT),  # FS-LCC: MaxLength 100
        _c("msdyn_widgetposition", *WIDGET_POSITIONS, default=192236010),
        _c("msdyn_widgetthemecolor", *WIDGET_THEME_COLORS, default=19236002),
        _c("msdyn_conversationmode", *CONVERSATION_MODE, default=192350000),
        _b("msdyn_enablefileattachmentsforcustomers"),  # FS-LCC: default False
        _b("msdyn_enablefileattachmentsforagents"),  # FS-LCC: default False
        # FS-LCC: msdyn_msdyn_liveworkstream_msdyn_livechatconfig_liveworkstreamid is Delete:
        # Restrict (a workstream with a widget cannot be deleted); the language is RemoveLink.
        _l("msdyn_liveworkstreamid", WORKSTREAM, OnDelete.RESTRICT),
        _l("msdyn_ocwidgetlanguage", LANGUAGE, OnDelete.REMOVE_LINK),
        # FS-LCC: "Widget App Identifier used to identify the chat widget" (String 100) and the
        # "Javascript snippet which can be embedded in a webpage" (Memo 2000): the service
        # fills them; Microsoft's migration guide says never to write them
        # (ce/customer-service/administer/migrate-config-data-for-live-chat.md @504a3d94…).
        _s("msdyn_widgetappid", 100, output=True),
        _memo("msdyn_widgetsnippet", 2000, output=True),
    ),
    # FS-LCWL: EntitySetName msdyn_livechatwidgetlocations; one row per allowed domain.
    _table(
        WIDGET_LOCATION,
        "msdyn_livechatwidgetlocations",
        "msdyn_livechatwidgetlocationid",
        "msdyn_name",
        _s("msdyn_name", limits.WIDGET_TEXT),  # FS-LCWL: MaxLength 100
        _s("msdyn_domainvalue", limits.WIDGET_DOMAIN),  # FS-LCWL: MaxLength 200
        _c("msdyn_ruletype", *WIDGET_RULE_TYPES),
        # FS-LCWL: msdyn_msdyn_livechatconfig_msdyn_livechatwidgetlocation_livechatconfigid is
        # Delete: RemoveLink.
        _l("msdyn_livechatconfigid", CHAT_WIDGET, OnDelete.REMOVE_LINK),
    ),
    # REF-CP: EntitySetName msdyn_capacityprofiles, PrimaryIdAttribute msdyn_capacityprofileid,
    # PrimaryNameAttribute msdyn_name; ALM's exported profile holds exactly these columns.
    _table(
        CAPACITY_PROFILE,
        "msdyn_capacityprofiles",
        "msdyn_capacityprofileid",
        "msdyn_name",
        _s("msdyn_name", limits.CAPACITY_PROFILE_NAME),  # REF-CP: MaxLength 100
        _s("msdyn_uniquename", 128, create_only=True),  # REF-CP: MaxLength 128, set on create
        _i("msdyn_defaultmaxunits", 0, limits.CAPACITY_PROFILE_MAX_UNITS),  # REF-CP: 0 to 100
        _b("msdyn_blockassignment"),  # REF-CP: default False
        _c("msdyn_resetduration", *RESET_DURATIONS, default=192350000),
    ),
    # REF-LWCP: EntitySetName msdyn_liveworkstreamcapacityprofiles; one row per workstream and
    # profile (ALM's two chat workstreams each have one, sharing a profile).
    _table(
        WORKSTREAM_CAPACITY_PROFILE,
        "msdyn_liveworkstreamcapacityprofiles",
        "msdyn_liveworkstreamcapacityprofileid",
        "msdyn_name",
        _s("msdyn_name"),  # REF-LWCP: MaxLength 100
        # REF-LWCP: msdyn_liveworkstream_msdyn_liveworkstreamcapacityprofile is Delete:
        # RemoveLink (a deleted workstream leaves its profile rows behind, unlinked);
        # msdyn_capacityprofile_msdyn_liveworkstreamcapacityprofileid is Delete: Restrict (a
        # profile a workstream uses cannot be deleted), navigation property
        # msdyn_capacityProfile_id, with a capital P.
        _l("msdyn_workstream_id", WORKSTREAM, OnDelete.REMOVE_LINK),
        _l(
            "msdyn_capacityprofile_id",
            CAPACITY_PROFILE,
            OnDelete.RESTRICT,
            navigation="msdyn_capacityProfile_id",
        ),
    ),
    # SYSUSER: EntitySetName systemusers, PrimaryIdAttribute systemuserid, PrimaryNameAttribute
    # fullname. Users come from Microsoft Entra ID; the reconciler only reads them (a queue's
    # members are named by their sign-in name, domainname: "User Name", the Microsoft 365
    # user name).
    _table(
        SYSTEM_USER,
        "systemusers",
        "systemuserid",
        "fullname",
        _s("domainname", 1024),  # SYSUSER: MaxLength 1024, SystemRequired
        _s("internalemailaddress", 100),  # SYSUSER: MaxLength 100
        _s("firstname", 256),  # SYSUSER: MaxLength 256
        _s("lastname", 256),  # SYSUSER: MaxLength 256
        _s("fullname", 200, output=True),  # SYSUSER: read-only, MaxLength 200
        _b("isdisabled"),  # SYSUSER: default False
        Column("azureactivedirectoryobjectid", Type.GUID, output=True),  # SYSUSER: read-only
    ),
    # The reconciler's ledger lives in notes (docs/ownership.md). NOTE: EntitySetName
    # annotations, PrimaryIdAttribute annotationid, PrimaryNameAttribute subject; no statecode.
    # Its polymorphic Regarding lookup (objectid) is not emulated: the ledger's notes regard
    # nothing (NOTE: objectid is RequiredLevel None).
    _table(
        ANNOTATION,
        "annotations",
        "annotationid",
        "subject",
        _s("subject", 500),  # NOTE: MaxLength 500
        _memo("notetext", NOTE_TEXT_LENGTH),
        _b("isdocument"),  # NOTE: default False
        _s("filename", 255),  # NOTE: MaxLength 255
        _s("mimetype", 256),  # NOTE: MaxLength 256
        _memo("documentbody", 1_073_741_823),  # NOTE: MaxLength 1073741823
        _s("langid", 2),  # NOTE: MaxLength 2
        stateful=False,
    ),
)

TABLES: Mapping[str, Table] = {t.logical_name: t for t in _TABLES}
BY_ENTITY_SET: Mapping[str, Table] = {t.entity_set: t for t in _TABLES}


@dataclass(frozen=True)
class Relationship:
    """A many-to-many relationship: rows of two tables associated through an intersect table,
    written with ``$ref`` (associate-disassociate-entities-using-web-api.md in
    MicrosoftDocs/powerapps-docs @2b58bc64fdb8b36936dbb011fef37751d25902b4) and read with a
    single-level ``$expand`` (webapi/query/join-tables.md @7df03445645ac234de3415d58a20e40d4e31be1d:
    "up to 5,000 related table records can be returned for each expanded collection-valued
    navigation property")."""

    name: str
    """Its schema name, which is also its navigation property on both sides."""
    intersect: str
    first: str
    """The table the reconciler writes it from (logical name), and its intersect attribute."""
    first_attribute: str
    second: str
    second_attribute: str


# PAD-Q: queuemembership_association, IntersectEntityName queuemembership: Table 1 queue
# (IntersectAttribute queueid), Table 2 systemuser (systemuserid), NavigationPropertyName
# queuemembership_association on both. The ALM template adds members through it
# (POST queues(<id>)/queuemembership_association/$ref).
QUEUE_MEMBERSHIP = Relationship(
    "queuemembership_association", "queuemembership", QUEUE, "queueid", SYSTEM_USER, "systemuserid"
)
RELATIONSHIPS: Mapping[str, Relationship] = {QUEUE_MEMBERSHIP.name: QUEUE_MEMBERSHIP}

# Who points at whom: for each table, the (table, lookup column) pairs referencing it.
REFERENCED_BY: Mapping[str, tuple[tuple[Table, Column], ...]] = {
    name: tuple((t, c) for t in _TABLES for c in t.lookups() if c.target == name) for name in TABLES
}
