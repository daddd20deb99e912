"""The live alert stream (``GET /v1/alerts/stream``), server-sent events.

One ``transition`` event per row stored in ``alert_transitions``, found by polling every
second with keyset paging on ``(recorded_at, fingerprint, seq)`` over a window that
overlaps the last 30 s (a transaction that commits late is still seen, once). Every page
advances the key, so any number of transitions sharing one ``recorded_at`` is read once
and the loop always sleeps between polls. The event id is
``<recorded_at>|<fingerprint>|<seq>``; a client reconnecting with ``Last-Event-ID``
continues after it (an id that is not one of these is refused with 400 before the stream
starts). Streams are capped per key and per process (429), and the key is checked again
on every poll, so a revoked key's streams end within the key cache's lifetime.

A stream's cost is bounded whatever the client sends (issue 24, finding 6): an id older
than :data:`REPLAY_MAX` is clamped to that window, and the stream then opens with an
``event: gap`` (reload the board: transitions before it are not replayed); one poll
reads at most :data:`PAGES_PER_POLL` pages and continues after the last key read at
the next poll; the memory of transitions already sent (the overlap window's duplicates)
holds at most :data:`SEEN_MAX` entries, the oldest forgotten first.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from psycopg.rows import dict_row
from starlette.background import BackgroundTask

from ioc.api.alerts import TransitionOut
from ioc.api.deps import Resources, ResourcesDep, ViewerKey, bearer_scheme
from ioc.api.errors import BadRequestError, RateLimitedError
from ioc.api.inputs import Multi, query_values
from ioccore.events.validate import FORBIDDEN_CHARS

POLL_S: Final = 1.0
OVERLAP: Final = timedelta(seconds=30)
HEARTBEAT_S: Final = 15.0
PAGE: Final = 1000
PAGES_PER_POLL: Final = 5
"""Pages one poll reads at most; a longer catch-up continues at the next poll."""
REPLAY_MAX: Final = timedelta(hours=1)
"""Oldest Last-Event-ID honoured (the console's board covers the last hour)."""
SEEN_MAX: Final = 20_000
"""Transitions remembered to skip the overlap window's repeats."""
_EVENT_ID_MAX: Final = 200

router = APIRouter(tags=["alerts"])


@router.get("/v1/alerts/stream", summary="Live alert transitions (server-sent events)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`event: transition` with a JSON transition."},
                       400: {"description": "Last-Event-ID is not an id of this stream."},
                       429: {"description": "Too many open streams (key or process)."}})
