"""Each carrier's REST client against a local peer of that carrier's API.

The peers in ``tests/peers`` authenticate, validate and answer as the carriers
document. These tests check what our carrier modules send (method, path, auth,
every parameter), how they map answers and failures, and how they read the
requests the carriers send back (status callbacks, answer requests, machine
detection).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree import ElementTree

import httpx
import pytest
from pydantic import SecretStr

from switchboard.errors import ExternalError, ExternalStatusError, ExternalTimeout, InvalidInput
from switchboard.telephony.carrier import (
    CallOutcome,
    Carrier,
    MachineDetection,
    PlaceCallRequest,
    WebhookRequest,
    is_machine,
)
from switchboard.telephony.exotel import ExotelCarrier, ExotelCredentials
from switchboard.telephony.twilio import TwilioCarrier, TwilioCredentials
from switchboard.telephony.vobiz import VobizCarrier, VobizCredentials, check_transfer_token
from tests.peers import (
    Callback,
    ExotelPeer,
    TwilioPeer,
    VobizPeer,
    silent_server,
    unreachable_url,
)
from tests.telephony.helpers import basic_auth, webhook

Kind = Literal["twilio", "exotel", "vobiz"]
CARRIERS: tuple[Kind, ...] = ("twilio", "exotel", "vobiz")
MODES: tuple[MachineDetection, ...] = ("off", "detect", "leave_message")
PUBLIC = "https://sb.example"
WRONG_TOKEN = "not-the-real-token-0123"

TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "twilio-auth-token-0123"
TWILIO_NUMBER = "+14155550199"
US_CALLEE = "+14155550100"
TWILIO_AMD = {"off": None, "detect": "Enable", "leave_message": "DetectMessageEnd"}
TWILIO_ENDED = ("completed", "busy", "failed", "no-answer", "canceled")

EXOTEL_SID = "acme1"
EXOTEL_KEY = "exotel-api-key"
EXOTEL_TOKEN = "exotel-api-token"
EXOTEL_HOST = "api.in.exotel.com"  # the account is on the Mumbai cluster
EXOPHONE = "08047491899"
EXOTEL_SECRET = "exotel-webhook-secret-0123"
FLOW = f"http://my.exotel.com/{EXOTEL_SID}/exoml/start_voice/4242"

VOBIZ_ID = "MA_TEST"
VOBIZ_TOKEN = "vobiz-auth-token-0123"
VOBIZ_NUMBER = "+918071387428"
IN_CALLEE = "+919876543210"
TRANSFER_URL = f"{PUBLIC}/telephony/vobiz/transfer"
TRANSFER_SECRET = b"t" * 32


# --- wiring -----------------------------------------------------------------------------


def place_request(
    kind: Kind,
    machine_detection: MachineDetection = "off",
    *,
    timeout_seconds: int = 25,
    to: str | None = None,
    from_: str | None = None,
    answer_url: str | None = None,
) -> PlaceCallRequest:
    callee, ours = {
        "twilio": (US_CALLEE, TWILIO_NUMBER),
        "exotel": (IN_CALLEE, EXOPHONE),
        "vobiz": (IN_CALLEE, VOBIZ_NUMBER),
    }[kind]
    return PlaceCallRequest(
        to_number=to or callee,
        from_number=from_ or ours,
        answer_url=answer_url or f"{PUBLIC}/telephony/{kind}/answer/call_1",
        status_url=status_url(kind),
        machine_detection=machine_detection,
        timeout_seconds=timeout_seconds,
    )


def status_url(kind: Kind) -> str:
    return f"{PUBLIC}/telephony/{kind}/status/call_1"


def twilio_carrier(
    http: httpx.AsyncClient, *, token: str = TWILIO_TOKEN, **options: Any
) -> TwilioCarrier:
    credentials = TwilioCredentials(account_sid=TWILIO_SID, auth_token=SecretStr(token))
    return TwilioCarrier(credentials, http, **options)


def exotel_carrier(
    http: httpx.AsyncClient,
    *,
    token: str = EXOTEL_TOKEN,
    subdomain: str = EXOTEL_HOST,
    flow_url: str = FLOW,
    **options: Any,
) -> ExotelCarrier:
    credentials = ExotelCredentials(
        account_sid=EXOTEL_SID, api_key=EXOTEL_KEY, api_token=SecretStr(token), subdomain=subdomain
    )
    return ExotelCarrier(
        credentials, http, webhook_secret=EXOTEL_SECRET, flow_url=flow_url, **options
    )


def vobiz_carrier(
    http: httpx.AsyncClient, *, token: str = VOBIZ_TOKEN, **options: Any
) -> VobizCarrier:
    credentials = VobizCredentials(auth_id=VOBIZ_ID, auth_token=SecretStr(token))
    return VobizCarrier(
        credentials, http, transfer_url=TRANSFER_URL, transfer_secret=TRANSFER_SECRET, **options
    )


def make_carrier(kind: Kind, http: httpx.AsyncClient, **options: Any) -> Carrier:
    if kind == "twilio":
        return twilio_carrier(http, **options)
    if kind == "exotel":
        return exotel_carrier(http, **options)
    return vobiz_carrier(http, **options)


def twilio_peer() -> TwilioPeer:
    return TwilioPeer(TWILIO_SID, TWILIO_TOKEN, caller_ids={TWILIO_NUMBER})


def exotel_peer(**options: Any) -> ExotelPeer:
    return ExotelPeer(
        EXOTEL_SID, EXOTEL_KEY, EXOTEL_TOKEN, host=EXOTEL_HOST, exophones={EXOPHONE}, **options
    )


def vobiz_peer(**options: Any) -> VobizPeer:
    return VobizPeer(VOBIZ_ID, VOBIZ_TOKEN, **options)


@dataclass
class Rig:
    peer: TwilioPeer | ExotelPeer | VobizPeer
    http: httpx.AsyncClient
    carrier: Carrier


@contextlib.asynccontextmanager
async def connected(kind: Kind) -> AsyncIterator[Rig]:
    """A carrier module talking to its peer, in-process."""
    peers: dict[Kind, Callable[[], TwilioPeer | ExotelPeer | VobizPeer]] = {
        "twilio": twilio_peer,
        "exotel": exotel_peer,
        "vobiz": vobiz_peer,
    }
    peer = peers[kind]()
    async with peer.client() as http:
        yield Rig(peer, http, make_carrier(kind, http))


@pytest.fixture
async def twilio_api() -> AsyncIterator[tuple[TwilioPeer, TwilioCarrier]]:
    peer = twilio_peer()
    async with peer.client() as http:
        yield peer, twilio_carrier(http)


@pytest.fixture
async def exotel_api() -> AsyncIterator[tuple[ExotelPeer, ExotelCarrier]]:
    peer = exotel_peer()
    async with peer.client() as http:
        yield peer, exotel_carrier(http)


@pytest.fixture
async def vobiz_api() -> AsyncIterator[tuple[VobizPeer, VobizCarrier]]:
    peer = vobiz_peer()
    async with peer.client() as http:
        yield peer, vobiz_carrier(http)


def received(callback: Callback) -> WebhookRequest:
    """A carrier's request as our webhook endpoint receives it."""
    body = callback.body or urlencode(callback.form).encode()
    return webhook(
        callback.url,
        form=callback.form,
        headers=callback.headers,
        body=body,
        method=callback.method,
    )


