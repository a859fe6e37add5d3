"""``kind: Queue``: an Omnichannel queue."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from reconciler.models import limits
from reconciler.models.common import NotBool, StrictModel


class QueueType(StrEnum):
    MESSAGING = "messaging"
    RECORD = "record"
    VOICE = "voice"


class Assignment(StrEnum):
    HIGHEST_CAPACITY = "highest-capacity"
    ROUND_ROBIN = "round-robin"
    LONGEST_IDLE = "longest-idle"


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class QueueSpec(StrictModel):
    display_name: Annotated[str, Field(min_length=1, max_length=limits.QUEUE_NAME)] | None = None
    type: QueueType = Field(
        default=QueueType.MESSAGING, description="Set at creation; a change replaces the queue."
    )
    priority: Annotated[int, Field(ge=1, description="1 is the highest priority."), NotBool]
    assignment: Assignment = Assignment.HIGHEST_CAPACITY
    visibility: Visibility = Visibility.PUBLIC
    max_size: Annotated[int, Field(ge=0), NotBool] | None = None
    description: Annotated[str, Field(max_length=limits.QUEUE_DESCRIPTION)] | None = None
