"""Which module plays which carrier: one line per carrier (and one for the browser).

Everything else about a carrier (its credentials, national numbers, options,
serializer, signature check) lives in its own module; the tables here are
derived from it.
"""

from __future__ import annotations

from typing import Any

import httpx

from switchboard.errors import InvalidInput
from switchboard.telephony.browser import BrowserEndpoint
from switchboard.telephony.carrier import Carrier, MediaEndpoint
from switchboard.telephony.credentials import CarrierCredentials, CarrierName
from switchboard.telephony.exotel import ExotelCarrier
from switchboard.telephony.simulator import SimulatorCarrier
from switchboard.telephony.twilio import TwilioCarrier
from switchboard.telephony.vobiz import VobizCarrier

CARRIERS: dict[CarrierName, type[Carrier]] = {
    CarrierName.TWILIO: TwilioCarrier,
    CarrierName.EXOTEL: ExotelCarrier,
    CarrierName.VOBIZ: VobizCarrier,
    CarrierName.SIMULATOR: SimulatorCarrier,
}
MEDIA_ENDPOINTS: dict[CarrierName, type[MediaEndpoint]] = {
    **CARRIERS,
    CarrierName.BROWSER: BrowserEndpoint,
}

# Carriers whose numbers are real, dialable numbers (the others use test numbers).
PSTN_CARRIERS = frozenset(name for name, cls in CARRIERS.items() if cls.real_numbers)


def carrier_class(name: CarrierName) -> type[Carrier]:
    """The phone carrier ``name``; ``InvalidInput`` for the browser, which is none."""
    cls = CARRIERS.get(name)
    if cls is None:
        raise InvalidInput(f"{name.value!r} is not a phone carrier", field="carrier")
    return cls


def credentials_model(name: CarrierName) -> type[CarrierCredentials]:
    """What an account of carrier ``name`` holds; ``InvalidInput`` if it takes none."""
    model = CARRIERS[name].credentials_model if name in CARRIERS else None
    if model is None:
        raise InvalidInput(f"carrier {name.value!r} takes no account", field="carrier")
    return model


def create_carrier(
    name: CarrierName,
    credentials: CarrierCredentials | None,
    http: httpx.AsyncClient,
    **options: Any,
) -> Carrier:
    """The carrier ``name`` with these credentials; ``options`` are its own
    (``api_base_url``, Exotel's ``webhook_secret`` and ``flow_url``, Vobiz's ``transfer_url``)."""
    return carrier_class(name)(credentials, http, **options)
