"""Twilio: signatures (Twilio's own test vectors), TwiML, stream start, status, REST."""

from __future__ import annotations

import json
from urllib.parse import parse_qs
from xml.etree import ElementTree

import httpx
import pytest
from pydantic import SecretStr

from switchboard.errors import (
    ConfigurationError,
    ExternalError,
    ExternalStatusError,
    ExternalTimeout,
    Forbidden,
    InvalidInput,
)
from switchboard.telephony.carrier import CallOutcome, PlaceCallRequest
from switchboard.telephony.exotel import ExotelCredentials
from switchboard.telephony.serializers import RobustTwilioSerializer
from switchboard.telephony.twilio import TwilioCarrier, TwilioCredentials
from tests.telephony.helpers import FakeApi, basic_auth, webhook

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "secret-token-0123456789"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"


def vector_carrier() -> TwilioCarrier:
    """Twilio's published vectors use the token 12345, shorter than our model allows."""
    credentials = TwilioCredentials.model_construct(account_sid=SID, auth_token=SecretStr("12345"))
    return TwilioCarrier(credentials, httpx.AsyncClient())


def carrier(http: httpx.AsyncClient) -> TwilioCarrier:
    credentials = TwilioCredentials(account_sid=SID, auth_token=SecretStr(TOKEN))
    return TwilioCarrier(credentials, http, api_base_url="https://twilio.test")


def test_form_webhook_signed_by_twilio_is_accepted() -> None:
    signed = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
    vector_carrier().verify_webhook(webhook(VECTOR_URL, form=VECTOR_PARAMS, headers=signed))


def test_json_webhook_is_checked_through_body_sha256() -> None:
    body = b'{"property": "value", "boolean": true}'
    url = f"{VECTOR_URL}&bodySHA256={BODY_HASH}"
    signed = {"X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4="}
    vector_carrier().verify_webhook(webhook(url, body=body, headers=signed))
    with pytest.raises(Forbidden):  # the body no longer matches its hash
        vector_carrier().verify_webhook(webhook(url, body=body + b" ", headers=signed))


@pytest.mark.parametrize(
    ("url", "form", "headers"),
    [
        (VECTOR_URL, VECTOR_PARAMS, {}),
        (VECTOR_URL, VECTOR_PARAMS, {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B9="}),
        (
            VECTOR_URL,
            {**VECTOR_PARAMS, "Digits": "9"},
            {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
        ),
        (
            "https://mycompany.com/other.php?foo=1&bar=2",
            VECTOR_PARAMS,
            {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
        ),
    ],
    ids=["missing", "wrong", "tampered-field", "other-url"],
)
def test_unsigned_or_wrongly_signed_webhook_is_forbidden(
    url: str, form: dict[str, str], headers: dict[str, str]
) -> None:
    with pytest.raises(Forbidden) as caught:
        vector_carrier().verify_webhook(webhook(url, form=form, headers=headers))
    assert "12345" not in caught.value.message
    assert "Signature" in caught.value.message


def test_without_an_account_nothing_verifies() -> None:
    unconfigured = TwilioCarrier(None, httpx.AsyncClient())
    signed = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
    with pytest.raises(Forbidden, match="no Twilio account"):
        unconfigured.verify_webhook(webhook(VECTOR_URL, form=VECTOR_PARAMS, headers=signed))


def test_other_carriers_credentials_are_refused() -> None:
    exotel = ExotelCredentials(account_sid="x", api_key="k", api_token=SecretStr("t"))
    with pytest.raises(ConfigurationError):
        TwilioCarrier(exotel, httpx.AsyncClient())


def test_inbound_webhook_names_the_call() -> None:
    call = vector_carrier().parse_inbound(webhook(VECTOR_URL, form=VECTOR_PARAMS))
    assert (call.carrier_call_id, call.from_number, call.to_number) == (
        "CA1234567890ABCDE",
        "+14158675309",
        "+18005551212",
    )
    assert call.parameters["Digits"] == "1234"
    with pytest.raises(InvalidInput) as caught:
        vector_carrier().parse_inbound(webhook(VECTOR_URL, form={"CallSid": "CA1", "To": "+1"}))
    assert caught.value.field == "From"


def test_answer_twiml_connects_a_stream_with_escaped_parameters() -> None:
    media = "wss://sb.example/media/twilio/call_1?x=1&y=2"
    markup = vector_carrier().answer_markup(media, {"call_id": "call_1", "note": 'a<b>&"c"'})
    root = ElementTree.fromstring(markup.body)
    assert root.tag == "Response"
    (connect,) = root
    assert connect.tag == "Connect"
    (stream,) = connect
    assert stream.tag == "Stream" and stream.get("url") == media
    assert {p.get("name"): p.get("value") for p in stream.findall("Parameter")} == {
        "call_id": "call_1",
        "note": 'a<b>&"c"',
    }
    with pytest.raises(InvalidInput):
        vector_carrier().answer_markup("https://sb.example/media", {})


def test_say_and_hang_up_twiml() -> None:
    root = ElementTree.fromstring(vector_carrier().say_and_hang_up_markup("Bye & <go>").body)
    assert [(child.tag, child.text) for child in root] == [("Say", "Bye & <go>"), ("Hangup", None)]


def test_stream_start_reads_the_start_message_only() -> None:
    twilio = vector_carrier()
    assert twilio.parse_stream_start({"event": "connected", "protocol": "Call"}) is None
    start = twilio.parse_stream_start(
        {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": SID,
                "streamSid": "MZ1",
                "callSid": "CA1",
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"call_id": "call_1"},
            },
            "streamSid": "MZ1",
        }
    )
    assert start is not None
    assert (start.stream_id, start.carrier_call_id, start.sample_rate) == ("MZ1", "CA1", 8000)
    assert start.custom_parameters == {"call_id": "call_1"}
    assert twilio.parse_stream_start({"event": "start", "start": {}}) is None
    serializer = twilio.serializer(start)
    assert isinstance(serializer, RobustTwilioSerializer)
    assert serializer._params.auto_hang_up is False


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("queued", CallOutcome.RINGING),
        ("initiated", CallOutcome.RINGING),
        ("ringing", CallOutcome.RINGING),
        ("in-progress", CallOutcome.ANSWERED),
        ("completed", CallOutcome.COMPLETED),
        ("busy", CallOutcome.BUSY),
        ("failed", CallOutcome.FAILED),
        ("no-answer", CallOutcome.NO_ANSWER),
        ("canceled", CallOutcome.CANCELED),
    ],
)
def test_status_callbacks_map_to_outcomes(status: str, outcome: CallOutcome) -> None:
    form = {"CallSid": "CA9", "CallStatus": status, "AnsweredBy": "machine_end_beep"}
    if status == "completed":
        form["CallDuration"] = "42"
    update = vector_carrier().parse_status_callback(webhook("https://x/status", form=form))
    assert (update.carrier_call_id, update.outcome) == ("CA9", outcome)
    assert update.answered_by == "machine_end_beep"
    assert update.duration_seconds == (42.0 if status == "completed" else None)


