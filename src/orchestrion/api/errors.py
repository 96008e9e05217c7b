"""Domain errors to HTTP, in one place: `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrion.exceptions import (
    AuthError,
    ConflictError,
    NotFoundError,
    OrchestrionError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ValidationError,
)

logger = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[OrchestrionError], int], ...] = (
    (PermissionDeniedError, 403),
    (AuthError, 401),
    (ValidationError, 422),
    (PayloadTooLargeError, 413),
    (NotFoundError, 404),
    (ConflictError, 409),
)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error envelope."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def status_for(exc: OrchestrionError) -> int:
    """HTTP status of a domain error (500 for anything unexpected)."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers."""

    @app.exception_handler(OrchestrionError)
    async def _domain(_request: Request, exc: OrchestrionError) -> JSONResponse:
        status = status_for(exc)
        if status == 500:
            logger.error("unhandled domain error: %s", exc.code)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), status_code=status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or "body"
        fields = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
                or "body",
                "message": e.get("msg", ""),
            }
            for e in errors[:20]
        ]
        return JSONResponse(
            error_body(
                "validation_error",
                f"{field}: {first.get('msg', 'invalid')}",
                {"field": field, "errors": fields},
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 406: "not_acceptable", 413: "payload_too_large"}
        return JSONResponse(
            error_body(codes.get(exc.status_code, "http_error"), str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)
