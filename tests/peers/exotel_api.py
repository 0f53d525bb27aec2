"""A local peer of Exotel's Voice v1 Calls API: connect a number to a call flow.

Reproduces, from Exotel's documentation:

- Auth and hosts (developer.exotel.com/api, "Authentication"; /docs/voice-v1/
  api-reference/connect-to-flow, "Regional Endpoints"): HTTP basic with the API
  key and API token, the account SID in the path, on the account's cluster
  (``api.exotel.com`` Singapore, ``api.in.exotel.com`` Mumbai: an account lives on
  one, so the other does not know its key). A failure is ``401`` with the
  ``RestException`` body of /docs/sms-support/sms-api-errors:
  ``{"RestException": {"Status": 401, "Message": ..., "Code": "UNAUTHORIZED"}}``.
- Connect to a flow (/docs/voice-v1/api-reference/connect-to-flow,
  /api/outgoing-call-to-connect-number-to-a-call-flow): ``POST
  /v1/Accounts/{sid}/Calls/connect``, form-encoded, JSON when the path ends in
  ``.json`` (XML otherwise). ``From`` (called first), ``CallerId`` (an ExoPhone) and
  ``Url`` (``http://my.exotel.com/{sid}/exoml/start_voice/{app_id}``) are required;
  ``CallType`` trans (or the older promo); ``TimeOut`` and ``TimeLimit`` integers,
  ``TimeLimit`` at most 14400; ``StatusCallbackEvents`` terminal and/or answered
  (sent as ``StatusCallbackEvents[0]``, ``[1]``...). Success is ``200`` with
  ``{"Call": {"Sid", "ParentCallSid", "DateCreated", "DateUpdated", "AccountSid",
  "To", "From", "PhoneNumberSid", "Status": "in-progress", "Direction":
  "outbound-api", "Uri", ...}}``. Bad input is ``400`` (/docs/references/error-codes),
  rate limits ``429`` (200 requests a minute), outages 5xx, all as ``RestException``.
- Status callbacks (/docs/voice-v1/api-reference/status-callback,
  /api/statuscallback): POSTed to ``StatusCallback`` exactly as given (so a
  ``?token=`` survives; Exotel signs nothing). Without ``StatusCallbackEvents`` only
  the terminal one is sent, form-encoded with ``CallSid``, ``Status`` (completed,
  failed, busy, no-answer), ``RecordingUrl`` and ``DateUpdated``. With events
  subscribed, each subscribed event (``answered``, ``terminal``) is sent with
  ``EventType``, ``DateCreated``, ``To``, ``From``, ``PhoneNumberSid``, ``StartTime``,
  ``EndTime``, ``ConversationDuration``, ``Direction``, ``CustomField`` and ``Legs``
  (an array). The pages do not say how these are encoded: the peer sends JSON, or
  form fields without ``Legs`` with ``event_encoding="form"``.

Exotel's Voice v1 API documents no call modification, transfer or hang-up, and no
answering-machine detection on this endpoint: the peer has none.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from tests.peers.base import Callback, CarrierPeer

EVENTS = ("terminal", "answered")
TERMINAL_STATUSES = frozenset({"completed", "failed", "busy", "no-answer"})
MAX_TIME_LIMIT = 14400
STAMP = "2024-05-01 12:00:00"
_NUMBER = re.compile(r"^\+?\d{8,15}$")
_EVENT_NAME = re.compile(r"^StatusCallbackEvents(\[\d*\])?$")


class ExotelError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def rest_exception(status: int, message: str, code: str | None = None) -> JSONResponse:
    """Exotel's error body: ``RestException`` with ``Status``, ``Message`` and ``Code``."""
    body: dict[str, Any] = {"Status": status, "Message": message}
    if code is not None:
        body["Code"] = code
    return JSONResponse({"RestException": body}, status_code=status)