def delivered(callback: Callback | None) -> WebhookRequest:
    """The request the carrier sends; None means it would send none (a subscription we lack)."""
    assert callback is not None, "the carrier sends no such request for the call we placed"
    return received(callback)


async def refused(action: Any) -> ExternalStatusError:
    with pytest.raises(ExternalStatusError) as caught:
        await action
    return caught.value


# --- every carrier ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", CARRIERS)
async def test_place_call_returns_the_id_the_carrier_created(kind: Kind) -> None:
    async with connected(kind) as rig:
        call_id = await rig.carrier.place_call(place_request(kind))
    assert list(rig.peer.calls) == [call_id]


@pytest.mark.parametrize("kind", CARRIERS)
async def test_wrong_credentials_are_refused_and_not_retried(kind: Kind) -> None:
    async with connected(kind) as rig:
        carrier = make_carrier(kind, rig.http, token=WRONG_TOKEN)
        error = await refused(carrier.place_call(place_request(kind)))
    assert error.status == 401 and not error.retryable
    assert WRONG_TOKEN not in error.message
    assert rig.peer.calls == {}


@pytest.mark.parametrize("status", [429, 500, 503])
@pytest.mark.parametrize("kind", CARRIERS)
async def test_rate_limits_and_outages_are_retryable(kind: Kind, status: int) -> None:
    async with connected(kind) as rig:
        rig.peer.fail_next_status(status)
        error = await refused(rig.carrier.place_call(place_request(kind)))
        assert error.status == status and error.retryable
        assert rig.peer.calls == {}
        # The retry the error invites goes through.
        assert await rig.carrier.place_call(place_request(kind)) in rig.peer.calls


