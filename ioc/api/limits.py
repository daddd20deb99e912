"""Body limits for every route, enforced while the body is read (an ASGI middleware).

``POST /v1/events`` may carry ``api.max_body_bytes``; every other route
``api.max_operator_body_bytes``. A declared ``Content-Length`` above the limit is
refused (413) before anything is read; a body without one (chunked) is counted as it
arrives and reading stops with 413 at the first byte past the limit. Nothing here reads
a body: routes read it after authentication, so an unauthenticated client can at most
make the server hold ``limit`` bytes it then discards.
"""

from __future__ import annotations

from typing import Any

import orjson

from ioc.api.errors import PayloadTooLargeError

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyTooLargeError(PayloadTooLargeError):
    """Raised from ``receive`` once a body passes its limit (answered with 413)."""


class BodyLimit:
    """Pure ASGI middleware: per-route body limits, counted while reading."""

    def __init__(self, app: Any, *, ingest_limit: int, other_limit: int,
                 ingest_path: str = "/v1/events") -> None:
        self.app = app
        self.ingest_limit = ingest_limit
        self.other_limit = other_limit
        self.ingest_path = ingest_path

    def limit_for(self, path: str) -> int:
        ingest = path == self.ingest_path or path.startswith("/ngsi-ld/")
        return self.ingest_limit if ingest else self.other_limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(str(scope.get("path", "")))
        declared = _content_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            await _refuse(send, f"the body is {declared} bytes; the limit is {limit}"
                          if declared >= 0 else "Content-Length is not a number")
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message: Message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError(
                        f"the body is larger than the limit of {limit} bytes")
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


async def _refuse(send: Any, message: str) -> None:
    body = orjson.dumps({"error": "payload_too_large", "message": message})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
