"""The operator console's single page, served from the built bundle at ``/console``.

The bundle (``console/`` npm project, built by ``make setup`` into
``ioc/api/console_static/``, git-ignored and packaged as package data) is a static
page: nothing is fetched from the internet at runtime, so the headers forbid it
(``Content-Security-Policy``: scripts, styles, data and images from this origin only,
plus the optional tile server of ``api.console_tile_url``). ``/`` redirects here.

The API key never travels in a URL: the page keeps it in ``sessionStorage`` and sends
it as ``Authorization: Bearer`` on every call, the live stream included (read with
``fetch``, since ``EventSource`` cannot send headers).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from ioc.api.deps import ResourcesDep

STATIC: Final = Path(__file__).with_name("console_static")
"""Where ``console/build.mjs`` writes the bundle."""

_MISSING: Final = (
    "<!doctype html><html lang='vi'><meta charset='utf-8'><title>IOC console</title>"
    "<p>Bảng điều khiển chưa được dựng. Chạy <code>make setup</code> (npm ci + build)."
    "<p>The console is not built. Run <code>make setup</code> (npm ci + build).</html>")

router = APIRouter(tags=["console"], include_in_schema=False)


def _tile_origin(url: str | None) -> str:
    if not url:
        return ""
    parts = urlsplit(url.replace("{s}", "a").replace("{z}", "0").replace("{x}", "0")
                     .replace("{y}", "0"))
    return f" {parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def security_headers(tile_url: str | None) -> dict[str, str]:
    """Headers of every console answer: same-origin only, no framing, no sniffing."""
    tiles = _tile_origin(tile_url)
    csp = ("default-src 'self'; script-src 'self'; style-src 'self'; "
           f"img-src 'self' data:{tiles}; connect-src 'self'; font-src 'self'; "
           "media-src 'self' data:; object-src 'none'; base-uri 'none'; "
           "frame-ancestors 'none'; form-action 'none'")
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
            "Cache-Control": "no-cache"}


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


@router.get("/favicon.ico")
async def favicon() -> Response:
    """The console's icon (browsers ask the origin's root for it); 404 without a build."""
    path = STATIC / "favicon.ico"
    if not path.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(path, media_type="image/x-icon", headers={"Cache-Control": "max-age=86400"})


@router.get("/console")
async def console_bare() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


@router.get("/console/")
async def console_index(res: ResourcesDep) -> Response:
    headers = security_headers(res.settings.api.console_tile_url)
    index = STATIC / "index.html"
    if not index.is_file():
        return Response(_MISSING, media_type="text/html; charset=utf-8", status_code=503,
                        headers=headers)
    return FileResponse(index, media_type="text/html; charset=utf-8", headers=headers)


@router.get("/console/{asset:path}")
async def console_asset(asset: str, res: ResourcesDep) -> Response:
    """A file of the bundle; anything outside it (``..``, absolute paths) is a 404."""
    root = STATIC.resolve()
    path = (root / asset).resolve()
    headers = security_headers(res.settings.api.console_tile_url)
    if not path.is_relative_to(root) or not path.is_file():
        return Response("not found", status_code=404, media_type="text/plain",
                        headers=headers)
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, headers=headers)