@pytest.mark.parametrize("kind", CARRIERS)
async def test_an_unreachable_api_is_a_retryable_external_error(kind: Kind) -> None:
    async with httpx.AsyncClient() as http:
        carrier = make_carrier(kind, http, api_base_url=unreachable_url())
        with pytest.raises(ExternalError) as caught:
            await carrier.place_call(place_request(kind))
    assert type(caught.value) is ExternalError and caught.value.retryable
    assert "unreachable" in caught.value.message


@pytest.mark.parametrize("kind", CARRIERS)
async def test_an_api_that_never_answers_times_out(kind: Kind) -> None:
    async with silent_server() as url, httpx.AsyncClient(timeout=0.2) as http:
        carrier = make_carrier(kind, http, api_base_url=url)
        with pytest.raises(ExternalTimeout) as caught:
            await carrier.place_call(place_request(kind))
    assert caught.value.retryable


@pytest.mark.parametrize("kind", ["twilio", "vobiz"])
async def test_hanging_up_a_call_the_carrier_no_longer_knows_is_not_an_error(kind: Kind) -> None:
    gone = {"twilio": "CA" + "f" * 32, "vobiz": "ffffffff-0000-4000-8000-ffffffffffff"}[kind]
    async with connected(kind) as rig:
        await rig.carrier.hangup(gone)
    assert rig.peer.last.path.endswith((f"/Calls/{gone}.json", f"/Call/{gone}/"))


# --- Twilio -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_twilio_place_call_is_the_documented_create_request(
    twilio_api: tuple[TwilioPeer, TwilioCarrier], mode: MachineDetection
) -> None:
    peer, carrier = twilio_api
    call_sid = await carrier.place_call(place_request("twilio", mode, timeout_seconds=25))
    sent = peer.last
    assert (sent.method, sent.host) == ("POST", "api.twilio.com")
    assert sent.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Calls.json"
    assert sent.headers["authorization"] == basic_auth(TWILIO_SID, TWILIO_TOKEN)
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    expected = {
        "To": [US_CALLEE],
        "From": [TWILIO_NUMBER],
        "Url": [f"{PUBLIC}/telephony/twilio/answer/call_1"],
        "Method": ["POST"],
        "StatusCallback": [status_url("twilio")],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": ["25"],
    }
    if (detection := TWILIO_AMD[mode]) is not None:
        expected["MachineDetection"] = [detection]
    assert sent.form == expected
    call = peer.calls[call_sid]
    assert len(call_sid) == 34 and call_sid.startswith("CA")
    assert (call.status, call.timeout, call.machine_detection) == ("queued", 25, detection)


