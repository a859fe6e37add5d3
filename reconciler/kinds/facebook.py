"""``kind: FacebookAccount``: a Facebook app (``msdyn_ocfbapplication``) and its pages
(``msdyn_ocfbpage``, the channel instances), and the ``facebook`` channel of a Workstream,
whose settings live on the page that serves it (ENT-FBP in reconciler.dataverse.tables)."""

from __future__ import annotations

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

if TYPE_CHECKING:
    from reconciler.dataverse import DataverseClient


# DEV-WS has no channel options; 192330000 is Facebook in the old-format workstream reference
# (ce/customer-service/develop/reference/entities/msdyn_liveworkstream.md @01969140…).
STREAM_SOURCE = 192330000
CALLBACK, VERIFY_TOKEN = "msdyn_fbcallbackuri", "msdyn_fbverifytoken"

FACEBOOK_ACCOUNT = RecordKind(
    "FacebookAccount",
    t.TABLES[t.FB_APPLICATION],
    (
        plain("displayName", "msdyn_name", export_always=True),
        plain("applicationId", "msdyn_fbapplicationid", export_always=True),
        secret("applicationSecret", "msdyn_fbapplicationsecret", export_always=True),
    ),
)


def _channel_instance_defaults(*_: Any) -> dict[str, Any]:
    return {"msdyn_postconversationsurveyenable": False}


FACEBOOK_PAGE = RecordKind(
    "FacebookPage",
    t.TABLES[t.FB_PAGE],
    (
        reference("account", "msdyn_ocfbapplicationid", "FacebookAccount/{}", derived=True),
        plain("name", "msdyn_fbpagename", export_always=True),
        plain("pageId", "msdyn_fbpageid", export_always=True),
        secret("accessToken", "msdyn_fbpageaccesstoken", export_always=True),
        reference("workstream", "msdyn_liveworkstreamid", "Workstream/{}", derived=True),
        language("facebook.language", "msdyn_ocwidgetlanguage", export_always=True),
        boolean("facebook.fileAttachments.customer", "msdyn_enablefileattachmentsforcustomers"),
        boolean("facebook.fileAttachments.agent", "msdyn_enablefileattachmentsforagents"),
        boolean("facebook.humanAgentMessageTag", "msdyn_enablehumanagenttag"),
    ),
    on_create=_channel_instance_defaults,
    parent="msdyn_ocfbapplicationid",
    # A page is the same page by its Facebook page ID, whatever its name.
    keys=(("pageId", "page ID"),),
    follow_up=FollowUp(
        "callbackUrl, verifyToken",
        "paste the callback URL and verify token into the Facebook app's webhook settings and "
        "subscribe the page to messages (known after apply)",
    ),
    linked=True,
    noun="page",
)


async def _checklist(
    client: DataverseClient,
    present: Mapping[str, bool],
    ids: Mapping[str, str],
    _desired: Mapping[str, Mapping[str, Any]],
) -> list[Item]:
    """The callback URL and verify token the service generates for the app on save."""
    by_id = await generated(client, t.TABLES[t.FB_APPLICATION], CALLBACK, VERIFY_TOKEN)
    items = []
    for address, new in sorted(present.items()):
        account = address.rsplit("/", 1)[0]
        row = by_id.get(ids.get(account, "").casefold(), {})
        url, token = row.get(CALLBACK), row.get(VERIFY_TOKEN)
        if not url or not token:
            items.append(Item(address, "no callback URL yet: the target has not generated it"))
            continue
        items.append(
            Item(
                address,
                "in the Facebook app's webhook settings: set the callback URL and verify "
                "token, and subscribe the page to messages",
                (("callback URL", str(url)), ("verify token", str(token))),
                new,
            )
        )
    return items


CHANNEL = Channel(
    word="facebook",
    block="facebook",
    stream_source=STREAM_SOURCE,
    context=g.CHANNEL_CONTEXTS["facebook"],
    instance=FACEBOOK_PAGE,
    label="Facebook",
    account="FacebookAccount",
    child="page",
)

ACCOUNT = Account(
    FACEBOOK_ACCOUNT,
    FACEBOOK_PAGE,
    "pages",
    ("name", "pageId", "accessToken"),
    CHANNEL,
    notes=lambda page: {"tokenRotatedOn": page.token_rotated_on},
)
"""A page's item in ``pages``: the rest of its settings is its workstream's block."""

KIND = ManifestKind(
    "FacebookAccount",
    FACEBOOK_ACCOUNT,
    ACCOUNT.desired,
    ACCOUNT.assemble,
    brings=(FACEBOOK_PAGE,),
    file="facebook-accounts.yaml",
    what="Facebook accounts with their pages",
    noun="Facebook account",
    fallback_name="facebook-account",
    checklist=(ChecklistPart(FACEBOOK_PAGE, _checklist),),
    children_key=ACCOUNT.key,
)
