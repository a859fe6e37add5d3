"""``kind: FacebookAccount`` and ``kind: GoogleBusinessMessagesAccount``: messaging accounts."""

from __future__ import annotations

import datetime
from typing import Annotated

from pydantic import Field

from reconciler.models import limits
from reconciler.models.common import DISPLAY_NAME_DESCRIPTION, Digits, SecretRef, StrictModel


class FacebookPage(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=limits.FB_PAGE_NAME)] = Field(
        description="The page's name, unique within the account; a Workstream's facebook.page "
        "names it."
    )
    page_id: Digits = Field(description="The Facebook page ID; a page belongs to one account.")
    access_token: SecretRef = Field(
        description="The page access token (at most 500 characters); Facebook wants it "
        f"refreshed every {limits.FACEBOOK_TOKEN_MAX_AGE_DAYS} days."
    )
    token_rotated_on: datetime.date | None = Field(
        default=None,
        description="When the page access token was last refreshed (60-day cycle). validate "
        f"warns {limits.FACEBOOK_TOKEN_WARN_DAYS} days before the refresh is due and fails "
        "once it is past.",
    )


class FacebookAccountSpec(StrictModel):
    """A Facebook app (type Business, with Messenger) and the pages added to it."""

    display_name: Annotated[str, Field(min_length=1, max_length=limits.FB_ACCOUNT_NAME)] | None = (
        Field(default=None, description=DISPLAY_NAME_DESCRIPTION)
    )
    application_id: Digits = Field(description="The Facebook app's App ID.")
    application_secret: SecretRef = Field(
        description="The Facebook app's App secret (at most 100 characters)."
    )
    pages: list[FacebookPage] = Field(
        default_factory=list,
        description="The Facebook pages added to the app; each is a channel instance that one "
        "Workstream can use.",
    )


class GoogleBusinessMessagesAgent(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=limits.GBM_AGENT_FIELD)] = Field(
        description="The agent's name, unique within the account; a Workstream's "
        "googleBusinessMessages.agent names it."
    )
    agent_id: Annotated[str, Field(min_length=1, max_length=limits.GBM_AGENT_FIELD)] = Field(
        description="The agent's Agent ID."
    )
    brand_id: Annotated[str, Field(min_length=1, max_length=limits.GBM_AGENT_FIELD)] = Field(
        description="The Brand ID the agent belongs to."
    )
    client_token: SecretRef | None = Field(
        default=None, description="The agent's client token (at most 500 characters)."
    )


class GoogleBusinessMessagesAccountSpec(StrictModel):
    """A Google's Business Messages partner account and its agents. The channel was retired
    on 31 July 2024: validate warns (or, under policy.retiredChannels: error, refuses)."""

    display_name: Annotated[str, Field(min_length=1, max_length=limits.GBM_ACCOUNT_NAME)] | None = (
        Field(default=None, description=DISPLAY_NAME_DESCRIPTION)
    )
    partner_id: Annotated[str, Field(min_length=1, max_length=limits.GBM_PARTNER_ID)] = Field(
        description="The Partner ID."
    )
    client_token: SecretRef = Field(
        description="The client token from the console's webhook page (at most 500 characters)."
    )
    service_account_key: SecretRef = Field(
        description="The service account's JSON key file, e.g. {fromFile: gbm-key.json}."
    )
    agents: list[GoogleBusinessMessagesAgent] = Field(
        default_factory=list,
        description="The partner account's agents; each is a channel instance that one "
        "Workstream can use.",
    )
