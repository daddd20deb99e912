"""The console's one extra dependency: any valid key, department keys included.

``/v1/console/me`` and the feed-health page answer department keys too (a department
reads its own feeds' health and rejections there); everything else of the console uses
the operator API's role dependencies.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from ioc.api.auth import ApiKey
from ioc.api.deps import Resources, authenticate, bearer_scheme, get_resources


async def require_any_key(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    res: Annotated[Resources, Depends(get_resources)],
) -> ApiKey:
    """A valid key of any role (401 without one, 429 past the rate limit)."""
    return await authenticate(request, creds, res)


AnyKey = Annotated[ApiKey, Depends(require_any_key)]
