"""The browser carrier; the carrier registry."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from switchboard.errors import ConfigurationError, InvalidInput
from switchboard.telephony.browser import BrowserCarrier
from switchboard.telephony.carrier import PlaceCallRequest
from switchboard.telephony.credentials import CarrierName, TwilioCredentials, VobizCredentials
from switchboard.telephony.registry import CARRIERS, create_carrier
from switchboard.telephony.serializers import BrowserFrameSerializer
from tests.telephony.helpers import webhook


def test_browsers_have_no_webhooks() -> None:
    carrier = BrowserCarrier(None, httpx.AsyncClient())
    request = webhook("https://sb.example/telephony/browser/inbound")
    for method in (carrier.verify_webhook, carrier.parse_inbound, carrier.parse_status_callback):
        with pytest.raises(InvalidInput, match="through the API"):
            method(request)


async def test_browsers_cannot_be_dialled_or_transferred() -> None:
    carrier = BrowserCarrier(None, httpx.AsyncClient())
    with pytest.raises(InvalidInput):
        await carrier.place_call(PlaceCallRequest("+1", "+2", "https://a", "https://s"))
    with pytest.raises(InvalidInput):
        await carrier.transfer("x", "+1555")
    await carrier.hangup("x")  # closing the socket is the hang-up


def test_browser_start_and_markup() -> None:
    carrier = BrowserCarrier(None, httpx.AsyncClient())
    assert carrier.sample_rate == 16000
    assert carrier.parse_stream_start({"event": "start"}) is None
    assert carrier.parse_stream_start({"type": "start"}) is None  # no token
    start = carrier.parse_stream_start({"type": "start", "token": "tok"})
    assert start is not None
    assert start.custom_parameters == {"stream_token": "tok"} and start.sample_rate == 16000
    carrier.check_stream_format(start)
    assert isinstance(carrier.serializer(start), BrowserFrameSerializer)
    answer = json.loads(carrier.answer_markup("wss://sb/media/browser/c1", {"call_id": "c1"}).body)
    assert answer == {"media_url": "wss://sb/media/browser/c1", "parameters": {"call_id": "c1"}}
    assert json.loads(carrier.say_and_hang_up_markup("Bye").body)["type"] == "hangup"


def test_every_carrier_is_registered() -> None:
    assert set(CARRIERS) == set(CarrierName)
    http = httpx.AsyncClient()
    for name in CarrierName:
        carrier = create_carrier(name, None, http)  # parsing webhooks needs no account
        assert carrier.name is name
    twilio = TwilioCredentials(account_sid="AC" + "0" * 32, auth_token=SecretStr("t" * 32))
    assert create_carrier(CarrierName.TWILIO, twilio, http, api_base_url="http://x").credentials
    vobiz = VobizCredentials(auth_id="MA_1", auth_token=SecretStr("t"))
    with pytest.raises(ConfigurationError):
        create_carrier(CarrierName.TWILIO, vobiz, http)
