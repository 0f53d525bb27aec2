"""API key format, hashing and lookup.

A key reads ``sb_<prefix>_<secret>``. The prefix is stored in clear so a key
can be found and shown in listings ("sb_3kq9x2ab..."); only a SHA-256 of the
whole key is stored. Keys carry 192 bits of randomness, so a fast hash is
enough (there is nothing to brute-force, unlike a password).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_SCHEME = "sb"
PREFIX_LENGTH = 8
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class NewKey:
    """A freshly made key: ``plaintext`` is shown once and never stored."""

    plaintext: str
    prefix: str
    secret_hash: str


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> NewKey:
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(PREFIX_LENGTH))
    plaintext = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(24)}"
    return NewKey(plaintext=plaintext, prefix=prefix, secret_hash=hash_key(plaintext))


def parse_prefix(plaintext: str) -> str | None:
    """The lookup prefix of a well-formed key, or None."""
    scheme, _, rest = plaintext.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or len(prefix) != PREFIX_LENGTH or not secret:
        return None
    return prefix


def key_matches(plaintext: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_key(plaintext), secret_hash)
