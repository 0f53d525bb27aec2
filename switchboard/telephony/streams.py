"""Where a call's media goes, and the secret that lets only its carrier open it.

Every answer (TwiML, ExoML's JSON, Vobiz XML, the browser API's reply) names
``/media/{carrier}/{call_id}`` and carries a stream token bound to that call,
carrier and workspace: Twilio echoes it from a ``<Parameter>`` in the start
message's ``customParameters``, Exotel and Vobiz from the socket URL's query
string, a browser sends it in its own start message. The socket is refused
without it, so a call id alone opens nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from switchboard.config import Settings
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.tokens import check_token, issue_token

STREAM_TOKEN = "stream_token"
"""The parameter name the token travels under, in every carrier's answer."""
_PURPOSE = "media-stream"


def media_url(public_url: str, carrier: CarrierName, call_id: str) -> str:
    """``wss://`` for https public URLs, ``ws://`` for plain http (local development)."""
    parts = urlsplit(public_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/media/{carrier.value}/{call_id}"


def issue_stream_token(
    settings: Settings, call_id: str, carrier: CarrierName, workspace_id: str
) -> str:
    """The token for one call's media socket; it lives as long as the call may ring unanswered."""
    return issue_token(
        settings.encryption_key,
        _PURPOSE,
        (call_id, carrier.value, workspace_id),
        settings.media_connect_timeout_seconds,
    )


def check_stream_token(
    settings: Settings, token: str, call_id: str, carrier: CarrierName, workspace_id: str
) -> None:
    """Raise ``Unauthenticated`` unless ``token`` opens this call's socket on this carrier."""
    check_token(settings.encryption_key, token, _PURPOSE, (call_id, carrier.value, workspace_id))


def offered_stream_token(custom_parameters: Mapping[str, str], query: Mapping[str, str]) -> str:
    """The token a socket presents: in its start message's parameters, else its URL's query."""
    return custom_parameters.get(STREAM_TOKEN) or query.get(STREAM_TOKEN) or ""