@dataclass
class ExotelCall:
    sid: str
    account_sid: str
    from_: str
    caller_id: str
    flow_url: str
    call_type: str | None
    time_out: int | None
    time_limit: int | None
    status_callback: str | None
    status_callback_events: tuple[str, ...]
    custom_field: str | None
    status: str = "in-progress"
    legs: list[dict[str, Any]] = field(default_factory=list)

    def resource(self) -> dict[str, Any]:
        return {
            "Sid": self.sid,
            "ParentCallSid": None,
            "DateCreated": STAMP,
            "DateUpdated": STAMP,
            "AccountSid": self.account_sid,
            "To": None,
            "From": self.from_,
            "PhoneNumberSid": self.caller_id,
            "Status": self.status,
            "StartTime": STAMP,
            "EndTime": None,
            "Duration": None,
            "Price": None,
            "Direction": "outbound-api",
            "AnsweredBy": None,
            "ForwardedFrom": None,
            "CallerName": None,
            "Uri": f"/v1/Accounts/{self.account_sid}/Calls/{self.sid}.json",
            "RecordingUrl": None,
        }


def _xml(call: dict[str, Any]) -> str:
    root = ElementTree.Element("TwilioResponse")
    element = ElementTree.SubElement(root, "Call")
    for name, value in call.items():
        ElementTree.SubElement(element, name).text = "" if value is None else str(value)
    return ElementTree.tostring(root, encoding="unicode")


