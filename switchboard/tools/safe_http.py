"""An HTTP client for webhook tools that cannot be turned against our own network.

During a call the agent's LLM chooses when to call a customer's webhook, so the
URL, headers and body are untrusted. Every hop (including each redirect) is
checked by :mod:`switchboard.tools.addresses` and sent to the exact address
that was checked, with the Host header and TLS SNI/certificate check still
using the hostname. Secret and credential headers go to the first origin only.
Responses are size-capped and requests are signed so the receiver can tell
they came from us.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json as jsonlib
import re
import ssl
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import certifi
import httpx

from switchboard.errors import ExternalError, ExternalStatusError, ExternalTimeout, InvalidInput
from switchboard.tools.addresses import (
    AddressPolicy,
    PinnedTarget,
    Resolver,
    parse_url,
    pin_target,
    system_resolver,
)

ALLOWED_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
SIGNATURE_HEADER = "X-Switchboard-Signature"
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = 10.0

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Set by us from the checked target and the body; a caller must not override them.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", SIGNATURE_HEADER.lower()}
)
# Credentials meant for the first origin never follow a redirect elsewhere (nor do the
# tool's secret headers, given to each request).
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class ToolResponse:
    """What a webhook answered, already read in full (within the size cap)."""

    status: int
    headers: httpx.Headers
    content: bytes
    url: str

    @property
    def text(self) -> str:
        """The body decoded as UTF-8, replacing undecodable bytes."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ExternalError when it is not JSON."""
        try:
            return jsonlib.loads(self.content)
        except ValueError as exc:
            raise ExternalError(f"webhook answered invalid JSON: {exc}") from exc


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """Certificate verification against certifi's CA bundle, as httpx does by default."""
    return ssl.create_default_context(cafile=certifi.where())


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes | str, now: float, tolerance: float = 300
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds.

    For receivers of our webhooks; the timestamp bounds how long a captured
    request can be replayed.
    """
    raw = body.encode() if isinstance(body, str) else body
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, raw, timestamp).rsplit("v1=", 1)[1]
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


class SafeHttpClient:
    """Performs one webhook request per :meth:`request`, refusing private targets.

    Args:
        allowed_private_hosts: hostnames or IPs an admin allowed for self-hosted
            backends; these may resolve to private addresses.
        signing_secret: when given, every request carries ``X-Switchboard-Signature``.
        resolver: looks up a host; the event loop's getaddrinfo by default.
        ssl_context: overrides certificate verification (tests use their own CA).
    """

    def __init__(
        self,
        *,
        allowed_private_hosts: Collection[str] = frozenset(),
        signing_secret: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_redirects: int = MAX_REDIRECTS,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._policy = AddressPolicy.from_allowed(allowed_private_hosts)
        self._secret = signing_secret
        self._timeout = timeout
        self._max_bytes = max_response_bytes
        self._max_redirects = max_redirects
        self._resolver = resolver or system_resolver
        # One context for every request: building one loads the CA bundle (~15 ms), which
        # would otherwise be paid per request since connections are never reused.
        self._verify = ssl_context if ssl_context is not None else default_ssl_context()
        self._clock = clock

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        secret_headers: Mapping[str, str] | None = None,
        json: object = None,
        time_limit: float | None = None,
    ) -> ToolResponse:
        """Send one request, following up to ``max_redirects`` checked redirects.

        ``secret_headers`` are sent like ``headers`` (which win on a clash) but,
        like ``Authorization`` and cookies, only to the origin of ``url``: a
        redirect to another scheme, host or port drops them for good.

        Raises:
            InvalidInput: the method, URL, a header or any hop's address is refused.
            ExternalTimeout: the whole exchange (lookups, redirects, body) took longer
                than ``time_limit``, or the client's ``timeout`` when not given.
            ExternalStatusError: the final answer was 4xx or 5xx.
            ExternalError: connection failure, too many redirects, too large a body.
        """
        verb = method.upper()
        if verb not in ALLOWED_METHODS:
            raise InvalidInput(f"HTTP method {method!r} is not allowed", field="method")
        secrets = secret_headers or {}
        clean = check_headers({**secrets, **(headers or {})})
        first_origin_only = _CREDENTIAL_HEADERS | {name.lower() for name in secrets}
        body = b"" if json is None else jsonlib.dumps(json, separators=(",", ":")).encode()
        if body:
            clean.setdefault("content-type", "application/json")
        seconds = self._timeout if time_limit is None else time_limit
        try:
            async with asyncio.timeout(seconds):
                return await self._follow(
                    verb, parse_url(url), clean, first_origin_only, body, seconds
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ExternalTimeout(f"webhook did not answer within {seconds:g} s") from exc

    async def _follow(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        first_origin_only: frozenset[str],
        body: bytes,
        seconds: float,
    ) -> ToolResponse:
        # No keep-alive: a pooled connection is keyed by IP, and reusing one made
        # for another hostname would skip that hostname's certificate check.
        async with httpx.AsyncClient(
            verify=self._verify,
            trust_env=False,
            follow_redirects=False,
            timeout=seconds,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client:
            for _ in range(self._max_redirects + 1):
                target = await pin_target(url, self._policy, self._resolver)
                response = await self._send(client, method, target, headers, body)
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECT_STATUSES and location:
                        next_url = _join(target.url, location)
                        method, body, headers = _redirected(
                            response.status_code,
                            method,
                            body,
                            headers,
                            target.url,
                            next_url,
                            first_origin_only,
                        )
                        url = next_url
                        continue
                    content = await self._read_capped(response)
                finally:
                    await response.aclose()
                if response.status_code >= 400:
                    raise ExternalStatusError(
                        f"webhook answered HTTP {response.status_code}",
                        status=response.status_code,
                    )
                return ToolResponse(response.status_code, response.headers, content, str(url))
        raise ExternalError(f"webhook redirected more than {self._max_redirects} times")

    async def _send(
        self,
        client: httpx.AsyncClient,
        method: str,
        target: PinnedTarget,
        headers: dict[str, str],
        body: bytes,
    ) -> httpx.Response:
        """Send to the pinned address, with Host and SNI naming the real host."""
        outgoing = dict(headers, host=target.host_header)
        if self._secret is not None:
            outgoing[SIGNATURE_HEADER] = sign(self._secret, body, int(self._clock()))
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
        request = client.build_request(
            method,
            target.connect_url,
            headers=outgoing,
            content=body or None,
            extensions=extensions,
        )
        try:
            return await client.send(request, stream=True)
        except httpx.TimeoutException:
            raise
        except httpx.HTTPError as exc:
            raise ExternalError(
                f"could not reach {target.url.host}: {exc}", retryable=True
            ) from exc

    async def _read_capped(self, response: httpx.Response) -> bytes:
        """Read the body, stopping as soon as it passes the cap."""
        too_large = ExternalError(f"webhook response is larger than {self._max_bytes} bytes")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise too_large
        chunks: list[bytes] = []
        total = 0
        try:
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > self._max_bytes:
                    raise too_large
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise
        except httpx.HTTPError as exc:
            raise ExternalError(f"webhook response broke off: {exc}", retryable=True) from exc
        return b"".join(chunks)


def check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Refuse header injection (CR/LF/NUL) and headers only we may set."""
    clean: dict[str, str] = {}
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise InvalidInput(f"invalid header name {name!r}", field="headers")
        if any(c in value for c in "\r\n\0"):
            raise InvalidInput(f"header {name!r} contains a line break", field="headers")
        if name.lower() in _RESERVED_HEADERS:
            raise InvalidInput(f"header {name!r} may not be set by a tool", field="headers")
        clean[name.lower()] = value
    return clean


def _join(base: httpx.URL, location: str) -> httpx.URL:
    try:
        return base.join(location)
    except httpx.InvalidURL as exc:
        raise ExternalError(f"webhook redirected to an invalid URL: {exc}") from exc


def _redirected(
    status: int,
    method: str,
    body: bytes,
    headers: dict[str, str],
    old: httpx.URL,
    new: httpx.URL,
    first_origin_only: frozenset[str],
) -> tuple[str, bytes, dict[str, str]]:
    """Method, body and headers for the next hop, as browsers and httpx do it."""
    headers = dict(headers)
    if (status in (302, 303)) or (status == 301 and method == "POST"):
        method, body = "GET", b""
        headers.pop("content-type", None)
    if (old.scheme, old.host, old.port) != (new.scheme, new.host, new.port):
        for name in first_origin_only:
            headers.pop(name, None)
    return method, body, headers
