"""The service clock: real time, or a fixed moment given with ``--now`` for replays and tests."""

from __future__ import annotations

import datetime as dt


class Clock:
    """Returns the current time as an aware UTC datetime, or the fixed moment it was given."""

    def __init__(self, fixed: dt.datetime | None = None):
        if fixed is not None and fixed.tzinfo is None:
            raise ValueError("a fixed clock needs an aware datetime")
        self._fixed = fixed.astimezone(dt.timezone.utc) if fixed else None

    @property
    def fixed(self) -> bool:
        return self._fixed is not None

    def now(self) -> dt.datetime:
        if self._fixed is not None:
            return self._fixed
        return dt.datetime.now(dt.timezone.utc)
