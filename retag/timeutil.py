"""UTC timestamps: one rule for normalising them and one for writing them. Pure.

Registry times are UTC; a naive datetime is taken to be UTC already (as ACR's are), never local
time. Written as ISO 8601 with a `Z` suffix.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime (naive values are taken to be UTC already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_iso(moment: datetime, timespec: str = "auto") -> str:
    """`2026-11-29T23:07:00.123456Z`; `timespec` as for `datetime.isoformat` ("seconds": no
    fraction)."""
    return as_utc(moment).isoformat(timespec=timespec).removesuffix("+00:00") + "Z"
