"""The simulator: a carrier for the developer's own machine.

It speaks Twilio's protocol for markup and media (TwiML, Media Streams), so
the local phone (``switchboard call``) and the tests run the same code path a
real carrier does. It has no account and nothing signs its webhooks, so it
accepts them unchecked: it is meant to reach a server on loopback, never one
exposed to the internet (a deployment that routes ``/telephony/simulator``
publicly lets anyone start calls). Its REST calls go to a fake carrier API,
by default this server's own ``/simulator`` endpoints (``simulator_api``),
and each one is recorded in ``requests``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from switchboard.errors import ExternalError, ExternalStatusError
from switchboard.telephony.carrier import PlaceCallRequest, WebhookRequest
from switchboard.telephony.carrier_http import call_carrier_api, path_segment, response_json
from switchboard.telephony.credentials import CarrierCredentials, CarrierName
from switchboard.telephony.twilio import TwilioCarrier

DEFAULT_API = "http://127.0.0.1:8000/simulator"


@dataclass(frozen=True)
class SimulatorRequest:
    """One thing the carrier asked the fake API for."""

    action: str  # place_call | transfer | hangup
    call_id: str | None
    body: dict[str, Any] = field(default_factory=dict)


class SimulatorCarrier(TwilioCarrier):
    """Twilio's media and markup, no credentials, a fake REST API."""

    name = CarrierName.SIMULATOR
    credentials_model = None
    real_numbers = False

    def __init__(
        self,
        credentials: CarrierCredentials | None,
        http: httpx.AsyncClient,
        *,
        api_base_url: str = DEFAULT_API,
    ) -> None:
        """``credentials`` is ignored: the simulator takes none."""
        super().__init__(None, http, api_base_url=api_base_url)
        self.requests: list[SimulatorRequest] = []

    @classmethod
    def options(cls, public_url: str, secret: bytes) -> dict[str, Any]:
        """The fake carrier API is this server's own ``/simulator``."""
        return {"api_base_url": f"{public_url}/simulator"}

    def verify_webhook(self, request: WebhookRequest) -> None:
        """Accept: simulator webhooks are unsigned (see the module docstring)."""

    async def place_call(self, request: PlaceCallRequest) -> str:
        body = {
            "to": request.to_number,
            "from": request.from_number,
            "answer_url": request.answer_url,
            "status_url": request.status_url,
            "machine_detection": request.machine_detection,
            "timeout_seconds": request.timeout_seconds,
        }
        self.requests.append(SimulatorRequest("place_call", None, body))
        response = await self._send("calls", body)
        call_id = response_json(response, "simulator").get("id")
        if not isinstance(call_id, str) or not call_id:
            raise ExternalError("simulator API answered without the new call's id")
        return call_id

    async def transfer(self, carrier_call_id: str, to_number: str) -> None:
        body = {"to": to_number}
        self.requests.append(SimulatorRequest("transfer", carrier_call_id, body))
        await self._send(f"calls/{path_segment(carrier_call_id)}/transfer", body)

    async def hangup(self, carrier_call_id: str) -> None:
        self.requests.append(SimulatorRequest("hangup", carrier_call_id))
        try:
            await self._send(f"calls/{path_segment(carrier_call_id)}/hangup", {})
        except ExternalStatusError as exc:
            if exc.status != 404:  # 404: the call is already gone, which is what we wanted
                raise

    async def _send(self, path: str, body: dict[str, Any]) -> httpx.Response:
        url = f"{self.api_base_url}/{path}"
        return await call_carrier_api(self.http, "simulator", "POST", url, json=body)
