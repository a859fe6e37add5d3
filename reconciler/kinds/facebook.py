"""``kind: FacebookAccount``: a Facebook app (``msdyn_ocfbapplication``) and its pages
(``msdyn_ocfbpage``, the channel instances), and the ``facebook`` channel of a Workstream,
whose settings live on the page that serves it (docs/domain.md §2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from reconciler.dataverse import tables as t
from reconciler.kinds.base import (
    Assembler,
    Builder,
    Channel,
    ChecklistPart,
    FollowUp,
    Item,
    ManifestKind,
    RecordKind,
    block_settings,
    manifest_spec,
    spec_fields,
)
from reconciler.mapping import rulegrammar as g
from reconciler.mapping.fields import boolean, language, plain, reference, secret

if TYPE_CHECKING:
    from reconciler.dataverse import DataverseClient

from reconciler.mapping.values import Value

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
    noun="Facebook account",
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
    manifest="FacebookAccount",
    noun="page",
)

PAGE_ITEM = ("name", "pageId", "accessToken")
"""What a page says in its account's ``pages`` list; the rest is its workstream's block."""


def _desired(builder: Builder, document: Any, spec: Any) -> dict[str, Value]:
    name = document.name
    for index, page in enumerate(spec.pages):

        def resolve(ref: Any, _path: str, index: int = index) -> Value:
            return builder.resolve(ref, document, "pages", index, "accessToken")

        fields = spec_fields(FACEBOOK_PAGE, page, {"account": name}, only=PAGE_ITEM, secret=resolve)
        fields.update(
            block_settings(FACEBOOK_PAGE, builder.serving(CHANNEL, name, page.name), "facebook")
        )
        builder.add(
            FACEBOOK_PAGE,
            document,
            f"FacebookAccount/{name}/{page.name}",
            fields,
            parent=f"FacebookAccount/{name}",
            notes={"tokenRotatedOn": page.token_rotated_on},
        )
    return spec_fields(
        FACEBOOK_ACCOUNT,
        spec,
        {"displayName": document.manifest.display_name},
        secret=lambda ref, path: builder.resolve(ref, document, path),
    )


def _assemble(assembler: Assembler, found: Any) -> dict[str, Any]:
    spec = manifest_spec(found, assembler.secret)
    spec["pages"] = [
        manifest_spec(page, assembler.secret, only=PAGE_ITEM)
        for page in assembler.children(FACEBOOK_PAGE, found.name)
    ]
    return spec


async def _checklist(
    client: DataverseClient,
    present: Mapping[str, bool],
    ids: Mapping[str, str],
    _desired: Mapping[str, Mapping[str, Any]],
) -> list[Item]:
    """The callback URL and verify token the service generates for the app on save."""
    apps = t.TABLES[t.FB_APPLICATION]
    rows = await client.list(apps.entity_set, select=[apps.primary_key, CALLBACK, VERIFY_TOKEN])
    by_id = {str(row[apps.primary_key]).casefold(): row for row in rows}
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


KIND = ManifestKind(
    "FacebookAccount",
    FACEBOOK_ACCOUNT,
    _desired,
    _assemble,
    brings=(FACEBOOK_PAGE,),
    file="facebook-accounts.yaml",
    what="Facebook accounts with their pages",
    noun="Facebook account",
    fallback_name="facebook-account",
    checklist=(ChecklistPart(FACEBOOK_PAGE, _checklist),),
    children_key="pages",
)

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
