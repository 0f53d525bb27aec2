"""API key format: findable by prefix, stored only as a hash."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from switchboard.auth.keys import generate_key, hash_key, key_matches, parse_prefix


def test_generated_key_parses_and_matches_only_itself() -> None:
    key = generate_key()
    assert key.plaintext.startswith(f"sb_{key.prefix}_")
    assert parse_prefix(key.plaintext) == key.prefix
    assert key_matches(key.plaintext, key.secret_hash)
    assert not key_matches(key.plaintext + "x", key.secret_hash)
    assert key.secret_hash == hash_key(key.plaintext)
    assert key.plaintext not in key.secret_hash


def test_keys_are_unique() -> None:
    assert len({generate_key().plaintext for _ in range(200)}) == 200


@given(st.text(max_size=60))
def test_arbitrary_text_never_crashes_the_parser(text: str) -> None:
    prefix = parse_prefix(text)
    assert prefix is None or (len(prefix) == 8 and text.startswith(f"sb_{prefix}_"))
