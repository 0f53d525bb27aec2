"""Vobiz: V3/V2 signatures, Stream XML, flat and nested start, status, REST."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import httpx
import pytest
from pydantic import SecretStr

from switchboard.errors import (
    ConfigurationError,
    ExternalStatusError,
    Forbidden,
    InvalidInput,
    Unauthenticated,
)
from switchboard.telephony.carrier import CallOutcome, PlaceCallRequest
from switchboard.telephony.serializers import RobustPlivoSerializer
from switchboard.telephony.vobiz import VobizCarrier, VobizCredentials, check_transfer_token
from tests.telephony.helpers import FakeApi, webhook

TOKEN = "vobiz-auth-token"
ANSWER = "https://sb.example/telephony/vobiz/inbound"


def carrier(
    http: httpx.AsyncClient | None = None,
    transfer_url: str | None = None,
    transfer_secret: bytes | None = None,
) -> VobizCarrier:
    credentials = VobizCredentials(auth_id="MA_TEST", auth_token=SecretStr(TOKEN))
    return VobizCarrier(
        credentials,
        http or httpx.AsyncClient(),
        api_base_url="https://vobiz.test",
        transfer_url=transfer_url,
        transfer_secret=transfer_secret,
    )


def sign(message: str, token: str = TOKEN) -> str:
    """Vobiz's documented recipe, computed independently of the code under test."""
    return base64.b64encode(
        hmac.new(token.encode(), message.encode(), hashlib.sha256).digest()
    ).decode()


def signed(url: str, nonce: str = "12345678901234567890") -> dict[str, str]:
    base = url.split("?")[0]
    return {"X-Vobiz-Signature-V3": sign(f"{base}.{nonce}"), "X-Vobiz-Signature-V3-Nonce": nonce}


def test_v3_signature_over_the_url_without_its_query() -> None:
    form = {"CallUUID": "u1", "From": "+911", "To": "+912"}
    carrier().verify_webhook(webhook(ANSWER, form=form, headers=signed(ANSWER)))
    with_query = f"{ANSWER}?CallUUID=u1&extra=1"
    carrier().verify_webhook(webhook(with_query, headers=signed(ANSWER)))


def test_v2_signature_and_a_list_of_signatures() -> None:
    nonce = "987"
    v2 = {"X-Vobiz-Signature-V2": sign(f"{ANSWER}{nonce}"), "X-Vobiz-Signature-V2-Nonce": nonce}
    carrier().verify_webhook(webhook(ANSWER, headers=v2))
    listed = signed(ANSWER)
    listed["X-Vobiz-Signature-V3"] = "bogus=," + listed["X-Vobiz-Signature-V3"]
    carrier().verify_webhook(webhook(ANSWER, headers=listed))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Vobiz-Signature-V3": sign(f"{ANSWER}.n")},  # no nonce
        {"X-Vobiz-Signature-V3": sign(f"{ANSWER}.n"), "X-Vobiz-Signature-V3-Nonce": "m"},
        {"X-Vobiz-Signature-V3": sign(f"{ANSWER}n"), "X-Vobiz-Signature-V3-Nonce": "n"},
        {"X-Vobiz-Signature-V3": sign(f"{ANSWER}.n", "other"), "X-Vobiz-Signature-V3-Nonce": "n"},
        {
            "X-Vobiz-Signature-V3": sign("https://evil.example/x.n"),
            "X-Vobiz-Signature-V3-Nonce": "n",
        },
    ],
    ids=["missing", "no-nonce", "other-nonce", "v2-recipe-as-v3", "other-token", "other-url"],
)
def test_wrong_or_missing_signature_is_forbidden(headers: dict[str, str]) -> None:
    with pytest.raises(Forbidden) as caught:
        carrier().verify_webhook(webhook(ANSWER, headers=headers))
    assert TOKEN not in caught.value.message


def test_without_an_account_nothing_verifies() -> None:
    with pytest.raises(Forbidden, match="no Vobiz account"):
        VobizCarrier(None, httpx.AsyncClient()).verify_webhook(
            webhook(ANSWER, headers=signed(ANSWER))
        )


