"""When a board's season ends: the reset boundaries, all at 00:00 UTC.

daily: every midnight; weekly: Monday's; monthly: the 1st's. A season ends at the first
boundary after it started.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scoreboard.boards.model import Reset


def next_boundary(reset: Reset, after: datetime) -> datetime | None:
    """The first boundary strictly after `after`; None on a board that never resets."""
    midnight = after.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if reset == "daily":
        return midnight + timedelta(days=1)
    if reset == "weekly":
        return midnight + timedelta(days=7 - midnight.weekday())
    if reset == "monthly":
        first = midnight.replace(day=1)
        if first.month == 12:
            return first.replace(year=first.year + 1, month=1)
        return first.replace(month=first.month + 1)
    return None


def latest_boundary(reset: Reset, now: datetime) -> datetime | None:
    """The last boundary at or before `now`: where a season that catches up starts."""
    boundary = next_boundary(reset, now)
    return None if boundary is None else _step_back(reset, boundary)


def _step_back(reset: Reset, boundary: datetime) -> datetime:
    if reset == "daily":
        return boundary - timedelta(days=1)
    if reset == "weekly":
        return boundary - timedelta(days=7)
    month = boundary.month - 1 or 12
    return boundary.replace(year=boundary.year - (month == 12), month=month)
