"""The current date and time."""

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def current_datetime(timezone: str | None = None) -> str:
    """Get the current date and time, in ISO 8601 format, with the weekday.

    Args:
        timezone: An IANA time zone such as "Europe/Oslo" or "UTC"; the machine's local time
            zone when omitted.
    """
    if timezone:
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone: {timezone!r}") from None
        now = datetime.now(zone)
    else:
        now = datetime.now().astimezone()
    return f"{now.isoformat(timespec='seconds')} ({now.strftime('%A')}, {now.tzname()})"
