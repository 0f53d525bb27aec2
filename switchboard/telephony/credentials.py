"""Carrier names, and the base of what a carrier account holds (each carrier module defines its
own model; the fields marked secret are encrypted and never returned)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, SecretStr


class CarrierName(StrEnum):
    TWILIO = "twilio"
    EXOTEL = "exotel"
    VOBIZ = "vobiz"
    BROWSER = "browser"
    SIMULATOR = "simulator"


class CarrierCredentials(BaseModel):
    """Base: each carrier module defines its own; ``SecretStr`` fields are the secret ones."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [
            n for n, f in cls.model_fields.items() if f.annotation in (SecretStr, SecretStr | None)
        ]
