"""The sandbox's `$metadata`: CSDL (EDMX 4.0) rendered from the model, namespace `Erp`."""

from __future__ import annotations

from functools import cache
from xml.sax.saxutils import quoteattr

from . import model as m

_EDMX_NS = "http://docs.oasis-open.org/odata/ns/edmx"
_EDM_NS = "http://docs.oasis-open.org/odata/ns/edm"


def _element(tag: str, /, **attributes: object) -> str:
    attrs = "".join(
        f" {name}={quoteattr(str(value))}" for name, value in attributes.items() if value is not None
    )
    return f"<{tag}{attrs}/>"


def _facets(prop: m.Property) -> dict[str, object]:
    return {
        "Nullable": None if prop.nullable else "false",
        "MaxLength": prop.max_length,
        "Precision": prop.precision if prop.kind is m.Kind.DECIMAL else None,
        "Scale": prop.scale if prop.kind is m.Kind.DECIMAL else None,
    }


def _entity_type(entity: m.EntitySet) -> list[str]:
    lines = [f'<EntityType Name="{entity.type_name}">', '<Key><PropertyRef Name="Id"/></Key>']
    for prop in entity.properties:
        if prop.kind is m.Kind.REFERENCE:
            target = m.ENTITY_SETS[prop.target or ""].full_type_name
            lines.append(
                _element(
                    "NavigationProperty",
                    Name=prop.name,
                    Type=target,
                    Nullable=None if prop.nullable else "false",
                )
            )
        elif prop.kind is m.Kind.CHILDREN:
            target = m.ENTITY_SETS[prop.target or ""].full_type_name
            lines.append(_element("NavigationProperty", Name=prop.name, Type=f"Collection({target})"))
        else:
            lines.append(_element("Property", Name=prop.name, Type=prop.edm_type, **_facets(prop)))
    lines.append("</EntityType>")
    return lines


def _complex_types() -> list[str]:
    return [
        '<ComplexType Name="Amount">',
        _element("Property", Name="Value", Type="Edm.Decimal", Nullable="false", Precision=18, Scale=2),
        _element("Property", Name="Currency", Type="Edm.String"),
        "</ComplexType>",
        '<ComplexType Name="Quantity">',
        _element("Property", Name="Value", Type="Edm.Decimal", Nullable="false", Precision=18, Scale=3),
        _element("Property", Name="Unit", Type="Edm.String"),
        "</ComplexType>",
        # Dynamic properties are language codes: {"EN": "...", "BG": "..."}.
        '<ComplexType Name="MultilanguageString" OpenType="true"/>',
        # The value of every CustomProperty_<code>.
        '<ComplexType Name="CustomPropertyValue">',
        _element("Property", Name="Value", Type="Edm.String"),
        _element("Property", Name="ValueId", Type="Edm.Guid"),
        _element("Property", Name="Description", Type=m.Kind.MULTILANG.value),
        "</ComplexType>",
    ]


def _enum_types() -> list[str]:
    lines: list[str] = []
    for enum in m.ENUM_TYPES:
        lines.append(f'<EnumType Name="{enum.name}">')
        lines.extend(_element("Member", Name=name, Value=value) for name, value in enum.members)
        lines.append("</EnumType>")
    return lines


def _container(entities: tuple[m.EntitySet, ...]) -> list[str]:
    lines = ['<EntityContainer Name="Default">']
    for entity in entities:
        lines.append(f'<EntitySet Name="{entity.name}" EntityType="{entity.full_type_name}">')
        lines.extend(
            _element("NavigationPropertyBinding", Path=prop.name, Target=prop.target)
            for prop in entity.properties
            if prop.kind in m.NAVIGATION_KINDS
        )
        lines.append("</EntitySet>")
    lines.append("</EntityContainer>")
    return lines


MODEL_ENTITIES = tuple(m.ENTITY_SETS.values())


@cache
def metadata_xml(entities: tuple[m.EntitySet, ...] = MODEL_ENTITIES) -> bytes:
    """The whole EDMX document of these entity sets (the model's, plus any custom properties a
    `Dataset` added); rendered once per distinct model."""
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<edmx:Edmx Version="4.0" xmlns:edmx="{_EDMX_NS}">',
        "<edmx:DataServices>",
        f'<Schema Namespace="{m.NAMESPACE}" xmlns="{_EDM_NS}">',
        *_enum_types(),
        *_complex_types(),
        *(line for entity in entities for line in _entity_type(entity)),
        *_container(entities),
        "</Schema>",
        "</edmx:DataServices>",
        "</edmx:Edmx>",
    ]
    return "\n".join(lines).encode("utf-8")
