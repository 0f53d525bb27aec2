"""Exotel: secret-token webhooks, the Voicebot answer, AgentStream start, status, REST."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from switchboard.errors import ConfigurationError, ExternalStatusError, Forbidden, InvalidInput
from switchboard.telephony.carrier import CallOutcome, PlaceCallRequest
from switchboard.telephony.exotel import ExotelCarrier, ExotelCredentials
from switchboard.telephony.serializers import RobustExotelSerializer
from tests.telephony.helpers import FakeApi, basic_auth, webhook

SECRET = "w3bh00k-secret"


def credentials() -> ExotelCredentials:
    return ExotelCredentials(account_sid="acme1", api_key="KEY", api_token=SecretStr("TOKEN"))


def carrier(
    http: httpx.AsyncClient | None = None,
    *,
    flow_url: str | None = None,
    api_base_url: str | None = None,
) -> ExotelCarrier:
    return ExotelCarrier(
        credentials(),
        http or httpx.AsyncClient(),
        webhook_secret=SECRET,
        flow_url=flow_url,
        api_base_url=api_base_url,
    )


INBOUND = "https://sb.example/telephony/exotel/inbound"


def test_webhook_with_the_secret_token_is_accepted() -> None:
    carrier().verify_webhook(webhook(f"{INBOUND}?token={SECRET}&CallSid=c1", method="GET"))


def test_basic_auth_with_the_secret_as_password_is_accepted() -> None:
    headers = {"Authorization": basic_auth("exotel", SECRET)}
    carrier().verify_webhook(webhook(INBOUND, headers=headers))


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        (INBOUND, {}),
        (f"{INBOUND}?token=guess", {}),
        (f"{INBOUND}?token=", {}),
        (INBOUND, {"Authorization": basic_auth("exotel", "guess")}),
        (INBOUND, {"Authorization": "Basic !!!"}),
        (INBOUND, {"Authorization": "Bearer " + SECRET}),
    ],
    ids=["none", "wrong", "empty", "wrong-basic", "garbled-basic", "bearer"],
)
def test_webhook_without_the_secret_is_forbidden(url: str, headers: dict[str, str]) -> None:
    with pytest.raises(Forbidden) as caught:
        carrier().verify_webhook(webhook(url, headers=headers))
    assert SECRET not in caught.value.message


def test_without_a_secret_nothing_verifies() -> None:
    unconfigured = ExotelCarrier(credentials(), httpx.AsyncClient())
    with pytest.raises(Forbidden, match="secret"):
        unconfigured.verify_webhook(webhook(f"{INBOUND}?token={SECRET}"))


def test_webhook_url_carries_the_secret() -> None:
    url = carrier().webhook_url("https://sb.example/telephony/exotel/status?x=1&token=old")
    assert parse_qs(urlsplit(url).query) == {"x": ["1"], "token": [SECRET]}


def test_inbound_request_from_the_voicebot_applet() -> None:
    query = "CallSid=c1&CallFrom=09876543210&CallTo=08047491899&Direction=incoming"
    call = carrier().parse_inbound(webhook(f"{INBOUND}?token={SECRET}&{query}", method="GET"))
    assert (call.carrier_call_id, call.from_number, call.to_number) == (
        "c1",
        "09876543210",
        "08047491899",
    )
    assert call.parameters == {"Direction": "incoming"}
    with pytest.raises(InvalidInput) as caught:
        carrier().parse_inbound(webhook(f"{INBOUND}?CallSid=c1&From=1"))
    assert caught.value.field == "To"


def test_answer_is_the_json_the_voicebot_applet_expects() -> None:
    markup = carrier().answer_markup("wss://sb.example/media/exotel/call_1", {"call_id": "call_1"})
    assert markup.media_type == "application/json"
    url = json.loads(markup.body)["url"]
    assert url == "wss://sb.example/media/exotel/call_1?call_id=call_1"
    with pytest.raises(InvalidInput):
        carrier().answer_markup("wss://x/m", {"a": "1", "b": "2", "c": "3", "d": "4"})
    with pytest.raises(InvalidInput):
        carrier().answer_markup("wss://x/m", {"a": "x" * 300})
    with pytest.raises(InvalidInput):
        carrier().answer_markup("https://x/m", {})


def test_say_and_hang_up_is_plain_text() -> None:
    markup = carrier().say_and_hang_up_markup("Goodbye")
    assert (markup.body, markup.media_type) == ("Goodbye", "text/plain")


def test_stream_start() -> None:
    start = carrier().parse_stream_start(
        {
            "event": "start",
            "sequence_number": "1",
            "stream_sid": "MZ9",
            "start": {
                "stream_sid": "MZ9",
                "call_sid": "CA9",
                "account_sid": "AC9",
                "from": "+919876543210",
                "to": "+918047491899",
                "custom_parameters": {"call_id": "call_1"},
                "media_format": {
                    "encoding": "audio/x-raw",
                    "sample_rate": "16000",
                    "bit_rate": "16",
                },
            },
        }
    )
    assert start is not None
    assert (start.stream_id, start.carrier_call_id, start.sample_rate) == ("MZ9", "CA9", 16000)
    assert start.custom_parameters == {"call_id": "call_1"}
    serializer = carrier().serializer(start)
    assert isinstance(serializer, RobustExotelSerializer) and serializer.unit == 640
    assert carrier().parse_stream_start({"event": "connected"}) is None
    assert carrier().parse_stream_start({"event": "start"}) is None


@pytest.mark.parametrize(
    ("fields", "outcome"),
    [
        ({"Status": "completed", "EventType": "terminal"}, CallOutcome.COMPLETED),
        ({"Status": "busy", "EventType": "terminal"}, CallOutcome.BUSY),
        ({"Status": "no-answer", "EventType": "terminal"}, CallOutcome.NO_ANSWER),
        ({"Status": "failed", "EventType": "terminal"}, CallOutcome.FAILED),
        ({"Status": "in-progress", "EventType": "answered"}, CallOutcome.ANSWERED),
        ({"Status": "completed"}, CallOutcome.COMPLETED),
    ],
)
def test_status_callbacks(fields: dict[str, str], outcome: CallOutcome) -> None:
    form = {"CallSid": "c7", "ConversationDuration": "31", **fields}
    update = carrier().parse_status_callback(webhook(f"{INBOUND}?token={SECRET}", form=form))
    assert (update.carrier_call_id, update.outcome, update.duration_seconds) == ("c7", outcome, 31)


def test_status_callback_as_json() -> None:
    body = json.dumps({"CallSid": "c8", "Status": "busy", "EventType": "terminal"}).encode()
    update = carrier().parse_status_callback(webhook(INBOUND, body=body))
    assert (update.carrier_call_id, update.outcome) == ("c8", CallOutcome.BUSY)


FLOW = "http://my.exotel.com/acme1/exoml/start_voice/4242"
CALL = PlaceCallRequest(
    to_number="09876543210",
    from_number="08047491899",
    answer_url="https://sb.example/telephony/exotel/inbound",
    status_url="https://sb.example/telephony/exotel/status",
    timeout_seconds=20,
)


async def test_place_call_connects_the_callee_to_the_flow() -> None:
    api = FakeApi(lambda request: httpx.Response(200, json={"Call": {"Sid": "c42"}}))
    async with api.client() as http:
        assert await carrier(http, flow_url=FLOW).place_call(CALL) == "c42"
    request = api.last
    assert request.method == "POST"
    assert str(request.url) == "https://api.exotel.com/v1/Accounts/acme1/Calls/connect.json"
    assert request.headers["authorization"] == basic_auth("KEY", "TOKEN")
    form = parse_qs(request.content.decode())
    assert form["From"] == ["09876543210"] and form["CallerId"] == ["08047491899"]
    assert form["Url"] == [FLOW] and form["TimeOut"] == ["20"] and form["CallType"] == ["trans"]
    status = urlsplit(form["StatusCallback"][0])
    assert parse_qs(status.query) == {"token": [SECRET]}
    assert form["StatusCallbackEvents[0]"] == ["terminal"]
    assert form["StatusCallbackEvents[1]"] == ["answered"]


async def test_place_call_errors() -> None:
    api = FakeApi(lambda request: httpx.Response(429, json={"RestException": {"Message": "slow"}}))
    async with api.client() as http:
        with pytest.raises(ConfigurationError, match="flow"):
            await carrier(http).place_call(CALL)
        with pytest.raises(ExternalStatusError) as caught:
            await carrier(http, flow_url=FLOW).place_call(CALL)
    assert caught.value.retryable and "slow" in caught.value.message
    assert "TOKEN" not in caught.value.message


async def test_api_base_url_overrides_the_subdomain() -> None:
    api = FakeApi(lambda request: httpx.Response(200, json={"Call": {"Sid": "c1"}}))
    async with api.client() as http:
        await carrier(http, flow_url=FLOW, api_base_url="http://fake.test/").place_call(CALL)
    assert str(api.last.url).startswith("http://fake.test/v1/Accounts/acme1/")


async def test_no_transfer_and_hangup_is_the_socket_closing() -> None:
    api = FakeApi()
    async with api.client() as http:
        with pytest.raises(InvalidInput, match="Connect"):
            await carrier(http).transfer("c1", "+919876543210")
        await carrier(http).hangup("c1")
    assert api.requests == []


class ExotelAccountWithSecret(ExotelCredentials):
    """The fields this module asks ``ExotelCredentials`` to gain."""

    webhook_secret: SecretStr
    flow_url: str | None = None


def test_secret_and_flow_can_come_from_the_account() -> None:
    account = ExotelAccountWithSecret(
        account_sid="acme1",
        api_key="KEY",
        api_token=SecretStr("TOKEN"),
        webhook_secret=SecretStr(SECRET),
        flow_url=FLOW,
    )
    exotel = ExotelCarrier(account, httpx.AsyncClient())
    exotel.verify_webhook(webhook(f"{INBOUND}?token={SECRET}"))
    assert exotel.flow_url == FLOW
