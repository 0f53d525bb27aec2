"""Signed URL tokens: bound to a purpose and values, expiring, tamper-evident, compact."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from switchboard.errors import ConfigurationError, Unauthenticated
from switchboard.telephony.tokens import check_token, issue_token

SECRET = b"a-32-byte-secret-for-the-tests!!"
NOW = 1_800_000_000.0
BOUND = ("call_1", "twilio", "ws_1")


def issue(ttl: float = 60, secret: bytes = SECRET) -> str:
    return issue_token(secret, "media-stream", BOUND, ttl, now=NOW)


def test_a_token_checks_until_it_expires() -> None:
    token = issue(ttl=60)
    check_token(SECRET, token, "media-stream", BOUND, now=NOW)
    check_token(SECRET, token, "media-stream", BOUND, now=NOW + 59)
    with pytest.raises(Unauthenticated, match="expired"):
        check_token(SECRET, token, "media-stream", BOUND, now=NOW + 60)


def test_a_token_is_compact_and_url_safe() -> None:
    token = issue()
    # Vobiz extraHeaders and Exotel's 256-character stream parameters both hold it.
    assert len(token) <= 40
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


@pytest.mark.parametrize(
    ("purpose", "bound_to"),
    [
        ("media-stream", ("call_2", "twilio", "ws_1")),  # another call
        ("media-stream", ("call_1", "simulator", "ws_1")),  # another carrier
        ("media-stream", ("call_1", "twilio", "ws_2")),  # another workspace
        ("vobiz-transfer", BOUND),  # another purpose
        ("media-stream", ("call_1twilio", "", "ws_1")),  # the same characters, regrouped
    ],
)
def test_a_token_opens_only_what_it_was_issued_for(purpose: str, bound_to: tuple[str, ...]) -> None:
    with pytest.raises(Unauthenticated, match="not valid"):
        check_token(SECRET, issue(), purpose, bound_to, now=NOW)


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


TAMPERINGS: list[Callable[[str], str]] = [
    lambda t: _flip(t, len(t) - 3),  # the MAC
    lambda t: str(int(t.split(".")[0]) + 3600) + "." + t.split(".")[1],  # a later expiry
    lambda t: t.split(".")[0],  # no MAC
    lambda t: t.split(".")[0] + ".",
    lambda t: "." + t.split(".")[1],  # no expiry
    lambda t: "garbage",
    lambda t: "",
    lambda t: t + "é",
    lambda t: "9" * 40 + "." + t.split(".")[1],  # an absurd expiry
]


@pytest.mark.parametrize("tamper", TAMPERINGS)
def test_a_tampered_token_is_refused(tamper: Callable[[str], str]) -> None:
    with pytest.raises(Unauthenticated):
        check_token(SECRET, tamper(issue()), "media-stream", BOUND, now=NOW)


def test_a_token_from_another_secret_is_refused() -> None:
    with pytest.raises(Unauthenticated, match="not valid"):
        check_token(SECRET, issue(secret=b"another secret"), "media-stream", BOUND, now=NOW)


def test_an_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        issue(secret=b"")
