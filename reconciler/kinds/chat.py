"""The ``chat`` channel of a Workstream: the live chat widget (``msdyn_livechatconfig``) a
chat workstream brings, and its allowed domains (``msdyn_livechatwidgetlocation``).

Sources (keys as in ``reconciler.dataverse.tables``): the widget's columns and options FS-LCC,
its domains FS-LCWL, the stream source CS-LWS (192360000 Live chat); ALM's exported chat
workstreams and widgets hold exactly these columns. A widget's workstream cannot change once
saved ("If you save the chat widget, you can't edit the Work stream field", MicrosoftDocs/
dynamics-365-customer-engagement ce/customer-service/administer/add-chat-widget.md
@0111aacdc5ec032ceaf88672c3e7200c3f5a70bd): the widget lives at ``Workstream/<name>/widget``,
so another workstream means another widget.

``themeColor`` is not written to the target: the widget's colour column is a choice of named
colours (FS-LCC ``msdyn_widgetthemecolor``) with no documented hex value. The ``#RRGGBB`` goes
into the snippet as the ``data-color-override`` data tag, which "override[s] the default chat
widget theme color ... [and] takes priority over any color theme settings on the admin app"
(ce/customer-service/develop/customize-chat-widget.md @88917abdd6c5c94f73d9d515904e23c5fdf74191;
docs/moving-off-google-business-messages.md).
"""

from __future__ import annotations

import dataclasses
import html
import re
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
    Match,
    RecordKind,
    generated,
    manifest_spec,
    spec_fields,
)
from reconciler.mapping import rulegrammar as g
from reconciler.mapping.fields import (
    FieldMap,
    Resolver,
    Row,
    boolean,
    language,
    lookup,
    option,
    plain,
    reference,
)
from reconciler.mapping.values import Value

if TYPE_CHECKING:
    from reconciler.dataverse import DataverseClient
    from reconciler.mapping.manifests import Found

STREAM_SOURCE = 192360000  # CS-LWS: Live chat; ALM's chat workstreams
POSITIONS = {"bottom-right": 192236010, "bottom-left": 192236011}  # FS-LCC
CONVERSATION_MODES = {"live": 192350000, "persistent": 192350001}  # FS-LCC, CS-LWS
INCLUDE, EXCLUDE = 100000000, 100000001  # FS-LCWL msdyn_ruletype: Include, Exclude
RULE_TYPES = {"include": INCLUDE, "exclude": EXCLUDE}
APP_ID, SNIPPET = "msdyn_widgetappid", "msdyn_widgetsnippet"
WIDGET = "widget"
THEME_COLOR = "chat.themeColor"
CONVERSATION_MODE = "chat.conversationMode"
NAME = "name"
DOMAIN_PREFIX = "domain:"


def _widget_row(match: Match) -> Row | None:
    """A workstream has one widget here: the first under it by id (rows come sorted), the one
    export names too."""
    column = lookup("msdyn_liveworkstreamid")
    return next((row for row in match.rows if row.get(column) == match.parent_id), None)


CHAT_WIDGET = RecordKind(
    "ChatWidget",
    t.TABLES[t.CHAT_WIDGET],
    (
        # Set once: a widget's workstream cannot change (the module's note).
        reference("workstream", "msdyn_liveworkstreamid", "Workstream/{}", create_only=True),
        plain("chat.title", "msdyn_widgettitle"),
        language("chat.language", "msdyn_ocwidgetlanguage", export_always=True),
        option("chat.position", "msdyn_widgetposition", POSITIONS, "bottom-right"),
        option(
            "chat.conversationMode",
            "msdyn_conversationmode",
            CONVERSATION_MODES,
            "live",
            create_only=True,
        ),
        boolean("chat.fileAttachments.customer", "msdyn_enablefileattachmentsforcustomers"),
        boolean("chat.fileAttachments.agent", "msdyn_enablefileattachmentsforagents"),
    ),
    # Named after its workstream when created; an adopted widget keeps its own name.
    on_create=lambda fields, _a, _r: {"msdyn_name": fields.get(NAME)},
    parent="msdyn_liveworkstreamid",
    suffix=WIDGET,
    match=_widget_row,
    after_routing=True,
    follow_up=FollowUp(
        "widgetAppId, widgetSnippet",
        "paste the widget's script snippet into the website's pages (known after apply)",
    ),
    noun="chat widget",
)


def _domain_row(match: Match) -> Row | None:
    """An allowed domain under its widget, by its value (ignoring case, as host names); an
    Exclude rule is never one."""
    column, wanted = lookup("msdyn_livechatconfigid"), str(match.fields.get("domain")).casefold()
    return next(
        (
            row
            for row in match.rows
            if row.get(column) == match.parent_id
            and str(row.get("msdyn_domainvalue")).casefold() == wanted
            and _not_allowed(row) is None
        ),
        None,
    )


def _not_allowed(row: Row) -> str | None:
    rule = row.get("msdyn_ruletype")
    if rule in (None, INCLUDE):
        return None
    what = "an Exclude rule" if rule == EXCLUDE else f"a rule of type {rule}"
    return f"{what} (a site the widget must not show on): manifests describe allowed domains"


def _host(path: str, column: str) -> FieldMap:
    """A host name: compared and read in lower case, as the admin center takes it."""
    field = plain(path, column)

    def read(row: Row, resolver: Resolver) -> Value:
        value = field.read(row, resolver)
        return value.lower() if isinstance(value, str) else value

    return dataclasses.replace(field, read=read)


