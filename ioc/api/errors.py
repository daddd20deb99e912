"""Errors of the HTTP API, each carrying its HTTP status and a stable error code.

    ioccore.errors.IocError
     └── ApiError               root: ``status``, ``code``, ``message``
          ├── BadRequestError        400 the body cannot be read as events / bad parameters
          ├── UnauthorizedError      401 no key, an unknown key or a revoked key
          ├── ForbiddenError         403 the key's role or department does not allow this
          ├── NotFoundError          404 no such alert or silence
          ├── ConflictError          409 the action does not apply in the current state
          ├── PayloadTooLargeError   413 the body exceeds ``api.max_body_bytes``
          ├── UnsupportedMediaError  415 neither application/json nor application/x-ndjson
          ├── RateLimitedError       429 the key's token bucket is empty (``retry_after``)
          └── UnavailableError       503 Kafka or the database does not answer

The app turns every one into ``{"error": code, "message": ...}`` with its status.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ioccore.errors import IocError


class ApiError(IocError):
    """Root of the errors the API answers with; ``status`` is the HTTP status."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None,
                 detail: Any = None) -> None:
        self.code = code or self.default_code
        self.message = message
        self.detail = detail
        super().__init__(f"{self.code}: {message}")

    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.detail is not None:
            out["detail"] = self.detail
        return out


class BadRequestError(ApiError):
    status = 400
    default_code = "bad_request"


class UnauthorizedError(ApiError):
    status = 401
    default_code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="ioc"'}


class ForbiddenError(ApiError):
    status = 403
    default_code = "forbidden"


class NotFoundError(ApiError):
    status = 404
    default_code = "not_found"


class ConflictError(ApiError):
    status = 409
    default_code = "conflict"


class PayloadTooLargeError(ApiError):
    status = 413
    default_code = "payload_too_large"


class UnsupportedMediaError(ApiError):
    status = 415
    default_code = "unsupported_media_type"


class RateLimitedError(ApiError):
    status = 429
    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        wait = min(self.retry_after, 3600.0)  # inf when a bucket never refills
        return {"Retry-After": str(max(1, int(-(-wait // 1))))}


class UnavailableError(ApiError):
    status = 503
    default_code = "unavailable"


class BackloggedError(UnavailableError):
    """503 with ``Retry-After``: the pipeline is behind and the request waited long enough."""

    default_code = "pipeline_backlogged"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, int(-(-min(self.retry_after, 3600.0) // 1))))}
