"""Tools an agent can call during a phone call, starting with webhooks."""

from switchboard.tools.safe_http import (
    SIGNATURE_HEADER,
    SafeHttpClient,
    ToolResponse,
    sign,
    verify_signature,
)

__all__ = ["SIGNATURE_HEADER", "SafeHttpClient", "ToolResponse", "sign", "verify_signature"]
