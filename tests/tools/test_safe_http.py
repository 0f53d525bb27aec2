"""The webhook client refuses our own network, pins what it checked, caps and signs.

Everything runs against fake resolvers and real aiohttp servers on 127.0.0.1;
no test touches DNS or any other host.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import re
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from switchboard.errors import ExternalError, ExternalStatusError, ExternalTimeout, InvalidInput
from switchboard.tools import SIGNATURE_HEADER, SafeHttpClient, verify_signature
from switchboard.tools.addresses import AddressPolicy, blocked_reason, pin_target

SECRET = "whsec_test"
NOW = 1_700_000_000


@dataclass
class FakeResolver:
    """Answers from a table; each name's list of answers is used one lookup at a time."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        queue = self.answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def answering(**names: str | list[str]) -> FakeResolver:
    """A resolver giving each name (dots as ``__``) a fixed answer."""
    table = {k.replace("__", "."): [[v] if isinstance(v, str) else v] for k, v in names.items()}
    return FakeResolver(table)


@dataclass
class LocalServer:
    base: str
    port: int


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "host": request.headers.get("Host"),
            "signature": request.headers.get(SIGNATURE_HEADER),
            "authorization": request.headers.get("Authorization"),
            "body": body.decode(),
        }
    )


async def _redirect(request: web.Request) -> web.Response:
    status = int(request.query.get("status", "302"))
    return web.Response(status=status, headers={"Location": request.query["to"]})


async def _loop(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/loop"})


async def _big(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    if request.query.get("declare"):
        response.content_length = 2_000_000
    await response.prepare(request)
    for _ in range(200):
        await response.write(b"x" * 10_000)
    return response


async def _status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="nope")


async def _start(app: web.Application, ssl_context: ssl.SSLContext | None = None) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
    return runner


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    app = web.Application()
    hang_forever = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await hang_forever.wait()
        return web.Response(text="late")

    app.router.add_route("*", "/echo", _echo)
    app.router.add_route("*", "/redirect", _redirect)
    app.router.add_get("/loop", _loop)
    app.router.add_get("/big", _big)
    app.router.add_get("/hang", hang)
    app.router.add_get("/status/{code}", _status)
    runner = await _start(app)
    port = runner.addresses[0][1]
    try:
        yield LocalServer(f"http://127.0.0.1:{port}", port)
    finally:
        hang_forever.set()
        await runner.cleanup()


def local_client(
    resolver: FakeResolver | None = None,
    *,
    max_response_bytes: int = 1024 * 1024,
    ssl_context: ssl.SSLContext | None = None,
) -> SafeHttpClient:
    """A client that may reach 127.0.0.1 (the test server) and nothing else private."""
    return SafeHttpClient(
        allowed_private_hosts={"127.0.0.1"},
        resolver=resolver or FakeResolver(),
        max_response_bytes=max_response_bytes,
        ssl_context=ssl_context,
    )


# --- refusals before any connection -------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "a loopback address 127.0.0.1"),
        ("http://10.0.0.1/", "a private address 10.0.0.1"),
        ("http://172.16.0.1/", "a private address 172.16.0.1"),
        ("http://192.168.1.1/", "a private address 192.168.1.1"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address 169.254.169.254"),
        ("http://[::1]/", "a loopback address ::1"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address 127.0.0.1 (inside ::ffff:7f00:1)"),
        ("http://[::ffff:10.0.0.1]:8080/", "a private address 10.0.0.1"),
        ("http://100.64.0.1/", "a CGNAT address 100.64.0.1"),
        ("http://0.0.0.0/", "an unspecified address 0.0.0.0"),
        ("http://[::]/", "an unspecified address ::"),
        ("http://[fe80::1]/", "a link-local address fe80::1"),
        ("http://[fd00::1]/", "a unique-local address fd00::1"),
        ("http://[64:ff9b::a00:1]/", "a private address 10.0.0.1"),
        ("http://[2002:a9fe:a9fe::]/", "a link-local address 169.254.169.254"),
        ("http://192.88.99.1/", "a 6to4 relay address 192.88.99.1"),
        ("http://224.0.0.1/", "a multicast address 224.0.0.1"),
        ("http://[ff02::1]/", "a multicast address ff02::1"),
        ("http://240.0.0.1/", "a reserved address 240.0.0.1"),
        ("https://192.0.2.1/", "a non-public address 192.0.2.1"),
    ],
)
async def test_private_literals_are_refused_without_a_lookup(url: str, reason: str) -> None:
    resolver = FakeResolver()
    client = SafeHttpClient(resolver=resolver)
    with pytest.raises(InvalidInput, match=re.escape(f"resolves to {reason}")) as caught:
        await client.request("GET", url)
    assert caught.value.field == "url"
    assert resolver.lookups == []


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("answer", [["10.1.2.3"], ["93.184.216.34", "10.1.2.3"]])
async def test_a_name_resolving_to_any_private_address_is_refused(answer: list[str]) -> None:
    client = SafeHttpClient(resolver=answering(internal__example=answer))
    with pytest.raises(
        InvalidInput, match=r"internal\.example resolves to a private address 10\.1\.2\.3"
    ):
        await client.request("POST", "https://internal.example/hook", json={"a": 1})


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/", "http://user:pw@example.com/", "http:///x"]
)
async def test_bad_urls_are_refused(url: str) -> None:
    resolver = FakeResolver()
    with pytest.raises(InvalidInput) as caught:
        await SafeHttpClient(resolver=resolver).request("GET", url)
    assert caught.value.field == "url"
    assert resolver.lookups == []


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "HEAD", "OPTIONS", "get\r\nX: y"])
async def test_unsupported_methods_are_refused(method: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await SafeHttpClient(resolver=FakeResolver()).request(method, "https://example.com/")
    assert caught.value.field == "method"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Note": "a\r\nX-Injected: 1"},
        {"X-Note": "a\nb"},
        {"X-Bad\r\nX-Injected": "1"},
        {"Bad Name": "1"},
        {"Host": "internal.example"},
        {SIGNATURE_HEADER: "t=1,v1=forged"},
    ],
)
async def test_unsafe_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        await SafeHttpClient(resolver=FakeResolver()).request(
            "GET", "https://example.com/", headers=headers
        )
    assert caught.value.field == "headers"


