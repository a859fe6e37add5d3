"""Neutral output: no text from a manifest or an org can act as a CI runner's command.

CI runs ``reconciler plan`` on pull requests whose authors it does not trust, and the runner
reads the step's output as it is printed:

- Azure Pipelines' agent runs ``##vso[area.action property=value;...]message`` as a logging
  command (``task.setvariable``, ``task.complete``, ``build.addbuildtag``...) and reads
  ``##[command]message`` as a formatting command (``##[group]``, ``##[error]``), see
  https://learn.microsoft.com/en-us/azure/devops/pipelines/scripts/logging-commands.
  The agent looks for the prefix *anywhere* in a line (``message.IndexOf("##vso[")`` in
  ``Command.TryParse``, https://github.com/microsoft/azure-pipelines-agent/blob/master/src/Microsoft.VisualStudio.Services.Agent/Command.cs),
  not only at its start: indenting or quoting a value does not help.
- GitHub's runner still reads its first syntax, ``##[command]``, anywhere in a line as well
  (``ActionCommand.TryParse``, prefix ``##[``,
  https://github.com/actions/runner/blob/main/src/Runner.Common/ActionCommand.cs), besides
  ``::command::`` at a line's start ("Workflow commands for GitHub Actions",
  https://docs.github.com/en/actions/reference/workflow-commands-for-github-actions).
  ``--format github`` writes ``::`` commands itself and escapes what it puts in them
  (``render.diagnostics``); no other output puts manifest text at the start of a line.

Both runners call .NET's ``String.IndexOf(string)`` without a ``StringComparison``: a
culture-sensitive search, which skips "ignorable" characters (``"#\\u200b#vso["`` is found as
``"##vso["``, see
https://learn.microsoft.com/en-us/dotnet/core/extensions/globalization-icu#stringindexof). It is
case-sensitive, so ``##VSO[`` is not a command today; neutralised all the same: one more case
costs nothing, and no reader needs it raw.

**The one rule**: in every sequence of ``#``, ``#``, optionally ``vso`` (any case), then ``[``,
with any run of characters a comparison might ignore (anything but printable ASCII and the
line feed) between them, the first ``#`` is written as the six characters
``\\u0023``:

- in JSON, ``\\u0023`` is the escape of ``#`` inside a string, and a JSON document has ``#``
  nowhere else: the document parses to the same values (a saved plan's checksum and signature,
  computed over parsed values, still verify);
- in text, markdown and GitHub annotations it is visible and says which character it stands
  for, the way ``style.clean`` shows an invisible character (``\\u200b``); a backslash before
  ``u`` is literal in markdown (only ASCII punctuation can be backslash-escaped) and in
  workflow commands.

So ``##vso[task.setvariable variable=x]y`` is printed ``\\u0023#vso[task.setvariable
variable=x]y`` by every format. ``style.clean`` applies the rule to every name, value and
message a renderer prints; ``json_text`` to a JSON document; ``Guard`` (installed by
``reconciler.cli.main`` on stdout and stderr) to everything the command writes, as a last resort.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any, TextIO

ESCAPE = "\\u0023"
"""What a ``#`` of a sequence is written as: the JSON escape of ``#``, valid in every format."""

# What a linguistic comparison may skip between the marks: anything but printable ASCII and the
# line feed (both runners read a line at a time). ICU's collation ignores far more than the
# controls, format characters and default ignorable code points (combining marks of many
# scripts, U+0640 ARABIC TATWEEL, musical symbols...), and which ones depends on its version
# and locale: every character a sequence's marks are not made of is taken as one it could skip.
# Neutralising one too many costs six characters.
_IGNORABLE = "^\n\x20-\x7e"
_I = f"[{_IGNORABLE}]*+"  # possessive: these never match ``#vso[``, backtracking is waste
SEQUENCE = re.compile(f"#{_I}#{_I}(?:[vV]{_I}[sS]{_I}[oO]{_I})?\\[")
"""``##vso[`` or ``##[``, in any case, with ignorable characters anywhere between."""

# A text's end that a next write could complete into a sequence: ``#``, ``##``, ``##v``...
_UNFINISHED = re.compile(f"#{_I}(?:#{_I}(?:[vV]{_I}(?:[sS]{_I}(?:[oO]{_I})?)?)?)?\\Z")
_TAIL_CHARACTER = re.compile(f"[#vVsSoO]|[{_IGNORABLE}]")


def _escape_first(match: re.Match[str]) -> str:
    return ESCAPE + match.group()[1:]


def text(value: str) -> str:
    """``value`` with the first ``#`` of every sequence written ``\\u0023``."""
    if "#" not in value:
        return value
    return SEQUENCE.sub(_escape_first, value)


def json_text(document: str) -> str:
    """A JSON document neutralised: ``#`` only occurs inside strings, where ``\\u0023`` is its
    escape, so the document parses to the same values."""
    return text(document)


def has_sequence(value: str) -> bool:
    """Whether a runner could read ``value`` as a command (tests and assertions)."""
    return SEQUENCE.search(value) is not None


def unfinished(value: str) -> int:
    """Where the part of ``value``'s end that more text could turn into a sequence starts
    (``len(value)`` when there is none)."""
    # Only the run of characters a sequence may hold at the end is searched: a plan of
    # megabytes is not searched from its start on every write.
    start = len(value)
    while start and _TAIL_CHARACTER.match(value, start - 1):
        start -= 1
    if start == len(value):
        return start
    found = _UNFINISHED.search(value, start)
    return found.start() if found else len(value)


def settle(value: str) -> str:
    """An unfinished end written out (``Guard.flush``): every ``#`` in it escaped, so nothing
    written later can complete it into a sequence."""
    return value.replace("#", ESCAPE)


class Guard:
    """A text stream that writes every sequence neutralised, whatever code path writes it: the
    renderers' own escaping is the rule's primary place, this is the last resort.

    A sequence split over two ``write`` calls is caught: an end that the next write could
    complete (``##v``) is held back until it does or does not. ``flush`` writes a held-back
    end with its ``#`` escaped (text printed later cannot complete it then) and flushes the
    stream. Everything else (``isatty``, ``encoding``, ``fileno``...) is the wrapped stream's,
    so colour detection is unchanged; bytes written to ``.buffer`` are not guarded.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._held = ""
        self._lock = threading.RLock()

    def write(self, value: str) -> int:
        with self._lock:
            data = self._held + value
            self._held = ""
            if "#" in data:
                data = text(data)
                cut = unfinished(data)
                data, self._held = data[:cut], data[cut:]
            if data:
                self.stream.write(data)
        return len(value)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with self._lock:
            if self._held:
                held, self._held = self._held, ""
                self.stream.write(settle(held))
            self.stream.flush()

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
