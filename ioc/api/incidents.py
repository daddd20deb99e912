"""The incident API and the department workspace (docs/incidents.md).

Who sees what: a ``responder`` key (a department's people) sees and acts on its own
department's incidents and alerts only; anything else answers 404, as if it did not
exist. ``viewer`` keys read everything; ``operator`` and ``admin`` keys (the IOC) read
and act on everything. Ingest (``department``) keys have no access. Only IOC operators
move an incident to another department or merge incidents of different departments.

Every action runs through :mod:`alerts.incidents.store` in one transaction with its
audit event (actor: the key's name). Bodies are read after authentication, within
``api.max_operator_body_bytes``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, Field

from alerts.incidents import queries, store
from alerts.incidents.config import IncidentConfig, load
from alerts.incidents.errors import IllegalActionError, IncidentNotFoundError
from alerts.incidents.machine import Action, ActionKind
from alerts.incidents.store import Conn
from alerts.model import Severity
from ioc.api.auth import ApiKey
from ioc.api.deps import Resources, ResourcesDep, authenticate, bearer_scheme
from ioc.api.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnavailableError,
)
from ioc.api.inputs import query_values, read_model

router = APIRouter(tags=["incidents"])
M = TypeVar("M", bound=BaseModel)
_TEXT: Final = 4000
_IDS: Final = 1000
_EXTRA: Final = "incidents.config"


@dataclass(frozen=True, slots=True)
class Caller:
    key: ApiKey
    scope: str | None
    """The department the caller is limited to; ``None``: the whole IOC."""
    can_act: bool

    @property
    def name(self) -> str:
        return self.key.name


async def _caller(request: Request,
                  creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
                  res: ResourcesDep) -> Caller:
    key = await authenticate(request, creds, res)
    if key.role == "responder" and key.department:
        return Caller(key, key.department, True)
    if key.at_least("viewer"):
        return Caller(key, None, key.at_least("operator"))
    raise ForbiddenError("incidents need a responder, viewer, operator or admin key",
                         code="insufficient_role")


CallerDep = Annotated[Caller, Depends(_caller)]


def _actor(c: Caller) -> Caller:
    if not c.can_act:
        raise ForbiddenError("a viewer key reads; acting needs an operator or responder key",
                             code="insufficient_role")
    return c


def config(res: Resources) -> IncidentConfig:
    cfg = res.extras.get(_EXTRA)
    if cfg is None:
        try:
            cfg = load(res.settings)
        except (OSError, ValueError) as exc:
            raise UnavailableError(f"incident configuration is invalid: {exc}"[:500],
                                   code="incidents_config") from exc
        res.extras[_EXTRA] = cfg
    assert isinstance(cfg, IncidentConfig)
    return cfg


async def _body(request: Request, model: type[M], *, optional: bool = False) -> M:
    """:func:`ioc.api.inputs.read_model`; an optional empty body is the model's defaults."""
    body = await read_model(request, model, optional=optional)
    return model() if body is None else body


async def _run(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except IncidentNotFoundError as exc:
        raise NotFoundError(f"not found: {exc}", code="not_found") from None
    except IllegalActionError as exc:
        raise ConflictError(str(exc), code="illegal_action") from None


def _now() -> datetime:
    return datetime.now(UTC)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    """orjson straight from rows (a thousand incidents: FastAPI's encoder costs more
    than the query)."""
    return Response(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), status_code=status,
                    media_type="application/json")


# --------------------------------------------------------------------------- bodies
class NoteIn(BaseModel):
    note: str | None = Field(None, max_length=_TEXT)


class OpenIn(BaseModel):
    alerts: list[str] = Field(default_factory=list, max_length=_IDS,
                              description="Fingerprints of the alerts it gathers.")
    title: str | None = Field(None, max_length=300)
    department: str | None = Field(None, max_length=100)
    severity: Severity | None = None
    note: str | None = Field(None, max_length=_TEXT)


class AssignIn(BaseModel):
    department: str | None = Field(None, max_length=100)
    assignee: str | None = Field(None, max_length=200)
    note: str | None = Field(None, max_length=_TEXT)


class SeverityIn(BaseModel):
    severity: Severity
    note: str | None = Field(None, max_length=_TEXT)


class StepIn(BaseModel):
    note: str | None = Field(None, max_length=_TEXT)
    evidence: str | None = Field(None, max_length=2000,
                                 description="A link or a document reference.")


class AlertsIn(BaseModel):
    alerts: list[str] = Field(min_length=1, max_length=_IDS)
    title: str | None = Field(None, max_length=300)
    note: str | None = Field(None, max_length=_TEXT)


class MergeIn(BaseModel):
    incidents: list[int] = Field(min_length=1, max_length=100)
    note: str | None = Field(None, max_length=_TEXT)


