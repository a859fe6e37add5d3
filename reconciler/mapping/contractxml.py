"""A workstream's decision contract (``msdyn_contractdefinition``), both ways.

Written in the shape of the contract of a real org's workstream (``rulegrammar``: the ALM
export), with the channel's engagement context where that export has its chat channel's::

    <contract version="1">
      <entity logical-name="msdyn_ocliveworkitem" key="msdyn_ocliveworkitem" />
      <entity logical-name="msdyn_effortpredictionresult" key="msdyn_effortpredictionresult" />
      <entity logical-name="msdyn_facebookengagementctx" key="msdyn_facebookengagementctx" />
      <entity logical-name="msdyn_ocliveworkitemcharacteristic" key="..." is-collection="true" />
      <entity logical-name="msdyn_ocliveworkitemcapacityprofile" key="..." is-collection="true" />
      <complex key="liveworkitemcontext">
        <variable name="Language" data-type="string" />
      </complex>
    </contract>

Read back as what manifests say of it: the channel whose context it declares and the context
variables with their types. A contract holding anything else is not read (``decode`` says
what): writing it again would drop what it holds, so plans leave it as it is.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.mapping import rulegrammar as g
from reconciler.mapping.rulexml import RuleXmlError, parse

_NAME = re.compile(g.IDENTIFIER)
_ENTITIES = frozenset(
    {name for name, _ in g.CONTRACT_ENTITIES if name is not None}
    | set(g.CHANNEL_CONTEXTS.values())
    | {g.CHAT_CONTEXT}
)
_TYPE_BY_DATA_TYPE = {data_type: name for name, data_type in g.VARIABLE_TYPES.items()}


@dataclass(frozen=True)
class Contract:
    channel_contexts: tuple[str, ...]
    """The channel engagement-context tables it declares (``msdyn_facebookengagementctx``)."""
    variables: dict[str, str]
    """Context variables: name → manifest type (``text``)."""
    legacy: bool = False
    """Written by the reconciler's first version (``rulegrammar.LEGACY_OPERATORS``' note)."""


def encode(channel_context: str | None, variables: Mapping[str, str]) -> str:
    """The contract XML; ``variables`` maps names to manifest types (``text``)."""
    parts = []
    for entity, collection in g.CONTRACT_ENTITIES:
        name = channel_context if entity is None else entity
        if name is None:
            continue
        extra = ' is-collection="true"' if collection else ""
        parts.append(f'<entity logical-name="{name}" key="{name}"{extra}/>')
    if variables:
        declared = []
        for name, kind in variables.items():
            if not _NAME.fullmatch(name):
                raise RuleXmlError(f"{name!r} is not a context variable name")
            data_type = g.VARIABLE_TYPES.get(kind)
            if data_type is None:
                raise RuleXmlError(
                    f"context variable {name!r} is of type {kind!r}: no real export shows how a "
                    f"contract declares one (types that can be written: "
                    f"{', '.join(g.VARIABLE_TYPES)})"
                )
            declared.append(f'<variable name="{name}" data-type="{data_type}"/>')
        parts.append(f'<complex key="{g.CONTEXT_KEY}">{"".join(declared)}</complex>')
    return f'<contract version="{g.VERSION}">{"".join(parts)}</contract>'


def decode(xml: str) -> Contract:
    """What a contract says in manifest terms. Anything more than the grammar above (another
    entity, a variable of a type manifests cannot declare, unknown attributes) raises
    ``RuleXmlError``: rewriting the column would lose it, so it is left as it is."""
    root = parse(xml)
    if root.tag != "contract":
        raise RuleXmlError(f"expected <contract>, found <{root.tag}>")
    if not root.attrib and all(child.tag == "attribute" for child in root):
        return Contract((), {}, legacy=True)  # the first version's <attribute> list
    if root.attrib != {"version": g.VERSION}:
        raise RuleXmlError(f"a <contract> of another version or form ({dict(root.attrib)})")
    channels: list[str] = []
    variables: dict[str, str] = {}
    for element in root:
        if element.tag == "entity":
            name = element.get("logical-name") or ""
            _only(element, "logical-name", "key", "is-collection")
            if name not in _ENTITIES or element.get("key") != name:
                raise RuleXmlError(f"it declares entity {name!r}, which manifests cannot say")
            if name.endswith("engagementctx"):
                channels.append(name)
        elif element.tag == "complex" and element.attrib == {"key": g.CONTEXT_KEY}:
            for variable in element:
                _only(variable, "name", "data-type")
                name = variable.get("name") or ""
                data_type = variable.get("data-type") or ""
                if variable.tag != "variable" or data_type not in _TYPE_BY_DATA_TYPE:
                    raise RuleXmlError(
                        f"its context variable {name!r} is of data-type {data_type!r}, which "
                        "manifests cannot declare"
                    )
                variables[name] = _TYPE_BY_DATA_TYPE[data_type]
        else:
            raise RuleXmlError(f"it holds <{element.tag}>, which manifests cannot say")
    return Contract(tuple(channels), variables)


def _only(element: ET.Element, *names: str) -> None:
    for key in element.attrib:
        if key not in names:
            raise RuleXmlError(f"unknown attribute {key!r} on <{element.tag}>")
