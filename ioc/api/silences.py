"""Silences: list, create, expire (operator); matchers as text or objects, RE2 patterns.

Roles: ``viewer`` lists, ``operator`` (and ``admin``) creates and expires. Creating and
expiring go through :mod:`alerts.store` (one transaction with the audit entry).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, Field

from alerts import store
from alerts.durations import parse_duration
from alerts.errors import AlertNotFoundError
from alerts.silences import MAX_MATCHERS, MAX_NAME, MAX_TEXT, MAX_VALUE, Matcher, Silence
from ioc.api.deps import OperatorKey, ResourcesDep, ViewerKey
from ioc.api.errors import BadRequestError, NotFoundError
from ioc.api.inputs import body_doc, read_model

log = logging.getLogger("ioc.api.silences")

MAX_SILENCE: Final = timedelta(days=366)
"""Longest silence (ends_at - starts_at); starts_at at most this far from now either."""

router = APIRouter(tags=["alerts"])


class MatcherIn(BaseModel):
    name: str = Field(max_length=MAX_NAME)
    op: str = Field("=", pattern=r"^(=|!=|=~|!~)$")
    value: str = Field(max_length=MAX_VALUE)


MatcherText = Annotated[str, Field(max_length=MAX_TEXT)]
"""A matcher as text, bounded before it is parsed."""


class SilenceIn(BaseModel):
    matchers: list[MatcherText | MatcherIn] = \
        Field(min_length=1, max_length=MAX_MATCHERS,
              description='Matchers as text (`commune_code="00004"`, `rule_id=~"pm25_.*"`, '
              "RE2 syntax) or objects {name, op, value}.")
    starts_at: AwareDatetime | None = Field(None, description="Default: now.")
    ends_at: AwareDatetime | None = None
    duration: str | None = Field(None, max_length=32,
                                 description="Instead of ends_at: 30m, 2h, 1d ...")
    comment: str = Field("", max_length=2000)


class SilenceOut(BaseModel):
    id: int
    matchers: list[dict[str, str]]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    expired_by: str | None

    @classmethod
    def of(cls, s: Silence) -> SilenceOut:
        return cls(id=s.id, matchers=[m.to_json() for m in s.matchers], starts_at=s.starts_at,
                   ends_at=s.ends_at, created_by=s.created_by, comment=s.comment,
                   expired_by=s.expired_by)


def parse_matcher(m: str | MatcherIn) -> Matcher:
    try:
        if isinstance(m, str):
            return Matcher.parse(m)
        return Matcher.from_json(m.model_dump())
    except (ValueError, KeyError) as exc:
        raise BadRequestError(str(exc), code="bad_matcher") from exc


def parse_matchers(matchers: Sequence[str | MatcherIn]) -> list[Matcher]:
    """Every matcher of a body, parsed; 400 ``bad_matcher`` at the first bad one."""
    return [parse_matcher(m) for m in matchers]


@router.get("/v1/silences", response_model=list[SilenceOut], summary="List silences")
async def list_silences(_key: ViewerKey, res: ResourcesDep,
                        include_expired: bool = False) -> list[SilenceOut]:
    async with res.pool.connection() as conn:
        found = await store.list_silences(conn, include_expired=include_expired)
    return [SilenceOut.of(s) for s in found]


@router.post("/v1/silences", response_model=SilenceOut, status_code=201,
             summary="Create a silence", responses={400: {"description": "Bad matcher/time"}},
             openapi_extra=body_doc(SilenceIn, required=True))
async def create_silence(request: Request, key: OperatorKey, res: ResourcesDep) -> SilenceOut:
    body = await read_model(request, SilenceIn)
    assert body is not None  # not optional
    matchers = parse_matchers(body.matchers)
    now = datetime.now(UTC)
    starts = body.starts_at or now
    try:
        if abs(starts - now) > MAX_SILENCE:
            raise BadRequestError(f"starts_at is more than {MAX_SILENCE.days} days from now",
                                  code="bad_duration")
        if body.ends_at is not None:
            ends = body.ends_at
        elif body.duration is not None:
            ends = starts + parse_duration(body.duration)
        else:
            raise BadRequestError("give ends_at or duration", code="missing_end")
        if ends - starts > MAX_SILENCE:
            raise BadRequestError(f"a silence lasts at most {MAX_SILENCE.days} days",
                                  code="bad_duration")
    except (ValueError, OverflowError) as exc:
        raise BadRequestError(f"bad duration or time: {str(exc)[:200]}",
                              code="bad_duration") from None
    async with res.pool.connection() as conn:
        try:
            silence = await store.create_silence(conn, matchers, starts_at=starts, ends_at=ends,
                                                 created_by=key.name, comment=body.comment)
        except ValueError as exc:
            raise BadRequestError(str(exc), code="bad_silence") from exc
    log.info("silence created", extra={"key": key.name, "silence": silence.id})
    return SilenceOut.of(silence)


@router.delete("/v1/silences/{silence_id}", response_model=SilenceOut,
               summary="Expire a silence now", responses={404: {"description": "Unknown"}})
async def expire_silence(silence_id: int, key: OperatorKey, res: ResourcesDep) -> SilenceOut:
    async with res.pool.connection() as conn:
        try:
            silence = await store.expire_silence(conn, silence_id, key.name)
        except AlertNotFoundError as exc:
            raise NotFoundError(str(exc)) from exc
    log.info("silence expired", extra={"key": key.name, "silence": silence_id})
    return SilenceOut.of(silence)
