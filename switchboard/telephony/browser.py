"""The browser phone: calls from a web page, over our own media socket.

There is no carrier in between, so no webhooks: the page asks our API for a
call, gets the media URL and the call's short-lived stream token
(``switchboard.telephony.streams``), opens the socket and sends
``{"type":"start","token":"..."}`` first. Audio is PCM16 16 kHz both ways
(``BrowserFrameSerializer``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from switchboard.telephony.carrier import MediaEndpoint, StreamStart
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.serializers import BrowserFrameSerializer
from switchboard.telephony.streams import STREAM_TOKEN

log = logging.getLogger(__name__)

PCM16 = "audio/l16"  # what the page sends: 16-bit little-endian PCM, 16 kHz, mono


class BrowserEndpoint(MediaEndpoint):
    """A web page with a microphone: a media socket only (no webhooks, no REST), PCM16 16 kHz.

    It is not a phone carrier: it cannot be dialled, transferred or hung up over
    an API, and closing its socket ends its call.
    """

    name = CarrierName.BROWSER
    sample_rate = BrowserFrameSerializer.SAMPLE_RATE
    stream_formats = frozenset({(PCM16, BrowserFrameSerializer.SAMPLE_RATE)})

    @classmethod
    def parse_stream_start(cls, message: Mapping[str, object]) -> StreamStart | None:
        """The page's opening ``{"type":"start","token":...}``; the token travels in
        ``custom_parameters`` and is checked like every carrier's stream token."""
        if message.get("type") != "start":
            return None
        token = message.get("token")
        if not isinstance(token, str) or not token:
            log.warning("browser media: skipped a start message without a token")
            return None
        stream_id = message.get("stream_id")
        return StreamStart(
            stream_id=stream_id if isinstance(stream_id, str) and stream_id else uuid.uuid4().hex,
            carrier_call_id=None,
            custom_parameters={STREAM_TOKEN: token},
            sample_rate=cls.sample_rate,
            encoding=PCM16,
        )

    def serializer(self, start: StreamStart) -> BrowserFrameSerializer:
        return BrowserFrameSerializer()
