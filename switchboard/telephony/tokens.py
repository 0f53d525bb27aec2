"""Short signed tokens that bind a URL we hand out to the one thing it may be used for.

A carrier opens a call's media socket with a URL (and parameters) that only our
answer markup held, and Vobiz fetches a transfer URL we gave it. Neither request
can carry an API key, so each URL carries ``{expiry}.{mac}``: an HMAC-SHA256 over
a purpose, the values it is bound to (call id, carrier, workspace; or call and
destination) and the expiry, keyed with the server's secret key. Any server
process can check one without a lookup, and a token for one call, carrier or
destination is worthless for another. The MAC is cut to 128 bits so the token
fits the carriers' parameter limits (Vobiz ``extraHeaders``, Exotel's 256
characters of stream parameters).

Single use is not the token's job: whoever presents it must also win a state
change (a ringing call becomes in progress once), which the database decides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence

from switchboard.errors import ConfigurationError, Unauthenticated

MAC_BYTES = 16
_SEPARATOR = "\x1f"


def _mac(secret: bytes, purpose: str, bound_to: Sequence[str], expires: int) -> str:
    if not secret:
        raise ConfigurationError("the token secret is empty")
    message = _SEPARATOR.join([purpose, *bound_to, str(expires)]).encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def issue_token(
    secret: bytes,
    purpose: str,
    bound_to: Sequence[str],
    ttl_seconds: float,
    *,
    now: float | None = None,
) -> str:
    """A token for ``purpose`` and exactly ``bound_to``, valid for ``ttl_seconds``."""
    expires = int((time.time() if now is None else now) + ttl_seconds)
    return f"{expires}.{_mac(secret, purpose, bound_to, expires)}"


def check_token(
    secret: bytes,
    token: str,
    purpose: str,
    bound_to: Sequence[str],
    *,
    now: float | None = None,
) -> None:
    """Raise ``Unauthenticated`` unless ``token`` was issued for ``purpose`` and ``bound_to``
    and has not expired."""
    expires_text, _, offered = token.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12 or not offered.isascii():
        raise Unauthenticated("the token is malformed")
    expires = int(expires_text)
    expected = _mac(secret, purpose, bound_to, expires)
    if not hmac.compare_digest(offered.encode("ascii"), expected.encode("ascii")):
        raise Unauthenticated("the token is not valid for this request")
    if (time.time() if now is None else now) >= expires:
        raise Unauthenticated("the token has expired")
