"""The shell sessions of README.md and docs/*.md, parsed into commands a test can run.

A fenced block tagged ``sh``, ``bash``, ``shell`` or ``console``, or not tagged at all, is a
shell block. Where it shows ``$ `` prompts, the prompted lines (with their ``\\`` continuations)
are the commands and the other lines their output; a ``sh``/``bash``/``shell`` block without
prompts is a script, every line a command. An untagged block without prompts is output, and
one that starts a line with ``reconciler `` there is an error (tag it ``sh`` to run it, ``text``
if it is a synopsis), so that no command block goes unrun by accident. Other tags (``yaml``,
``text``, ``xml``...) are not run.

HTML comments on the lines just before a fence steer the runner, visibly in the markdown:

- ``<!-- doc-test: skip (why) -->``: the block is not run (a real org, a served emulator...);
- ``<!-- doc-test: write FILE -->`` / ``append FILE``: the (yaml) block's text is written to, or
  appended to, FILE;
- ``<!-- doc-test: run COMMAND -->``: a step the prose describes ("set the priority to 2"),
  run before the block;
- ``<!-- doc-test: exit N -->``: the exit code of the block's commands whose output shows an
  ``error:`` line (without it, such a command must exit non-zero; ``echo $?`` states one exactly).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

SHELL_TAGS = {"", "sh", "bash", "shell", "console"}
FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w-]*)")
DIRECTIVE = re.compile(r"^\s*<!--\s*doc-test:\s*(\w+)\s*(.*?)\s*-->\s*$")
PROMPT = re.compile(r"^\s*\$ (.*)$")
ERROR_LINE = re.compile(r"(^|: )error: ")


@dataclass
class Command:
    line: int
    text: str
    output: list[str] = field(default_factory=list)
    exit_code: int | None = None
    """The code ``echo $?`` shows after it, when the doc shows one."""

    @property
    def shows_error(self) -> bool:
        return any(ERROR_LINE.search(line) for line in self.output)


@dataclass
class Block:
    doc: str
    line: int
    """1-based line of the opening fence."""
    tag: str
    text: str
    directives: list[tuple[str, str]]
    commands: list[Command]

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    def directive(self, name: str) -> str | None:
        return next((value for key, value in self.directives if key == name), None)


def _commands(lines: list[str], first: int, prompted: bool) -> list[Command]:
    commands: list[Command] = []
    pending: Command | None = None  # a command whose line ends with "\"
    for number, line in enumerate(lines, first):
        if pending is not None:
            pending.text = pending.text[:-1].rstrip() + " " + line.strip()
            pending = pending if pending.text.endswith("\\") else None
            continue
        prompt = PROMPT.match(line)
        if prompted and prompt is None:
            if commands:
                commands[-1].output.append(line)
            continue
        text = prompt.group(1).strip() if prompt else line.strip()
        if not text or text.startswith("#"):
            continue
        if text == "echo $?" and commands:
            commands[-1].output.append(line)
            continue
        command = Command(number, text)
        commands.append(command)
        if text.endswith("\\"):
            pending = command
    # `echo $?` and the number it prints: the exit code of the command before it
    for command in commands:
        output = command.output
        for index, line in enumerate(output[:-1]):
            prompt = PROMPT.match(line)
            if prompt is not None and prompt.group(1).strip() == "echo $?":
                command.exit_code = int(output[index + 1].strip())
                del output[index:]
                break
    return commands


def parse(path: Path, root: Path) -> list[Block]:
    """Every fenced block of one markdown file, with its directives and commands."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    directives: list[tuple[str, str]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = DIRECTIVE.match(line)
        if directive:
            directives.append((directive.group(1), directive.group(2)))
            index += 1
            continue
        fence = FENCE.match(line)
        if not fence:
            if line.strip():
                directives = []
            index += 1
            continue
        indent, ticks, tag = fence.groups()
        end = index + 1
        while end < len(lines) and lines[end].strip() != ticks:
            end += 1
        body = [
            text[len(indent) :] if text.startswith(indent) else text
            for text in lines[index + 1 : end]
        ]
        tag = tag.lower()
        commands: list[Command] = []
        if tag in SHELL_TAGS:
            prompted = any(PROMPT.match(text) for text in body)
            if prompted or tag:
                commands = _commands(body, index + 2, prompted)
        blocks.append(
            Block(
                doc=path.relative_to(root).as_posix(),
                line=index + 1,
                tag=tag,
                text="\n".join(body) + "\n",
                directives=directives,
                commands=commands,
            )
        )
        directives = []
        index = end + 1
    return blocks


def unrun_commands(block: Block) -> list[str]:
    """Lines of an untagged, prompt-less block that read like commands: a block that would
    silently go unrun."""
    if block.tag or block.commands:
        return []
    return [
        line
        for line in block.text.splitlines()
        if re.match(r"^([A-Z_][A-Z0-9_]*=\S*\s+)*reconciler\s", line)
    ]


def words(command: str) -> list[list[str]]:
    """A command line as its ``&&``-joined simple commands, each split the shell's way."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars="&|;<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    parts: list[list[str]] = [[]]
    for token in lexer:
        if token == "&&":
            parts.append([])
        else:
            parts[-1].append(token)
    return [part for part in parts if part]