async def stream_alerts(
    request: Request, key: ViewerKey, res: ResourcesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    severity: Multi = None, commune: Multi = None, province: Multi = None, rule: Multi = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    since = parse_event_id(last_event_id) if last_event_id else None
    filters = {"severity": query_values(severity),
               "commune_code": query_values(commune),
               "province_code": query_values(province), "rule_id": query_values(rule)}
    api = res.settings.api
    if res.streams.get(key.id, 0) >= api.max_streams_per_key:
        raise RateLimitedError(f"at most {api.max_streams_per_key} open streams per key",
                               retry_after=POLL_S * 5, code="too_many_streams")
    if sum(res.streams.values()) >= api.max_streams:
        raise RateLimitedError("too many open streams; retry later", retry_after=POLL_S * 5,
                               code="too_many_streams")
    token = creds.credentials if creds is not None else ""
    slot = _StreamSlot(res, key.id)
    return StreamingResponse(
        _counted(slot, _transitions(request, res, token, since, filters)),
        media_type="text/event-stream", background=BackgroundTask(slot.release),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


StreamKey = tuple[datetime, str, int]


def parse_event_id(text: str) -> StreamKey:
    """``<recorded_at>|<fingerprint>|<seq>`` (or a bare ``recorded_at`` of older
    clients); 400 ``bad_last_event_id`` for anything else."""
    bad = BadRequestError("Last-Event-ID is not an id from this stream",
                          code="bad_last_event_id")
    if len(text) > _EVENT_ID_MAX or FORBIDDEN_CHARS.search(text):
        raise bad
    parts = text.split("|")
    try:
        at = datetime.fromisoformat(parts[0])
        if at.tzinfo is None:
            raise bad
        at.astimezone(UTC)  # OverflowError at the edges of the calendar
        if len(parts) == 1:
            return (at, "", -1)
        if len(parts) != 3 or not parts[1]:
            raise bad
        seq = int(parts[2])
    except (ValueError, OverflowError):
        raise bad from None
    if not -1 <= seq < 2**62:
        raise bad
    return (at, parts[1], seq)


def event_id(k: StreamKey) -> bytes:
    return f"{k[0].isoformat()}|{k[1]}|{k[2]}".encode()


class _StreamSlot:
    """One open stream of a key, taken now and given back once (by the stream's end or
    the response's background task, whichever comes first: a client that disconnects
    before the first byte never starts the generator)."""

    def __init__(self, res: Resources, key_id: int) -> None:
        self.res, self.key_id, self.held = res, key_id, True
        res.streams[key_id] = res.streams.get(key_id, 0) + 1

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        left = self.res.streams.get(self.key_id, 1) - 1
        if left > 0:
            self.res.streams[self.key_id] = left
        else:
            self.res.streams.pop(self.key_id, None)


async def _counted(slot: _StreamSlot, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``stream``, with its slot released however it ends."""
    try:
        async for chunk in stream:
            yield chunk
    finally:
        slot.release()


async def _transitions(request: Request, res: Resources, token: str,
                       since: StreamKey | None, filters: Mapping[str, list[str] | None]
                       ) -> AsyncIterator[bytes]:
    where = ["(recorded_at, fingerprint, seq) > (%s, %s, %s)"]
    params: list[Any] = []
    for column, values in filters.items():
        if values is not None:
            if column in ("commune_code", "province_code"):
                where.append(f"labels->>'{column}' = ANY(%s)")
            else:
                where.append(f"{column} = ANY(%s)")
            params.append(values)
    sql = ("SELECT * FROM alert_transitions WHERE " + " AND ".join(where)
           + f" ORDER BY recorded_at, fingerprint, seq LIMIT {PAGE}")
    async with res.pool.connection() as conn:  # the clock recorded_at is written with
        cur0 = await conn.execute("SELECT clock_timestamp()")
        row0 = await cur0.fetchone()
    now: datetime = row0[0] if row0 else datetime.now(UTC)
    gap = b""
    if since is None:
        since = (now, "", -1)
    elif since[0] < now - REPLAY_MAX:
        gap = (b"event: gap\ndata: " + orjson.dumps({
            "asked": since[0].isoformat(), "from": (now - REPLAY_MAX).isoformat(),
            "reason": "Last-Event-ID older than the replay window; reload the board"})
            + b"\n\n")
        since = (now - REPLAY_MAX, "", -1)
    floor = since
    newest: datetime = since[0]
    resume: StreamKey | None = None
    """Where the previous poll stopped when it hit PAGES_PER_POLL."""
    seen: OrderedDict[tuple[str, int, str], datetime] = OrderedDict()
    yield b"retry: 2000\n: connected\n\n" + gap
    idle = 0.0
    while not await request.is_disconnected():
        if await res.keys.authenticate(token) is None:
            yield b"event: revoked\ndata: {}\n\n"  # the key was revoked: end the stream
            return
        # keyset pages over [newest - OVERLAP, now]: each page starts after the last key
        # read, so transitions sharing a recorded_at are never re-read within a poll
        start = resume or max(floor, (newest - OVERLAP, "", -1))
        resume = None
        sent = False
        for page in range(PAGES_PER_POLL):
            async with res.pool.connection() as conn, \
                    conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(sql, [*start, *params])
                rows = await cur.fetchall()
            for row in rows:
                recorded: datetime = row["recorded_at"]
                k = (str(row["fingerprint"]), int(row["seq"]), str(row["kind"]))
                start = (recorded, k[0], k[1])
                newest = max(newest, recorded)
                if k in seen:
                    continue
                seen[k] = recorded
                if len(seen) > SEEN_MAX:
                    seen.popitem(last=False)
                data = TransitionOut.model_validate(row).model_dump(mode="json")
                data["recorded_at"] = recorded.isoformat()
                yield (b"id: " + event_id(start) + b"\nevent: transition\ndata: "
                       + orjson.dumps(data) + b"\n\n")
                sent = True
            if len(rows) < PAGE:
                break
            if page == PAGES_PER_POLL - 1:
                resume = start  # more to read: go on after this key at the next poll
        horizon = newest - OVERLAP
        while seen and next(iter(seen.values())) < horizon:
            seen.popitem(last=False)
        idle = 0.0 if sent else idle + POLL_S
        if idle >= HEARTBEAT_S:
            idle = 0.0
            yield b": keep-alive\n\n"
        await asyncio.sleep(POLL_S)
