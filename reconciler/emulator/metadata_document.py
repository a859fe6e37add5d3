"""``GET $metadata``: a CSDL document describing the emulated tables, for OData tooling."""

from __future__ import annotations

from functools import cache
from xml.sax.saxutils import quoteattr

from reconciler.dataverse.tables import RELATIONSHIPS, TABLES, Type

_EDM = {
    Type.STRING: "Edm.String",
    Type.MEMO: "Edm.String",
    Type.INT: "Edm.Int32",
    Type.BOOL: "Edm.Boolean",
    Type.GUID: "Edm.Guid",
    Type.DATETIME: "Edm.DateTimeOffset",
    Type.CHOICE: "Edm.Int32",
    Type.CHOICES: "Edm.String",
    Type.LOOKUP: "Edm.Guid",
}


@cache
def metadata_xml() -> str:
    types: list[str] = []
    sets: list[str] = []
    for table in TABLES.values():
        lines = [f"<EntityType Name={quoteattr(table.logical_name)}>"]
        lines.append(f"<Key><PropertyRef Name={quoteattr(table.primary_key)}/></Key>")
        for column in table.columns.values():
            length = f' MaxLength="{column.max_length}"' if column.max_length else ""
            lines.append(
                f'<Property Name={quoteattr(column.read_name)} Type="{_EDM[column.type]}"{length}/>'
            )
        for column in table.lookups():
            lines.append(
                f"<NavigationProperty Name={quoteattr(str(column.navigation))} "
                f'Type="mscrm.{column.target}"/>'
            )
        for relationship in RELATIONSHIPS.values():  # many-to-many: named alike on both sides
            ends = {
                relationship.first: relationship.second,
                relationship.second: relationship.first,
            }
            if table.logical_name in ends:
                lines.append(
                    f"<NavigationProperty Name={quoteattr(relationship.name)} "
                    f'Type="Collection(mscrm.{ends[table.logical_name]})"/>'
                )
        lines.append("</EntityType>")
        types.append("".join(lines))
        sets.append(
            f"<EntitySet Name={quoteattr(table.entity_set)} "
            f'EntityType="mscrm.{table.logical_name}"/>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">'
        "<edmx:DataServices>"
        '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" '
        'xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        + "".join(types)
        + '<EntityContainer Name="System">'
        + "".join(sets)
        + "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"
    )
