"""IANA time zone names, accepted the same way by every service that stores or reads one."""

from functools import cache
from zoneinfo import ZoneInfo, available_timezones

HOST_ONLY = frozenset({"localtime", "posixrules", "Factory"})
"""Names the zone database of a host may hold that are not zones: `localtime` is whatever zone
that machine runs in, so a stored one would mean something else on the next machine."""


@cache
def _known() -> frozenset[str]:
    return frozenset(available_timezones()) - HOST_ONLY


def iana_zone(name: str) -> ZoneInfo | None:
    """The zone an IANA name (`Europe/Berlin`, `UTC`) stands for; None for anything else."""
    return ZoneInfo(name) if name in _known() else None
