"""Phone numbers: parsing to E.164 with ``phonenumbers``."""

from __future__ import annotations

import re

import phonenumbers

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def to_e164(raw: str, *, strict: bool = True) -> str:
    """Normalise ``raw`` to E.164.

    ``strict`` numbers must be real, dialable numbers (carrier numbers); the
    simulator and browser use short test numbers that only need E.164's shape.
    Raises ``ValueError`` with a reason a person can act on.
    """
    text = raw.strip()
    if not strict:
        compact = re.sub(r"[\s().-]", "", text)
        if not E164.match(compact):
            raise ValueError("not an E.164 number (a + then 7 to 15 digits)")
        return compact
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(
            f"not a phone number in international form (+<country><number>): {exc}"
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def reported_to_e164(number: str, region: str | None = None) -> str:
    """A number as a carrier reported it (national ``0XXXXXXXXXX`` with its ``region``, or
    international without the ``+``) in E.164 when it is a valid number; else as sent."""
    text = number.strip()
    for candidate, hint in ((text, region), ("+" + text.lstrip("+"), None)):
        try:
            parsed = phonenumbers.parse(candidate, hint)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return number
