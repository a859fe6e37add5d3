"""``kind: Queue``: an Omnichannel queue."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from reconciler.models import limits
from reconciler.models.common import DISPLAY_NAME_DESCRIPTION, NotBool, StrictModel


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


# A user's domainname: ada@contoso.com in Microsoft Entra ID, CONTOSO\\ada on premises.
SIGN_IN_PATTERN = r"^[^<\s]\S*$"
_SIGN_IN_RE = re.compile(SIGN_IN_PATTERN)


def _check_sign_in(value: str) -> str:
    if not _SIGN_IN_RE.match(value) or len(value) > limits.SIGN_IN_NAME:
        raise PydanticCustomError(
            "invalid-sign-in",
            "must be a user's sign-in name, such as ada@contoso.com (no spaces)",
        )
    return value


def _check_unique_members(names: list[str]) -> list[str]:
    seen: set[str] = set()
    for name in names:
        if name.casefold() in seen:
            raise PydanticCustomError(
                "duplicate-member",
                "lists '{name}' twice (sign-in names ignore case)",
                {"name": name},
            )
        seen.add(name.casefold())
    return names


SignInName = Annotated[
    str,
    AfterValidator(_check_sign_in),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SIGN_IN_PATTERN,
            "maxLength": limits.SIGN_IN_NAME,
            "examples": ["ada@contoso.com"],
        }
    ),
]


class QueueSpec(StrictModel):
    """An Omnichannel queue: where routed work waits for agents."""

    display_name: Annotated[str, Field(min_length=1, max_length=limits.QUEUE_NAME)] | None = Field(
        default=None, description=DISPLAY_NAME_DESCRIPTION
    )
    type: QueueType = Field(
        default=QueueType.MESSAGING,
        description="The work the queue holds; workstreams use messaging queues only. Set at "
        "creation; a change replaces the queue.",
    )
    priority: Annotated[int, Field(ge=1), NotBool] | None = Field(
        default=None,
        description="1 is the highest priority. Left out, it is neither written nor compared: "
        "the queue keeps the priority the target gives it (an org's default queue).",
    )
    assignment: Assignment = Field(
        default=Assignment.HIGHEST_CAPACITY,
        description="How the queue's work is assigned to agents.",
    )
    visibility: Visibility = Field(
        default=Visibility.PUBLIC,
        description="Public queues are visible to everyone, private ones only to their members.",
    )
    max_size: Annotated[int, Field(ge=0), NotBool] | None = Field(
        default=None, description="The most items the queue may hold; left out, none is set."
    )
    description: Annotated[str, Field(max_length=limits.QUEUE_DESCRIPTION)] | None = Field(
        default=None, description="The queue's description in Dynamics 365."
    )
    members: (
        Annotated[
            list[SignInName],
            AfterValidator(_check_unique_members),
            Field(json_schema_extra={"uniqueItems": True}),
        ]
        | None
    ) = Field(
        default=None,
        description="The users who take the queue's work, by sign-in name (ada@contoso.com), "
        "found in each target. Members the list leaves out are removed only with --prune; "
        "left out altogether, the queue's members are left as they are.",
    )
