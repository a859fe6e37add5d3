"""``kind: FacebookAccount`` and ``kind: GoogleBusinessMessagesAccount``: messaging accounts."""

from __future__ import annotations

import datetime
from typing import Annotated

from pydantic import Field

from reconciler.models import limits
from reconciler.models.common import Digits, SecretRef, StrictModel


class FacebookPage(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=limits.FB_PAGE_NAME)]
    page_id: Digits
    access_token: SecretRef
    token_rotated_on: datetime.date | None = Field(
        default=None, description="When the page access token was last refreshed (60-day cycle)."
    )


class FacebookAccountSpec(StrictModel):
    display_name: Annotated[str, Field(min_length=1, max_length=limits.FB_ACCOUNT_NAME)] | None = (
        None
    )
    application_id: Digits
    application_secret: SecretRef
    pages: list[FacebookPage] = Field(default_factory=list)


class GoogleBusinessMessagesAgent(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=limits.GBM_AGENT_FIELD)]
    agent_id: Annotated[str, Field(min_length=1, max_length=limits.GBM_AGENT_FIELD)]
    brand_id: Annotated[str, Field(min_length=1, max_length=limits.GBM_AGENT_FIELD)]
    client_token: SecretRef | None = None


class GoogleBusinessMessagesAccountSpec(StrictModel):
    display_name: Annotated[str, Field(min_length=1, max_length=limits.GBM_ACCOUNT_NAME)] | None = (
        None
    )
    partner_id: Annotated[str, Field(min_length=1, max_length=limits.GBM_PARTNER_ID)]
    client_token: SecretRef
    service_account_key: SecretRef = Field(
        description="The service account's JSON key file, e.g. {fromFile: gbm-key.json}."
    )
    agents: list[GoogleBusinessMessagesAgent] = Field(default_factory=list)
