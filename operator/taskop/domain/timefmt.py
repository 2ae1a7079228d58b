"""Unix nanoseconds ⇄ RFC 3339 with nanoseconds, exactly (``datetime`` only keeps microseconds)."""

from __future__ import annotations

import calendar
import datetime
import functools
import re

_NS = 1_000_000_000
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)


def format_ns(ns: int) -> str:
    """``1795409461123456789`` → ``"2026-11-23T06:51:01.123456789Z"`` (always 9 fraction digits).

    A fixed width keeps the strings sortable; `parse_ns` also reads Go's trimmed RFC3339Nano.
    The second is formatted once (every write's ``updatedAt`` is a new nanosecond, rarely a new
    second).
    """
    seconds, fraction = divmod(ns, _NS)
    return f"{_date_time(seconds)}.{fraction:09d}Z"


def format_seconds(ns: int) -> str:
    """Whole seconds, like ``metav1.Time``: ``"2026-11-23T06:51:01Z"``."""
    return f"{_date_time(ns // _NS)}Z"


@functools.lru_cache(maxsize=1024)
def _date_time(seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}"


@functools.lru_cache(maxsize=8192)  # a pass reads the same few timestamps of each Task again
def parse_ns(text: str) -> int:
    """An RFC 3339 timestamp (0 to 9 fraction digits, ``Z`` or an offset) → Unix nanoseconds."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    try:
        datetime.datetime(year, month, day, hour, minute, second)  # range checks
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}: {exc}") from None
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        offset_hours, offset_minutes = int(zone[1:3]), int(zone[4:6])
        if offset_hours > 23 or offset_minutes > 59:
            raise ValueError(f"not an RFC 3339 timestamp: {text!r}: bad offset")
        seconds -= sign * (offset_hours * 3600 + offset_minutes * 60)
    return seconds * _NS + int(fraction.ljust(9, "0") or "0")
