"""Which module plays which carrier: one line per carrier."""

from __future__ import annotations

from typing import Any

import httpx

from switchboard.telephony.browser import BrowserCarrier
from switchboard.telephony.carrier import Carrier
from switchboard.telephony.credentials import CarrierCredentials, CarrierName
from switchboard.telephony.exotel import ExotelCarrier
from switchboard.telephony.simulator import SimulatorCarrier
from switchboard.telephony.twilio import TwilioCarrier
from switchboard.telephony.vobiz import VobizCarrier

CARRIERS: dict[CarrierName, type[Carrier]] = {
    CarrierName.TWILIO: TwilioCarrier,
    CarrierName.EXOTEL: ExotelCarrier,
    CarrierName.VOBIZ: VobizCarrier,
    CarrierName.BROWSER: BrowserCarrier,
    CarrierName.SIMULATOR: SimulatorCarrier,
}


def create_carrier(
    name: CarrierName,
    credentials: CarrierCredentials | None,
    http: httpx.AsyncClient,
    **kwargs: Any,
) -> Carrier:
    """The carrier ``name`` with these credentials; ``kwargs`` are its own options
    (``api_base_url``, Exotel's ``webhook_secret`` and ``flow_url``, Vobiz's ``transfer_url``)."""
    return CARRIERS[name](credentials, http, **kwargs)
