"""The one place settings come from.

Nothing else in the package reads ``os.environ``: every part receives what it
needs from a :class:`Settings` built at start-up (``SWITCHBOARD_*`` variables or
a ``.env`` file).
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Values people paste from examples; refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "dev", "test"})
SECRET_KEY_FILE = "secret.key"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Validated configuration for one process.

    In development a missing encryption key is generated once and kept in the
    data directory so encrypted credentials survive restarts; in production it
    must be given and must not be a placeholder.
    """

    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default is SQLite in the data dir"
    )
    redis_url: str | None = Field(default=None, description="Redis for live state (distributed)")
    jobs: Literal["inprocess", "procrastinate"] = "inprocess"
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        default=None, description="URL carriers reach us at; default http://HOST:PORT"
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Fernet key (urlsafe base64, 32 bytes) for secrets at rest"
    )
    config_cache_ttl_seconds: float = 30.0
    max_concurrent_calls: int = Field(default=20, ge=1, description="live calls on this server")
    stuck_call_seconds: float = Field(
        default=6 * 3600, description="a call still live after this is finished by the sweeper"
    )
    warm_up: bool = Field(
        default=False, description="load the embedded models at start (serve turns this on)"
    )
    media_connect_timeout_seconds: float = Field(
        default=30, description="a ringing call whose media never connects fails after this"
    )
    simulator: bool | None = Field(
        default=None,
        description=(
            "the simulator carrier, its fake carrier API and the demo routes; by default they"
            " exist in development only"
        ),
    )
    log_level: str = "INFO"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            key = self.secret_key.get_secret_value() if self.secret_key else ""
            if key.lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "SWITCHBOARD_SECRET_KEY must be set to a real Fernet key in production "
                    "(generate one with: switchboard keys secret)"
                )
        if self.secret_key is not None and self.secret_key.get_secret_value():
            try:
                Fernet(self.secret_key.get_secret_value().encode())
            except ValueError as exc:
                raise ValueError(
                    "SWITCHBOARD_SECRET_KEY is not a Fernet key (32 url-safe base64 bytes)"
                ) from exc
        return self

    @property
    def simulator_enabled(self) -> bool:
        """Development conveniences (unsigned simulator calls) exist only where asked for."""
        if self.simulator is not None:
            return self.simulator
        return self.environment is Environment.DEVELOPMENT

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'switchboard.db').resolve()}"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @cached_property
    def encryption_key(self) -> bytes:
        """The Fernet key: from settings, else (development only) kept in the data dir."""
        if self.secret_key is not None and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value().encode()
        if self.environment is Environment.PRODUCTION:  # pragma: no cover - refused above
            raise RuntimeError("no secret key in production")
        path = self.data_dir / SECRET_KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(Fernet.generate_key())
            path.chmod(0o600)
        return path.read_bytes().strip()


def generate_secret_key() -> str:
    """A fresh Fernet key, for ``SWITCHBOARD_SECRET_KEY``."""
    return Fernet.generate_key().decode()


def random_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)
