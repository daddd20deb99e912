"""Security headers on every answer of the API's origin (the console shares it).

The console page sets its own Content-Security-Policy (``ioc.api.console``); every other
answer (JSON, the event stream, errors) gets a policy that allows nothing to load or
run, and is never framed or sniffed: a JSON answer opened as a page cannot become
script. The interactive ``/docs`` and ``/redoc`` pages are not served (they load
JavaScript from a public CDN); ``/openapi.json`` is (issue 24, finding 10).
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BASELINE: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; "
                                 b"base-uri 'none'; form-action 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


class SecurityHeaders:
    """Pure ASGI middleware: adds each :data:`BASELINE` header the app did not set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {name.lower() for name, _ in headers}
                headers.extend(h for h in BASELINE if h[0] not in have)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
