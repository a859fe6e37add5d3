"""``kind: GoogleBusinessMessagesAccount``: a Google's Business Messages partner account
(``msdyn_ocgooglebusinessmessagespartneraccount``) and its agents
(``msdyn_ocgooglebusinessmessagesagentaccount``, the channel instances), and the retired
``google-business-messages`` channel of a Workstream
(docs/moving-off-google-business-messages.md)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reconciler.dataverse import tables as t
from reconciler.kinds.base import (
    Account,
    Channel,
    ChecklistPart,
    FollowUp,
    Item,
    ManifestKind,
    RecordKind,
    generated,
)
from reconciler.mapping import rulegrammar as g
from reconciler.mapping.fields import boolean, language, plain, reference, secret
from reconciler.mapping.values import Fields, Sensitive

if TYPE_CHECKING:
    from reconciler.dataverse import DataverseClient

# 192450001 "Google's Business Messages" (CS-LWS in reconciler.dataverse.tables); the channel
# was removed (ce/customer-service/implement/deprecations-customer-service.md @5ddc27b0b6a5…).
STREAM_SOURCE = 192450001
CREDENTIAL_FILE_NAME = "service-account.json"
WEBHOOK = "msdyn_googlebusinessmessagescallbackurl"

GBM_ACCOUNT = RecordKind(
    "GoogleBusinessMessagesAccount",
    t.TABLES[t.GBM_PARTNER],
    (
        plain("displayName", "msdyn_name", export_always=True),
        plain("partnerId", "msdyn_partneraccountid", export_always=True),
        secret("clientToken", "msdyn_partneraccountclienttoken", export_always=True),
        secret(
            "serviceAccountKey",
            "msdyn_base64credentialfilestring",
            "msdyn_base64credentialfilestringcontd",
            chunk=4000,
            export_always=True,
        ),
    ),
    on_create=lambda _f, _a, _r: {"msdyn_credentialfilename": CREDENTIAL_FILE_NAME},
    follow_up=FollowUp(
        "webhookUrl",
        "paste the webhook URL into the Business Messages console and verify it (known after "
        "apply)",
    ),
)

GBM_AGENT = RecordKind(
    "GoogleBusinessMessagesAgent",
    t.TABLES[t.GBM_AGENT],
    (
        reference(
            "account",
            "msdyn_ocgbmpartneraccount",
            "GoogleBusinessMessagesAccount/{}",
            derived=True,
        ),
        plain("name", "msdyn_name", export_always=True),
        plain("agentId", "msdyn_agentid", export_always=True),
        plain("brandId", "msdyn_brandid", export_always=True),
        secret("clientToken", "msdyn_agentaccountclienttoken"),
        reference("workstream", "msdyn_liveworkstreamid", "Workstream/{}", derived=True),
        language("googleBusinessMessages.language", "msdyn_ocwidgetlanguage", export_always=True),
        boolean(
            "googleBusinessMessages.fileAttachments.customer",
            "msdyn_enablefileattachmentsforcustomers",
        ),
        boolean(
            "googleBusinessMessages.fileAttachments.agent", "msdyn_enablefileattachmentsforagents"
        ),
        boolean("googleBusinessMessages.agentOverride", "msdyn_enableagentoverride"),
    ),
    on_create=lambda _f, _a, _r: {"msdyn_postconversationsurveyenable": False},
    parent="msdyn_ocgbmpartneraccount",
    keys=(("agentId", "agent ID"),),
    linked=True,
    noun="agent",
)


def key_text(key: Sensitive) -> str | None:
    """A service account key as the file's text (it is held base64-encoded)."""
    try:
        return base64.b64decode(key.reveal(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _cannot_express(fields: Fields) -> str | None:
    key = fields.get("serviceAccountKey")
    if isinstance(key, Sensitive) and key_text(key) is None:
        return (
            "its service account key is not a base64-encoded UTF-8 file, which an environment "
            "variable cannot hold"
        )
    return None


async def _checklist(
    client: DataverseClient,
    present: Mapping[str, bool],
    ids: Mapping[str, str],
    _desired: Mapping[str, Mapping[str, Any]],
) -> list[Item]:
    """The webhook URL the service generates for the partner account on save."""
    by_id = await generated(client, t.TABLES[t.GBM_PARTNER], WEBHOOK)
    items = []
    for address, new in sorted(present.items()):
        url = by_id.get(ids[address].casefold(), {}).get(WEBHOOK)
        if not url:
            items.append(Item(address, "no webhook URL yet: the target has not generated it"))
            continue
        items.append(
            Item(
                address,
                "in the Business Messages console: set and verify the webhook URL",
                (("webhook URL", str(url)),),
                new,
            )
        )
    return items


CHANNEL = Channel(
    word="google-business-messages",
    block="googleBusinessMessages",
    stream_source=STREAM_SOURCE,
    context=g.CHANNEL_CONTEXTS["googleBusinessMessages"],
    instance=GBM_AGENT,
    label="Google's Business Messages",
    account="GoogleBusinessMessagesAccount",
    child="agent",
    retired=True,
)

ACCOUNT = Account(
    GBM_ACCOUNT, GBM_AGENT, "agents", ("name", "agentId", "brandId", "clientToken"), CHANNEL
)

KIND = ManifestKind(
    "GoogleBusinessMessagesAccount",
    GBM_ACCOUNT,
    ACCOUNT.desired,
    ACCOUNT.assemble,
    brings=(GBM_AGENT,),
    file="google-business-messages-accounts.yaml",
    what="Google's Business Messages accounts with their agents",
    noun="Google's Business Messages account",
    fallback_name="gbm-account",
    checklist=(ChecklistPart(GBM_ACCOUNT, _checklist),),
    cannot_express=_cannot_express,
    children_key=ACCOUNT.key,
)