@pytest.mark.parametrize(
    ("request_fields", "code"),
    [
        ({"to": "5550100"}, "21211"),  # To is not E.164
        ({"from_": "our-number"}, "21212"),  # From is not a phone number
        ({"from_": "+14155550142"}, "21210"),  # not one of the account's numbers
        ({"answer_url": "/telephony/twilio/answer/call_1"}, "21205"),  # Url not absolute
        ({"timeout_seconds": 601}, "20001"),  # Timeout is at most 600
    ],
)
async def test_twilio_refuses_what_its_docs_refuse_with_its_own_codes(
    twilio_api: tuple[TwilioPeer, TwilioCarrier], request_fields: dict[str, Any], code: str
) -> None:
    peer, carrier = twilio_api
    error = await refused(carrier.place_call(place_request("twilio", **request_fields)))
    assert (error.status, error.code, error.retryable) == (400, code, False)
    assert peer.calls == {}


async def test_twilio_wrong_credentials_carry_twilios_code(
    twilio_api: tuple[TwilioPeer, TwilioCarrier],
) -> None:
    peer, _ = twilio_api
    async with peer.client() as http:
        error = await refused(twilio_carrier(http, token=WRONG_TOKEN).hangup("CA" + "0" * 32))
    assert (error.status, error.code) == (401, "20003")


async def test_twilio_transfer_redirects_the_live_call_to_dial_twiml(
    twilio_api: tuple[TwilioPeer, TwilioCarrier],
) -> None:
    peer, carrier = twilio_api
    call_sid = await carrier.place_call(place_request("twilio"))
    peer.answer(call_sid)
    await carrier.transfer(call_sid, "+14155550123")
    sent = peer.last
    assert (sent.method, sent.path) == (
        "POST",
        f"/2010-04-01/Accounts/{TWILIO_SID}/Calls/{call_sid}.json",
    )
    assert sent.headers["authorization"] == basic_auth(TWILIO_SID, TWILIO_TOKEN)
    assert set(sent.form) == {"Twiml"}
    (redirect,) = peer.calls[call_sid].redirects
    root = ElementTree.fromstring(redirect["Twiml"])
    assert [(child.tag, child.text) for child in root] == [("Dial", "+14155550123")]
    assert peer.calls[call_sid].status == "in-progress"


async def test_twilio_transfer_of_a_call_that_ended_is_refused(
    twilio_api: tuple[TwilioPeer, TwilioCarrier],
) -> None:
    peer, carrier = twilio_api
    call_sid = await carrier.place_call(place_request("twilio"))
    peer.advance(call_sid, "completed", duration=12)
    error = await refused(carrier.transfer(call_sid, "+14155550123"))
    assert (error.status, error.code, error.retryable) == (400, "21220", False)


async def test_twilio_transfer_of_an_unknown_call_is_not_found(
    twilio_api: tuple[TwilioPeer, TwilioCarrier],
) -> None:
    _, carrier = twilio_api
    error = await refused(carrier.transfer("CA" + "e" * 32, "+14155550123"))
    assert (error.status, error.code, error.retryable) == (404, "20404", False)


@pytest.mark.parametrize("status", ["queued", "ringing", "in-progress"])
async def test_twilio_hang_up_completes_a_live_call_in_any_state(
    twilio_api: tuple[TwilioPeer, TwilioCarrier], status: str
) -> None:
    peer, carrier = twilio_api
    call_sid = await carrier.place_call(place_request("twilio"))
    peer.calls[call_sid].status = status
    await carrier.hangup(call_sid)
    assert peer.last.form == {"Status": ["completed"]}
    assert peer.calls[call_sid].status == "completed"


async def test_twilio_hang_up_of_a_call_that_already_ended(
    twilio_api: tuple[TwilioPeer, TwilioCarrier],
) -> None:
    peer, carrier = twilio_api
    call_sid = await carrier.place_call(place_request("twilio"))
    peer.advance(call_sid, "busy")
    await carrier.hangup(call_sid)
    assert peer.calls[call_sid].status == "busy"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("initiated", CallOutcome.RINGING),
        ("ringing", CallOutcome.RINGING),
        ("in-progress", CallOutcome.ANSWERED),
        ("completed", CallOutcome.COMPLETED),
        ("busy", CallOutcome.BUSY),
        ("no-answer", CallOutcome.NO_ANSWER),
        ("failed", CallOutcome.FAILED),
        ("canceled", CallOutcome.CANCELED),
    ],
)
async def test_twilio_status_callbacks_are_read_as_documented(
    twilio_api: tuple[TwilioPeer, TwilioCarrier], status: str, outcome: CallOutcome
) -> None:
    peer, carrier = twilio_api
    call_sid = await carrier.place_call(place_request("twilio"))
    request = delivered(peer.advance(call_sid, status, duration=42))
    carrier.verify_webhook(request)
    update = carrier.parse_status_callback(request)
    assert (update.carrier_call_id, update.outcome) == (call_sid, outcome)
    assert update.duration_seconds == (42.0 if status in TWILIO_ENDED else None)
    assert update.answered_by is None


