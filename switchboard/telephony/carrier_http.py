"""HTTP with carriers, both ways: calling their REST APIs and reading their webhooks.

One way to call out, so every carrier maps failures the same way: a timeout
becomes ``ExternalTimeout``, an unreachable host a retryable ``ExternalError``
and an error status ``ExternalStatusError`` (retryable for 408, 429 and 5xx).
Messages name the carrier, the method and the path, never credentials or the
query string.
"""

from __future__ import annotations

import json as json_module
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx

from switchboard.errors import ExternalError, ExternalStatusError, ExternalTimeout, InvalidInput
from switchboard.telephony.carrier import WebhookRequest

_DETAIL_LIMIT = 200


def webhook_fields(request: WebhookRequest) -> dict[str, str]:
    """A webhook's fields: query string, then form, then a JSON object body (later wins)."""
    fields = {name: values[-1] for name, values in parse_qs(urlsplit(request.url).query).items()}
    fields.update(request.form)
    if not request.form and request.body.lstrip().startswith(b"{"):
        try:
            body = json_module.loads(request.body)
        except ValueError:
            body = None
        if isinstance(body, dict):
            fields.update({k: str(v) for k, v in body.items() if isinstance(v, str | int | float)})
    return fields


def required_field(fields: Mapping[str, str], *names: str) -> str:
    """The first of ``names`` present and non-empty; ``InvalidInput`` naming the first if none."""
    for name in names:
        value = fields.get(name)
        if value:
            return value
    raise InvalidInput(f"the carrier's request has no {names[0]}", field=names[0])


def with_query(url: str, extra: Mapping[str, str]) -> str:
    """``url`` with ``extra`` added to (or replacing names in) its query string."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in extra]
    return urlunsplit(parts._replace(query=urlencode([*query, *extra.items()])))


def path_segment(value: str) -> str:
    """``value`` quoted for use as one URL path segment (a call id from a webhook)."""
    return quote(value, safe="")


async def call_carrier_api(
    http: httpx.AsyncClient,
    carrier: str,
    method: str,
    url: str,
    *,
    auth: httpx.Auth | tuple[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, Any] | None = None,
    json: Any = None,
) -> httpx.Response:
    """Send one request to ``carrier``'s API; raise an ``ExternalError`` unless it succeeded."""
    where = f"{method} {urlsplit(url).path}"
    try:
        response = await http.request(method, url, auth=auth, headers=headers, data=data, json=json)
    except httpx.TimeoutException as exc:
        raise ExternalTimeout(f"{carrier} API did not answer {where} in time") from exc
    except httpx.TransportError as exc:
        raise ExternalError(
            f"{carrier} API unreachable for {where}: {type(exc).__name__}", retryable=True
        ) from exc
    if response.is_error:
        raise ExternalStatusError(
            f"{carrier} API answered {response.status_code} to {where}{_detail(response)}",
            status=response.status_code,
            code=_error_code(response),
        )
    return response


def response_json(response: httpx.Response, carrier: str) -> dict[str, Any]:
    """The JSON object a successful call returned; ``ExternalError`` if it is not one."""
    try:
        body = response.json()
    except ValueError as exc:
        raise ExternalError(f"{carrier} API answered with a body that is not JSON") from exc
    if not isinstance(body, dict):
        raise ExternalError(f"{carrier} API answered with JSON that is not an object")
    return body


def _error_code(response: httpx.Response) -> str | None:
    """The carrier's own error code: Twilio's ``code`` (21211), Plivo's ``error_code``, or one
    level down in Vobiz's ``error`` and Exotel's ``RestException``."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    for key in ("code", "error_code", "ErrorCode"):
        value = body.get(key)
        if isinstance(value, int | str) and str(value):
            return str(value)[:32]
    # Vobiz {"error": {"code": ...}}, Exotel {"RestException": {"Code": ...}}
    for key in ("error", "RestException"):
        nested = body.get(key)
        if isinstance(nested, dict):
            value = nested.get("code", nested.get("Code"))
            if isinstance(value, int | str) and str(value):
                return str(value)[:32]
    return None


def _detail(response: httpx.Response) -> str:
    """The carrier's own explanation (Twilio ``message``, Plivo ``error``), shortened."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    for key in ("message", "error", "error_message", "RestException"):
        value = body.get(key)
        if isinstance(value, dict):
            value = value.get("Message") or value.get("message")
        if isinstance(value, str) and value:
            return f": {value[:_DETAIL_LIMIT]}"
    return ""
