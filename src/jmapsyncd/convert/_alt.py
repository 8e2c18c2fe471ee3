"""An HTML description as a plain description plus an alternate link, and back.

A server that stores only ``descriptionContentType: text/plain`` (Cyrus 3.6 and 3.10) still keeps
``links`` (RFC 8984 §1.4.11, §4.2.7). :func:`html_description_as_link` sends the plain text the
user wrote beside the HTML (iCalendar's DESCRIPTION next to X-ALT-DESC or STYLED-DESCRIPTION,
kept by the converter under ``jmapsyncd.org:ical``) as ``description`` and the HTML as a Link
with ``rel: alternate``, ``contentType: text/html`` and a ``data:`` href (RFC 2397), under the
id :data:`HTML_LINK_ID`. :func:`html_description_from_link` turns such an event back into the
converter's own form: the HTML description, and the plain one kept beside it.
"""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any

from jmapsyncd.convert._parse import unescape_text
from jmapsyncd.convert._write import escape_text

VENDOR = "jmapsyncd.org:ical"
#: the link id that carries an HTML description
HTML_LINK_ID = "description-html"
_DATA_PREFIX = "data:text/html;charset=utf-8;base64,"


def _is_html(event: dict[str, Any]) -> bool:
    ctype = event.get("descriptionContentType")
    return (
        isinstance(ctype, str)
        and ctype.lower().startswith("text/html")
        and isinstance(event.get("description"), str)
    )


def html_description_as_link(event: dict[str, Any], *, patch: bool = False) -> dict[str, Any]:
    """``event`` (or, with ``patch``, a PatchObject) with its HTML description moved to a link."""
    if not _is_html(event):
        return event
    out = copy.deepcopy(event)
    html = out.pop("description")
    out.pop("descriptionContentType")
    vendor = out.get(VENDOR)
    plain: str | None = None
    alt_name: str | None = None
    if isinstance(vendor, dict):
        props = vendor.get("properties")
        if isinstance(props, list):
            for prop in props:
                if (
                    isinstance(prop, list)
                    and len(prop) == 4
                    and prop[0] == "description"
                    and isinstance(prop[3], str)
                ):
                    plain = unescape_text(prop[3])
                    break
        converted = vendor.get("convertedProperties")
        if isinstance(converted, dict) and isinstance(converted.get("description"), dict):
            name = converted["description"].get("name")
            alt_name = name if isinstance(name, str) else None
    if plain:
        out["description"] = plain
    elif patch:
        out["description"] = None
    link: dict[str, Any] = {
        "@type": "Link",
        "href": _DATA_PREFIX + base64.b64encode(html.encode()).decode("ascii"),
        "contentType": "text/html",
        "rel": "alternate",
    }
    if alt_name:
        link["title"] = alt_name
    links = out.get("links")
    if patch and "links" not in out:
        out["links/" + HTML_LINK_ID] = link  # the other links stay as they are
    else:
        out["links"] = {**(links if isinstance(links, dict) else {}), HTML_LINK_ID: link}
    return out


def html_description_from_link(event: dict[str, Any]) -> dict[str, Any]:
    """The converter's form of an event whose HTML description came back as a link."""
    links = event.get("links")
    link = links.get(HTML_LINK_ID) if isinstance(links, dict) else None
    if not isinstance(link, dict) or link.get("rel") != "alternate":
        return event
    href = link.get("href")
    if not isinstance(href, str) or not href.startswith(_DATA_PREFIX):
        return event
    try:
        html = base64.b64decode(href[len(_DATA_PREFIX) :], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return event
    out = dict(event)
    rest = {k: v for k, v in links.items() if k != HTML_LINK_ID} if isinstance(links, dict) else {}
    if rest:
        out["links"] = rest
    else:
        out.pop("links", None)
    plain = out.get("description")
    out["description"] = html
    out["descriptionContentType"] = "text/html"
    if (isinstance(plain, str) and plain) or isinstance(link.get("title"), str):
        kept = out.get(VENDOR)
        vendor: dict[str, Any] = copy.deepcopy(kept) if isinstance(kept, dict) else {}
        if isinstance(plain, str) and plain:
            props = vendor.get("properties")
            props = props if isinstance(props, list) else []
            vendor["properties"] = [["description", {}, "unknown", escape_text(plain)], *props]
        if isinstance(link.get("title"), str):
            converted = vendor.get("convertedProperties")
            converted = dict(converted) if isinstance(converted, dict) else {}
            converted["description"] = {"name": link["title"]}
            vendor["convertedProperties"] = converted
        out[VENDOR] = vendor
    return out