@pytest.mark.parametrize(
    ("mode", "answered_by", "machine"),
    [
        ("off", None, False),
        ("detect", "human", False),
        ("detect", "machine_start", True),
        ("detect", "fax", True),
        ("detect", "unknown", False),
        ("leave_message", "human", False),
        ("leave_message", "machine_end_beep", True),
        ("leave_message", "machine_end_silence", True),
        ("leave_message", "machine_end_other", True),
        ("leave_message", "fax", True),
        ("leave_message", "unknown", False),
    ],
)
async def test_twilio_answer_request_carries_the_machine_detection_result(
    twilio_api: tuple[TwilioPeer, TwilioCarrier],
    mode: MachineDetection,
    answered_by: str | None,
    machine: bool,
) -> None:
    """Twilio reports ``machine_end_*`` only for DetectMessageEnd: the peer refuses them
    for a call placed with Enable, so leaving a message must ask for DetectMessageEnd."""
    peer, carrier = twilio_api
    call_sid = await carrier.place_call(place_request("twilio", mode))
    request = received(peer.answer(call_sid, answered_by=answered_by))
    carrier.verify_webhook(request)
    update = carrier.parse_status_callback(request)
    assert (update.carrier_call_id, update.outcome) == (call_sid, CallOutcome.ANSWERED)
    assert update.answered_by == answered_by
    assert is_machine(update.answered_by) is machine


# --- Exotel -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_exotel_place_call_is_the_documented_connect_request(
    exotel_api: tuple[ExotelPeer, ExotelCarrier], mode: MachineDetection
) -> None:
    """Exotel calls ``From`` first and offers no machine detection: every mode sends the same."""
    peer, carrier = exotel_api
    call_sid = await carrier.place_call(place_request("exotel", mode, timeout_seconds=20))
    sent = peer.last
    assert (sent.method, sent.host) == ("POST", EXOTEL_HOST)
    assert sent.path == f"/v1/Accounts/{EXOTEL_SID}/Calls/connect.json"
    assert sent.headers["authorization"] == basic_auth(EXOTEL_KEY, EXOTEL_TOKEN)
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.form == {
        "From": [IN_CALLEE],
        "CallerId": [EXOPHONE],
        "Url": [FLOW],
        "CallType": ["trans"],
        "TimeOut": ["20"],
        "StatusCallback": [f"{status_url('exotel')}?token={EXOTEL_SECRET}"],
        "StatusCallbackEvents[0]": ["terminal"],
        "StatusCallbackEvents[1]": ["answered"],
    }
    call = peer.calls[call_sid]
    assert (call.time_out, call.status_callback_events) == (20, ("terminal", "answered"))


async def test_exotel_refuses_a_caller_id_that_is_not_an_exophone(
    exotel_api: tuple[ExotelPeer, ExotelCarrier],
) -> None:
    peer, carrier = exotel_api
    error = await refused(carrier.place_call(place_request("exotel", from_="08000000000")))
    assert (error.status, error.retryable) == (400, False)
    assert "ExoPhone" in error.message and peer.calls == {}


async def test_exotel_refuses_a_flow_of_another_account(
    exotel_api: tuple[ExotelPeer, ExotelCarrier],
) -> None:
    peer, _ = exotel_api
    async with peer.client() as http:
        carrier = exotel_carrier(http, flow_url="http://my.exotel.com/other/exoml/start_voice/1")
        error = await refused(carrier.place_call(place_request("exotel")))
    assert (error.status, error.retryable) == (400, False)


