"""``kind: Workstream``: a messaging workstream with its channel settings."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from reconciler.mapping.rulegrammar import IDENTIFIER
from reconciler.models import limits
from reconciler.models.common import (
    DISPLAY_NAME_DESCRIPTION,
    Boolean,
    Minutes,
    Name,
    NotBool,
    StrictModel,
)

LOCALE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})+$"
_LOCALE_RE = re.compile(LOCALE_PATTERN)


def _check_locale(value: str) -> str:
    if not _LOCALE_RE.match(value):
        raise PydanticCustomError("invalid-locale", "must be a locale code such as nl-NL")
    return value


Locale = Annotated[
    str,
    AfterValidator(_check_locale),
    WithJsonSchema({"type": "string", "pattern": LOCALE_PATTERN, "examples": ["nl-NL"]}),
]


class Channel(StrEnum):
    FACEBOOK = "facebook"
    GOOGLE_BUSINESS_MESSAGES = "google-business-messages"
    CHAT = "chat"

    @property
    def block(self) -> str:
        """The name of the channel-settings block this channel needs."""
        return "googleBusinessMessages" if self is Channel.GOOGLE_BUSINESS_MESSAGES else self.value


class DistributionMode(StrEnum):
    PUSH = "push"
    PICK = "pick"


class Presence(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    BUSY_DND = "busy-dnd"
    AWAY = "away"
    OFFLINE = "offline"


class VariableType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"


VariableName = Annotated[
    str,
    StringConstraints(pattern=f"^{IDENTIFIER}$", max_length=limits.CONTEXT_VARIABLE_NAME),
]


class Capacity(StrictModel):
    """Unit-based (``units``) or profile-based (``profiles``) capacity, as the workstream's
    Work distribution settings choose one of the two (reconciler.kinds.capacity)."""

    model_config = ConfigDict(json_schema_extra={"not": {"required": ["units", "profiles"]}})

    units: Annotated[int, Field(ge=0), NotBool] | None = Field(
        default=None,
        description="Unit-based capacity: the capacity units a conversation takes from an "
        "agent (0 when capacity is left out).",
    )
    profiles: (
        Annotated[list[Name], Field(min_length=1, json_schema_extra={"uniqueItems": True})] | None
    ) = Field(
        default=None,
        description="Profile-based capacity: the CapacityProfiles a conversation counts against.",
    )

    @model_validator(mode="after")
    def _one_of_the_two(self) -> Capacity:
        if self.units is not None and self.profiles is not None:
            raise PydanticCustomError(
                "capacity-both",
                "capacity is either units or profiles, not both (the product measures a "
                "workstream's capacity one way)",
            )
        if self.profiles is not None and len(set(self.profiles)) != len(self.profiles):
            raise PydanticCustomError("duplicate-profile", "profiles lists a profile twice")
        return self


class Distribution(StrictModel):
    mode: DistributionMode = Field(
        default=DistributionMode.PUSH,
        description="Push assigns work to agents; pick lets agents pick it from the queue. Set "
        "at creation; a change replaces the workstream.",
    )
    capacity: Capacity = Field(
        default_factory=Capacity,
        description="What each conversation takes of an agent's capacity: units or profiles. "
        "Left out, 0 units: a profile-based workstream in the target is switched to units (the "
        "plan shows distribution.capacity: profiles → units; export writes its profiles).",
    )
    max_concurrency: Annotated[int, Field(ge=1), NotBool] = Field(
        default=1, description="The most conversations of this workstream an agent has at once."
    )
    agent_affinity: Boolean = Field(
        default=False, description="Agent affinity (msdyn_enableagentaffinity). Push mode only."
    )


class FileAttachments(StrictModel):
    customer: Boolean = Field(default=False, description="Customers may send file attachments.")
    agent: Boolean = Field(default=False, description="Agents may send file attachments.")


_LANGUAGE = "The channel's language, as a locale code; the target org must have it."
_ATTACHMENTS = "Who may send file attachments."


class FacebookSettings(StrictModel):
    account: Name = Field(description="The FacebookAccount holding the page.")
    page: Annotated[str, Field(min_length=1, max_length=limits.FB_PAGE_NAME)] = Field(
        description="The name of one of that account's pages (pages[].name); a page serves one "
        "workstream."
    )
    language: Locale = Field(description=_LANGUAGE)
    file_attachments: FileAttachments = Field(
        default_factory=FileAttachments, description=_ATTACHMENTS
    )
    human_agent_message_tag: Boolean = Field(
        default=False,
        description="Facebook's human agent message tag: agents may answer after the 24-hour "
        "window, for up to seven days (enable it in the Facebook app too).",
    )


class GoogleBusinessMessagesSettings(StrictModel):
    account: Name = Field(description="The GoogleBusinessMessagesAccount holding the agent.")
    agent: Annotated[str, Field(min_length=1, max_length=limits.GBM_AGENT_FIELD)] = Field(
        description="The name of one of that account's agents (agents[].name); an agent serves "
        "one workstream."
    )
    language: Locale = Field(description=_LANGUAGE)
    file_attachments: FileAttachments = Field(
        default_factory=FileAttachments, description=_ATTACHMENTS
    )
    agent_override: Boolean = Field(
        default=False, description="Agent override (msdyn_enableagentoverride)."
    )


class WidgetPosition(StrEnum):
    BOTTOM_RIGHT = "bottom-right"
    BOTTOM_LEFT = "bottom-left"


class ConversationMode(StrEnum):
    LIVE = "live"
    PERSISTENT = "persistent"


COLOR_PATTERN = r"^#[0-9A-Fa-f]{6}$"
# A host name (RFC 1123 labels), as the admin center asks for a widget's domains: "The domain
# format should not include the protocol" (ce/customer-service/administer/add-chat-widget.md
# @0111aacdc5ec032ceaf88672c3e7200c3f5a70bd). No source shows a wildcard's syntax: none here.
HOST_PATTERN = (
    r"^(?=.{1,100}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_HOST_RE = re.compile(HOST_PATTERN)
_COLOR_RE = re.compile(COLOR_PATTERN)


def _check_host(value: str) -> str:
    if not _HOST_RE.match(value):
        raise PydanticCustomError(
            "invalid-host",
            "must be a host name such as www.contoso.com (no protocol, path, port or wildcard)",
        )
    return value.lower()


def _check_color(value: str) -> str:
    if not _COLOR_RE.match(value):
        raise PydanticCustomError("invalid-color", "must be a colour as #RRGGBB, e.g. #0B5CAD")
    return value


Host = Annotated[
    str,
    AfterValidator(_check_host),
    WithJsonSchema({"type": "string", "pattern": HOST_PATTERN, "examples": ["www.contoso.com"]}),
]


def _check_unique_hosts(hosts: list[str]) -> list[str]:
    seen: set[str] = set()
    for host in hosts:  # already in lower case: host names do not care
        if host in seen:
            raise PydanticCustomError(
                "duplicate-domain", "lists '{host}' twice (host names ignore case)", {"host": host}
            )
        seen.add(host)
    return hosts


Color = Annotated[
    str,
    AfterValidator(_check_color),
    WithJsonSchema({"type": "string", "pattern": COLOR_PATTERN, "examples": ["#0B5CAD"]}),
]


class ChatSettings(StrictModel):
    """The live chat widget of a chat workstream (msdyn_livechatconfig)."""

    title: Annotated[str, Field(min_length=1, max_length=limits.WIDGET_TEXT)] = Field(
        description="The widget's title, shown in its header."
    )
    language: Locale = Field(description=_LANGUAGE)
    position: WidgetPosition = Field(
        default=WidgetPosition.BOTTOM_RIGHT, description="Where the widget sits on the page."
    )
    theme_color: Color | None = Field(
        default=None,
        description="The widget's colour as #RRGGBB. The target stores only named colours, so "
        "this goes into the snippet (data-color-override), not into the target.",
    )
    conversation_mode: ConversationMode = Field(
        default=ConversationMode.LIVE,
        description="live or persistent chat. Set at creation; a change replaces the "
        "workstream and its widget.",
    )
    allowed_domains: Annotated[
        list[Host],
        AfterValidator(_check_unique_hosts),
        Field(json_schema_extra={"uniqueItems": True}),
    ] = Field(
        default_factory=list,
        description="Host names of the sites that may show the widget; empty: any site.",
    )
    file_attachments: FileAttachments = Field(
        default_factory=FileAttachments, description=_ATTACHMENTS
    )


class WorkstreamSpec(StrictModel):
    """A messaging workstream: the channel it serves, its fallback queue, how work is
    distributed to agents, and the channel's settings."""

    display_name: Annotated[str, Field(min_length=1, max_length=limits.WORKSTREAM_NAME)] | None = (
        Field(default=None, description=DISPLAY_NAME_DESCRIPTION)
    )
    channel: Channel = Field(
        description="The channel; needs the matching channel block (facebook, chat or "
        "googleBusinessMessages). Set at creation; a change replaces the workstream."
    )
    fallback_queue: Name = Field(
        description="A messaging Queue: where work goes when no routing rule matches."
    )
    distribution: Distribution = Field(
        default_factory=Distribution, description="How work is distributed to agents."
    )
    auto_close_after_inactivity: Minutes | None = Field(
        default=None, description="Close a conversation after this long without activity."
    )
    allowed_presences: (
        Annotated[list[Presence], Field(json_schema_extra={"uniqueItems": True})] | None
    ) = Field(
        default=None,
        description="The agent presences that may receive this workstream's work; left out, "
        "none is set.",
    )
    automated_messages: Boolean = Field(
        default=True, description="Send the channel's automated messages."
    )
    context_variables: dict[VariableName, VariableType] = Field(
        default_factory=dict,
        description="The workstream's context variables, by name, with their type: routing "
        "rules test them (context.<name>) and classification rules set them. Only text can "
        "be written today (docs/routing-xml.md).",
    )
    facebook: FacebookSettings | None = Field(
        default=None, description="The channel settings when channel is facebook."
    )
    google_business_messages: GoogleBusinessMessagesSettings | None = Field(
        default=None, description="The channel settings when channel is google-business-messages."
    )
    chat: ChatSettings | None = Field(
        default=None, description="The live chat widget when channel is chat."
    )
