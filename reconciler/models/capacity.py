"""``kind: CapacityProfile``: a capacity profile (msdyn_capacityprofile) that workstreams use."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from reconciler.models import limits
from reconciler.models.common import (
    DISPLAY_NAME_DESCRIPTION,
    Boolean,
    NotBool,
    StrictModel,
    format_duration,
    parse_duration,
)

IMMEDIATELY, END_OF_DAY = "0m", "1d"
RESET_AFTER = (IMMEDIATELY, END_OF_DAY)
"""The reset frequencies the product has, as durations: "Immediate" and "End of day" (the
option msdyn_resetduration calls Daily; reconciler.dataverse.tables, REF-CP)."""
_ZERO = re.compile(r"^0+[dhm]$")


def _reset_after(value: Any) -> str:
    """A duration the product can reset capacity after: 0m (immediately) or 1d (daily)."""
    if isinstance(value, str) and _ZERO.match(value):
        return IMMEDIATELY  # 0m, 0h, 0d: reset immediately
    text = format_duration(parse_duration(value))
    if text not in RESET_AFTER:
        raise PydanticCustomError(
            "invalid-reset",
            "the product resets a profile's capacity immediately (0m) or at the end of the "
            "day (1d); {value} is neither",
            {"value": text},
        )
    return text


ResetAfter = Annotated[
    str,
    BeforeValidator(_reset_after),
    WithJsonSchema({"type": "string", "enum": list(RESET_AFTER)}),
]


class CapacityProfileSpec(StrictModel):
    """A capacity profile: how many work items of the workstreams using it an agent takes at
    once, and when the capacity they used is freed."""

    display_name: (
        Annotated[str, Field(min_length=1, max_length=limits.CAPACITY_PROFILE_NAME)] | None
    ) = Field(default=None, description=DISPLAY_NAME_DESCRIPTION)
    default_max_units: Annotated[
        int, Field(ge=1, le=limits.CAPACITY_PROFILE_MAX_UNITS), NotBool
    ] = Field(
        description="The work item limit: how many work items of this profile an agent takes "
        "at once (the admin center's Work item limit)."
    )
    block_assignment: Boolean = Field(
        default=False,
        description="Assignment blocking: once the limit is met, the agent is assigned no new "
        "work automatically.",
    )
    reset_after: ResetAfter = Field(
        default=IMMEDIATELY,
        description="When the capacity a work item used is freed: 0m (immediately, once it "
        "closes) or 1d (at the end of the agent's day). Set at creation; a change replaces the "
        "profile.",
    )
