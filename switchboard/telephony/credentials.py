"""What each carrier account holds; the fields marked secret are encrypted and never returned."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class CarrierName(StrEnum):
    TWILIO = "twilio"
    EXOTEL = "exotel"
    VOBIZ = "vobiz"
    BROWSER = "browser"
    SIMULATOR = "simulator"


# Carriers whose numbers are real, dialable numbers (the others use test numbers).
PSTN_CARRIERS = frozenset({CarrierName.TWILIO, CarrierName.EXOTEL, CarrierName.VOBIZ})


class CarrierCredentials(BaseModel):
    """Base: subclasses list their fields; ``SecretStr`` fields are the secret ones."""

    model_config = ConfigDict(extra="forbid")
    carrier: ClassVar[CarrierName]

    @classmethod
    def secret_fields(cls) -> list[str]:
        return [
            n for n, f in cls.model_fields.items() if f.annotation in (SecretStr, SecretStr | None)
        ]


class TwilioCredentials(CarrierCredentials):
    carrier = CarrierName.TWILIO
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr = Field(min_length=16, max_length=128)


class ExotelCredentials(CarrierCredentials):
    carrier = CarrierName.EXOTEL
    account_sid: str = Field(min_length=1, max_length=64)
    api_key: str = Field(min_length=1, max_length=128)
    api_token: SecretStr = Field(min_length=1, max_length=128)
    subdomain: str = Field(default="api.exotel.com", pattern=r"^[a-z0-9.-]+\.exotel\.(com|in)$")
    # Exotel does not sign webhooks: our URLs carry this secret as ?token= instead. Without it
    # every Exotel webhook is refused.
    webhook_secret: SecretStr | None = Field(default=None, min_length=16, max_length=128)
    flow_url: str | None = Field(
        default=None, max_length=500, description="flow for outbound calls"
    )


class VobizCredentials(CarrierCredentials):
    carrier = CarrierName.VOBIZ
    auth_id: str = Field(min_length=1, max_length=64)
    auth_token: SecretStr = Field(min_length=1, max_length=128)


CREDENTIALS: dict[CarrierName, type[CarrierCredentials]] = {
    CarrierName.TWILIO: TwilioCredentials,
    CarrierName.EXOTEL: ExotelCredentials,
    CarrierName.VOBIZ: VobizCredentials,
}
