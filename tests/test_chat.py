"""The chat channel: a live chat workstream and its widget (reconciler/kinds/chat.py).

The whole flow against a served emulator (validate, plan, apply, the snippet read back, a
re-plan with nothing to do, one field changed, export and its plan), what validation refuses,
a replaced workstream taking its widget with it, and the snippet's colour.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from served import Served

from reconciler.cli import main
from reconciler.kinds.chat import with_color

NAMESPACE = "5d3f8a2c-1b4e-4c7d-9a6f-0e2b8c4d1f73"
LIVE_CHAT = 192360000  # msdyn_streamsource (CS-LWS in reconciler.dataverse.tables)
LIVE = 192350000  # msdyn_conversationmode: Live Chat
INCLUDE = 100000000  # msdyn_livechatwidgetlocation.msdyn_ruletype

CHAT = """\
apiVersion: reconciler.omnichannel/v1
kind: Queue
metadata:
  name: web-support
spec:
  displayName: Web support
---
apiVersion: reconciler.omnichannel/v1
kind: Queue
metadata:
  name: orders
spec:
  displayName: Orders
---
apiVersion: reconciler.omnichannel/v1
kind: Workstream
metadata:
  name: web-chat
spec:
  displayName: Web chat
  channel: chat
  fallbackQueue: web-support
  contextVariables: {Topic: text}
  chat:
    title: Let's chat
    language: en-US
    themeColor: "#0B5CAD"
    allowedDomains: [www.contoso.com, shop.contoso.com]
    fileAttachments: {customer: true}
---
apiVersion: reconciler.omnichannel/v1
kind: RoutingRuleSet
metadata:
  name: web-chat-routing
