"""Ingest validation in worker processes, off the API's event loop.

Splitting and validating a 5 MiB body of junk is pure Python CPU work; in a thread it
holds the GIL and every other request of the process waits for it (the event loop has
to win the GIL back after each system call). In a process of its own it only competes
for a core. :func:`new_pool` starts ``api.validation_threads`` processes (``spawn``:
nothing of the parent's threads or connections is inherited); each builds its own
stateless :class:`ioccore.events.validate.Validator` (no duplicate memory: stage 1 checks
duplicates). A request sends its body and gets back one verdict per event, or the API
error (400/413/415) that splitting ended with.

Verdicts cross the process boundary as plain tuples (:func:`to_wire`, :func:`from_wire`)
holding only what the API process needs of an accepted event (:class:`Accepted`), not
the whole :class:`ioccore.events.record.Record`: pickling and rebuilding 500 records
and dataclasses cost the API's event loop about 2 ms a request (py-spy, issue 18), a
tenth of that as tuples.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec

from ioc.api import errors
from ioccore.events.batch_split import split_array
from ioccore.events.budget import Deadline, OverBudgetError
from ioccore.events.reasons import Reason
from ioccore.events.validate import Validator

JSON_TYPES = frozenset({"application/json", ""})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson",
                          "application/jsonl", "application/x-jsonlines"})

_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_ANY = msgspec.json.Decoder()
_VALIDATOR: Validator | None = None
_EVENT_LIMIT = 1 << 20


class Accepted(NamedTuple):
    """What the gateway needs of an event the validator accepted: who may publish it
    (authorisation), where it goes (envelope, topic) and where its source is (a source
    registered on first use records its place)."""

    department: str
    feed: str
    source_id: str
    commune_code: str | None
    """None when the event's place is unassigned."""
    lat: float | None
    lon: float | None


@dataclass(slots=True)
class Verdict:
    """One event of a request: its bytes and, while accepted so far, what the gateway
    needs of it (``record``), or why not."""

    raw: bytes
    event_id: str | None = None
    feed: str | None = None
    record: Accepted | None = None
    reason: str | None = None
    message: str | None = None
    run: int = 1
    """For the first event of a collapsed run of rejections: how many it covers."""


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def split_events(body: bytes, content_type: str | None,
                 max_items: int | None = None, deadline: Deadline | None = None
                 ) -> list[bytes]:
    """The events of a body, each as its own bytes.

    ``application/json``: an array of events (a single object is one event); an array
    that does not parse as a whole is split by a scanner so each element gets its own
    verdict. ``application/x-ndjson``: one event per line, blank lines skipped.
    Never raises for any bytes except the documented 400/413/415 errors; with
    ``max_items``, more events than that is 413 ``too_many_events``.
    """
    kind = media_type(content_type)
    if kind in NDJSON_TYPES:
        if max_items is not None and body.count(b"\n") > 4 * max_items + 16:
            raise errors.PayloadTooLargeError(f"more than {max_items} events in one request",
                                              code=Reason.TOO_MANY_EVENTS)
        items = [line.strip() for line in body.split(b"\n")]
        items = [line for line in items if line]
    elif kind in JSON_TYPES:
        text = body.strip()
        if text[:1] == b"[":
            items = _split_json_array(text, max_items, deadline)
        elif text[:1] == b"{":
            items = [text]
        else:
            raise errors.BadRequestError("the body must be a JSON array of events (or NDJSON "
                                         "with Content-Type: application/x-ndjson)",
                                         code=Reason.NOT_JSON)
    else:
        raise errors.UnsupportedMediaError(f"Content-Type {kind or '(none)'} is not accepted; "
                                           "use application/json or application/x-ndjson")
    if not items:
        raise errors.BadRequestError("the body holds no events", code=Reason.EMPTY_BATCH)
    if max_items is not None and len(items) > max_items:
        raise errors.PayloadTooLargeError(f"more than {max_items} events in one request",
                                          code=Reason.TOO_MANY_EVENTS)
    return items


def _split_json_array(text: bytes, max_items: int | None,
                      deadline: Deadline | None = None) -> list[bytes]:
    """The elements of a JSON array body. When it has fewer commas than ``max_items`` it
    cannot hold too many elements and the C decoder splits it; otherwise the scanner
    does, stopping after ``max_items + 1`` elements (decoding 2 million elements of
    ``[1,1,...]`` only to refuse them would cost far more than refusing them)."""
    if max_items is None or text.count(b",") < max_items:
        try:
            return [bytes(raw) for raw in _RAW_LIST.decode(text)]
        except Exception:  # not JSON, too deep, ...: the scanner cuts it
            pass
    return split_array(text, max_items=max_items, deadline=deadline) or []


