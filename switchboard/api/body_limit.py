"""Request bodies are capped while they arrive, before anything parses them.

A ``Content-Length`` check alone lets a chunked body through at any size, so
the body is read here, counting bytes as they come, and a request over its
cap is answered 413 without the application ever seeing it. Carrier webhooks
(``/telephony/...``) carry a few form fields and get a small cap of their own.
WebSocket messages are bounded by the server's message-size limit instead
(``MAX_WEBSOCKET_MESSAGE_BYTES``, given to uvicorn where it is started): a
carrier's media message is a few hundred bytes, a browser's a few kilobytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.api import problems

MAX_BODY_BYTES = 1_000_000
MAX_WEBHOOK_BODY_BYTES = 64 * 1024
MAX_WEBSOCKET_MESSAGE_BYTES = 64 * 1024
WEBHOOK_PREFIXES = ("/telephony/",)


class BodyLimit:
    """ASGI middleware: buffer each HTTP body up to its cap, or answer 413."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int = MAX_BODY_BYTES,
        small_prefixes: Sequence[str] = WEBHOOK_PREFIXES,
        small_max_bytes: int = MAX_WEBHOOK_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.small_prefixes = tuple(small_prefixes)
        self.small_max_bytes = small_max_bytes

    def cap_for(self, path: str) -> int:
        return self.small_max_bytes if path.startswith(self.small_prefixes) else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            await self._refuse(cap, scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                await self._refuse(cap, scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(cap: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.problem(413, f"request body over {cap} bytes", field="body")
        await response(scope, receive, send)
