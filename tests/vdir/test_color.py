"""CSS colour values become the #RRGGBB that khal and todoman read."""

from __future__ import annotations

import pytest

from jmapsyncd.vdir.color import CSS_NAMED_COLORS, normalize_color


def test_the_table_holds_the_148_css_named_colours() -> None:
    assert len(CSS_NAMED_COLORS) == 148
    assert CSS_NAMED_COLORS["rebeccapurple"] == "#663399"
    assert CSS_NAMED_COLORS["grey"] == CSS_NAMED_COLORS["gray"]


def test_every_table_value_is_rrggbb() -> None:
    for name, value in CSS_NAMED_COLORS.items():
        assert normalize_color(name) == value
        assert normalize_color(value) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("#abc", "#AABBCC"),
        ("#abcd", "#AABBCC"),
        ("#A1b2C3", "#A1B2C3"),
        ("#a1b2c3d4", "#A1B2C3"),
        ("  CornflowerBlue ", "#6495ED"),
        ("rgb(255, 0, 10)", "#FF000A"),
        ("rgba(0,128,255,0.5)", "#0080FF"),
        ("rgb(100%, 0%, 50%)", "#FF0080"),
    ],
)
def test_accepted_forms(value: str, expected: str) -> None:
    assert normalize_color(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "transparent",
        "#ab",
        "#abcde",
        "#gggggg",
        "rgb(256,0,0)",
        "hsl(0,100%,50%)",
        "red;",
    ],
)
def test_values_that_are_not_colours_give_none(value: str | None) -> None:
    assert normalize_color(value) is None