class ExotelPeer(CarrierPeer):
    """Exotel's v1 Calls API for one account, on ``host`` (its cluster). ``exophones``:
    the account's numbers that may be a ``CallerId`` (any number when None);
    ``event_encoding``: how event callbacks are posted."""

    def __init__(
        self,
        account_sid: str,
        api_key: str,
        api_token: str,
        *,
        host: str = "api.exotel.com",
        exophones: set[str] | None = None,
        event_encoding: Literal["json", "form"] = "json",
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.api_key = api_key
        self.api_token = api_token
        self.host = host
        self.exophones = exophones
        self.event_encoding = event_encoding
        self.calls: dict[str, ExotelCall] = {}
        self._next_sid = 0
        base = "/v1/Accounts/{account_sid}/Calls"
        self.app.add_api_route(f"{base}/connect.json", self._connect_json, methods=["POST"])
        self.app.add_api_route(f"{base}/connect", self._connect_xml, methods=["POST"])

    def error_for_status(self, status: int) -> Response:
        message = "Too Many Requests" if status == 429 else "Internal Server Error"
        return rest_exception(status, message)

    async def _connect_json(self, account_sid: str, request: Request) -> Response:
        result = await self._connect(account_sid, request)
        if isinstance(result, Response):
            return result
        return JSONResponse({"Call": result.resource()})

    async def _connect_xml(self, account_sid: str, request: Request) -> Response:
        result = await self._connect(account_sid, request)
        if isinstance(result, Response):
            return result
        return Response(_xml(result.resource()), media_type="application/xml")

    async def _connect(self, account_sid: str, request: Request) -> ExotelCall | Response:
        if not self._authenticated(request, account_sid):
            return rest_exception(
                401, "Authentication failed. Invalid API Key or Token.", "UNAUTHORIZED"
            )
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        try:
            call = self._new_call(account_sid, form)
        except ExotelError as error:
            return rest_exception(error.status, error.message, error.code)
        self.calls[call.sid] = call
        return call

    def _authenticated(self, request: Request, account_sid: str) -> bool:
        authorization = request.headers.get("authorization", "")
        if not authorization.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        host = request.headers.get("host", "").split(":")[0]
        return (
            decoded == f"{self.api_key}:{self.api_token}"
            and account_sid == self.account_sid
            and host == self.host
        )

    def _new_call(self, account_sid: str, form: dict[str, list[str]]) -> ExotelCall:
        one = {name: values[-1] for name, values in form.items()}
        for name in ("From", "CallerId", "Url"):
            if not one.get(name):
                raise ExotelError(400, f"{name} is a mandatory parameter")
        if not _NUMBER.match(one["From"]):
            raise ExotelError(400, f"From is not a valid phone number: {one['From']}")
        if self.exophones is not None and one["CallerId"] not in self.exophones:
            raise ExotelError(400, f"CallerId {one['CallerId']} is not an ExoPhone of this account")
        flow = re.compile(
            rf"^https?://my\.exotel\.com/{re.escape(account_sid)}/exoml/start_voice/\d+$"
        )
        if not flow.match(one["Url"]):
            raise ExotelError(400, f"Url is not a flow of this account: {one['Url']}")
        call_type = one.get("CallType") or None
        if call_type not in (None, "trans", "promo"):
            raise ExotelError(400, "CallType must be trans")
        numbers: dict[str, int | None] = {}
        for name in ("TimeOut", "TimeLimit"):
            text = one.get(name)
            if text is not None and not text.isdigit():
                raise ExotelError(400, f"{name} must be an integer number of seconds")
            numbers[name] = int(text) if text is not None else None
        if (numbers["TimeLimit"] or 0) > MAX_TIME_LIMIT:
            raise ExotelError(400, f"TimeLimit may be at most {MAX_TIME_LIMIT} seconds")
        status_callback = one.get("StatusCallback") or None
        if status_callback is not None and urlsplit(status_callback).scheme not in (
            "http",
            "https",
        ):
            raise ExotelError(400, "StatusCallback is not a valid URL")
        events = tuple(
            value for name, values in form.items() if _EVENT_NAME.match(name) for value in values
        )
        if unknown := [event for event in events if event not in EVENTS]:
            raise ExotelError(
                400, f"StatusCallbackEvents may be terminal or answered, not {unknown[0]}"
            )
        self._next_sid += 1
        return ExotelCall(
            sid=f"{self._next_sid:032x}",
            account_sid=account_sid,
            from_=one["From"],
            caller_id=one["CallerId"],
            flow_url=one["Url"],
            call_type=call_type,
            time_out=numbers["TimeOut"],
            time_limit=numbers["TimeLimit"],
            status_callback=status_callback,
            status_callback_events=events,
            custom_field=one.get("CustomField"),
        )

    # --- the phone network, played by the test -------------------------------------------

    def answer(self, call_sid: str) -> Callback | None:
        """The callee picked up: the ``answered`` event, if the call subscribed to it."""
        call = self.calls[call_sid]
        call.status = "in-progress"
        if call.status_callback is None or "answered" not in call.status_callback_events:
            return None
        return self._event_callback(call, "answered", conversation_seconds=0)

    def end(self, call_sid: str, status: str, *, conversation_seconds: int = 0) -> Callback | None:
        """The call is over with ``status``: the terminal callback (None without a URL)."""
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"Exotel ends a call as one of {sorted(TERMINAL_STATUSES)}")
        call = self.calls[call_sid]
        call.status = status
        call.legs.append(
            {"OnCallDuration": conversation_seconds, "Status": status, "AnsweredBy": "NA"}
        )
        if call.status_callback is None:
            return None
        if "terminal" in call.status_callback_events:
            return self._event_callback(call, "terminal", conversation_seconds=conversation_seconds)
        form = {"CallSid": call.sid, "Status": status, "RecordingUrl": "", "DateUpdated": STAMP}
        return Callback(
            url=call.status_callback,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            form=form,
        )

    def _event_callback(
        self, call: ExotelCall, event: str, *, conversation_seconds: int
    ) -> Callback:
        assert call.status_callback is not None
        payload = {
            "CallSid": call.sid,
            "EventType": event,
            "Status": call.status,
            "RecordingUrl": None,
            "DateCreated": STAMP,
            "DateUpdated": STAMP,
            "To": None,
            "From": call.from_,
            "PhoneNumberSid": call.caller_id,
            "StartTime": STAMP,
            "EndTime": STAMP if event == "terminal" else None,
            "ConversationDuration": conversation_seconds,
            "Direction": "outbound-api",
            "CustomField": call.custom_field,
            "Legs": list(call.legs),
        }
        if self.event_encoding == "form":
            form = {k: "" if v is None else str(v) for k, v in payload.items() if k != "Legs"}
            return Callback(
                url=call.status_callback,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                form=form,
            )
        return Callback(
            url=call.status_callback,
            headers={"Content-Type": "application/json"},
            body=json.dumps(payload).encode(),
        )
