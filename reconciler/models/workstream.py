"""``kind: Workstream``: a messaging workstream with its channel settings."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from reconciler.models import limits
from reconciler.models.common import Boolean, Minutes, Name, NotBool, StrictModel

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

    @property
    def block(self) -> str:
        """The name of the channel-settings block this channel needs."""
        return "facebook" if self is Channel.FACEBOOK else "googleBusinessMessages"


class DistributionMode(StrEnum):
    PUSH = "push"
    PICK = "pick"


class Presence(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    BUSY_DND = "busy-dnd"
    AWAY = "away"
    OFFLINE = "offline"


class Capacity(StrictModel):
    units: Annotated[int, Field(ge=0), NotBool] = 0


class Distribution(StrictModel):
    mode: DistributionMode = Field(
        default=DistributionMode.PUSH,
        description="Set at creation; a change replaces the workstream.",
    )
    capacity: Capacity = Field(default_factory=Capacity)
    max_concurrency: Annotated[int, Field(ge=1), NotBool] = 1
    agent_affinity: Boolean = Field(default=False, description="Push mode only.")


class FileAttachments(StrictModel):
    customer: Boolean = False
    agent: Boolean = False


class FacebookSettings(StrictModel):
    account: Name
    page: Annotated[str, Field(min_length=1, max_length=limits.FB_PAGE_NAME)]
    language: Locale
    file_attachments: FileAttachments = Field(default_factory=FileAttachments)
    human_agent_message_tag: Boolean = False


class GoogleBusinessMessagesSettings(StrictModel):
    account: Name
    agent: Annotated[str, Field(min_length=1, max_length=limits.GBM_AGENT_FIELD)]
    language: Locale
    file_attachments: FileAttachments = Field(default_factory=FileAttachments)
    agent_override: Boolean = False


class WorkstreamSpec(StrictModel):
    display_name: Annotated[str, Field(min_length=1, max_length=limits.WORKSTREAM_NAME)] | None = (
        None
    )
    channel: Channel
    fallback_queue: Name = Field(description="A messaging Queue.")
    distribution: Distribution = Field(default_factory=Distribution)
    auto_close_after_inactivity: Minutes | None = None
    allowed_presences: (
        Annotated[list[Presence], Field(json_schema_extra={"uniqueItems": True})] | None
    ) = None
    automated_messages: Boolean = True
    facebook: FacebookSettings | None = None
    google_business_messages: GoogleBusinessMessagesSettings | None = None