def test_inbound_answer_webhook() -> None:
    form = {"CallUUID": "u1", "From": "919876543210", "To": "918071387428", "Direction": "inbound"}
    call = carrier().parse_inbound(webhook(ANSWER, form=form))
    assert (call.carrier_call_id, call.from_number, call.to_number) == (
        "u1",
        "919876543210",
        "918071387428",
    )
    assert call.parameters == {"Direction": "inbound"}


def test_answer_xml_streams_bidirectional_mulaw() -> None:
    media = "wss://sb.example/media/vobiz/call_1"
    markup = carrier().answer_markup(media, {"call_id": "call_1", "odd": "a,b=c"})
    root = ElementTree.fromstring(markup.body)
    assert root.tag == "Response"
    (stream,) = root
    assert stream.tag == "Stream"
    assert stream.get("bidirectional") == "true" and stream.get("keepCallAlive") == "true"
    assert stream.get("contentType") == "audio/x-mulaw;rate=8000"
    assert stream.get("extraHeaders") == "call_id=call_1"  # only plain tokens travel as headers
    url = urlsplit(stream.text or "")
    assert f"{url.scheme}://{url.netloc}{url.path}" == media
    assert parse_qs(url.query) == {"call_id": ["call_1"], "odd": ["a,b=c"]}
    with pytest.raises(InvalidInput):
        carrier().answer_markup("http://x/media", {})


def test_say_hang_up_and_transfer_xml() -> None:
    root = ElementTree.fromstring(carrier().say_and_hang_up_markup("Bye & <go>").body)
    assert [(c.tag, c.text) for c in root] == [("Speak", "Bye & <go>"), ("Hangup", None)]
    root = ElementTree.fromstring(carrier().transfer_markup("+919876543210").body)
    (dial,) = root
    assert dial.tag == "Dial" and [(n.tag, n.text) for n in dial] == [("Number", "+919876543210")]


def test_nested_start_as_plivo_sends_it() -> None:
    start = carrier().parse_stream_start(
        {
            "event": "start",
            "sequenceNumber": 1,
            "start": {
                "callId": "u1",
                "streamId": "s1",
                "accountId": "MA_TEST",
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
            },
            "extra_headers": "{'X-PH-call_id': 'call_1'}".replace("'", '"'),
        }
    )
    assert start is not None
    assert (start.stream_id, start.carrier_call_id, start.sample_rate) == ("s1", "u1", 8000)
    assert start.custom_parameters == {"call_id": "call_1"}
    serializer = carrier().serializer(start)
    assert isinstance(serializer, RobustPlivoSerializer)
    assert serializer._params.auto_hang_up is False


def test_flat_start_as_vobiz_may_send_it() -> None:
    start = carrier().parse_stream_start(
        {
            "event": "start",
            "streamId": "s2",
            "callId": "u2",
            "from": "919876543210",
            "to": "918071387428",
            "contentType": "audio/x-mulaw;rate=8000",
            "extra_headers": "call_id=call_2",
        }
    )
    assert start is not None
    assert (start.stream_id, start.carrier_call_id) == ("s2", "u2")
    assert start.custom_parameters == {"call_id": "call_2"}
    assert carrier().parse_stream_start({"event": "media"}) is None
    assert carrier().parse_stream_start({"event": "start", "start": {}}) is None


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("ringing", CallOutcome.RINGING),
        ("in-progress", CallOutcome.ANSWERED),
        ("completed", CallOutcome.COMPLETED),
        ("busy", CallOutcome.BUSY),
        ("failed", CallOutcome.FAILED),
        ("timeout", CallOutcome.NO_ANSWER),
        ("no-answer", CallOutcome.NO_ANSWER),
        ("cancel", CallOutcome.CANCELED),
    ],
)
def test_status_callbacks(status: str, outcome: CallOutcome) -> None:
    form = {"CallUUID": "u3", "CallStatus": status, "Duration": "12", "Machine": "true"}
    update = carrier().parse_status_callback(webhook(ANSWER, form=form))
    assert (update.carrier_call_id, update.outcome, update.duration_seconds) == ("u3", outcome, 12)
    assert update.answered_by == "machine_start"


