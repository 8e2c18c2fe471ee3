"""Draw initial-sync time against N for jmapsyncd, vdirsyncer and the floor (PNG).

Run with the bench environment (matplotlib lives there, not in jmapsyncd's):
``/tmp/benchenv/bin/python bench/_plot.py results.json out.png``. matplotlib is loaded by name
so that this file type-checks without it.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any


def main() -> None:
    data = json.loads(Path(sys.argv[1]).read_text())
    mpl: Any = importlib.import_module("matplotlib")
    mpl.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    results = sorted(data["results"], key=lambda r: r["n"])
    ns = [r["n"] for r in results]
    fig, ax = plt.subplots(figsize=(6.4, 5.0), dpi=120)
    for key, label, style, dy in (
        ("vdirsyncer", "vdirsyncer (CalDAV)", "s-", 4),
        ("jmapsyncd", "jmapsyncd sync", "o-", -14),
        ("jmapsyncd_nofsync", "jmapsyncd sync, fsync off (eatmydata; diagnosis)", "o:", 4),
        ("floor", "floor (bare JMAP requests)", "^--", 4),
    ):
        if not all(key in r["initial"] for r in results):
            continue
        ys = [r["initial"][key]["seconds"] for r in results]
        ax.plot(ns, ys, style, label=label)
        for x, y in zip(ns, ys, strict=True):
            ax.annotate(f"{y:.2g} s", (x, y), textcoords="offset points", xytext=(6, dy))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.margins(x=0.25)
    ax.set_xticks(ns)
    ax.set_xticklabels([f"{n:,}" for n in ns])
    ax.set_xlabel("events in the account (N)")
    ax.set_ylabel("initial sync, wall time (s, median)")
    notes = data["notes"]
    ax.set_title(f"Initial sync into an empty vdir ({notes['cores']} cores, local Cyrus 3.10)")
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(loc="lower center", ncol=2, fontsize="small")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(sys.argv[2])


if __name__ == "__main__":
    main()
