"""Local peers of the carriers' REST APIs, built from their documented behaviour.

Each peer is an ASGI app that authenticates, validates and answers as its
carrier documents (its module's docstring cites the pages), records every
request for assertions, and plays the phone network's side: moving a call
along and producing the status callbacks the carrier would send. Tests reach
one in-process with ``peer.client()`` (``httpx.ASGITransport``).
"""

from tests.peers.base import Callback, CarrierPeer, RecordedRequest, silent_server, unreachable_url
from tests.peers.exotel_api import ExotelPeer
from tests.peers.twilio_api import TwilioPeer
from tests.peers.vobiz_api import VobizPeer

__all__ = [
    "Callback",
    "CarrierPeer",
    "ExotelPeer",
    "RecordedRequest",
    "TwilioPeer",
    "VobizPeer",
    "silent_server",
    "unreachable_url",
]
