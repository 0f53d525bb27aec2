"""A local peer of Twilio's Programmable Voice REST API (the Calls resource, 2010-04-01).

Reproduces, from Twilio's documentation:

- Auth (twilio.com/docs/usage/api, /docs/api/errors/20003): HTTP basic with the
  Account SID and Auth Token; anything else is ``401`` with
  ``{"code": 20003, "message": "Authenticate", "more_info": ..., "status": 401}``
  and a ``WWW-Authenticate: Basic`` challenge.
- Create a call (twilio.com/docs/voice/api/call-resource, "Create a Call resource"):
  ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json``, form-encoded. ``To`` and
  ``From`` are required (21201, 21213); ``To`` must be E.164, a SIP address or
  ``client:`` (21211); ``From`` must be E.164 or ``client:`` (21212) and, when the
  peer is given the account's numbers, one of them (21210); exactly one of ``Url``,
  ``Twiml``, ``ApplicationSid``, and ``Url`` absolute http(s) (21205);
  ``Method``/``StatusCallbackMethod`` GET or POST; ``StatusCallbackEvent`` (repeated)
  among initiated, ringing, answered, completed; ``Timeout`` an integer up to 600
  (default 60); ``MachineDetection`` Enable or DetectMessageEnd
  (/docs/api/errors/21234); ``AsyncAmd`` true or false. Success is ``201`` with the
  Call resource JSON: ``sid`` "CA" + 32 hex (34 chars), ``status`` "queued",
  ``to``, ``from``, ``direction`` "outbound-api", ``api_version``, ``uri``,
  ``subresource_uris`` (field names as the ``twilio`` package's ``CallInstance``).
- Modify a live call (/docs/voice/api/call-resource, "Update a Call resource"):
  ``POST .../Calls/{Sid}.json`` with ``Status`` canceled (queued or ringing calls
  only) or completed (any live call), or ``Url``/``Twiml`` to redirect it; a call
  that has ended cannot be redirected (21220, "Call is not in-progress. Cannot
  redirect."); an unknown sid is ``404`` with code 20404. The pages say nothing of
  ``Status=completed`` for a call already over: the peer leaves it be and answers 200.
- Answering (/docs/voice/twiml, "Twilio's request to your application";
  /docs/voice/answering-machine-detection): when the callee picks up, Twilio
  requests ``Url`` with ``Method``, sending ``CallSid``, ``AccountSid``, ``From``,
  ``To``, ``CallStatus`` in-progress, ``Direction`` outbound-api and, when machine
  detection ran, ``AnsweredBy``: human, machine_start, fax or unknown for
  ``Enable``; human, machine_end_beep, machine_end_silence, machine_end_other, fax
  or unknown for ``DetectMessageEnd``.
- Status callbacks (/docs/voice/api/call-resource#statuscallbackevent): the events
  asked for (``completed`` always) go to ``StatusCallback`` with the same call
  fields, ``CallStatus`` (initiated, ringing, in-progress, completed, busy, failed,
  no-answer, canceled), ``CallbackSource``, ``SequenceNumber``, ``Timestamp`` and
  ``CallDuration`` once the call is over.
- Every request Twilio makes is signed with ``X-Twilio-Signature``
  (/docs/usage/security), computed here by the ``twilio`` package's own
  ``RequestValidator``.

Where Twilio's pages name no error code for a rule (a bad ``Timeout``, ``Method``
or ``StatusCallbackEvent``, or two of ``Url``/``Twiml``/``ApplicationSid``), the
peer answers ``400`` with code 20001 ("Invalid parameter"); rate limits and
outages answer 429 (code 20429) and 5xx (code 20500) in Twilio's error shape.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree import ElementTree

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.responses import Response
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from tests.peers.base import Callback, CarrierPeer

API_VERSION = "2010-04-01"
DOCS_ERRORS = "https://www.twilio.com/docs/errors"
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
AMD_RESULTS: dict[str, frozenset[str]] = {
    "Enable": frozenset({"human", "machine_start", "fax", "unknown"}),
    "DetectMessageEnd": frozenset(
        {"human", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax", "unknown"}
    ),
}
ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
MAX_TIMEOUT = 600
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_SIP = re.compile(r"^(sip:)?[^@\s]+@[^@\s]+$")
_EVENT_OF_STATUS = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}


class TwilioError(Exception):
    """A documented Twilio error: its HTTP status, code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    """Twilio's error body: ``code``, ``message``, ``more_info``, ``status``."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"{DOCS_ERRORS}/{code}",
        "status": status,
    }
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class TwilioCall:
    """A call the peer placed, with everything it was asked for."""

    sid: str
    account_sid: str
    to: str
    from_: str
    url: str | None
    twiml: str | None
    method: str
    status_callback: str | None
    status_callback_method: str
    status_callback_events: tuple[str, ...]
    timeout: int
    machine_detection: str | None
    status: str = "queued"
    answered_by: str | None = None
    duration: int | None = None
    redirects: list[dict[str, str]] = field(default_factory=list)
    sequence: int = 0
    created: datetime = field(default_factory=lambda: datetime(2024, 5, 1, 12, 0, tzinfo=UTC))

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The Call resource as the API returns it."""
        base = self.uri.removesuffix(".json")
        stamp = format_datetime(self.created)
        return {
            "sid": self.sid,
            "date_created": stamp,
            "date_updated": stamp,
            "parent_call_sid": None,
            "account_sid": self.account_sid,
            "to": self.to,
            "to_formatted": self.to,
            "from": self.from_,
            "from_formatted": self.from_,
            "phone_number_sid": None,
            "status": self.status,
            "start_time": None,
            "end_time": stamp if self.status in ENDED else None,
            "duration": str(self.duration) if self.duration is not None else None,
            "price": None,
            "price_unit": "USD",
            "direction": "outbound-api",
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": self.uri,
            "subresource_uris": {
                name: f"{base}/{name.title().replace('_', '')}.json"
                for name in (
                    "notifications",
                    "recordings",
                    "payments",
                    "events",
                    "siprec",
                    "streams",
                )
            },
        }


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, separator, password = decoded.partition(":")
    return (user, password) if separator else None


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class TwilioPeer(CarrierPeer):
    """Twilio's Calls API for one account. ``caller_ids``: the account's numbers (any
    E.164 ``From`` is accepted when None)."""

    def __init__(
        self, account_sid: str, auth_token: str, *, caller_ids: set[str] | None = None
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.caller_ids = caller_ids
        self.calls: dict[str, TwilioCall] = {}
        self._next_sid = 0
        calls = "/2010-04-01/Accounts/{account_sid}/Calls"
        self.app.add_api_route(f"{calls}.json", self._create, methods=["POST"])
        self.app.add_api_route(f"{calls}/{{call_sid}}.json", self._update, methods=["POST"])
        self.app.add_api_route(f"{calls}/{{call_sid}}.json", self._fetch, methods=["GET"])

    def error_for_status(self, status: int) -> Response:
        code = 20429 if status == 429 else 20500
        return twilio_error(status, code, "Too Many Requests" if status == 429 else "Server error")

    # --- the REST API -------------------------------------------------------------------

    async def _create(self, account_sid: str, request: Request) -> Response:
        if (denied := self._authenticate(request, account_sid)) is not None:
            return denied
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        try:
            call = self._new_call(account_sid, form)
        except TwilioError as error:
            return twilio_error(error.status, error.code, error.message)
        self.calls[call.sid] = call
        return JSONResponse(call.resource(), status_code=201)

    async def _update(self, account_sid: str, call_sid: str, request: Request) -> Response:
        if (denied := self._authenticate(request, account_sid)) is not None:
            return denied
        call = self.calls.get(call_sid)
        if call is None:
            return self._not_found(request)
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        try:
            self._modify(call, form)
        except TwilioError as error:
            return twilio_error(error.status, error.code, error.message)
        return JSONResponse(call.resource())

    async def _fetch(self, account_sid: str, call_sid: str, request: Request) -> Response:
        if (denied := self._authenticate(request, account_sid)) is not None:
            return denied
        call = self.calls.get(call_sid)
        return self._not_found(request) if call is None else JSONResponse(call.resource())

    def _authenticate(self, request: Request, account_sid: str) -> Response | None:
        offered = _basic_credentials(request.headers.get("authorization"))
        if offered != (self.account_sid, self.auth_token) or account_sid != self.account_sid:
            return twilio_error(401, 20003, "Authenticate")
        return None

    @staticmethod
    def _not_found(request: Request) -> Response:
        return twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")

    def _new_call(self, account_sid: str, form: dict[str, list[str]]) -> TwilioCall:
        one = {name: values[-1] for name, values in form.items()}
        to, from_ = one.get("To", ""), one.get("From", "")
        if not to:
            raise TwilioError(400, 21201, "No 'To' number is specified")
        if not from_:
            raise TwilioError(400, 21213, "No 'From' number is specified")
        if not (_E164.match(to) or _SIP.match(to) or to.startswith("client:")):
            raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not (_E164.match(from_) or from_.startswith("client:")):
            raise TwilioError(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        if self.caller_ids is not None and from_ not in self.caller_ids:
            raise TwilioError(
                400, 21210, f"The source phone number provided, {from_}, is not yet verified"
            )
        handlers = [name for name in ("Url", "Twiml", "ApplicationSid") if one.get(name)]
        if not handlers:
            raise TwilioError(400, 21205, "Url parameter is required.")
        if len(handlers) > 1:
            raise TwilioError(400, 20001, f"Only one of {', '.join(handlers)} may be given")
        url = one.get("Url")
        if url is not None and not _is_http_url(url):
            raise TwilioError(400, 21205, f"Url is not a valid URL: {url}")
        status_callback = one.get("StatusCallback") or None
        if status_callback is not None and not _is_http_url(status_callback):
            raise TwilioError(400, 21205, f"StatusCallback is not a valid URL: {status_callback}")
        for name in ("Method", "StatusCallbackMethod"):
            if one.get(name, "POST").upper() not in ("GET", "POST"):
                raise TwilioError(400, 20001, f"{name} must be GET or POST")
        events = tuple(form.get("StatusCallbackEvent", []))
        if unknown := [event for event in events if event not in CALL_EVENTS]:
            raise TwilioError(400, 20001, f"Invalid StatusCallbackEvent {unknown[0]!r}")
        timeout_text = one.get("Timeout", "60")
        if not timeout_text.isdigit() or not 1 <= int(timeout_text) <= MAX_TIMEOUT:
            raise TwilioError(400, 20001, f"Timeout must be an integer from 1 to {MAX_TIMEOUT}")
        detection = one.get("MachineDetection") or None
        if detection is not None and detection not in AMD_RESULTS:
            raise TwilioError(400, 21234, f"Invalid MachineDetection value: {detection}")
        if one.get("AsyncAmd", "false") not in ("true", "false"):
            raise TwilioError(400, 20001, "AsyncAmd must be true or false")
        self._next_sid += 1
        return TwilioCall(
            sid=f"CA{self._next_sid:032x}",
            account_sid=account_sid,
            to=to,
            from_=from_,
            url=url,
            twiml=one.get("Twiml"),
            method=one.get("Method", "POST").upper(),
            status_callback=status_callback,
            status_callback_method=one.get("StatusCallbackMethod", "POST").upper(),
            status_callback_events=events,
            timeout=int(timeout_text),
            machine_detection=detection,
        )

    @staticmethod
    def _modify(call: TwilioCall, form: dict[str, str]) -> None:
        status = form.get("Status")
        if status is not None:
            if status not in ("canceled", "completed"):
                raise TwilioError(400, 20001, "Status must be canceled or completed")
            if status == "completed" and call.status not in ENDED:
                call.status = "completed"
            elif status == "canceled" and call.status in ("queued", "ringing"):
                call.status = "canceled"
            return
        redirect = {name: form[name] for name in ("Url", "Twiml") if form.get(name)}
        if not redirect:
            raise TwilioError(400, 21205, "Url parameter is required.")
        if call.status in ENDED:
            raise TwilioError(400, 21220, "Call is not in-progress. Cannot redirect.")
        twiml = redirect.get("Twiml")
        if twiml is not None:
            try:
                root = ElementTree.fromstring(twiml)
            except ElementTree.ParseError as exc:
                raise TwilioError(400, 12100, "Document parse failure") from exc
            if root.tag != "Response":
                raise TwilioError(400, 12100, "TwiML must have a <Response> root")
        call.redirects.append(redirect)

    # --- the phone network, played by the test -------------------------------------------

    def answer(self, call_sid: str, *, answered_by: str | None = None) -> Callback:
        """The callee picked up: the request Twilio makes to the call's ``Url`` for its
        TwiML. With machine detection, it carries ``AnsweredBy`` (one of the values
        the call's ``MachineDetection`` mode reports)."""
        call = self.calls[call_sid]
        if call.url is None:
            raise ValueError("the call was placed with inline TwiML: Twilio fetches no Url")
        allowed = AMD_RESULTS.get(call.machine_detection or "", frozenset())
        if (answered_by is None) != (not allowed) or (answered_by and answered_by not in allowed):
            raise ValueError(
                f"Twilio does not report AnsweredBy={answered_by!r} for"
                f" MachineDetection={call.machine_detection!r}"
            )
        call.status = "in-progress"
        call.answered_by = answered_by
        params = self._call_fields(call)
        if answered_by is not None:
            params["AnsweredBy"] = answered_by
        return self._signed(call.url, call.method, params)

    def advance(
        self, call_sid: str, status: str, *, duration: int | None = None
    ) -> Callback | None:
        """Move the call to ``status``; the status callback Twilio would send for it, if
        the call asked for that event (``completed`` is always sent)."""
        call = self.calls[call_sid]
        call.status = status
        if status in ENDED:
            call.duration = duration if duration is not None else 0
        event = "completed" if status in ENDED else _EVENT_OF_STATUS[status]
        if call.status_callback is None or (
            event != "completed" and event not in call.status_callback_events
        ):
            return None
        call.sequence += 1
        params = {
            **self._call_fields(call),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(call.sequence - 1),
            "Timestamp": format_datetime(call.created),
        }
        if call.status in ENDED:
            params["CallDuration"] = str(call.duration or 0)
        return self._signed(call.status_callback, call.status_callback_method, params)

    @staticmethod
    def _call_fields(call: TwilioCall) -> dict[str, str]:
        return {
            "AccountSid": call.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": call.status,
            "Called": call.to,
            "Caller": call.from_,
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
        }

    def _signed(self, url: str, method: str, params: dict[str, str]) -> Callback:
        """A request from Twilio: form fields for POST, the query string for GET, and
        ``X-Twilio-Signature`` over the URL and fields."""
        form = params
        if method == "GET":
            separator = "&" if urlsplit(url).query else "?"
            url, form = f"{url}{separator}{urlencode(params)}", {}
        signature = RequestValidator(self.auth_token).compute_signature(url, form)
        headers = {"X-Twilio-Signature": signature}
        if form:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return Callback(url=url, method=method, headers=headers, form=form)
