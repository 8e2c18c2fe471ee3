"""jmapsyncd: a JMAP calendar client, an iCalendar ⇄ JSCalendar converter, a vdir sync daemon."""

__version__ = "0.1.0"
