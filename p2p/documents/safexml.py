"""XML from outside, parsed without its dangerous parts: no DTD, no entities.

A METADATA.XML inside an XDM zip comes from another program, possibly a hostile
one. The standard library's expat would read a document type declaration and
expand the entities it declares (the "billion laughs" and external-entity
attacks); ``parse`` refuses any DOCTYPE, entity declaration or processing of an
external reference before a single one is expanded, and builds the tree with
``xml.etree``'s own ``TreeBuilder``. No dependency is needed for that much.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat

from p2p.errors import BadInput

#: Longest XML pli reads (a METADATA.XML is a few kilobytes).
MAX_XML = 1024 * 1024


class UnsafeXml(BadInput):
    """The XML has a DTD, an entity or is not well formed."""


def _refuse(*_args: Any) -> Any:
    raise UnsafeXml("it declares a DTD or entities, which pli never reads")


def parse(data: bytes) -> ET.Element:
    """The root element of ``data``; ``UnsafeXml`` for a DTD, entities or broken XML."""
    if len(data) > MAX_XML:
        raise UnsafeXml(f"it is over {MAX_XML // 1024} KiB")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def start(tag: str, attributes: dict[str, str]) -> None:
        builder.start(_clark(tag), {_clark(k): v for k, v in attributes.items()})

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end(_clark(tag))
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
        return builder.close()
    except expat.ExpatError as exc:
        raise UnsafeXml(f"it is not well-formed XML ({expat.ErrorString(exc.code)})") from None
    except (AssertionError, RecursionError):  # TreeBuilder: no root; absurd nesting
        raise UnsafeXml("it has no document element") from None


def _clark(name: str) -> str:
    """expat's ``uri}local`` → ElementTree's ``{uri}local``."""
    return "{" + name if "}" in name else name
