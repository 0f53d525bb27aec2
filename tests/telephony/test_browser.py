"""The browser media endpoint, and the carrier registry's tables."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from switchboard.errors import ConfigurationError, InvalidInput
from switchboard.telephony.browser import BrowserEndpoint
from switchboard.telephony.carrier import Carrier, MediaEndpoint
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.registry import (
    CARRIERS,
    MEDIA_ENDPOINTS,
    PSTN_CARRIERS,
    carrier_class,
    create_carrier,
    credentials_model,
)
from switchboard.telephony.serializers import BrowserFrameSerializer
from switchboard.telephony.twilio import TwilioCredentials
from switchboard.telephony.vobiz import VobizCredentials


def test_a_browser_is_a_media_endpoint_and_no_phone_carrier() -> None:
    assert issubclass(BrowserEndpoint, MediaEndpoint)
    assert not issubclass(BrowserEndpoint, Carrier)
    for phone_method in ("verify_webhook", "parse_inbound", "place_call", "transfer", "hangup"):
        assert not hasattr(BrowserEndpoint, phone_method)
    with pytest.raises(InvalidInput, match="not a phone carrier"):
        carrier_class(CarrierName.BROWSER)
    with pytest.raises(InvalidInput, match="takes no account"):
        credentials_model(CarrierName.BROWSER)


def test_browser_start() -> None:
    assert BrowserEndpoint.sample_rate == 16000
    assert BrowserEndpoint.parse_stream_start({"event": "start"}) is None
    assert BrowserEndpoint.parse_stream_start({"type": "start"}) is None  # no token
    start = BrowserEndpoint.parse_stream_start({"type": "start", "token": "tok"})
    assert start is not None
    assert start.custom_parameters == {"stream_token": "tok"} and start.sample_rate == 16000
    BrowserEndpoint.check_stream_format(start)
    assert isinstance(BrowserEndpoint().serializer(start), BrowserFrameSerializer)


def test_every_carrier_is_registered_from_its_own_module() -> None:
    assert set(MEDIA_ENDPOINTS) == set(CarrierName)
    assert set(CARRIERS) == set(CarrierName) - {CarrierName.BROWSER}
    assert {CarrierName.TWILIO, CarrierName.EXOTEL, CarrierName.VOBIZ} == PSTN_CARRIERS
    http = httpx.AsyncClient()
    for name in CARRIERS:
        carrier = create_carrier(name, None, http)  # parsing webhooks needs no account
        assert carrier.name is name
    # Each carrier module owns its credentials model.
    assert credentials_model(CarrierName.TWILIO) is TwilioCredentials
    assert credentials_model(CarrierName.VOBIZ) is VobizCredentials
    with pytest.raises(InvalidInput, match="takes no account"):
        credentials_model(CarrierName.SIMULATOR)
    twilio = TwilioCredentials(account_sid="AC" + "0" * 32, auth_token=SecretStr("t" * 32))
    assert create_carrier(CarrierName.TWILIO, twilio, http, api_base_url="http://x").credentials
    vobiz = VobizCredentials(auth_id="MA_1", auth_token=SecretStr("t"))
    with pytest.raises(ConfigurationError):
        create_carrier(CarrierName.TWILIO, vobiz, http)


def test_each_carrier_keeps_its_numbers_its_own_way() -> None:
    """National numbers belong to the carrier's country; the simulator's are test numbers."""
    assert carrier_class(CarrierName.EXOTEL).stored_number("09876543210") == "+919876543210"
    assert carrier_class(CarrierName.VOBIZ).stored_number("14155551234") == "+14155551234"
    assert carrier_class(CarrierName.SIMULATOR).stored_number("+15550100") == "+15550100"
    assert carrier_class(CarrierName.SIMULATOR).stored_number("agt_1") == "agt_1"
