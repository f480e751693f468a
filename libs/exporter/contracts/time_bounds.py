"""The times and durations a request may name, bounded: every instant between 1970 and 2100,
every period at most ten years, every decimation bucket at most a year, so that no run time,
window or look-up computed from them leaves what a datetime holds."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import available_timezones

import isodate
from pydantic import AfterValidator, BeforeValidator

# Every instant a request names (`startAt`, `from`/`to`, the list filters) lies in this range, and
# every period is at most MAX_PERIOD: wide for any real schedule or data, narrow enough that no
# run time, window start or look-up computed from them leaves the years datetime can hold.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)
LATEST_EPOCH_MS = int(LATEST_TIME.timestamp()) * 1000
MAX_PERIOD = "P10Y"
_PERIOD_REFERENCE = datetime(2000, 1, 1)
_LONGEST_PERIOD_END = _PERIOD_REFERENCE + isodate.parse_duration(MAX_PERIOD)
MAX_BUCKET = timedelta(days=366)
# Unnamed groups: the pattern also goes into the OpenAPI schema, whose regex dialect lacks (?P<…>).
DOWNSAMPLE_RE = re.compile(r"^([1-9][0-9]{0,3})(s|m|h|d)$")
_DOWNSAMPLE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_ISO_EARLIEST, _ISO_LATEST = (f"{moment:%Y-%m-%dT%H:%M:%SZ}" for moment in (EARLIEST_TIME, LATEST_TIME))


def bounded_instant(value: datetime) -> datetime:
    """An instant inside [EARLIEST_TIME, LATEST_TIME], in UTC (a naive one is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # Compared before converting: converting 0001-01-01T00:00+01:00 to UTC overflows.
    if not EARLIEST_TIME <= value <= LATEST_TIME:
        raise ValueError(f"must be between {_ISO_EARLIEST} and {_ISO_LATEST}")
    return value.astimezone(UTC)


BoundedInstant = Annotated[datetime, AfterValidator(bounded_instant)]
_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_date_time(value: object) -> object:
    """The schema promises ISO 8601 date-times; pydantic alone would also take epoch numbers."""
    if isinstance(value, str) and not _ISO_DATE_TIME.match(value):
        raise ValueError("must be an ISO 8601 date-time such as 2026-01-31T00:00:00Z")
    return value


# A bounded instant written as an ISO 8601 date-time: the list filters of the API.
IsoDateTime = Annotated[BoundedInstant, BeforeValidator(_iso_date_time)]


@functools.lru_cache(maxsize=1024)
def parse_iso_duration(text: str) -> timedelta | isodate.Duration:
    """An ISO 8601 duration (``P1Y6M4DT12H30M5S``) of at most MAX_PERIOD; years and months stay
    calendar units.

    Cached: schedules re-parse the same few periodicities on every run-time computation."""
    too_long = f"'{text}' must be at most {MAX_PERIOD} (10 years)"
    try:
        duration = isodate.parse_duration(text)
    except OverflowError as error:  # more days than a timedelta holds
        raise ValueError(too_long) from error
    except (isodate.ISO8601Error, ValueError) as error:
        raise ValueError(f"'{text}' is not an ISO 8601 duration such as P1D or PT15M") from error
    if not isinstance(duration, isodate.Duration | timedelta):
        raise ValueError(f"'{text}' is not an ISO 8601 duration")
    if _is_zero_or_negative(duration):
        raise ValueError(f"'{text}' must be a positive duration")
    if isinstance(duration, isodate.Duration) and (duration.years % 1 or duration.months % 1):
        raise ValueError(f"'{text}': years and months must be whole numbers")
    try:
        fits = _PERIOD_REFERENCE + duration <= _LONGEST_PERIOD_END
    except (OverflowError, ValueError):  # beyond the year 9999
        fits = False
    if not fits:
        raise ValueError(too_long)
    return duration


def _is_zero_or_negative(duration: timedelta | isodate.Duration) -> bool:
    if isinstance(duration, isodate.Duration):
        months = duration.years * 12 + duration.months
        return bool(months < 0 or (months == 0 and duration.tdelta <= timedelta(0)))
    return duration <= timedelta(0)


@functools.cache
def known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def parse_downsample(text: str) -> timedelta:
    """A decimation bucket such as ``15m``, ``1h`` or ``1d``."""
    match = DOWNSAMPLE_RE.match(text)
    if match is None:
        raise ValueError(f"'{text}' is not a bucket size such as 1m, 15m, 1h or 1d")
    count, unit = match.groups()
    bucket = timedelta(**{_DOWNSAMPLE_UNITS[unit]: int(count)})
    if bucket > MAX_BUCKET:
        raise ValueError(f"'{text}' is longer than the longest bucket, {MAX_BUCKET.days}d")
    return bucket