# --- pinning: one lookup, and the request goes where the check looked ----------------


async def test_pinning_uses_the_first_answer_even_if_the_name_rebinds() -> None:
    resolver = FakeResolver({"rebind.example": [["93.184.216.34"], ["10.0.0.1"]]})
    target = await pin_target(
        httpx.URL("https://rebind.example:8443/hook"), AddressPolicy.from_allowed(()), resolver
    )
    assert resolver.lookups == ["rebind.example"]
    assert str(target.connect_url) == "https://93.184.216.34:8443/hook"
    assert target.host_header == "rebind.example:8443"
    assert target.sni_hostname == "rebind.example"


async def test_a_rebinding_name_is_looked_up_once_and_reached_at_the_checked_address(
    server: LocalServer,
) -> None:
    # The first answer is allowed by IP; a second lookup would have said 10.0.0.1.
    resolver = FakeResolver({"rebind.example": [["127.0.0.1"], ["10.0.0.1"]]})
    client = local_client(resolver=resolver)
    response = await client.request("GET", f"http://rebind.example:{server.port}/echo")
    assert response.json()["host"] == f"rebind.example:{server.port}"
    assert resolver.lookups == ["rebind.example"]


# --- redirects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://10.0.0.1/admin", "10.0.0.1 resolves to a private address 10.0.0.1"),
        ("http://169.254.169.254/latest/", "resolves to a link-local address 169.254.169.254"),
        ("http://internal.example/", "internal.example resolves to a private address 192.168.1.5"),
        ("http://[::ffff:127.0.0.2]/", "resolves to a loopback address 127.0.0.2"),
    ],
)
async def test_a_redirect_to_a_private_address_is_refused(
    server: LocalServer, location: str, reason: str
) -> None:
    client = local_client(resolver=answering(internal__example="192.168.1.5"))
    url = str(httpx.URL(f"{server.base}/redirect", params={"to": location}))
    with pytest.raises(InvalidInput, match=re.escape(reason)):
        await client.request("GET", url)


async def test_a_redirect_to_a_non_http_scheme_is_refused(server: LocalServer) -> None:
    url = str(httpx.URL(f"{server.base}/redirect", params={"to": "file:///etc/passwd"}))
    with pytest.raises(InvalidInput, match="scheme"):
        await local_client().request("GET", url)


async def test_redirects_are_followed_with_the_right_method(server: LocalServer) -> None:
    client = local_client()
    kept = await client.request(
        "POST", f"{server.base}/redirect?status=307&to=/echo", json={"keep": True}
    )
    assert kept.json()["method"] == "POST"
    assert json.loads(kept.json()["body"]) == {"keep": True}
    assert kept.url == f"{server.base}/echo"
    changed = await client.request("POST", f"{server.base}/redirect?to=/echo", json={"x": 1})
    assert changed.json()["method"] == "GET"
    assert changed.json()["body"] == ""


async def test_credentials_do_not_follow_a_redirect_to_another_origin(server: LocalServer) -> None:
    client = local_client(resolver=answering(other__example="127.0.0.1"))
    to = f"http://other.example:{server.port}/echo"
    response = await client.request(
        "GET",
        str(httpx.URL(f"{server.base}/redirect", params={"to": to})),
        headers={"Authorization": "Bearer customer-token"},
    )
    assert response.json()["host"] == f"other.example:{server.port}"
    assert response.json()["authorization"] is None


async def test_redirect_loops_stop_after_five_hops(server: LocalServer) -> None:
    with pytest.raises(ExternalError, match="more than 5 times"):
        await local_client().request("GET", f"{server.base}/loop")