spec:
  workstream: web-chat
  type: route-to-queue
  rules:
    - name: Orders
      when: {field: context.Topic, op: equals, value: order}
      routeTo: orders
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "reconciler.yaml").write_text(f"namespace: {NAMESPACE}\n")
    (folder / "chat.yaml").write_text(CHAT)
    monkeypatch.chdir(tmp_path)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def changes(plan: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    return [
        (c["action"], c["address"], [f["path"] for f in c["fields"]])
        for c in plan["changes"]
        if c["action"] != "noop"
    ]


def test_a_chat_project_is_applied_to_a_served_emulator_and_exported(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "validate", str(project))[0] == 0
    with Served(tmp_path / "org.db") as emulator:
        target = ("--target", emulator.url)
        code, out, err = run(capsys, "plan", str(project), *target)
        assert (code, err) == (0, ""), out + err
        assert "Plan: 11 to create, 0 to update, 0 to replace, 0 to delete." in out

        code, out, err = run(capsys, "apply", str(project), *target, "--yes", "--no-color")
        assert (code, err) == (0, ""), out + err

        # The workstream is a live chat one, with exactly one widget and its two domains.
        (workstream,) = emulator.rows("msdyn_liveworkstreams")
        assert workstream["msdyn_streamsource"] == LIVE_CHAT
        assert workstream["msdyn_conversationmode"] == LIVE
        widgets = emulator.rows("msdyn_livechatconfigs")
        assert len(widgets) == 1
        (widget,) = widgets
        assert widget["_msdyn_liveworkstreamid_value"] == workstream["msdyn_liveworkstreamid"]
        assert widget["msdyn_name"] == "Web chat"
        assert widget["msdyn_widgettitle"] == "Let's chat"
        assert widget["msdyn_conversationmode"] == LIVE
        domains = emulator.rows("msdyn_livechatwidgetlocations")
        assert sorted(d["msdyn_domainvalue"] for d in domains) == [
            "shop.contoso.com",
            "www.contoso.com",
        ]
        assert {d["msdyn_ruletype"] for d in domains} == {INCLUDE}
        assert {d["_msdyn_livechatconfigid_value"] for d in domains} == {
            widget["msdyn_livechatconfigid"]
        }

        # The follow-up prints the snippet the service generated, read back, with the colour.
        app_id = widget["msdyn_widgetappid"]
        assert uuid.UUID(app_id)
        assert f"widget app id: {app_id}" in out
        (snippet,) = re.findall(r"snippet: (<script .*</script>)", out)
        assert f'data-app-id="{app_id}"' in snippet
        assert 'id="Microsoft_Omnichannel_LCWidget"' in snippet
        assert snippet.endswith(' data-color-override="#0B5CAD"></script>')
        org = emulator.get("WhoAmI").json()["OrganizationId"]
        assert f'data-org-id="{org}"' in snippet

        code, out, _ = run(capsys, "plan", str(project), *target, "--detailed-exitcode")
        assert code == 0, out

        # One field of the widget is one update of the widget, and nothing else.
        edit(project / "chat.yaml", "title: Let's chat", "title: Chat with us")
        code, out, _ = run(capsys, "plan", str(project), *target, "--format", "json")
        assert changes(json.loads(out)) == [
            ("update", "Workstream/web-chat/widget", ["chat.title"])
        ]
        code, out, _ = run(capsys, "apply", str(project), *target, "--yes", "--no-color")
        assert code == 0, out
        assert "Apply complete: 1 applied" in out
        manifest = project / "chat.yaml"
        kept = manifest.read_text()
        edit(manifest, "    allowedDomains: [www.contoso.com, shop.contoso.com]\n", "")
        code, out, _ = run(capsys, "plan", str(project), *target, "--format", "json")
        assert changes(json.loads(out)) == []  # like every record: deleted only with --prune
        code, out, _ = run(capsys, "plan", str(project), *target, "--format", "json", "--prune")
        removed = [
            ("delete", f"Workstream/web-chat/widget/domain:{host}", [])
            for host in ("shop.contoso.com", "www.contoso.com")
        ]
        assert sorted(changes(json.loads(out))) == removed
        manifest.write_text(kept)

        # The colour is the snippet's, not a record's: no change in the target.
        edit(manifest, '"#0B5CAD"', '"#C50F1F"')
        code, out, _ = run(capsys, "plan", str(project), *target, "--detailed-exitcode")
        assert code == 0, out

        # Export of the org holds the chat workstream, and plans to nothing.
        code, out, err = run(
            capsys, "export", "--out", "exported", *target, "--namespace", NAMESPACE
        )
        assert (code, err) == (0, ""), out + err
        exported = (tmp_path / "exported" / "workstreams.yaml").read_text()
        assert "channel: chat" in exported
        assert "title: Chat with us" in exported
        assert "- shop.contoso.com" in exported
        assert "themeColor" not in exported  # the target holds no hex colour
        code, out, _ = run(
            capsys, "plan", str(tmp_path / "exported"), *target, "--detailed-exitcode"
        )
        assert code == 0, out


def test_a_replaced_chat_workstream_takes_its_widget_with_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The widget's restrict link refuses the workstream's delete, and its workstream is set
    once: the widget goes first and comes back last, with a new app id (a new snippet)."""
    target = ("--target", "local:org.db")
    assert run(capsys, "apply", str(project), *target, "--yes")[0] == 0
    edit(
        project / "chat.yaml",
        "  fallbackQueue: web-support\n  context",
        "  fallbackQueue: web-support\n  distribution: {mode: pick}\n  context",
    )
    code, out, _ = run(capsys, "plan", str(project), *target, "--format", "json")
    plan = json.loads(out)
    replaced = {c["address"]: c["reason"] for c in plan["changes"] if c["action"] == "replace"}
    assert list(replaced) == ["Workstream/web-chat", "Workstream/web-chat/widget"]
    assert replaced["Workstream/web-chat/widget"].startswith(
        "its workstream Workstream/web-chat is deleted and created again, and a ChatWidget's "
        "workstream is set at creation"
    )
    code, out, _ = run(capsys, "apply", str(project), *target, "--yes", "--no-color")
    assert code == 0, out
    steps = [line for line in out.splitlines() if re.match(r"^[-+~] Workstream/web-chat", line)]
    order = [line.split(":")[0] for line in steps]
    assert order.index("- Workstream/web-chat/widget") < order.index("- Workstream/web-chat")
    assert order.index("+ Workstream/web-chat") < order.index("+ Workstream/web-chat/widget")
    assert "new Workstream/web-chat/widget: paste the widget's script snippet" in out
    assert run(capsys, "plan", str(project), *target, "--detailed-exitcode")[0] == 0


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("title: Let's chat", "title: '" + "x" * 101 + "'", "spec.chat.title: must be at most 100"),
        ("language: en-US", "language: english", "spec.chat.language: must be a locale code"),
        ('"#0B5CAD"', "blue", "spec.chat.themeColor: must be a colour as #RRGGBB"),
        ("www.contoso.com,", '"https://www.contoso.com",', "not 'https://www.contoso.com'"),
        ("www.contoso.com,", '"*.contoso.com",', "(no protocol, path, port or wildcard)"),
        ("channel: chat", "channel: facebook", "spec.chat: does not belong in a workstream"),
        (
            "shop.contoso.com]",
            "shop.contoso.com, WWW.Contoso.com]",
            "spec.chat.allowedDomains: lists 'www.contoso.com' twice (host names ignore case)",
        ),
        (
            "field: context.Topic",
            "field: chat.locale",
            "'chat.locale': no real org was seen to route on the chat channel's own fields",
        ),
    ],
)
def test_validation_names_what_is_wrong_in_a_chat_block(
    project: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, message: str
) -> None:
    edit(project / "chat.yaml", old, new)
    code, out, _ = run(capsys, "validate", str(project))
    assert code == 1
    assert message in out, out


def test_a_chat_workstream_needs_its_chat_block(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (project / "chat.yaml").read_text()
    start, end = (
        text.index("  chat:\n"),
        text.index("---\napiVersion: reconciler.omnichannel/v1\nkind: RoutingRuleSet"),
    )
    (project / "chat.yaml").write_text(text[:start] + text[end:])
    code, out, _ = run(capsys, "validate", str(project))
    assert code == 1
    assert "channel chat needs a chat block with its channel settings" in out, out


def test_the_retired_channel_warning_points_at_the_guide(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "validate", str(Path("examples").resolve()))
    assert code == 0
    assert "docs/moving-off-google-business-messages.md" in out
    assert (Path(__file__).parents[1] / "docs" / "moving-off-google-business-messages.md").exists()


@pytest.mark.parametrize(
    ("snippet", "color", "expected"),
    [
        ('<script id="x" data-app-id="a"></script>', "#0B5CAD",
         '<script id="x" data-app-id="a" data-color-override="#0B5CAD"></script>'),
        ('<script v2 id="x" data-color-override="#FFFFFF" ></script>', "#0B5CAD",
         '<script v2 id="x" data-color-override="#0B5CAD"></script>'),
        ('<script id="x" data-color-override="#FFFFFF"></script>', None,
         '<script id="x"></script>'),
    ],
)  # fmt: skip
def test_the_colour_is_the_snippets_data_color_override(
    snippet: str, color: str | None, expected: str
) -> None:
    assert with_color(snippet, color) == expected


def test_the_emulator_holds_widgets_as_the_table_references_say(tmp_path: Path) -> None:
    """FS-LCC and FS-LCWL (reconciler.dataverse.tables): the workstream lookup is Restrict, a
    domain's widget lookup RemoveLink; the app id and snippet are the service's; options and
    lengths as documented."""
    with Served(tmp_path / "org.db") as emulator:
        made = emulator.post(
            "msdyn_liveworkstreams",
            {
                "msdyn_name": "Chat",
                "msdyn_streamsource": LIVE_CHAT,
                "msdyn_workdistributionmode": 192350000,
            },
            Prefer="return=representation",
        )
        assert made.status_code == 201, made.text
        workstream = made.json()["msdyn_liveworkstreamid"]
        bind = {"msdyn_liveworkstreamid@odata.bind": f"/msdyn_liveworkstreams({workstream})"}
        refused = [
            {"msdyn_name": "W", "msdyn_widgetappid": str(uuid.uuid4()), **bind},
            {"msdyn_name": "W", "msdyn_widgetposition": 1, **bind},
            {"msdyn_name": "W", "msdyn_widgettitle": "x" * 101, **bind},
        ]
        for body in refused:
            assert emulator.post("msdyn_livechatconfigs", body).status_code == 400, body
        made = emulator.post(
            "msdyn_livechatconfigs",
            {"msdyn_name": "W", "msdyn_widgettitle": "Hi", **bind},
            Prefer="return=representation",
        )
        assert made.status_code == 201, made.text
        widget = made.json()
        assert uuid.UUID(widget["msdyn_widgetappid"])
        assert widget["msdyn_widgetposition"] == 192236010  # FS-LCC: Bottom right by default
        assert f'data-app-id="{widget["msdyn_widgetappid"]}"' in widget["msdyn_widgetsnippet"]
        domain = emulator.post(
            "msdyn_livechatwidgetlocations",
            {
                "msdyn_name": "www.contoso.com",
                "msdyn_domainvalue": "www.contoso.com",
                "msdyn_ruletype": INCLUDE,
                "msdyn_livechatconfigid@odata.bind": (
                    f"/msdyn_livechatconfigs({widget['msdyn_livechatconfigid']})"
                ),
            },
        )
        assert domain.status_code == 204, domain.text
        # The widget's restrict link refuses its workstream's delete.
        assert emulator.delete(f"msdyn_liveworkstreams({workstream})").status_code >= 400
        assert (
            emulator.delete(
                f"msdyn_livechatconfigs({widget['msdyn_livechatconfigid']})"
            ).status_code
            == 204
        )
        (left,) = emulator.rows("msdyn_livechatwidgetlocations")
        assert left["_msdyn_livechatconfigid_value"] is None  # RemoveLink: the domain stays
        assert emulator.delete(f"msdyn_liveworkstreams({workstream})").status_code == 204


def test_the_conversation_mode_is_the_workstreams_and_the_widgets_and_set_once(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Set at creation on both (CS-LWS, FS-LCC): a change replaces the workstream and its
    widget, and both then hold the new mode."""
    target = ("--target", "local:org.db")
    assert run(capsys, "apply", str(project), *target, "--yes")[0] == 0
    edit(
        project / "chat.yaml",
        "    title: Let's chat",
        "    conversationMode: persistent\n    title: Let's chat",
    )
    _code, out, _ = run(capsys, "plan", str(project), *target, "--format", "json")
    plan = json.loads(out)
    replaced = [c["address"] for c in plan["changes"] if c["action"] == "replace"]
    assert replaced == ["Workstream/web-chat", "Workstream/web-chat/widget"]
    assert run(capsys, "apply", str(project), *target, "--yes")[0] == 0
    _, out, _ = run(capsys, "plan", str(project), *target, "--format", "json")
    assert changes(json.loads(out)) == []


def test_domains_are_host_names_the_target_may_hold_in_capitals_and_never_exclude_rules(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A domain written with capitals in the admin center is the same domain; an Exclude rule
    (a site the widget must not show on) is not an allowed domain: ours flipped to Exclude is
    put right, one made by hand is left out of an export with the reason."""
    with Served(tmp_path / "org.db") as emulator:
        target = ("--target", emulator.url)
        assert run(capsys, "apply", str(project), *target, "--yes")[0] == 0
        rows = {d["msdyn_domainvalue"]: d for d in emulator.rows("msdyn_livechatwidgetlocations")}
        shop = rows["shop.contoso.com"]["msdyn_livechatwidgetlocationid"]
        www = rows["www.contoso.com"]["msdyn_livechatwidgetlocationid"]
        assert emulator.patch(
            f"msdyn_livechatwidgetlocations({shop})", {"msdyn_domainvalue": "Shop.Contoso.COM"}
        ).is_success
        assert emulator.patch(
            f"msdyn_livechatwidgetlocations({www})", {"msdyn_ruletype": 100000001}
        ).is_success
        _, out, _ = run(capsys, "plan", str(project), *target, "--format", "json")
        assert changes(json.loads(out)) == [
            ("update", "Workstream/web-chat/widget/domain:www.contoso.com", ["rule"])
        ]
        assert run(capsys, "apply", str(project), *target, "--yes")[0] == 0
        widget = emulator.rows("msdyn_livechatconfigs")[0]["msdyn_livechatconfigid"]
        made = emulator.post(
            "msdyn_livechatwidgetlocations",
            {
                "msdyn_name": "Competitor",
                "msdyn_domainvalue": "competitor.example",
                "msdyn_ruletype": 100000001,
                "msdyn_livechatconfigid@odata.bind": f"/msdyn_livechatconfigs({widget})",
            },
        )
        assert made.status_code == 204, made.text
        # An Exclude rule made by hand is no allowed domain a manifest could describe: the plan
        # does not ask for it to be.
        code, out, _ = run(capsys, "plan", str(project), *target, "--no-color")
        assert "competitor.example" not in out, out
        code, out, err = run(
            capsys, "export", "--out", "exported", *target, "--namespace", NAMESPACE
        )
        assert code == 0, out + err
        assert "skipped ChatWidgetDomain 'competitor.example'" in err
        assert "an Exclude rule (a site the widget must not show on)" in err
        exported = (tmp_path / "exported" / "workstreams.yaml").read_text()
        assert "competitor.example" not in exported
        assert "- shop.contoso.com" in exported
        code, out, _ = run(
            capsys, "plan", str(tmp_path / "exported"), *target, "--detailed-exitcode"
        )
        assert code == 0, out


def test_an_absent_chat_workstream_takes_its_widget_first(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ensure: absent``: the widget and its domains go too, before the workstream (the
    widget's restrict link would refuse its delete)."""
    target = ("--target", "local:org.db")
    assert run(capsys, "apply", str(project), *target, "--yes")[0] == 0
    manifest = project / "chat.yaml"
    text = manifest.read_text()
    start = text.index("kind: Workstream")
    end = text.index("---", start)
    routing = text.index("---\napiVersion: reconciler.omnichannel/v1\nkind: RoutingRuleSet")
    manifest.write_text(
        text[:start]
        + "kind: Workstream\nmetadata:\n  name: web-chat\n  ensure: absent\n"
        + text[end:routing]
    )
    code, out, _ = run(capsys, "apply", str(project), *target, "--yes", "--force", "--prune")
    assert code == 0, out
    order = [line.split(":")[0] for line in out.splitlines() if line.startswith("- ")]
    assert order.index("- Workstream/web-chat/widget") < order.index("- Workstream/web-chat")
    assert "cannot be deleted while" not in out
    assert run(capsys, "plan", str(project), *target, "--detailed-exitcode")[0] == 0


def test_the_widget_goes_live_once_its_workstreams_routing_is_written(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "apply", str(project), "--target", "local:org.db", "--yes")
    assert code == 0, out
    done = [line.split(":")[0] for line in out.splitlines() if line.startswith("+ ")]
    widget = done.index("+ Workstream/web-chat/widget")
    assert done.index("+ RoutingRuleSet/web-chat-routing/step") < widget
    assert done.index("+ Workstream/web-chat/routing") < widget


def test_a_second_widget_made_by_hand_never_takes_the_place_of_ours(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Served(tmp_path / "org.db") as emulator:
        target = ("--target", emulator.url)
        assert run(capsys, "apply", str(project), *target, "--yes")[0] == 0
        (workstream,) = emulator.rows("msdyn_liveworkstreams")
        made = emulator.post(
            "msdyn_livechatconfigs",
            {
                "msdyn_livechatconfigid": "00000000-0000-0000-0000-0000000000a3",
                "msdyn_name": "Other",
                "msdyn_widgettitle": "Other title",
                "msdyn_liveworkstreamid@odata.bind": (
                    f"/msdyn_liveworkstreams({workstream['msdyn_liveworkstreamid']})"
                ),
            },
        )
        assert made.status_code == 204, made.text
        # An Exclude rule made by hand is no allowed domain a manifest could describe: the plan
        # does not ask for it to be.
        code, out, _ = run(capsys, "plan", str(project), *target, "--no-color")
        assert "competitor.example" not in out, out
        code, out, err = run(
            capsys, "export", "--out", "exported", *target, "--namespace", NAMESPACE
        )
        assert code == 0, out + err
        assert (
            "skipped ChatWidget 'Other' (00000000-0000-0000-0000-0000000000a3): "
            "Workstream/web-chat/widget is taken by another chat widget"
        ) in err
        assert "title: Let's chat" in (tmp_path / "exported" / "workstreams.yaml").read_text()


def test_an_absent_workstream_lists_no_widget_it_never_had(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "chat.yaml").write_text(
        "apiVersion: reconciler.omnichannel/v1\nkind: Workstream\n"
        "metadata: {name: gone, ensure: absent}\n"
    )
    code, out, _ = run(capsys, "plan", str(project), "--target", "local:org.db", "--format", "json")
    assert code == 0, out
    addresses = [c["address"] for c in json.loads(out)["changes"]]
    assert addresses == ["Workstream/gone/contract", "Workstream/gone", "Workstream/gone/routing"]
