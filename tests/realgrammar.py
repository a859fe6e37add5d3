"""The grammar real orgs hold, taken from the fixtures of tests/fixtures/realorg/ (each names its
source): a check that XML the reconciler writes is made only of what real exports show."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from reconciler.mapping import rulegrammar as g

REALORG = Path(__file__).resolve().parent / "fixtures" / "realorg"
FREE = ("id", "name")
"""Attributes whose values are names, not grammar."""


class Grammar:
    def __init__(self, folder: str) -> None:
        self.attributes: set[tuple[str, str, str]] = set()
        self.tags: set[str] = set()
        self.nesting: set[tuple[str, str]] = set()
        for path in sorted((REALORG / folder).glob("*.xml")):
            root = ET.fromstring(path.read_text(encoding="utf-8"))
            for element in root.iter():
                self.tags.add(element.tag)
                self.nesting.update((element.tag, child.tag) for child in element)
                for key, value in element.attrib.items():
                    self.attributes.add((element.tag, key, "*" if key in FREE else value))

    def check(self, xml: str) -> None:
        """Every element, parent > child nesting, attribute and attribute value of ``xml`` is
        one the fixtures show (a channel's engagement context may stand for chat's)."""
        contexts = set(g.CHANNEL_CONTEXTS.values())
        for element in ET.fromstring(xml).iter():
            assert element.tag in self.tags, element.tag
            for child in element:
                assert (element.tag, child.tag) in self.nesting, (element.tag, child.tag)
            for key, value in element.attrib.items():
                if value in contexts:
                    value = "msdyn_livechatengagementctx"
                shown = "*" if key in FREE else value
                assert (element.tag, key, shown) in self.attributes, (element.tag, key, value)
            if element.tag == "lhs":
                text = element.text or ""
                channel = text.split(".")[0] in contexts
                assert channel or text.startswith(LHS_PREFIXES), text


RULES = Grammar("rulesets")
# The operators the Visual Routing Tester reads and writes against real orgs: its src/dataverse.ts
# operator list (ameijers/PrometheanCCaaSToolbox tools/visual-routing-tester/src/dataverse.ts
# @aa0742679f7dcb61ce170bafce317fb34cc7a4e4): "==", "!=", ">", "<", ">=", "<=", "not-null",
# "contains".
RULES.attributes |= {
    ("condition", "operator", op)
    for op in ("==", "!=", ">", "<", ">=", "<=", "not-null", "contains")
}
CONTRACTS = Grammar("contracts")
LHS_PREFIXES = ("msdyn_ocliveworkitem.", "liveworkitemcontext.", "assign_to.", "queuedetails.")
