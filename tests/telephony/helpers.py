"""Shared test helpers: carrier webhooks as received, and a recording fake HTTP server."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar, cast

import httpx
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer

from switchboard.telephony.carrier import WebhookRequest

Handler = Callable[[httpx.Request], httpx.Response]
S = TypeVar("S", bound=FrameSerializer)


def webhook(
    url: str,
    *,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    method: str = "POST",
) -> WebhookRequest:
    return WebhookRequest(
        url=url,
        method=method,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        form=form or {},
        body=body,
    )


class FakeApi:
    """An ``httpx.MockTransport`` that records every request and answers from a handler."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler or (lambda request: httpx.Response(200, json={}))

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self._handle))

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def ready(serializer: S, sample_rate: int) -> S:
    """Set the serializer up as a pipeline would, with ``sample_rate`` as the input rate."""
    setup = FrameProcessorSetup(
        clock=cast(Any, None),  # serializers need only the sample rate
        task_manager=cast(Any, None),
        pipeline_worker=cast(Any, None),
        audio_in_sample_rate=sample_rate,
    )
    await serializer.setup(setup)
    return serializer