def test_unknown_status_is_invalid_input() -> None:
    request = webhook("https://x/status", form={"CallSid": "CA9", "CallStatus": "exploded"})
    with pytest.raises(InvalidInput) as caught:
        vector_carrier().parse_status_callback(request)
    assert caught.value.field == "CallStatus"


def _form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


async def test_place_call_posts_the_calls_resource() -> None:
    api = FakeApi(lambda request: httpx.Response(201, json={"sid": "CA42", "status": "queued"}))
    async with api.client() as http:
        call_sid = await carrier(http).place_call(
            PlaceCallRequest(
                to_number="+14155550100",
                from_number="+14155550199",
                answer_url="https://sb.example/telephony/twilio/answer/call_1",
                status_url="https://sb.example/telephony/twilio/status",
                machine_detection="detect",
                timeout_seconds=25,
            )
        )
    assert call_sid == "CA42"
    request = api.last
    assert request.method == "POST"
    assert request.url == f"https://twilio.test/2010-04-01/Accounts/{SID}/Calls.json"
    assert request.headers["authorization"] == basic_auth(SID, TOKEN)
    form = _form(request)
    assert form["To"] == ["+14155550100"] and form["From"] == ["+14155550199"]
    assert form["Url"] == ["https://sb.example/telephony/twilio/answer/call_1"]
    assert form["StatusCallback"] == ["https://sb.example/telephony/twilio/status"]
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["MachineDetection"] == ["Enable"] and form["Timeout"] == ["25"]


async def test_place_call_without_machine_detection_leaves_it_out() -> None:
    api = FakeApi(lambda request: httpx.Response(201, json={"sid": "CA43"}))
    async with api.client() as http:
        await carrier(http).place_call(PlaceCallRequest("+1555", "+1556", "https://a", "https://s"))
    assert "MachineDetection" not in _form(api.last)


async def test_transfer_dials_the_number_with_twiml() -> None:
    api = FakeApi()
    async with api.client() as http:
        await carrier(http).transfer("CA42", "+14155550123")
    assert api.last.url.path == f"/2010-04-01/Accounts/{SID}/Calls/CA42.json"
    (twiml,) = _form(api.last)["Twiml"]
    root = ElementTree.fromstring(twiml)
    assert [(c.tag, c.text) for c in root] == [("Dial", "+14155550123")]


async def test_hangup_completes_the_call_and_tolerates_a_gone_call() -> None:
    api = FakeApi()
    async with api.client() as http:
        await carrier(http).hangup("CA42")
        assert _form(api.last) == {"Status": ["completed"]}
        api.handler = lambda request: httpx.Response(404, json={"code": 20404})
        await carrier(http).hangup("CA42")


async def test_call_ids_cannot_escape_their_path_segment() -> None:
    api = FakeApi()
    async with api.client() as http:
        await carrier(http).hangup("../../Other")
    assert api.last.url.raw_path.decode().endswith("/Calls/..%2F..%2FOther.json")


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (503, True), (408, True), (400, False), (401, False)]
)
async def test_error_statuses_say_whether_a_retry_can_help(status: int, retryable: bool) -> None:
    api = FakeApi(lambda request: httpx.Response(status, json={"message": "nope", "code": 1}))
    async with api.client() as http:
        with pytest.raises(ExternalStatusError) as caught:
            await carrier(http).place_call(
                PlaceCallRequest("+1555", "+1556", "https://a", "https://s")
            )
    assert caught.value.status == status and caught.value.retryable is retryable
    assert "nope" in caught.value.message and TOKEN not in caught.value.message


async def test_timeouts_and_unreachable_hosts_are_retryable() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler, error in ((timeout, ExternalTimeout), (refused, ExternalError)):
        async with FakeApi(handler).client() as http:
            with pytest.raises(error) as caught:
                await carrier(http).hangup("CA1")
        assert caught.value.retryable


async def test_a_created_call_without_a_sid_is_an_error() -> None:
    api = FakeApi(lambda request: httpx.Response(201, content=json.dumps({"status": "queued"})))
    async with api.client() as http:
        with pytest.raises(ExternalError, match="sid"):
            await carrier(http).place_call(
                PlaceCallRequest("+1555", "+1556", "https://a", "https://s")
            )


async def test_rest_needs_an_account() -> None:
    async with FakeApi().client() as http:
        with pytest.raises(ConfigurationError):
            await TwilioCarrier(None, http).hangup("CA1")
