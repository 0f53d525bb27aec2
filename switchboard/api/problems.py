"""Errors as RFC 9457 problem details (``application/problem+json``).

The one place HTTP statuses are chosen for the exception tree in
``switchboard.errors``. Every body names the offending ``field`` when there
is one, so a client can point at it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from switchboard import errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS: list[tuple[type[errors.SwitchboardError], int]] = [
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidInput, 422),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.ExternalError, 502),
    (errors.ConfigurationError, 500),
]

TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal error",
    502: "Upstream error",
}


def problem(
    status: int,
    detail: str,
    *,
    field: str | None = None,
    errors_: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    if errors_:
        body["errors"] = errors_
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {})
    )


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_problem(raw: Sequence[Any], *, prefix: tuple[str, ...] = ()) -> JSONResponse:
    items = []
    for err in raw:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            return problem(
                400, f"malformed JSON: {err.get('ctx', {}).get('error', '')}".strip(), field="body"
            )
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, errors.SwitchboardError):
            # A validator that knows the exact place (a flow's "nodes.2.transitions.0.to")
            # raised one of ours: show its words and its field, not "Value error, ...".
            where = loc + tuple(cause.field.split(".")) if cause.field else loc
            items.append({"field": _field_path(prefix + where), "message": cause.message})
            continue
        items.append({"field": _field_path(prefix + loc), "message": err.get("msg", "invalid")})
    first = items[0] if items else {"field": "body", "message": "invalid"}
    detail = f"{first['field']}: {first['message']}"
    if len(items) > 1:
        detail += f" (and {len(items) - 1} more)"
    return problem(422, detail, field=first["field"], errors_=items)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem response."""

    @app.exception_handler(errors.SwitchboardError)
    async def _known(_: Request, exc: errors.SwitchboardError) -> JSONResponse:
        status = next((code for cls, code in STATUS if isinstance(exc, cls)), 500)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status >= 500:
            log.error("request failed: %s", exc.message)
        return problem(status, exc.message, field=exc.field, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(exc.errors())

    @app.exception_handler(ValidationError)
    async def _model_invalid(_: Request, exc: ValidationError) -> JSONResponse:
        # Raised by services validating merged state (a PATCH result, stored credentials).
        return validation_problem(exc.errors())

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "internal error; the server log has the details")
