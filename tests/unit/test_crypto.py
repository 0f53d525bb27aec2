"""Secrets at rest: sealed blobs hide their contents and open only with the right key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from switchboard.crypto import SecretBox
from switchboard.errors import ConfigurationError


def test_round_trip_and_ciphertext_hides_the_secret() -> None:
    box = SecretBox(Fernet.generate_key())
    blob = box.seal({"auth_token": "tok-very-secret-123"})
    assert b"tok-very-secret-123" not in blob
    assert box.open(blob) == {"auth_token": "tok-very-secret-123"}
    assert box.open(None) == {}


def test_another_key_cannot_open_it() -> None:
    blob = SecretBox(Fernet.generate_key()).seal({"a": "b"})
    with pytest.raises(ConfigurationError, match="SECRET_KEY changed"):
        SecretBox(Fernet.generate_key()).open(blob)