def test_machine_detection_callback_reports_who_answered() -> None:
    form = {"CallUUID": "u4", "Machine": "false"}
    update = carrier().parse_status_callback(webhook(ANSWER, form=form))
    assert (update.outcome, update.answered_by) == (CallOutcome.ANSWERED, "human")
    with pytest.raises(InvalidInput):
        carrier().parse_status_callback(webhook(ANSWER, form={"CallUUID": "u4"}))


CALL = PlaceCallRequest(
    to_number="+919876543210",
    from_number="+918071387428",
    answer_url="https://sb.example/telephony/vobiz/answer/call_1",
    status_url="https://sb.example/telephony/vobiz/status",
    machine_detection="detect",
    timeout_seconds=30,
)


async def test_place_call_posts_json_with_auth_headers() -> None:
    api = FakeApi(
        lambda request: httpx.Response(201, json={"request_uuid": "u9", "message": "call fired"})
    )
    async with api.client() as http:
        assert await carrier(http).place_call(CALL) == "u9"
    request = api.last
    assert request.method == "POST"
    assert str(request.url) == "https://vobiz.test/api/v1/Account/MA_TEST/Call/"
    assert request.headers["x-auth-id"] == "MA_TEST" and request.headers["x-auth-token"] == TOKEN
    body = json.loads(request.content)
    assert body["from"] == "+918071387428" and body["to"] == "+919876543210"
    assert body["answer_url"] == CALL.answer_url and body["answer_method"] == "POST"
    assert body["hangup_url"] == body["ring_url"] == CALL.status_url
    assert body["ring_timeout"] == 30 and body["machine_detection"] == "true"


async def test_transfer_points_the_a_leg_at_our_dial_xml() -> None:
    api = FakeApi(lambda request: httpx.Response(202, json={"message": "call transferred"}))
    async with api.client() as http:
        with pytest.raises(ConfigurationError):
            await carrier(http).transfer("u9", "+919000000000")
        transfer = "https://sb.example/telephony/vobiz/transfer?token=x"
        with pytest.raises(ConfigurationError):  # no secret to sign the URL with
            await carrier(http, transfer_url=transfer).transfer("u9", "+919000000000")
        secret = b"s" * 32
        await carrier(http, transfer_url=transfer, transfer_secret=secret).transfer(
            "u9", "+919000000000"
        )
    request = api.last
    assert request.method == "POST" and request.url.path == "/api/v1/Account/MA_TEST/Call/u9/"
    body = json.loads(request.content)
    assert body["legs"] == "aleg" and body["aleg_method"] == "POST"
    query = parse_qs(urlsplit(body["aleg_url"]).query)
    assert query.keys() == {"token", "to", "transfer_token"}
    assert query["token"] == ["x"] and query["to"] == ["+919000000000"]
    # The URL's own token binds it to this call and this number, and to nothing else.
    check_transfer_token(secret, query["transfer_token"][0], "u9", "+919000000000")
    with pytest.raises(Unauthenticated):
        check_transfer_token(secret, query["transfer_token"][0], "u9", "+19005550100")


async def test_hangup_deletes_the_call_and_tolerates_a_gone_call() -> None:
    api = FakeApi(lambda request: httpx.Response(204))
    async with api.client() as http:
        await carrier(http).hangup("u9")
        assert api.last.method == "DELETE"
        assert api.last.url.path == "/api/v1/Account/MA_TEST/Call/u9/"
        api.handler = lambda request: httpx.Response(404, json={"error": "not found"})
        await carrier(http).hangup("u9")
        api.handler = lambda request: httpx.Response(500, json={"error": "boom"})
        with pytest.raises(ExternalStatusError) as caught:
            await carrier(http).hangup("u9")
    assert caught.value.retryable and "boom" in caught.value.message