# --- allowed private hosts, signing, limits -----------------------------------------


async def test_an_allowed_private_host_is_reached_and_the_request_is_signed(
    server: LocalServer,
) -> None:
    client = SafeHttpClient(
        allowed_private_hosts={"Backend.Internal."},
        resolver=answering(backend__internal="127.0.0.1"),
        signing_secret=SECRET,
        clock=lambda: NOW,
    )
    response = await client.request(
        "POST", f"http://backend.internal:{server.port}/echo", json={"order": 42}
    )
    echoed = response.json()
    assert response.status == 200
    assert echoed["body"] == '{"order":42}'
    assert echoed["signature"].startswith(f"t={NOW},v1=")
    assert verify_signature(SECRET, echoed["signature"], echoed["body"], now=NOW + 10)
    assert not verify_signature(SECRET, echoed["signature"], '{"order":43}', now=NOW)
    assert not verify_signature("other", echoed["signature"], echoed["body"], now=NOW)
    assert not verify_signature(SECRET, echoed["signature"], echoed["body"], now=NOW + 301)
    assert not verify_signature(SECRET, "v1=abc", echoed["body"], now=NOW)


async def test_allowing_one_host_does_not_allow_another_private_one(server: LocalServer) -> None:
    client = SafeHttpClient(
        allowed_private_hosts={"backend.internal"},
        resolver=answering(backend__internal="127.0.0.1", other__internal="127.0.0.1"),
    )
    with pytest.raises(InvalidInput, match=r"other\.internal resolves to a loopback"):
        await client.request("GET", f"http://other.internal:{server.port}/echo")


@pytest.mark.parametrize("declare", ["", "1"])
async def test_responses_past_the_size_cap_are_refused(server: LocalServer, declare: str) -> None:
    client = local_client(max_response_bytes=50_000)
    with pytest.raises(ExternalError, match="larger than 50000 bytes") as caught:
        await client.request("GET", f"{server.base}/big?declare={declare}")
    assert not caught.value.retryable


async def test_a_slow_webhook_times_out(server: LocalServer) -> None:
    with pytest.raises(ExternalTimeout) as caught:
        await local_client().request("GET", f"{server.base}/hang", time_limit=0.2)
    assert caught.value.retryable


@pytest.mark.parametrize(("code", "retryable"), [(404, False), (429, True), (503, True)])
async def test_error_statuses_raise(server: LocalServer, code: int, retryable: bool) -> None:
    with pytest.raises(ExternalStatusError) as caught:
        await local_client().request("GET", f"{server.base}/status/{code}")
    assert caught.value.status == code
    assert caught.value.retryable is retryable


async def test_a_refused_connection_is_an_external_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request
    with pytest.raises(ExternalError, match="could not reach") as caught:
        await local_client().request("GET", f"http://127.0.0.1:{port}/")
    assert caught.value.retryable


# --- https: SNI and the certificate still name the host ------------------------------


def _tls_pair(hostname: str, directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a cert for ``hostname`` and a client trusting only its CA."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(*_write_pem(leaf, key, directory))
    client_ctx = ssl.create_default_context(
        cadata=ca.public_bytes(serialization.Encoding.PEM).decode()
    )
    return server_ctx, client_ctx


def _write_pem(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, directory: Path
) -> tuple[Path, Path]:
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[int, ssl.SSLContext, list[str | None]]]:
    """An https echo server for ``hooks.example`` that records the SNI it was sent."""
    server_ctx, client_ctx = _tls_pair("hooks.example", tmp_path)
    seen_sni: list[str | None] = []

    def record(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        seen_sni.append(name)

    server_ctx.sni_callback = record
    app = web.Application()
    app.router.add_route("*", "/echo", _echo)
    runner = await _start(app, server_ctx)
    try:
        yield runner.addresses[0][1], client_ctx, seen_sni
    finally:
        await runner.cleanup()


async def test_https_connects_to_the_pinned_address_with_the_hostname_as_sni(
    tls_server: tuple[int, ssl.SSLContext, list[str | None]],
) -> None:
    port, client_ctx, seen_sni = tls_server
    resolver = answering(hooks__example="127.0.0.1")
    client = local_client(resolver=resolver, ssl_context=client_ctx)
    response = await client.request("GET", f"https://hooks.example:{port}/echo")
    assert response.json()["host"] == f"hooks.example:{port}"
    assert seen_sni == ["hooks.example"]
    assert resolver.lookups == ["hooks.example"]


async def test_https_refuses_a_certificate_for_another_name(
    tls_server: tuple[int, ssl.SSLContext, list[str | None]],
) -> None:
    port, client_ctx, _ = tls_server
    client = local_client(resolver=answering(evil__example="127.0.0.1"), ssl_context=client_ctx)
    with pytest.raises(ExternalError, match="could not reach"):
        await client.request("GET", f"https://evil.example:{port}/echo")
