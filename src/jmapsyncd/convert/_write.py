"""Writing iCalendar text directly (RFC 5545 §3.1 folding, §3.2 parameters, §3.3.11 TEXT;
RFC 6868 parameter value encoding).

It promises: lines folded at 75 octets without splitting a UTF-8 sequence, CRLF line ends,
parameter values quoted when they contain ``:;,``, TEXT values escaped. No object model is
built: the JSCalendar → iCalendar direction is the sync hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from jmapsyncd.convert._parse import Comp

# RFC 5545 §3.1 and §3.3.11 allow no control characters but HTAB in values: others are dropped
_CONTROLS = {c: None for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if c not in (0x09, 0x0A)}
_TEXT_ESCAPES = str.maketrans(
    {**_CONTROLS, "\\": "\\\\", ";": "\\;", ",": "\\,", "\n": "\\n", "\r": None}
)
_RAW_CLEAN = str.maketrans({**_CONTROLS, "\n": None, "\r": None})


def escape_text(value: str) -> str:
    """Escape a TEXT value (RFC 5545 §3.3.11)."""
    return value.translate(_TEXT_ESCAPES)


def _param_value(v: str) -> str:
    # RFC 6868: ^ escapes caret, newline and DQUOTE; RFC 5545 §3.2: quote if the value has
    # COLON, SEMICOLON or COMMA
    if "^" in v or "\n" in v or '"' in v or "\r" in v:
        v = v.replace("^", "^^").replace("\r\n", "^n").replace("\r", "^n").replace("\n", "^n")
        v = v.replace('"', "^'")
    if not v.isprintable():
        v = v.translate(_CONTROLS)
    if ":" in v or ";" in v or "," in v:
        return f'"{v}"'
    return v


def fold(line: str) -> str:
    """Fold one content line at 75 octets (RFC 5545 §3.1); result ends with CRLF."""
    if line.isascii():
        if len(line) <= 75:
            return line + "\r\n"
        rest = range(75, len(line), 74)
        return "\r\n ".join([line[:75], *(line[i : i + 74] for i in rest)]) + "\r\n"
    if len(line.encode()) <= 75:
        return line + "\r\n"
    out: list[str] = []
    cur: list[str] = []
    size = 0
    limit = 75
    for ch in line:
        n = 1 if ch < "\x80" else len(ch.encode())
        if size + n > limit:
            out.append("".join(cur))
            cur = []
            size = 0
            limit = 74  # continuation lines start with one space
        cur.append(ch)
        size += n
    out.append("".join(cur))
    return "\r\n ".join(out) + "\r\n"


class Writer:
    """Accumulates folded content lines."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[str] = []

    def raw(
        self, name: str, value: str, params: Mapping[str, str | Sequence[str]] | None = None
    ) -> None:
        """Write ``name;params:value`` where value is already in iCalendar syntax."""
        if not value.isprintable():
            # a raw value (URI, date …) cannot hold a line break or other control characters
            value = value.translate(_RAW_CLEAN)
        if not params:
            line = f"{name}:{value}"
            if len(line) <= 75 and line.isascii():
                self.parts.append(line + "\r\n")
            else:
                self.parts.append(fold(line))
            return
        if params:
            ps: list[str] = [name]
            for k, v in params.items():
                if isinstance(v, str):
                    ps.append(f"{k}={_param_value(v)}")
                else:
                    ps.append(f"{k}={','.join(_param_value(x) for x in v)}")
            head = ";".join(ps)
        else:
            head = name
        self.parts.append(fold(f"{head}:{value}"))

    def text(
        self, name: str, value: str, params: Mapping[str, str | Sequence[str]] | None = None
    ) -> None:
        self.raw(name, escape_text(value), params)

    def texts(
        self,
        name: str,
        values: Iterable[str],
        params: Mapping[str, str | Sequence[str]] | None = None,
    ) -> None:
        self.raw(name, ",".join(escape_text(v) for v in values), params)

    def begin(self, name: str) -> None:
        self.parts.append(f"BEGIN:{name}\r\n")

    def end(self, name: str) -> None:
        self.parts.append(f"END:{name}\r\n")

    def getvalue(self) -> str:
        return "".join(self.parts)


def comp_text(c: Comp) -> str:
    """A parsed component back to text (used to hand custom VTIMEZONEs to icalendar)."""
    w = Writer()

    def rec(x: Comp) -> None:
        w.begin(x.name)
        for p in x.props:
            w.raw(p.name, p.value, p.params)
        for s in x.subs:
            rec(s)
        w.end(x.name)

    rec(c)
    return w.getvalue()
