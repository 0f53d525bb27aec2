"""Settings: placeholders refused in production, a development key kept across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from switchboard.config import Environment, Settings


@pytest.mark.parametrize("key", [None, "changeme", "secret"])
def test_production_refuses_missing_or_placeholder_secret_key(key: str | None) -> None:
    with pytest.raises(ValidationError, match="SWITCHBOARD_SECRET_KEY"):
        Settings(environment=Environment.PRODUCTION, secret_key=key)


def test_a_key_that_is_not_fernet_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a Fernet key"):
        Settings(secret_key="not-base64-and-too-short")


def test_production_accepts_a_real_key() -> None:
    key = Fernet.generate_key().decode()
    settings = Settings(environment=Environment.PRODUCTION, secret_key=key)
    assert settings.encryption_key == key.encode()


def test_development_key_is_generated_once_and_reused(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).encryption_key
    second = Settings(data_dir=tmp_path).encryption_key
    assert first == second
    Fernet(first)  # a usable key
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


def test_environment_variables_and_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SWITCHBOARD_PORT", "9001")
    monkeypatch.setenv("SWITCHBOARD_CORS_ORIGINS", "http://a.test, http://b.test")
    settings = Settings()
    assert (
        settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/switchboard.db"
    )
    assert settings.resolved_public_url == "http://127.0.0.1:9001"
    assert settings.cors_origins == ["http://a.test", "http://b.test"]


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    # The autouse fixture runs every test in its own tmp_path as working directory.
    Path(".env").write_text("SWITCHBOARD_PUBLIC_URL=https://calls.example.com/\n")
    assert Settings().resolved_public_url == "https://calls.example.com"
