from __future__ import annotations

import pytest

from taskop.domain.timefmt import format_ns, format_seconds, parse_ns


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00.000000000Z"),
        (1, "1970-01-01T00:00:00.000000001Z"),
        (1_795_416_661_123_456_789, "2026-11-23T06:51:01.123456789Z"),
        (1_795_416_661_000_000_000, "2026-11-23T06:51:01.000000000Z"),
        (951_782_400_999_999_999, "2000-02-29T00:00:00.999999999Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (253_402_300_799_999_999_999, "9999-12-31T23:59:59.999999999Z"),
    ],
)
def test_format_and_parse(ns: int, text: str) -> None:
    assert format_ns(ns) == text
    assert parse_ns(text) == ns


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-11-23T06:51:01Z", 1_795_416_661_000_000_000),
        ("2026-11-23T06:51:01.1Z", 1_795_416_661_100_000_000),
        ("2026-11-23T06:51:01.123456Z", 1_795_416_661_123_456_000),
        ("2026-11-23t06:51:01.123456789z", 1_795_416_661_123_456_789),
        ("2026-11-23T08:51:01.5+02:00", 1_795_416_661_500_000_000),
        ("2026-11-23T01:21:01-05:30", 1_795_416_661_000_000_000),
    ],
)
def test_parse_other_forms(text: str, ns: int) -> None:
    assert parse_ns(text) == ns


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-11-23",
        "2026-11-23T06:51:01",
        "2026-11-23T06:51:01.1234567891Z",
        "2026-02-30T00:00:00Z",
        "2026-11-23T24:00:00Z",
        "2026-11-23T06:51:60Z",
        "2026-11-23T06:51:01+24:00",
        "2026-11-23 06:51:01Z",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 timestamp"):
        parse_ns(text)


def test_round_trip_many() -> None:
    ns = 1_795_416_661_123_456_789
    step = 86_399_999_999_937  # odd step: walks through days, seconds and nanoseconds
    for i in range(-3000, 3000):
        value = ns + i * step
        assert parse_ns(format_ns(value)) == value


def test_format_seconds() -> None:
    assert format_seconds(1_795_416_661_999_999_999) == "2026-11-23T06:51:01Z"