def validate_items(validator: Validator, limit: int, items: Sequence[bytes],
                   deadline: Deadline | None = None) -> list[Verdict]:
    """Size and contract checks of every event (no database, no Kafka); raises
    :class:`~ioccore.events.budget.OverBudgetError` past ``deadline``."""
    verdicts = [Verdict(raw) for raw in items]
    positions = [i for i, raw in enumerate(items) if len(raw) <= limit]
    for i, raw in enumerate(items):
        if len(raw) > limit:
            verdicts[i].reason = Reason.MESSAGE_TOO_LARGE
            verdicts[i].message = f"the event is {len(raw)} bytes; the limit is {limit}"
    records, rejections = validator.validate_items([items[i] for i in positions],
                                                   deadline=deadline)
    refused: set[int] = set()
    for rej in rejections:
        if rej.index is None:  # cannot happen for items; keep the verdict honest anyway
            continue
        for j in range(rej.index, rej.index + rej.count):  # a collapsed run covers many
            v = verdicts[positions[j]]
            v.reason, v.message = str(rej.reason), rej.message
            v.event_id = rej.event_id if rej.count == 1 else None
            v.run = 0
            refused.add(j)
        verdicts[positions[rej.index]].run = rej.count
    ok = [p for j, p in enumerate(positions) if j not in refused]
    for pos, rec in zip(ok, records, strict=True):
        v = verdicts[pos]
        v.record = Accepted(rec.department, rec.feed, rec.source_id,
                            None if rec.geo == "unassigned" else rec.commune_code,
                            rec.lat, rec.lon)
        v.event_id, v.feed = rec.event_id, rec.feed
    for v in verdicts:
        if v.reason is not None and v.feed is None and v.run:
            v.feed = peek_feed(v.raw)
    return verdicts


def peek_feed(raw: bytes) -> str | None:
    """The feed named by a rejected event, for metric labels (None when unreadable)."""
    try:
        obj = _ANY.decode(raw)
    except Exception:  # not JSON, too deeply nested, ...
        return None
    feed = obj.get("feed") if isinstance(obj, dict) else None
    return feed if feed in ("sensor", "traffic", "service") else None


# ------------------------------------------------------------------ worker processes
def _die_with_parent(parent: int) -> None:
    """Linux: the kernel sends SIGTERM to this worker when the API process dies, however
    it dies (a SIGTERMed or SIGKILLed API must not leave validation workers behind)."""
    import ctypes
    import os
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def _init(max_message_bytes: int, max_future_skew_s: float, max_events: int,
          parent: int = 0) -> None:
    global _VALIDATOR, _EVENT_LIMIT
    if parent:
        _die_with_parent(parent)
    _VALIDATOR = Validator(max_message_bytes=max_message_bytes,
                           max_future_skew_s=max_future_skew_s, max_events=max_events)
    _EVENT_LIMIT = max_message_bytes


def _ready() -> bool:
    return _VALIDATOR is not None


Wire = list[tuple[bytes, str | None, str | None, tuple[Any, ...] | None, str | None,
                   str | None, int]]
"""Verdicts as plain tuples: what crosses the process boundary."""


def to_wire(verdicts: Sequence[Verdict]) -> Wire:
    return [(v.raw, v.event_id, v.feed, None if v.record is None else tuple(v.record),
             v.reason, v.message, v.run) for v in verdicts]


def from_wire(wire: Wire) -> list[Verdict]:
    return [Verdict(raw, eid, feed, None if rec is None else Accepted(*rec), reason, msg,
                    run) for raw, eid, feed, rec, reason, msg, run in wire]


def run(body: bytes, content_type: str | None, max_items: int,
        budget_s: float | None = None
        ) -> tuple[Wire, None] | tuple[None, tuple[str, str, str]]:
    """In a worker: the verdicts (:func:`from_wire` rebuilds them), or the API error
    splitting ended with (as a tuple: exceptions with keyword-only arguments do not
    survive pickling). Past ``budget_s`` the worker stops and answers 413
    ``over_budget`` (:mod:`ioccore.events.budget`), so it is free for the next request."""
    if _VALIDATOR is None:
        raise RuntimeError("validation worker not initialised")
    deadline = None if budget_s is None else Deadline.after(budget_s)
    try:
        items = split_events(body, content_type, max_items=max_items, deadline=deadline)
        return to_wire(validate_items(_VALIDATOR, _EVENT_LIMIT, items, deadline)), None
    except OverBudgetError as exc:
        return None, ("PayloadTooLargeError", exc.message, Reason.OVER_BUDGET)
    except errors.ApiError as exc:
        return None, (type(exc).__name__, exc.message, exc.code)


def raise_error(err: tuple[str, str, str]) -> None:
    """Raise in the API process the error a worker returned."""
    name, message, code = err
    cls: Any = getattr(errors, name, errors.BadRequestError)
    raise cls(message, code=code)


def new_pool(workers: int, *, max_message_bytes: int, max_future_skew_s: float,
             max_events: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=max(1, workers),
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init,
                               initargs=(max_message_bytes, max_future_skew_s, max_events,
                                         os.getpid()))


async def warm_up(pool: ProcessPoolExecutor, workers: int) -> None:
    """Start the worker processes now rather than on the first request."""
    import asyncio

    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(pool, _ready) for _ in range(max(1, workers))))