# --------------------------------------------------------------------------- reads
@router.get("/v1/incidents", summary="The incident board", response_class=Response)
async def list_incidents(
        c: CallerDep, res: ResourcesDep,
        view: Literal["mine", "department", "all"] = "all",
        department: Annotated[str | None, Query(max_length=100)] = None,
        state: Annotated[list[str] | None, Query(max_length=5)] = None,
        province: Annotated[str | None, Query(max_length=10)] = None,
        limit: Annotated[int, Query(ge=1, le=queries.MAX_PAGE)] = 200,
        before_at: AwareDatetime | None = None, before_id: int | None = None,
        location: bool = False) -> Response:
    """``mine``: assigned to the key's name; ``department``: the key's department (or
    ``department=``); ``all``: everything the key may see. Newest activity first; page
    with ``before_at``/``before_id`` of the last row."""
    dept = department
    if view == "department" and dept is None:
        dept = c.scope or c.key.department
        if dept is None:
            raise BadRequestError("view=department needs department= for an IOC key")
    states = query_values(state)
    before = (before_at, before_id) if before_at is not None and before_id is not None else None
    async with res.pool.connection() as conn:
        rows = await queries.board(conn, scope=c.scope, view=view, me=c.name, department=dept,
                                   states=states or None, province=province, before=before,
                                   limit=limit, with_location=location)
    return _json({"incidents": rows, "count": len(rows)})


@router.get("/v1/incidents/kpis", summary="Response KPIs per department and province")
async def incident_kpis(
        c: CallerDep, res: ResourcesDep,
        period: Literal["day", "week", "month"] = "day",
        since: AwareDatetime | None = None, until: AwareDatetime | None = None,
        province: Annotated[str | None, Query(max_length=10)] = None) -> dict[str, Any]:
    """Per period (Vietnam days, ISO weeks, months), department and province: responses,
    time to acknowledge and to resolve (median, p90, seconds), share within SLA; and
    incidents past a deadline now. Definitions: docs/incidents.md."""
    end = until or _now()
    start = since or end - timedelta(days={"day": 30, "week": 12 * 7, "month": 366}[period])
    if end - start > timedelta(days=3 * 366) or end <= start:
        raise BadRequestError("since..until must be a range of at most three years")
    async with res.pool.connection() as conn:
        return await queries.kpis(conn, period=period, since=start, until=end,
                                  scope=c.scope, province=province)


