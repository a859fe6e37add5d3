"""``kind: AutomatedMessage``: a custom automated message of a channel (msdyn_ocsystemmessage).

The triggers are the product's, named in camelCase after the labels of the message trigger
column ``msdyn_systemmessageeventtype`` (MicrosoftDocs/dynamics-365-customer-engagement
ce/developer/reference/entities/msdyn_ocsystemmessage.md
@014a0e53a50887d99e111ea4288180587e16b674), limited to the triggers the admin center lists as
preconfigured for messaging channels ("Preconfigured automated message triggers",
ce/customer-service/administer/configure-automated-message.md
@006c5155da5f28d028bc86c4633d2cbb2cdc1e86). Of those, the three average-wait-time triggers
"apply to live chat and voice channels only" (the same page).

No manifest of this kind can be applied yet: docs/automated-messages.md says why.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from reconciler.models import limits
from reconciler.models.common import DISPLAY_NAME_DESCRIPTION, Name, StrictModel
from reconciler.models.workstream import Locale

TRIGGERS: dict[str, tuple[int, str]] = {
    "agentJoinedConversation": (192350000, "Agent joined conversation"),
    "consultAccepted": (192350001, "Consult accepted"),
    "transferToAgentAccepted": (192350002, "Transfer to agent accepted"),
    "agentDisconnected": (192350013, "Agent disconnected from conversation"),
    "agentEndsConversation": (192350014, "Agent ended conversation"),
    "sessionEnded": (192350015, "Session ended"),
    "consultSessionEnded": (192350016, "Consult session ended"),
    "agentAssigned": (192350017, "Agent assigned to conversation"),
    "agentNotAssigned": (192350018, "Agent couldn't be assigned to conversation"),
    "customerDisconnected": (192350020, "Customer disconnected"),
    "customerQueuePosition": (192350021, "Customer's position in queue"),
    "customerNextInLine": (192350024, "Customer is next in line"),
    "averageWaitTimeMinutes": (192350030, "Average wait time for customers: Minutes"),
    "averageWaitTimeHours": (192350031, "Average wait time for customers: Hours"),
    "averageWaitTimeHoursAndMinutes": (
        192350032,
        "Average wait time for customers: Hours and minutes",
    ),
    "holidayMessage": (192350035, "Holiday message to customer"),
    "outOfOperatingHours": (192350036, "Out of operating hour message to customer"),
    "agentJoinedCustomerConversation": (192350061, "Agent joined customer conversation"),
    "agentLeftCustomerConversation": (192350059, "Agent left customer conversation"),
    "greeting": (192350056, "Greeting Message for Async Channels and Voice"),
}
"""Trigger name → (the msdyn_systemmessageeventtype option value, its label)."""
CHAT_ONLY = frozenset(
    {"averageWaitTimeMinutes", "averageWaitTimeHours", "averageWaitTimeHoursAndMinutes"}
)
"""Triggers of live chat (and voice) only: not for a Facebook message."""

Trigger = StrEnum("Trigger", {name: name for name in TRIGGERS})  # type: ignore[misc]


class MessageChannel(StrEnum):
    FACEBOOK = "facebook"
    CHAT = "chat"


MessageText = Annotated[str, Field(min_length=1, max_length=limits.AUTOMATED_MESSAGE_TEXT)]


def _some_text(texts: dict[str, str]) -> dict[str, str]:
    if not texts:
        raise PydanticCustomError("no-text", "needs the message in at least one locale")
    return texts


class AutomatedMessageSpec(StrictModel):
    """A custom automated message: what customers are told when something happens in a
    conversation (the trigger), in each language the channel serves. It validates, but cannot
    be applied yet: no public source shows how a real org stores one
    (docs/automated-messages.md)."""

    display_name: (
        Annotated[str, Field(min_length=1, max_length=limits.AUTOMATED_MESSAGE_NAME)] | None
    ) = Field(default=None, description=DISPLAY_NAME_DESCRIPTION)
    trigger: Trigger = Field(
        description="When the message is sent: the product's message trigger, in camelCase "
        "(agentAssigned is 'Agent assigned to conversation')."
    )
    channel: MessageChannel = Field(description="The channel whose conversations it is sent in.")
    workstream: Name | None = Field(
        default=None,
        description="A Workstream of that channel: the message is for the channel instance "
        "serving it only. Left out, it is the channel's default.",
    )
    text: Annotated[dict[Locale, MessageText], AfterValidator(_some_text)] = Field(
        description="The message by locale code (en-US: ...); the target org must have each "
        "language."
    )
