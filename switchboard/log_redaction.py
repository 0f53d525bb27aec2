"""Secrets that ride in URLs never reach a log line.

Exotel cannot sign its requests, so every URL we give it carries the
workspace's webhook secret as ``?token=``; media sockets carry a stream token
and Vobiz transfer URLs a transfer token. Uvicorn's access log (and its
WebSocket log, on ``uvicorn.error``) print the path with its query string:
this filter rewrites those values before any handler formats the record.
"""

from __future__ import annotations

import logging
import re

SECRET_QUERY_PARAMETERS = ("token", "stream_token", "transfer_token")
REDACTED = "[redacted]"
_SECRET_VALUE = re.compile(
    r"(?P<name>(?:^|[?&;])(?:" + "|".join(SECRET_QUERY_PARAMETERS) + r")=)[^&\s\"']*"
)
# The loggers that print request paths: access lines, and WebSocket accept/reject lines.
URL_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact_url_secrets(text: str) -> str:
    """``text`` with the values of secret query parameters replaced."""
    return _SECRET_VALUE.sub(lambda match: match.group("name") + REDACTED, text)


class RedactUrlSecrets(logging.Filter):
    """Redacts secret query values in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_url_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def install() -> None:
    """Attach the filter to the loggers that print URLs (once per process)."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactUrlSecrets) for f in logger.filters):
            logger.addFilter(RedactUrlSecrets())
