"""AutomatedMessage: everything validate can check, then the refusal (docs/automated-messages.md):
no manifest of the kind can be applied until a real org shows how messages are stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.models.automated import TRIGGERS

WORKSTREAMS = """\
apiVersion: reconciler.omnichannel/v1
kind: Queue
metadata:
  name: web-support
spec: {}
---
apiVersion: reconciler.omnichannel/v1
kind: Workstream
metadata:
  name: web-chat
spec:
  channel: chat
  fallbackQueue: web-support
  automatedMessages: false
  chat: {title: Chat, language: en-US}
"""

MESSAGE = """\
apiVersion: reconciler.omnichannel/v1
kind: AutomatedMessage
metadata:
  name: greeting
spec:
  trigger: {trigger}
  channel: {channel}
  workstream: web-chat
  text:
    en-US: Hello.
    nl-NL: Hallo.
"""


@pytest.fixture(autouse=True)
def _in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], message: str) -> tuple[int, str]:
    (tmp_path / "workstreams.yaml").write_text(WORKSTREAMS)
    (tmp_path / "messages.yaml").write_text(message)
    code = main(["validate", "."])
    out, err = capsys.readouterr()
    return code, out + err


def test_a_valid_message_is_refused_as_not_writable_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = validate(tmp_path, capsys, MESSAGE.format(trigger="agentAssigned", channel="chat"))
    assert code == 1
    lines = [line for line in out.splitlines() if ": error: " in line or ": warning: " in line]
    assert lines == [
        "messages.yaml:2:1: error: kind: AutomatedMessage cannot be applied yet: no public "
        "source shows how a real org stores a custom message's text per language (the "
        "msdyn_oclocalizationdata rows) or names the channel instance it is for "
        "(msdyn_instanceid), and the reconciler writes nothing no real org was seen to hold. "
        "docs/automated-messages.md says what is known and how to help settle it",
        # The workstream sends no automated message: a warning, at the reference.
        "messages.yaml:8:3: warning: spec.workstream: Workstream 'web-chat' has "
        "automatedMessages: false (workstreams.yaml:14:3), so it sends no automated message, "
        "this one included",
    ]
    assert str(tmp_path) not in out


def test_an_unknown_trigger_is_refused_with_the_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = validate(
        tmp_path, capsys, MESSAGE.format(trigger="customerWaitTimeExceeded", channel="chat")
    )
    assert code == 1
    (line,) = [line for line in out.splitlines() if "spec.trigger" in line]
    assert line.startswith("messages.yaml:6:3: error: spec.trigger: ")
    assert all(name in line for name in TRIGGERS)


def test_a_live_chat_trigger_is_not_for_facebook_and_the_channel_must_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = validate(
        tmp_path, capsys, MESSAGE.format(trigger="averageWaitTimeMinutes", channel="facebook")
    )
    assert code == 1
    assert (
        "messages.yaml:6:3: error: spec.trigger: averageWaitTimeMinutes applies to live chat "
        "(and voice) channels only, not to facebook" in out
    )
    assert (
        "messages.yaml:8:3: error: spec.workstream: Workstream 'web-chat' serves chat, not "
        "facebook: a message is for a workstream of its channel" in out
    )


def test_every_trigger_is_a_distinct_option_value() -> None:
    values = [value for value, _label in TRIGGERS.values()]
    assert len(set(values)) == len(values)
    assert all(192350000 <= value < 192360000 for value in values)
