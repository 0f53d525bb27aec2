"""Secrets at rest: carrier tokens, provider keys and tool headers are Fernet-encrypted.

Only the services that use a secret decrypt it, at the moment they use it;
nothing decrypted is ever written to a response or a log.
"""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken

from switchboard.errors import ConfigurationError


class SecretBox:
    """Encrypts a small mapping of names to secret strings into one opaque blob."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, values: dict[str, str]) -> bytes:
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode())

    def open(self, blob: bytes | None) -> dict[str, str]:
        if not blob:
            return {}
        try:
            data: dict[str, str] = json.loads(self._fernet.decrypt(blob))
        except InvalidToken as exc:
            raise ConfigurationError(
                "stored secrets cannot be decrypted: SWITCHBOARD_SECRET_KEY changed?"
            ) from exc
        return data
