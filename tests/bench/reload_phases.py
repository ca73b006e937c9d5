"""The reload phases `unstuck status --json` records for each reload, as the bench reports them: one reading shared by
the apps section (bench.py) and the large projects (realworld.py)."""

from __future__ import annotations

import statistics

PHASES = ("delivered", "applied", "forked", "imported", "ready", "served", "old_gone")


def medians(status: dict, saved: str) -> dict:
    """The median of each phase, in seconds after the save, of the successful reloads `status` still keeps (the
    last 20) whose trigger names the file `saved`."""
    records = [r for r in status.get("reloads", []) if r.get("ok") and saved in r.get("trigger", "")]
    return {name: statistics.median(r["phases"][name] for r in records if name in r.get("phases", {}))
            for name in PHASES if any(name in r.get("phases", {}) for r in records)}