WIDGET_DOMAIN = RecordKind(
    "ChatWidgetDomain",
    t.TABLES[t.WIDGET_LOCATION],
    (
        reference("widget", "msdyn_livechatconfigid", "Workstream/{}/widget", derived=True),
        _host("domain", "msdyn_domainvalue"),
        # An Include rule (FS-LCWL msdyn_ruletype): one of ours flipped to Exclude is put right.
        option("rule", "msdyn_ruletype", RULE_TYPES, "include", derived=True),
    ),
    # Titled with its domain when created.
    on_create=lambda fields, _a, _r: {"msdyn_name": fields.get(NAME)},
    parent="msdyn_livechatconfigid",
    child_prefix=DOMAIN_PREFIX,
    name_column="msdyn_domainvalue",
    casefold_name=True,
    excluded=_not_allowed,
    match=_domain_row,
    noun="allowed domain",
)


def _own(builder: Builder, document: Any, spec: Any) -> None:
    """A chat workstream brings its widget and the widget's allowed domains."""
    name = document.name
    parent = f"Workstream/{name}"
    widget = f"{parent}/{WIDGET}"
    paths = [f.path for f in CHAT_WIDGET.fields if f.path.startswith("chat.")]
    fields = spec_fields(CHAT_WIDGET, spec, {"workstream": name}, only=paths)
    # Carried, never compared: the name written on create, the snippet's data-color-override
    # (the module's note).
    fields[NAME] = document.manifest.display_name
    fields[THEME_COLOR] = spec.chat.theme_color
    builder.add(CHAT_WIDGET, document, widget, fields, parent=parent)
    for domain in spec.chat.allowed_domains:
        builder.add(
            WIDGET_DOMAIN,
            document,
            f"{widget}/{DOMAIN_PREFIX}{domain}",
            {"widget": name, "domain": domain, "rule": "include", NAME: domain},
            parent=widget,
        )


def _assemble(assembler: Assembler, widget: Found) -> dict[str, Any]:
    """A chat block from the widget and its domains (export)."""
    block = manifest_spec(widget, assembler.secret, prefix="chat.")
    workstream = str(widget.fields.get("workstream"))
    domains = sorted(
        str(d.fields["domain"]) for d in assembler.children(WIDGET_DOMAIN, workstream, "widget")
    )
    if domains:
        block["allowedDomains"] = domains
    return block


_COLOR_OVERRIDE = re.compile(r"\sdata-color-override=\"[^\"]*\"")
_OPENING_TAG = re.compile(r"(<script\b[^>]*?)\s*>")


def with_color(snippet: str, color: str | None) -> str:
    """The snippet with the ``data-color-override`` data tag set to ``color``, last in the
    script tag, as Learn's example has it (the module's note)."""
    snippet = _COLOR_OVERRIDE.sub("", snippet)
    if not color:
        return snippet
    tag = f' data-color-override="{html.escape(color)}">'
    return _OPENING_TAG.sub(lambda m: m.group(1) + tag, snippet, count=1)


async def _checklist(
    client: DataverseClient,
    present: Mapping[str, bool],
    ids: Mapping[str, str],
    desired: Mapping[str, Mapping[str, Any]],
) -> list[Item]:
    """The widget's app id and script snippet, generated by the service on save (with the
    manifest's themeColor as ``data-color-override``)."""
    by_id = await generated(client, t.TABLES[t.CHAT_WIDGET], APP_ID, SNIPPET)
    items = []
    for address, new in sorted(present.items()):
        row = by_id.get(ids.get(address, "").casefold(), {})
        app_id, snippet = row.get(APP_ID), row.get(SNIPPET)
        if not app_id or not snippet:
            items.append(
                Item(
                    address,
                    "no widget snippet yet: the target has not generated it; copy it from the "
                    "chat widget in the admin center",
                )
            )
            continue
        items.append(
            Item(
                address,
                "paste the widget's script snippet into the <body> of every page of the "
                "website that should show the chat",
                (
                    ("widget app id", str(app_id)),
                    (
                        "snippet",
                        with_color(str(snippet), desired.get(address, {}).get(THEME_COLOR)),
                    ),
                ),
                new,
            )
        )
    return items


CHECKLIST = ChecklistPart(CHAT_WIDGET, _checklist)


def _workstream_mode() -> FieldMap:
    """The workstream's own conversation mode; a workstream without one reads as live (the
    option's default on the widget, FS-LCC), so an org that never set it is not replaced."""
    field = option(
        CONVERSATION_MODE,
        "msdyn_conversationmode",
        CONVERSATION_MODES,
        create_only=True,
        derived=True,
    )

    def read(row: Row, resolver: Resolver) -> Value:
        return "live" if row.get("msdyn_conversationmode") is None else field.read(row, resolver)

    return dataclasses.replace(field, read=read)


CHANNEL = Channel(
    word="chat",
    block="chat",
    stream_source=STREAM_SOURCE,
    context=g.CHAT_CONTEXT,
    instance=CHAT_WIDGET,
    label="live chat",
    own=_own,
    assemble=_assemble,
    brings=(CHAT_WIDGET, WIDGET_DOMAIN),
    # ALM's chat workstreams hold their widget's conversation mode (192350000) too; set when
    # the workstream is created (CS-LWS), so a change replaces it, and its widget with it.
    workstream_fields=(_workstream_mode(),),
    carried=lambda spec: {CONVERSATION_MODE: spec.chat.conversation_mode.value},
    checklist=(CHECKLIST,),
)
