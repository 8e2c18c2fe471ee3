"""iCalendar ⇄ JSCalendar conversion (RFC 5545 ⇄ RFC 8984, draft-ietf-calext-jscalendar-icalendar).

Promises two pure functions (no network, files or database):

- :func:`ical_to_jscal` turns iCalendar text (or an ``icalendar.Calendar``) into one JSCalendar
  object per UID, in the IETF form (``recurrenceRules`` array, ``start`` without ``Z``,
  ``timeZone``, ``recurrenceOverrides`` patches …), without ``id``/``calendarIds``.
- :func:`jscal_to_ical` turns one or more JSCalendar objects (IETF form, or what Cyrus 3.6,
  Cyrus 3.10 or Stalwart send back) into one VCALENDAR text with the VTIMEZONEs it needs.

Bad input raises :class:`jmapsyncd.errors.ConversionError` saying what and where. Unmapped
iCalendar data is kept under ``"jmapsyncd.org:ical"``; see ``docs/conversion.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from jmapsyncd.convert.ical2js import JSON_PROP, VENDOR, ical_to_jscal_text
from jmapsyncd.convert.js2ical import PRODID, jscal_objects_to_ical
from jmapsyncd.errors import ConversionError

if TYPE_CHECKING:
    import icalendar

__all__ = ["JSON_PROP", "PRODID", "VENDOR", "ical_to_jscal", "jscal_to_ical"]


def ical_to_jscal(ical: str | bytes | icalendar.Calendar) -> list[dict[str, Any]]:
    """Convert an iCalendar stream to JSCalendar objects, one per UID (RFC 8984 §4.3.5)."""
    if isinstance(ical, bytes):
        try:
            text = ical.decode("utf-8")
        except UnicodeDecodeError:
            text = ical.decode("latin-1")  # old exporters; better than refusing the item
    elif isinstance(ical, str):
        text = ical
    else:
        to_ical = getattr(ical, "to_ical", None)
        if to_ical is None:
            raise ConversionError(
                f"expected iCalendar text or icalendar.Calendar, got {type(ical).__name__}",
                where="input",
            )
        try:
            text = to_ical().decode("utf-8")
        except Exception as e:  # icalendar may raise anything while serialising
            raise ConversionError(
                f"icalendar could not serialise the calendar: {e}", where="input"
            ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return ical_to_jscal_text(text)
    except ConversionError:
        raise
    except (ArithmeticError, ValueError, TypeError, KeyError, IndexError) as e:
        # input so odd that a date computation overflowed or a value had the wrong shape
        raise ConversionError(f"cannot convert: {type(e).__name__}: {e}", where="input") from e


def jscal_to_ical(objs: dict[str, Any] | Iterable[dict[str, Any]]) -> str:
    """Convert JSCalendar objects (the master with its overrides) to one VCALENDAR text."""
    if isinstance(objs, dict):
        objs = [objs]
    elif isinstance(objs, (str, bytes)):
        raise ConversionError("expected JSCalendar objects, got text", where="input")
    try:
        return jscal_objects_to_ical(objs)
    except ConversionError:
        raise
    except (ArithmeticError, ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        # a value of the wrong JSON type somewhere deep in the object, or a date overflow
        raise ConversionError(f"cannot convert: {type(e).__name__}: {e}", where="input") from e