async def test_exotel_requests_go_to_the_accounts_own_cluster(
    exotel_api: tuple[ExotelPeer, ExotelCarrier],
) -> None:
    peer, _ = exotel_api
    async with peer.client() as http:
        singapore = exotel_carrier(http, subdomain="api.exotel.com")
        error = await refused(singapore.place_call(place_request("exotel")))
    assert peer.last.host == "api.exotel.com"
    assert (error.status, error.retryable) == (401, False)


async def test_exotel_error_code_is_read_from_its_rest_exception(
    exotel_api: tuple[ExotelPeer, ExotelCarrier],
) -> None:
    peer, _ = exotel_api
    async with peer.client() as http:
        error = await refused(
            exotel_carrier(http, token=WRONG_TOKEN).place_call(place_request("exotel"))
        )
    assert (error.status, error.code) == (401, "UNAUTHORIZED")


async def test_exotel_hang_up_and_transfer_ask_nothing_of_the_api(
    exotel_api: tuple[ExotelPeer, ExotelCarrier],
) -> None:
    """Exotel's v1 API has neither: the call leaves the Voicebot applet when the socket closes."""
    peer, carrier = exotel_api
    call_sid = await carrier.place_call(place_request("exotel"))
    before = len(peer.requests)
    await carrier.hangup(call_sid)
    with pytest.raises(InvalidInput):
        await carrier.transfer(call_sid, "+919000000000")
    assert len(peer.requests) == before


@pytest.mark.parametrize("encoding", ["json", "form"])
async def test_exotel_answered_event_is_read_as_answered(encoding: Literal["json", "form"]) -> None:
    peer = exotel_peer(event_encoding=encoding)
    async with peer.client() as http:
        carrier = exotel_carrier(http)
        call_sid = await carrier.place_call(place_request("exotel"))
    request = delivered(peer.answer(call_sid))
    carrier.verify_webhook(request)  # our ?token= came back with it
    update = carrier.parse_status_callback(request)
    assert (update.carrier_call_id, update.outcome) == (call_sid, CallOutcome.ANSWERED)
    assert update.answered_by is None


@pytest.mark.parametrize("encoding", ["json", "form"])
@pytest.mark.parametrize(
    ("status", "seconds", "outcome"),
    [
        ("completed", 37, CallOutcome.COMPLETED),
        ("busy", 0, CallOutcome.BUSY),
        ("no-answer", 0, CallOutcome.NO_ANSWER),
        ("failed", 0, CallOutcome.FAILED),
    ],
)
async def test_exotel_terminal_callbacks_are_read_as_documented(
    encoding: Literal["json", "form"], status: str, seconds: int, outcome: CallOutcome
) -> None:
    peer = exotel_peer(event_encoding=encoding)
    async with peer.client() as http:
        carrier = exotel_carrier(http)
        call_sid = await carrier.place_call(place_request("exotel"))
    request = delivered(peer.end(call_sid, status, conversation_seconds=seconds))
    carrier.verify_webhook(request)
    update = carrier.parse_status_callback(request)
    assert (update.carrier_call_id, update.outcome) == (call_sid, outcome)
    assert update.duration_seconds == float(seconds)


# --- Vobiz ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_vobiz_place_call_is_the_documented_make_call_request(
    vobiz_api: tuple[VobizPeer, VobizCarrier], mode: MachineDetection
) -> None:
    peer, carrier = vobiz_api
    call_uuid = await carrier.place_call(place_request("vobiz", mode, timeout_seconds=25))
    sent = peer.last
    assert (sent.method, sent.host) == ("POST", "api.vobiz.ai")
    assert sent.path == f"/api/v1/Account/{VOBIZ_ID}/Call/"
    assert (sent.headers["x-auth-id"], sent.headers["x-auth-token"]) == (VOBIZ_ID, VOBIZ_TOKEN)
    assert sent.headers["content-type"] == "application/json"
    expected: dict[str, Any] = {
        "from": VOBIZ_NUMBER,
        "to": IN_CALLEE,
        "answer_url": f"{PUBLIC}/telephony/vobiz/answer/call_1",
        "answer_method": "POST",
        "ring_url": status_url("vobiz"),
        "ring_method": "POST",
        "hangup_url": status_url("vobiz"),
        "hangup_method": "POST",
        "ring_timeout": 25,
    }
    if mode != "off":
        expected |= {"machine_detection": "true", "machine_detection_url": status_url("vobiz")}
    assert sent.json() == expected
    call = peer.calls[call_uuid]
    assert (call.status, call.ring_timeout) == ("queued", 25)


