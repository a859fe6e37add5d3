"""Checks of a markdown comment's form, for the tests of the markdown plan: fences and code
spans closed, ``<details>``/``<summary>`` nested and closed, and the text outside code."""

from __future__ import annotations

import re
from html.parser import HTMLParser


def spans(line: str) -> tuple[str, bool]:
    """``line`` without its code spans, and whether every backtick run found its closing run
    (https://spec.commonmark.org/0.31.2/#code-spans: a run of the same length)."""
    kept, position, balanced = [], 0, True
    while (start := line.find("`", position)) >= 0:
        kept.append(line[position:start])
        run = len(line[start:]) - len(line[start:].lstrip("`"))
        closing = re.compile(f"(?<!`){'`' * run}(?!`)")
        end = closing.search(line, start + run)
        if end is None:
            balanced = False
            position = start + run
            continue
        position = end.end()
    kept.append(line[position:])
    return "".join(kept), balanced


def outside_code(markdown: str) -> tuple[str, list[str]]:
    """The markdown without fenced blocks, code spans and ``<code>`` elements, and the lines
    whose code spans are not closed."""
    lines, broken, fence = [], [], None
    for line in markdown.split("\n"):
        if fence is not None:
            if line.startswith(fence) and not line.strip("`"):
                fence = None
            continue
        if opening := re.match(r"^(`{3,})", line):
            fence = opening.group(1)
            continue
        line = re.sub(r"<code>.*?</code>", "", line)
        kept, balanced = spans(line)
        if not balanced:
            broken.append(line)
        lines.append(kept)
    assert fence is None, "a fence is not closed"
    return "\n".join(lines), broken


class Structure(HTMLParser):
    """``<details>`` and ``<summary>``: nested and closed as GitHub needs them."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.details = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "summary" and self.stack[-1:] != ["details"]:
            self.errors.append(f"<summary> outside <details> at {self.getpos()}")
        if tag in ("details", "summary"):
            self.stack.append(tag)
            self.details += tag == "details"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("details", "summary"):
            if self.stack[-1:] != [tag]:
                self.errors.append(f"</{tag}> does not close {self.stack[-1:]} at {self.getpos()}")
            else:
                self.stack.pop()


def check_form(markdown: str) -> str:
    """Fails unless the comment is well-formed; gives it without code (for what is shown)."""
    text, broken = outside_code(markdown)
    assert broken == []
    structure = Structure()
    structure.feed(text)
    structure.close()
    assert structure.errors == []
    assert structure.stack == []
    assert markdown.count("<details>") == markdown.count("</details>")
    return text


def shortened_counts(markdown: str) -> tuple[int, int]:
    found = re.search(r"([\d,]+) of ([\d,]+) changes are not listed here", markdown)
    assert found, "no note of what is left out"
    return int(found[1].replace(",", "")), int(found[2].replace(",", ""))
