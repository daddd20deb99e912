"""Reading request inputs: JSON bodies after authentication, multi-valued query filters.

Bodies are read after authentication (never as FastAPI body parameters, which are read
and parsed before any dependency runs), within ``api.max_operator_body_bytes``; routes
that read their body this way document it with :func:`body_doc`.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel, ValidationError

from ioc.api.errors import BadRequestError
from ioc.api.ingest import read_body

M = TypeVar("M", bound=BaseModel)

Multi = Annotated[list[str] | None, Query()]
"""A query filter given repeated or comma-separated (``state=firing,acknowledged``)."""


async def read_model(request: Request, model: type[M], *,
                     optional: bool = False) -> M | None:
    """The request's JSON body as ``model``, read now (after authentication) and
    within the body limit; 400 ``bad_body`` when it is not one."""
    limit = request.app.state.resources.settings.api.max_operator_body_bytes
    body = await read_body(request.stream(), limit=limit,
                           content_length=request.headers.get("content-length"))
    if not body.strip():
        if optional:
            return None
        raise BadRequestError("a JSON body is required", code="bad_body")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        problems = [{"loc": [str(x) for x in e["loc"]], "msg": e["msg"]}
                    for e in exc.errors(include_url=False, include_input=False)][:20]
        raise BadRequestError("the body does not match the schema", code="bad_body",
                              detail=problems) from None


def query_values(raw: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated query values, flattened (None when absent)."""
    if not raw:
        return None
    out = [v.strip() for item in raw for v in item.split(",") if v.strip()]
    return out or None


def body_doc(model: type[BaseModel], *, required: bool) -> dict[str, Any]:
    """OpenAPI request body of a route that reads its body itself (after auth); the
    model's ``$defs`` are inlined (their ``#/$defs/...`` refs mean nothing in OpenAPI)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"requestBody": {"required": required, "content": {
        "application/json": {"schema": inline(schema)}}}}