async def test_vobiz_refuses_a_destination_that_is_not_a_number(
    vobiz_api: tuple[VobizPeer, VobizCarrier],
) -> None:
    peer, carrier = vobiz_api
    error = await refused(carrier.place_call(place_request("vobiz", to="12345")))
    assert (error.status, error.retryable) == (400, False)
    assert "to is not a valid destination" in error.message and peer.calls == {}


async def test_vobiz_insufficient_balance_is_not_retried(
    vobiz_api: tuple[VobizPeer, VobizCarrier],
) -> None:
    peer, carrier = vobiz_api
    peer.balance_ok = False
    error = await refused(carrier.place_call(place_request("vobiz")))
    assert (error.status, error.retryable) == (402, False)
    assert "balance" in error.message


@pytest.mark.parametrize(
    ("balance_ok", "token", "status", "code"),
    [
        (True, WRONG_TOKEN, 401, "INVALID_CREDENTIALS"),
        (False, VOBIZ_TOKEN, 402, "INSUFFICIENT_BALANCE"),
    ],
)
async def test_vobiz_error_code_is_read_from_its_error_envelope(
    vobiz_api: tuple[VobizPeer, VobizCarrier], balance_ok: bool, token: str, status: int, code: str
) -> None:
    peer, _ = vobiz_api
    peer.balance_ok = balance_ok
    async with peer.client() as http:
        error = await refused(vobiz_carrier(http, token=token).place_call(place_request("vobiz")))
    assert (error.status, error.code) == (status, code)


async def test_vobiz_plivo_style_errors_are_mapped_too() -> None:
    """The Call API's Plivo heritage: ``{"api_id", "error": "<message>"}``, no code."""
    peer = vobiz_peer(error_style="plivo")
    async with peer.client() as http:
        error = await refused(
            vobiz_carrier(http, token=WRONG_TOKEN).place_call(place_request("vobiz"))
        )
    assert (error.status, error.code, error.retryable) == (401, None, False)
    assert "Invalid X-Auth-ID or X-Auth-Token" in error.message


async def test_vobiz_transfer_points_the_a_leg_at_our_signed_transfer_url(
    vobiz_api: tuple[VobizPeer, VobizCarrier],
) -> None:
    peer, carrier = vobiz_api
    call_uuid = await carrier.place_call(place_request("vobiz"))
    peer.answer(call_uuid)
    await carrier.transfer(call_uuid, "+919000000000")
    sent = peer.last
    assert (sent.method, sent.path) == ("POST", f"/api/v1/Account/{VOBIZ_ID}/Call/{call_uuid}/")
    assert sent.headers["content-type"] == "application/json"
    (transfer,) = peer.calls[call_uuid].transfers
    assert (transfer["legs"], transfer["aleg_method"]) == ("aleg", "POST")
    url = urlsplit(transfer["aleg_url"])
    assert url._replace(query="").geturl() == TRANSFER_URL
    query = parse_qs(url.query)
    assert query["to"] == ["+919000000000"]
    check_transfer_token(TRANSFER_SECRET, query["transfer_token"][0], call_uuid, "+919000000000")


async def test_vobiz_transfer_of_a_call_not_in_progress_is_refused(
    vobiz_api: tuple[VobizPeer, VobizCarrier],
) -> None:
    peer, carrier = vobiz_api
    call_uuid = await carrier.place_call(place_request("vobiz"))
    peer.ring(call_uuid)
    error = await refused(carrier.transfer(call_uuid, "+919000000000"))
    assert (error.status, error.retryable) == (400, False)
    assert peer.calls[call_uuid].transfers == []