@router.get("/v1/workspace/alerts", summary="The alerts of the caller's department")
async def workspace_alerts(
        c: CallerDep, res: ResourcesDep,
        state: Annotated[list[str] | None, Query(max_length=5)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
    """A responder key sees the alerts its department owns (the ``department`` label,
    else ``team``); IOC keys see all. Active alerts unless ``state=`` says otherwise."""
    states = query_values(state) or ["pending", "firing", "acknowledged"]
    where = "state = ANY(%s)"
    params: list[Any] = [states]
    if c.scope is not None:
        where += " AND coalesce(labels->>'department', labels->>'team', 'ioc-ops') = %s"
        params.append(c.scope)
    async with res.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT a.fingerprint, a.rule_id, a.state, a.severity, a.labels, a.annotations,"
            " a.commune_code, a.province_code, a.started_at, a.firing_at, a.last_value,"
            " (SELECT l.incident_id FROM incident_alerts l WHERE l.fingerprint = a.fingerprint"
            "  AND l.detached_at IS NULL ORDER BY l.attached_at DESC LIMIT 1) AS incident_id"
            f" FROM alerts a WHERE {where} ORDER BY a.updated_at DESC LIMIT %s",
            (*params, limit))
        rows = await cur.fetchall()
    return {"alerts": rows, "count": len(rows)}


@router.get("/v1/incidents/{incident_id}", summary="One incident with its timeline")
async def get_incident(incident_id: int, c: CallerDep, res: ResourcesDep) -> dict[str, Any]:
    async with res.pool.connection() as conn:
        found: dict[str, Any] = await _run(
            lambda: queries.incident(conn, incident_id, scope=c.scope))
        return found


# --------------------------------------------------------------------------- actions
@router.post("/v1/incidents", status_code=201, summary="Open an incident")
async def open_incident(request: Request, c: CallerDep, res: ResourcesDep) -> dict[str, Any]:
    """From the board: for some alerts (their rule, province and owner) or none (then
    ``title`` and, for IOC keys, ``department`` are needed)."""
    _actor(c)
    body = await _body(request, OpenIn)
    cfg = config(res)
    async with res.pool.connection() as conn:
        iid = await _run(lambda: store.open_from_alerts(
            conn, cfg, body.alerts, actor=c.name, at=_now(), scope=c.scope, title=body.title,
            department=body.department, severity=body.severity, note=body.note))
        found: dict[str, Any] = await queries.incident(conn, iid, scope=c.scope)
        return found


# Every other action is one row of ACTIONS: the same steps (the key may act, the body
# within its limit and schema, one store call in its transaction, the incident as the
# answer), registered as one route each with the path, summary and status of the table.
@dataclass(frozen=True, slots=True)
class Act:
    """What an action's store call gets: the connection, the caller, the incident."""
    conn: Conn
    caller: Caller
    res: Resources
    incident_id: int

    @property
    def cfg(self) -> IncidentConfig:
        return config(self.res)

    def action(self, kind: ActionKind, note: str | None, **extra: Any) -> Action:
        return Action(kind, self.caller.name, _now(), note=note, **extra)


Do = Callable[[Act, Any], Awaitable[int | None]]
"""An action's store call; returns the incident to answer with (``None``: this one)."""


async def _act(incident_id: int, request: Request, c: Caller, res: Resources,
               model: type[M], do: Callable[[Act, M], Awaitable[int | None]], *,
               optional: bool = False) -> dict[str, Any]:
    _actor(c)
    body = await _body(request, model, optional=optional)
    async with res.pool.connection() as conn:
        ctx = Act(conn, c, res, incident_id)
        shown = await _run(lambda: do(ctx, body))
        found: dict[str, Any] = await queries.incident(
            conn, incident_id if shown is None else shown, scope=None)
        return found


def _state(kind: ActionKind) -> Do:
    async def do(x: Act, body: NoteIn) -> None:
        await store.act(x.conn, x.cfg, x.incident_id, x.action(kind, body.note), x.caller.scope)
    return do


async def _assign(x: Act, body: AssignIn) -> None:
    if body.department is not None and x.caller.scope not in (None, body.department):
        raise ForbiddenError("only the IOC moves an incident to another department",
                             code="insufficient_role")
    cfg = x.cfg
    if body.department is not None and body.department not in cfg.rota.departments:
        cur = await x.conn.execute("SELECT 1 FROM departments WHERE code = %s",
                                   (body.department,))
        if await cur.fetchone() is None:
            raise BadRequestError(f"unknown department {body.department!r} (neither in "
                                  "the duty rota nor registered)", code="bad_department")
    await store.act(x.conn, cfg, x.incident_id, x.action(
        "assign", body.note, department=body.department, assignee=body.assignee),
        x.caller.scope)


async def _severity(x: Act, body: SeverityIn) -> None:
    await store.act(x.conn, x.cfg, x.incident_id,
                    x.action("severity", body.note, severity=body.severity), x.caller.scope)


async def _attach(x: Act, body: AlertsIn) -> None:
    await store.attach(x.conn, x.incident_id, body.alerts, actor=x.caller.name, at=_now(),
                       scope=x.caller.scope)


async def _detach(x: Act, body: AlertsIn) -> None:
    await store.detach(x.conn, x.incident_id, body.alerts, actor=x.caller.name, at=_now(),
                       scope=x.caller.scope)


async def _merge(x: Act, body: MergeIn) -> None:
    await store.merge(x.conn, x.incident_id, body.incidents, actor=x.caller.name, at=_now(),
                      scope=x.caller.scope, note=body.note)


async def _split(x: Act, body: AlertsIn) -> int:
    return await store.split(x.conn, x.cfg, x.incident_id, body.alerts, actor=x.caller.name,
                             at=_now(), scope=x.caller.scope, title=body.title,
                             note=body.note)


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    """The path's last part and the route's name (OpenAPI operation ids keep it)."""
    summary: str
    body: type[BaseModel]
    do: Do
    optional: bool = False
    """An empty body stands for the model's defaults."""
    status_code: int = 200


ACTIONS: Final[tuple[Route, ...]] = (
    Route("ack", "Acknowledge", NoteIn, _state("ack"), optional=True),
    Route("start", "Start work (in progress)", NoteIn, _state("start"), optional=True),
    Route("resolve", "Resolve (a note is required)", NoteIn, _state("resolve"), optional=True),
    Route("close", "Close a resolved incident", NoteIn, _state("close"), optional=True),
    Route("reopen", "Reopen", NoteIn, _state("reopen"), optional=True),
    Route("note", "Add a note to the timeline", NoteIn, _state("note"), optional=True),
    Route("assign", "Assign a person or department", AssignIn, _assign),
    Route("severity", "Change the severity", SeverityIn, _severity),
    Route("attach", "Attach alerts", AlertsIn, _attach),
    Route("detach", "Detach alerts", AlertsIn, _detach),
    Route("merge", "Merge other incidents into this", MergeIn, _merge),
    Route("split", "Move alerts into a new incident", AlertsIn, _split, status_code=201),
)


def _endpoint(route: Route) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def endpoint(incident_id: int, request: Request, c: CallerDep, res: ResourcesDep
                       ) -> dict[str, Any]:
        return await _act(incident_id, request, c, res, route.body, route.do,
                          optional=route.optional)
    return endpoint


for _route in ACTIONS:
    router.add_api_route(f"/v1/incidents/{{incident_id}}/{_route.name}", _endpoint(_route),
                         methods=["POST"], name=_route.name, summary=_route.summary,
                         status_code=_route.status_code)


@router.post("/v1/incidents/{incident_id}/steps/{step_id}/done", summary="SOP step done")
async def step_done(incident_id: int, step_id: str,
                    request: Request, c: CallerDep, res: ResourcesDep) -> dict[str, Any]:
    if len(step_id) > 64:
        raise NotFoundError("no such step", code="not_found")

    async def do(x: Act, body: StepIn) -> None:
        await store.step_done(x.conn, incident_id, step_id, actor=c.name, at=_now(),
                              scope=c.scope, note=body.note, evidence=body.evidence)
    return await _act(incident_id, request, c, res, StepIn, do, optional=True)
