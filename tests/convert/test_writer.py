"""Content-line writing and reading (RFC 5545 §3.1 folding, §3.2 parameters, §3.3.11 TEXT)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jmapsyncd.convert._parse import parse_calendar, split_text_list, unescape_text
from jmapsyncd.convert._write import Writer, escape_text, fold


def test_fold_counts_octets_and_never_splits_a_character() -> None:
    line = "SUMMARY:" + "é" * 100
    folded = fold(line)
    parts = folded.removesuffix("\r\n").split("\r\n ")
    assert all(len(p.encode()) <= 75 for p in parts[:1])
    assert all(len(p.encode()) <= 74 for p in parts[1:])
    assert "".join(parts) == line


def test_short_line_is_not_folded() -> None:
    assert fold("UID:x") == "UID:x\r\n"


def test_param_values_use_rfc_6868_carets() -> None:
    w = Writer()
    w.raw("ATTENDEE", "mailto:a@b", {"CN": 'Jane "JD" Doe^\nline'})
    assert w.getvalue() == "ATTENDEE;CN=Jane ^'JD^' Doe^^^nline:mailto:a@b\r\n"


def test_param_values_with_specials_are_quoted() -> None:
    w = Writer()
    w.raw("ATTENDEE", "mailto:a@b", {"CN": "Doe, Jane: PhD", "MEMBER": ["mailto:x@y", "plain"]})
    assert w.getvalue() == 'ATTENDEE;CN="Doe, Jane: PhD";MEMBER="mailto:x@y",plain:mailto:a@b\r\n'


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\t")))
def test_text_escape_round_trips(value: str) -> None:
    assert unescape_text(escape_text(value)) == value


def test_control_characters_are_dropped() -> None:
    # RFC 5545 §3.3.11: TEXT allows HTAB and (escaped) line breaks, no other control character
    assert escape_text("bell\x07 nul\x00 vt\x0b tab\t\r\nend\x85") == "bell nul vt tab\t\\nend"
    w = Writer()
    w.raw("URL", "https://x.example/\x00a\r\nb", {"X-P": "a\x07b"})
    assert w.getvalue() == "URL;X-P=ab:https://x.example/ab\r\n"


@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r"),
            min_size=1,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_text_list_round_trips(values: list[str]) -> None:
    assert split_text_list(",".join(escape_text(v) for v in values)) == values


@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r"),
        max_size=200,
    )
    | st.sampled_from(['say "hi"', "a^b", "two\nlines", "^n^^^'"])
)
def test_written_text_reads_back(value: str) -> None:
    w = Writer()
    w.begin("VCALENDAR")
    w.text("X-TEST", value, {"X-P": value[:10]})
    w.end("VCALENDAR")
    cal = parse_calendar(w.getvalue())
    [prop] = cal.props
    assert unescape_text(prop.value) == value
    assert prop.params["X-P"] == [value[:10]]
