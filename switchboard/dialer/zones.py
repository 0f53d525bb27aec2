"""Where a prospect is: the time zones whose clocks decide when we may call them.

The zone a prospect's row names wins. Otherwise ``phonenumbers`` maps the
number to the zones of its area: one for most numbers, several for a toll-free
or mobile range that spans a country (a US ``+1 800`` number maps to 42, from
Guam to St. John's). A prospect with several zones is called only while the
window is open in all of them.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

from switchboard.errors import InvalidInput

# What phonenumbers answers for a number it cannot place.
UNKNOWN_ZONE = "Etc/Unknown"


def load_zone(name: str, *, field: str = "timezone") -> ZoneInfo:
    """The IANA zone ``name``; ``InvalidInput`` naming ``field`` when there is no such zone."""
    try:
        return ZoneInfo(name)
    # A directory ("America") raises IsADirectoryError, an OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidInput(f"unknown IANA time zone {name!r}", field=field) from exc


def prospect_zones(number: str, explicit: str | None, default_zone: str) -> tuple[str, ...]:
    """The zones a prospect's calling window is judged in.

    Args:
        number: the prospect's number, E.164.
        explicit: the zone the prospect's row names; blank means none.
        default_zone: the campaign's zone, for a number ``phonenumbers`` cannot place.

    Returns ``(explicit,)`` when given (``InvalidInput`` naming ``timezone`` when
    unknown), else the number's zones in ``phonenumbers``' order, else
    ``(default_zone,)`` (``InvalidInput`` naming ``default_timezone`` when unknown).
    """
    if explicit is not None and explicit.strip():
        load_zone(explicit.strip())
        return (explicit.strip(),)
    zones = tuple(zone for zone in _number_zones(number) if _loadable(zone))
    if zones:
        return zones
    load_zone(default_zone, field="default_timezone")
    return (default_zone,)


def _number_zones(number: str) -> tuple[str, ...]:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    found: tuple[str, ...] = phone_timezones.time_zones_for_number(parsed)
    return tuple(zone for zone in found if zone != UNKNOWN_ZONE)


def _loadable(zone: str) -> bool:
    # phonenumbers ships its own zone names; one this tzdata lacks is skipped, not fatal.
    try:
        load_zone(zone)
    except InvalidInput:
        return False
    return True


def country_code(number: str) -> int:
    """The number's country calling code (1 for the US, Canada and the rest of the NANP).

    Raises ``InvalidInput`` naming ``phone`` for text that is not an international number:
    a legal calling rule cannot be chosen for it, so it must not be dialled.
    """
    try:
        code: int | None = phonenumbers.parse(number, None).country_code
    except phonenumbers.NumberParseException:
        code = None
    if code is None:
        raise InvalidInput(f"not an international phone number: {number!r}", field="phone")
    return code
