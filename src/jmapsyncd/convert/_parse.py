"""A small, fast iCalendar content-line reader (RFC 5545 §3.1, §3.2, §3.3.11; RFC 6868).

It promises: unfolding (§3.1), parameter parsing with quoted values (§3.2), a component tree that
keeps every property and parameter it read, and TEXT unescaping helpers (§3.3.11). Values stay
raw strings: callers decode only what they map, which keeps unmapped data byte-exact for the
round trip and avoids the cost of a full object model on the sync hot path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from jmapsyncd.errors import ConversionError

# name, then parameters, then ':' value (RFC 5545 §3.1 contentline)
_NAME = re.compile(r"[A-Za-z0-9-]+")
_PARAM = re.compile(r';([A-Za-z0-9-]+)=((?:"[^"]*"|[^";:,]*)(?:,(?:"[^"]*"|[^";:,]*))*)')
_PVAL = re.compile(r'"([^"]*)"|([^",]*)')


@dataclass(slots=True)
class Prop:
    """One content line: upper-case name, upper-case parameter names, raw value."""

    name: str
    params: dict[str, list[str]]
    value: str

    def param(self, key: str) -> str | None:
        vals = self.params.get(key)
        return vals[0] if vals else None


@dataclass(slots=True)
class Comp:
    """A component (BEGIN/END block) with its properties in input order."""

    name: str
    props: list[Prop] = field(default_factory=list)
    subs: list[Comp] = field(default_factory=list)

    def get(self, name: str) -> Prop | None:
        for p in self.props:
            if p.name == name:
                return p
        return None

    def all(self, name: str) -> list[Prop]:
        return [p for p in self.props if p.name == name]


def _caret(v: str) -> str:
    """Decode RFC 6868 ^-escapes; a ^ before any other character stays as it is."""
    if "^" not in v:
        return v
    out: list[str] = []
    i = 0
    while i < len(v):
        pair = v[i : i + 2]
        if pair == "^^":
            out.append("^")
        elif pair == "^n":
            out.append("\n")
        elif pair == "^'":
            out.append('"')
        else:
            out.append(v[i])
            i += 1
            continue
        i += 2
    return "".join(out)


def _split_param_values(raw: str) -> list[str]:
    if "^" in raw:
        return [_caret(v) for v in _split_raw_param_values(raw)]
    return _split_raw_param_values(raw)


def _split_raw_param_values(raw: str) -> list[str]:
    if '"' not in raw:
        return raw.split(",")
    out: list[str] = []
    pos = 0
    while True:
        m = _PVAL.match(raw, pos)
        if m is None:  # pragma: no cover - the pattern always matches
            break
        out.append(m.group(1) if m.group(1) is not None else m.group(2))
        pos = m.end()
        if pos >= len(raw) or raw[pos] != ",":
            break
        pos += 1
    return out


def parse_line(line: str, lineno: int) -> Prop:
    """Parse one unfolded content line."""
    colon = line.find(":")
    semi = line.find(";", 0, colon) if colon > 0 else line.find(";")
    if colon > 0 and semi == -1:
        # fast path: no parameters (most lines)
        name = line[:colon]
        if name.replace("-", "").isalnum() and name.isascii():
            return Prop(name.upper(), {}, line[colon + 1 :])
    m = _NAME.match(line)
    if m is None:
        raise ConversionError(
            f"not an iCalendar content line: {line[:60]!r}", where=f"line {lineno}"
        )
    name = m.group(0).upper()
    pos = m.end()
    params: dict[str, list[str]] = {}
    n = len(line)
    while pos < n and line[pos] == ";":
        pm = _PARAM.match(line, pos)
        if pm is None:
            raise ConversionError(
                f"malformed parameter in {name}: {line[pos : pos + 40]!r}", where=f"line {lineno}"
            )
        params.setdefault(pm.group(1).upper(), []).extend(_split_param_values(pm.group(2)))
        pos = pm.end()
    if pos >= n or line[pos] != ":":
        raise ConversionError(f"missing ':' in {name} line", where=f"line {lineno}")
    return Prop(name, params, line[pos + 1 :])


def parse_calendar(text: str) -> Comp:
    """Parse a whole iCalendar stream and return its first VCALENDAR component."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    # unfold (RFC 5545 §3.1): a line break followed by one space or tab is removed
    text = text.replace("\n ", "").replace("\n\t", "")
    stack: list[Comp] = []
    root: Comp | None = None
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line or line.isspace():
            continue
        first = line[0]
        if first in "Bb" and line[:6].upper() == "BEGIN:":
            comp = Comp(line[6:].strip().upper())
            if stack:
                stack[-1].subs.append(comp)
            elif root is None:
                root = comp
            else:
                break  # a second VCALENDAR: ignore, like most readers
            stack.append(comp)
            continue
        if first in "Ee" and line[:4].upper() == "END:":
            if not stack:
                raise ConversionError(f"END without BEGIN: {line!r}", where=f"line {lineno}")
            name = line[4:].strip().upper()
            if stack[-1].name != name:
                raise ConversionError(
                    f"END:{name} closes BEGIN:{stack[-1].name}", where=f"line {lineno}"
                )
            stack.pop()
            if not stack:
                break
            continue
        if not stack:
            what = "this is not iCalendar" if root is None else "content after END:VCALENDAR"
            raise ConversionError(f"{what}: {line[:60]!r}", where=f"line {lineno}")
        stack[-1].props.append(parse_line(line, lineno))
    if root is None:
        raise ConversionError("no BEGIN:VCALENDAR found: this is not iCalendar", where="input")
    if root.name != "VCALENDAR":
        raise ConversionError(f"top-level component is {root.name}, not VCALENDAR", where="input")
    if stack:
        raise ConversionError(f"BEGIN:{stack[-1].name} is never closed", where="input")
    return root


def unescape_text(value: str) -> str:
    """Decode a TEXT value (RFC 5545 §3.3.11)."""
    if "\\" not in value:
        return value
    out: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == "\\" and i + 1 < n:
            nxt = value[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def split_text_list(value: str) -> list[str]:
    """Split a multi-valued TEXT value on unescaped commas, then unescape each part."""
    if "\\" not in value:
        return value.split(",")
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == "\\" and i + 1 < n:
            cur.append(value[i : i + 2])
            i += 2
            continue
        if c == ",":
            parts.append(unescape_text("".join(cur)))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append(unescape_text("".join(cur)))
    return parts
