"""The browser carrier and its call tokens; the carrier registry."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from switchboard.errors import ConfigurationError, InvalidInput, Unauthenticated
from switchboard.telephony.browser import BrowserCarrier, issue_browser_token, read_browser_token
from switchboard.telephony.carrier import PlaceCallRequest
from switchboard.telephony.credentials import CarrierName, TwilioCredentials, VobizCredentials
from switchboard.telephony.registry import CARRIERS, create_carrier
from switchboard.telephony.serializers import BrowserFrameSerializer
from tests.telephony.helpers import webhook

SECRET = b"a-32-byte-secret-for-the-tests!!"
NOW = 1_800_000_000.0


def test_a_token_reads_back_until_it_expires() -> None:
    token = issue_browser_token(SECRET, "ws_1", "agt_1", ttl_seconds=60, now=NOW)
    assert read_browser_token(SECRET, token, NOW) == ("ws_1", "agt_1")
    assert read_browser_token(SECRET, token, NOW + 59) == ("ws_1", "agt_1")
    with pytest.raises(Unauthenticated, match="expired"):
        read_browser_token(SECRET, token, NOW + 60)


def test_a_token_is_compact_and_url_safe() -> None:
    token = issue_browser_token(SECRET, "ws_1", "agt_1", now=NOW)
    assert len(token) < 200 and set(token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    )


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: _flip(t, 3),  # the payload
        lambda t: _flip(t, len(t) - 3),  # the signature
        lambda t: t.split(".")[0],  # no signature
        lambda t: t.split(".")[0] + ".",
        lambda t: "." + t.split(".")[1],  # no payload
        lambda t: "garbage",
        lambda t: "",
        lambda t: t + "é",
        lambda t: "é" + t,
    ],
)
def test_a_tampered_token_is_refused(tamper: object) -> None:
    token = issue_browser_token(SECRET, "ws_1", "agt_1", now=NOW)
    with pytest.raises(Unauthenticated, match="not valid"):
        read_browser_token(SECRET, tamper(token), NOW)  # type: ignore[operator]


def test_a_token_from_another_secret_is_refused() -> None:
    token = issue_browser_token(b"another secret", "ws_1", "agt_1", now=NOW)
    with pytest.raises(Unauthenticated):
        read_browser_token(SECRET, token, NOW)


def test_an_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        issue_browser_token(b"", "ws_1", "agt_1")


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
    assert start.custom_parameters == {"token": "tok"} and start.sample_rate == 16000
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
