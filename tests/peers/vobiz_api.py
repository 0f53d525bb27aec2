"""A local peer of Vobiz's Call API (Plivo's shapes, on ``api.vobiz.ai``).

Reproduces, from Vobiz's documentation (Plivo's, docs.plivo.com/docs/voice/api/call,
where Vobiz's pages are silent):

- Auth (docs.vobiz.ai/call/make-call, "Authentication required"): ``X-Auth-ID``
  and ``X-Auth-Token`` headers, the Auth ID also in the path
  (``/api/v1/Account/{auth_id}/...``); JSON bodies (``Content-Type:
  application/json``). A failure is ``401``.
- Errors (docs.vobiz.ai/errors): ``{"status": "error", "error": {"code",
  "message"}, "timestamp", "requestId"}`` with 400 bad input, 401 credentials, 402
  balance (``INSUFFICIENT_BALANCE``), 404 unknown resource, 429 rate limit, 5xx.
  The page names only some codes (``INSUFFICIENT_BALANCE``, ``INVALID_CREDENTIALS``);
  the peer names the rest in the same style. ``error_style="plivo"`` answers
  Plivo's ``{"api_id", "error": "<message>"}`` instead, as the Call API inherited.
- Make a call (docs.vobiz.ai/call/make-call, /call/machine-detection): ``POST
  /api/v1/Account/{auth_id}/Call/`` with ``from``, ``to`` and ``answer_url``
  required; ``*_method`` GET or POST; ``ring_url``, ``hangup_url``,
  ``machine_detection_url`` absolute URLs; ``machine_detection`` true or hangup;
  ``ring_timeout`` (Plivo's "time in seconds the call should ring") a positive
  integer. Success is ``201`` with ``{"api_id", "message": "Call fired",
  "request_uuid"}``; the call's ``call_uuid`` is that same id (/call/call-object:
  "call_uuid (also referred to as request_uuid)").
- Transfer (docs.vobiz.ai/call/transfer-call): ``POST .../Call/{call_uuid}/`` with
  ``legs`` aleg, bleg or both (default aleg) and the matching ``aleg_url`` /
  ``bleg_url`` (400 without it); the call must be in progress. ``202`` with
  ``{"api_id", "message": "call transferred", "call_uuid"}``.
- Hang up (docs.vobiz.ai/call/hangup-call, /call/retrieve-all-queued-calls): ``DELETE
  .../Call/{call_uuid}/``, no body, ``204``; it ends a call in progress and cancels
  one still queued or ringing ("use the Hang Up Call endpoint to cancel them"); a
  call that is unknown or over is ``404``.
- Callbacks (docs.vobiz.ai/xml/request, /xml/request/call-status,
  /call/machine-detection; Plivo's asynchronous machine detection page): form
  requests to ``answer_url`` when the callee picks up (``CallStatus`` in-progress,
  ``Event`` StartApp), to ``ring_url`` (``CallStatus`` ringing), ``hangup_url`` (completed, busy,
  failed, timeout, no-answer, cancel; with ``Duration``, ``BillDuration``,
  ``HangupCause``) and ``machine_detection_url`` (``Machine`` true/false,
  ``CallStatus`` in-progress, ``Event`` MachineDetection), each with ``CallUUID``,
  ``RequestUUID``, ``From``, ``To``, ``Direction`` outbound; each signed with
  ``X-Vobiz-Signature-V3`` = base64(HMAC-SHA256(auth token, URL without its query
  + "." + nonce)) and ``X-Vobiz-Signature-V3-Nonce`` (/xml/validating-callbacks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from tests.peers.base import Callback, CarrierPeer

ErrorStyle = Literal["vobiz", "plivo"]
HANGUP_STATUSES = frozenset({"completed", "busy", "failed", "timeout", "no-answer", "cancel"})
METHODS = ("GET", "POST")
_STATUS_CODES = {
    400: "INVALID_PARAMETER",
    401: "INVALID_CREDENTIALS",
    402: "INSUFFICIENT_BALANCE",
    404: "NOT_FOUND",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class VobizError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _uuid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_number(value: object) -> bool:
    """A caller ID or destination: digits, optionally after ``+``, or a SIP URI."""
    if not isinstance(value, str) or not value:
        return False
    if value.startswith("sip:"):
        return "@" in value
    digits = value.removeprefix("+")
    return digits.isdigit() and 7 <= len(digits) <= 15


@dataclass
class VobizCall:
    uuid: str
    from_: str
    to: str
    answer_url: str
    answer_method: str
    ring_url: str | None
    hangup_url: str | None
    ring_timeout: int | None
    machine_detection: str | None
    machine_detection_url: str | None
    body: dict[str, Any]
    status: str = "queued"
    transfers: list[dict[str, Any]] = field(default_factory=list)


class VobizPeer(CarrierPeer):
    """Vobiz's Call API for one account. ``balance_ok=False`` refuses new calls (402)."""

    def __init__(self, auth_id: str, auth_token: str, *, error_style: ErrorStyle = "vobiz") -> None:
        super().__init__()
        self.auth_id = auth_id
        self.auth_token = auth_token
        self.error_style: ErrorStyle = error_style
        self.balance_ok = True
        self.calls: dict[str, VobizCall] = {}
        self._counter = 0
        base = "/api/v1/Account/{auth_id}/Call"
        self.app.add_api_route(f"{base}/", self._make_call, methods=["POST"])
        self.app.add_api_route(f"{base}/{{call_uuid}}/", self._transfer, methods=["POST"])
        self.app.add_api_route(f"{base}/{{call_uuid}}/", self._hangup, methods=["DELETE"])

    def error(self, status: int, message: str) -> JSONResponse:
        """Vobiz's documented error envelope (or Plivo's, with ``error_style="plivo"``)."""
        self._counter += 1
        if self.error_style == "plivo":
            return JSONResponse(
                {"api_id": _uuid(self._counter), "error": message}, status_code=status
            )
        body = {
            "status": "error",
            "error": {"code": _STATUS_CODES.get(status, "ERROR"), "message": message},
            "timestamp": "2024-05-01T12:00:00.000Z",
            "requestId": f"req_{self._counter:012x}",
        }
        return JSONResponse(body, status_code=status)

    def error_for_status(self, status: int) -> Response:
        return self.error(status, "Rate limit exceeded" if status == 429 else "Service unavailable")

    # --- the REST API -------------------------------------------------------------------

    async def _make_call(self, auth_id: str, request: Request) -> Response:
        try:
            self._authenticate(request, auth_id)
            body = await self._json_body(request)
            call = self._new_call(body)
        except VobizError as error:
            return self.error(error.status, error.message)
        self.calls[call.uuid] = call
        return JSONResponse(
            {"api_id": _uuid(self._next()), "message": "Call fired", "request_uuid": call.uuid},
            status_code=201,
        )

    async def _transfer(self, auth_id: str, call_uuid: str, request: Request) -> Response:
        try:
            self._authenticate(request, auth_id)
            body = await self._json_body(request)
            call = self._live_call(call_uuid)
            self._apply_transfer(call, body)
        except VobizError as error:
            return self.error(error.status, error.message)
        return JSONResponse(
            {"api_id": _uuid(self._next()), "message": "call transferred", "call_uuid": call_uuid},
            status_code=202,
        )

    async def _hangup(self, auth_id: str, call_uuid: str, request: Request) -> Response:
        try:
            self._authenticate(request, auth_id)
            call = self._live_call(call_uuid)
        except VobizError as error:
            return self.error(error.status, error.message)
        call.status = "completed" if call.status == "in-progress" else "cancel"
        return Response(status_code=204)

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _authenticate(self, request: Request, auth_id: str) -> None:
        offered = (request.headers.get("x-auth-id"), request.headers.get("x-auth-token"))
        if offered != (self.auth_id, self.auth_token) or auth_id != self.auth_id:
            raise VobizError(401, "Invalid X-Auth-ID or X-Auth-Token")

    @staticmethod
    async def _json_body(request: Request) -> dict[str, Any]:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise VobizError(400, "Content-Type must be application/json")
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            raise VobizError(400, "The body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise VobizError(400, "The body must be a JSON object")
        return body

    def _live_call(self, call_uuid: str) -> VobizCall:
        call = self.calls.get(call_uuid)
        if call is None or call.status in HANGUP_STATUSES:
            raise VobizError(404, f"Call {call_uuid} not found")
        return call

    def _new_call(self, body: dict[str, Any]) -> VobizCall:
        for name in ("from", "to", "answer_url"):
            if not body.get(name):
                raise VobizError(400, f"{name} is required")
        if not _is_number(body["from"]):
            raise VobizError(400, f"from is not a valid caller ID: {body['from']}")
        destinations = str(body["to"]).split("<")
        if not all(_is_number(d) for d in destinations) or len(destinations) > 1000:
            raise VobizError(400, f"to is not a valid destination: {body['to']}")
        for name in (
            "answer_url",
            "ring_url",
            "hangup_url",
            "fallback_url",
            "machine_detection_url",
        ):
            if name in body and not _is_http_url(body[name]):
                raise VobizError(400, f"{name} is not a valid URL")
        for name in ("answer_method", "ring_method", "hangup_method", "machine_detection_method"):
            if str(body.get(name, "POST")).upper() not in METHODS:
                raise VobizError(400, f"{name} must be GET or POST")
        detection = body.get("machine_detection")
        if detection is not None and detection not in ("true", "hangup"):
            raise VobizError(400, "machine_detection must be true or hangup")
        ring_timeout = body.get("ring_timeout")
        if ring_timeout is not None:
            text = str(ring_timeout)
            if isinstance(ring_timeout, bool) or not text.isdigit() or int(text) < 1:
                raise VobizError(400, "ring_timeout must be a positive integer number of seconds")
        if not self.balance_ok:
            raise VobizError(402, "Account balance too low to complete this operation")
        return VobizCall(
            uuid=_uuid(self._next()),
            from_=body["from"],
            to=body["to"],
            answer_url=body["answer_url"],
            answer_method=str(body.get("answer_method", "POST")).upper(),
            ring_url=body.get("ring_url"),
            hangup_url=body.get("hangup_url"),
            ring_timeout=int(str(ring_timeout)) if ring_timeout is not None else None,
            machine_detection=detection,
            machine_detection_url=body.get("machine_detection_url"),
            body=body,
        )

    @staticmethod
    def _apply_transfer(call: VobizCall, body: dict[str, Any]) -> None:
        legs = body.get("legs", "aleg")
        if legs not in ("aleg", "bleg", "both"):
            raise VobizError(400, "legs must be aleg, bleg or both")
        for leg in ("aleg", "bleg"):
            if legs in (leg, "both") and not _is_http_url(body.get(f"{leg}_url")):
                raise VobizError(400, f"No transfer URL supplied for {leg}: {leg}_url is required")
            if str(body.get(f"{leg}_method", "POST")).upper() not in METHODS:
                raise VobizError(400, f"{leg}_method must be GET or POST")
        if call.status != "in-progress":
            raise VobizError(400, "Only a call in progress can be transferred")
        call.transfers.append(body)

    # --- the phone network, played by the test -------------------------------------------

    def ring(self, call_uuid: str) -> Callback | None:
        """The callee's phone rings: the ``ring_url`` callback, when one was given."""
        call = self.calls[call_uuid]
        call.status = "ringing"
        return self._callback(call, call.ring_url, {"CallStatus": "ringing", "Event": "Ring"})

    def answer(self, call_uuid: str) -> Callback:
        """The callee picked up: Vobiz's request to ``answer_url`` for the call's XML."""
        call = self.calls[call_uuid]
        call.status = "in-progress"
        fields = {"CallStatus": "in-progress", "Event": "StartApp"}
        request = self._callback(call, call.answer_url, fields, method=call.answer_method)
        assert request is not None
        return request

    def detect_machine(self, call_uuid: str, *, machine: bool) -> Callback | None:
        """Machine detection finished: the ``machine_detection_url`` callback."""
        call = self.calls[call_uuid]
        if call.machine_detection is None:
            raise ValueError("Vobiz detects machines only when the call asked for it")
        fields = {
            "CallStatus": "in-progress",
            "Event": "MachineDetection",
            "Machine": "true" if machine else "false",
            "IfMachine": "hangup" if call.machine_detection == "hangup" else "continue",
        }
        return self._callback(call, call.machine_detection_url, fields)

    def hang_up(self, call_uuid: str, status: str, *, duration: int = 0) -> Callback | None:
        """The call ended as ``status``: the ``hangup_url`` callback, when one was given."""
        if status not in HANGUP_STATUSES:
            raise ValueError(f"Vobiz ends a call as one of {sorted(HANGUP_STATUSES)}")
        call = self.calls[call_uuid]
        call.status = status
        fields = {
            "CallStatus": status,
            "Event": "Hangup",
            "Duration": str(duration),
            "BillDuration": str(duration),
            "HangupCause": "NORMAL_CLEARING" if status == "completed" else "NO_ANSWER",
        }
        return self._callback(call, call.hangup_url, fields)

    def _callback(
        self, call: VobizCall, url: str | None, fields: dict[str, str], *, method: str = "POST"
    ) -> Callback | None:
        if url is None:
            return None
        form = {
            "CallUUID": call.uuid,
            "RequestUUID": call.uuid,
            "ALegUUID": call.uuid,
            "ALegRequestUUID": call.uuid,
            "From": call.from_,
            "To": call.to,
            "Direction": "outbound",
            **fields,
        }
        nonce = f"{self._next():020d}"
        parts = urlsplit(url)
        base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        digest = hmac.new(self.auth_token.encode(), f"{base}.{nonce}".encode(), hashlib.sha256)
        headers = {
            "X-Vobiz-Signature-V3": base64.b64encode(digest.digest()).decode(),
            "X-Vobiz-Signature-V3-Nonce": nonce,
        }
        if method == "GET":
            separator = "&" if parts.query else "?"
            return Callback(f"{url}{separator}{urlencode(form)}", "GET", headers)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return Callback(url=url, headers=headers, form=form)