@pytest.mark.parametrize(("state", "ended"), [("queued", "cancel"), ("in-progress", "completed")])
async def test_vobiz_hang_up_deletes_the_call_whether_answered_or_not(
    vobiz_api: tuple[VobizPeer, VobizCarrier], state: str, ended: str
) -> None:
    peer, carrier = vobiz_api
    call_uuid = await carrier.place_call(place_request("vobiz"))
    if state == "in-progress":
        peer.answer(call_uuid)
    await carrier.hangup(call_uuid)
    sent = peer.last
    assert (sent.method, sent.path, sent.body) == (
        "DELETE",
        f"/api/v1/Account/{VOBIZ_ID}/Call/{call_uuid}/",
        b"",
    )
    assert (sent.headers["x-auth-id"], sent.headers["x-auth-token"]) == (VOBIZ_ID, VOBIZ_TOKEN)
    assert peer.calls[call_uuid].status == ended


async def test_vobiz_ring_and_answer_requests_are_read_as_documented(
    vobiz_api: tuple[VobizPeer, VobizCarrier],
) -> None:
    peer, carrier = vobiz_api
    call_uuid = await carrier.place_call(place_request("vobiz"))
    for request, outcome in (
        (delivered(peer.ring(call_uuid)), CallOutcome.RINGING),
        (received(peer.answer(call_uuid)), CallOutcome.ANSWERED),
    ):
        carrier.verify_webhook(request)
        update = carrier.parse_status_callback(request)
        assert (update.carrier_call_id, update.outcome) == (call_uuid, outcome)
        assert update.answered_by is None


@pytest.mark.parametrize(
    ("status", "seconds", "outcome"),
    [
        ("completed", 61, CallOutcome.COMPLETED),
        ("busy", 0, CallOutcome.BUSY),
        ("no-answer", 0, CallOutcome.NO_ANSWER),
        ("timeout", 0, CallOutcome.NO_ANSWER),
        ("failed", 0, CallOutcome.FAILED),
        ("cancel", 0, CallOutcome.CANCELED),
    ],
)
async def test_vobiz_hangup_callbacks_are_read_as_documented(
    vobiz_api: tuple[VobizPeer, VobizCarrier], status: str, seconds: int, outcome: CallOutcome
) -> None:
    peer, carrier = vobiz_api
    call_uuid = await carrier.place_call(place_request("vobiz"))
    request = delivered(peer.hang_up(call_uuid, status, duration=seconds))
    carrier.verify_webhook(request)
    update = carrier.parse_status_callback(request)
    assert (update.carrier_call_id, update.outcome) == (call_uuid, outcome)
    assert update.duration_seconds == float(seconds)


@pytest.mark.parametrize("mode", ["detect", "leave_message"])
@pytest.mark.parametrize(("machine", "answered_by"), [(True, "machine_start"), (False, "human")])
async def test_vobiz_machine_detection_callback_is_read_as_who_answered(
    vobiz_api: tuple[VobizPeer, VobizCarrier],
    mode: MachineDetection,
    machine: bool,
    answered_by: str,
) -> None:
    peer, carrier = vobiz_api
    call_uuid = await carrier.place_call(place_request("vobiz", mode))
    peer.answer(call_uuid)
    request = delivered(peer.detect_machine(call_uuid, machine=machine))
    carrier.verify_webhook(request)
    update = carrier.parse_status_callback(request)
    assert (update.carrier_call_id, update.outcome) == (call_uuid, CallOutcome.ANSWERED)
    assert update.answered_by == answered_by and is_machine(update.answered_by) is machine


async def test_vobiz_asks_for_no_machine_detection_when_it_is_off(
    vobiz_api: tuple[VobizPeer, VobizCarrier],
) -> None:
    peer, carrier = vobiz_api
    call_uuid = await carrier.place_call(place_request("vobiz", "off"))
    with pytest.raises(ValueError, match="only when the call asked"):
        peer.detect_machine(call_uuid, machine=True)
