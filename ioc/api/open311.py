"""Open311 GeoReport v2 under ``/open311/v2/`` (https://wiki.open311.org/GeoReport_v2).

``services``, ``services/{code}`` and ``requests`` (GET) are public, as the spec has
them, and limited per client address; creating a request needs the spec's ``api_key``
(an ioc department key of a city app registered with the ``feedback`` feed) and is
limited per key and per ``device_id``. Errors use the spec's format,
``[{"code": <http status>, "description": "..."}]``. JSON only: a ``.xml`` path gets a
400 in that format. Public rows never carry the reporter: the contact fields go to
``feedback_contacts`` and are read only through ``/v1/feedback`` (docs/feedback.md).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl

import msgspec
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from ioc.api.auth import ApiKey
from ioc.api.deps import Resources, ResourcesDep
from ioc.api.ratelimit import RateLimiter
from ioccore.feedback import catalogue as catalogue_mod
from ioccore.feedback import store
from ioccore.feedback.catalogue import Catalogue, Service
from ioccore.feedback.contract import CLOSED, FeedbackReportV1, check_report

PREFIX: Final = "/open311/v2"
MAX_FIELD: Final = 4000
MAX_FORM_FIELDS: Final = 40
router = APIRouter(prefix=PREFIX, tags=["open311"])


class Open311Error(Exception):
    """An error in the spec's shape."""

    def __init__(self, status: int, description: str, *, retry_after: float | None = None
                 ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def register(app: FastAPI) -> None:
    """Include the router and its error handler (the spec's error format). Reads the
    catalogue now: a broken config/feedback.yaml stops the API at start."""
    catalogue_mod.default()

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Open311Error)
        headers = ({"Retry-After": str(max(1, int(exc.retry_after + 0.999)))}
                   if exc.retry_after is not None else None)
        return JSONResponse([{"code": exc.status, "description": exc.description}],
                            status_code=exc.status, headers=headers)

    app.add_exception_handler(Open311Error, handler)
    app.include_router(router)


class _State:
    """Per-process state of the router: the catalogue and the limiters."""

    def __init__(self, cat: Catalogue) -> None:
        self.catalogue = cat
        self.per_key = RateLimiter(cat.requests_per_minute_per_key)
        self.per_address = RateLimiter(cat.requests_per_minute_per_key)
        hourly = cat.requests_per_hour_per_device
        # an hourly budget: the bucket holds an hour's worth, refilled over the hour
        self.per_device = RateLimiter(1 if hourly > 0 else 0, burst=hourly)
        self.per_device.rate = hourly / 3600.0


def _state(res: Resources) -> _State:
    st = res.extras.get("open311")
    if st is None:
        st = res.extras["open311"] = _State(catalogue_mod.default())
    assert isinstance(st, _State)
    return st


def _json_only(fmt: str) -> None:
    if fmt != "json":
        raise Open311Error(400, "only the json format is served (use .json)")


def _limit_address(request: Request, st: _State) -> None:
    address = request.client.host if request.client is not None else "unknown"
    wait = st.per_address.check(address)
    if wait > 0:
        raise Open311Error(429, "too many requests from this address", retry_after=wait)


def _locale(request: Request, locale: str | None) -> str:
    if locale in ("vi", "en"):
        return locale
    accept = request.headers.get("accept-language", "")[:200].lower()
    return "en" if accept.startswith("en") else "vi"


def _service_json(s: Service, lang: str) -> dict[str, Any]:
    return {"service_code": s.code, "service_name": getattr(s.name, lang),
            "description": getattr(s.description, lang), "metadata": False,
            "type": "realtime", "keywords": ",".join(s.keywords), "group": s.group}


LocaleQ = Annotated[str | None, Query(max_length=5, description="vi (default) or en")]


@router.get("/services.{fmt}", summary="Report categories (Open311 services)")
async def services(request: Request, fmt: str, res: ResourcesDep,
                   locale: LocaleQ = None) -> JSONResponse:
    _json_only(fmt)
    st = _state(res)
    _limit_address(request, st)
    lang = _locale(request, locale)
    return JSONResponse([_service_json(s, lang) for s in st.catalogue.services])


@router.get("/services/{code}.{fmt}", summary="A service definition (no extra attributes)")
async def service_definition(request: Request, code: str, fmt: str,
                             res: ResourcesDep) -> JSONResponse:
    _json_only(fmt)
    st = _state(res)
    _limit_address(request, st)
    if st.catalogue.service(code[:64]) is None:
        raise Open311Error(404, "no service has this service_code")
    return JSONResponse({"service_code": code, "attributes": []})


def _public(row: dict[str, Any], services_by_code: dict[str, Service]) -> dict[str, Any]:
    svc = services_by_code.get(row["service_code"])

    def iso(t: datetime | None) -> str | None:
        return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")

    notes = row["status"] if row["reason"] is None else f"rejected: {row['reason']}"
    return {
        "service_request_id": row["report_id"],
        "status": "closed" if row["status"] in CLOSED else "open",
        "status_notes": notes,
        "service_name": svc.name.vi if svc else row["service_code"],
        "service_code": row["service_code"],
        "description": row["description"],
        "agency_responsible": row["department"],
        "service_notice": None,
        "requested_datetime": iso(row["received_at"]),
        "updated_datetime": iso(row["updated_at"]),
        "expected_datetime": iso(row["due_at"]),
        "address": row["address"],
        "address_id": None,
        "zipcode": None,
        "lat": row["lat"],
        "long": row["lon"],
        "media_url": row["media_url"],
        "commune_code": row["commune_code"],
    }


def _w3(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value[:40].replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} is not a w3 datetime (2026-01-01T00:00:00Z)"
                           ) from None
    if t.tzinfo is None:
        raise Open311Error(400, f"{name} needs a UTC offset")
    return t


def _csv(value: str | None, name: str, limit: int = 50) -> tuple[str, ...]:
    if not value:
        return ()
    parts = tuple(p.strip() for p in value[:4000].split(",") if p.strip())
    if len(parts) > limit or any(len(p) > 64 for p in parts):
        raise Open311Error(400, f"{name}: at most {limit} values of 64 characters")
    return parts


async def _query(request: Request, res: Resources, *, ids: tuple[str, ...],
                 service_code: str | None = None, status: str | None = None,
                 start_date: str | None = None, end_date: str | None = None,
                 bbox: str | None = None) -> JSONResponse:
    st = _state(res)
    _limit_address(request, st)
    statuses = _csv(status, "status")
    if any(s not in ("open", "closed") for s in statuses):
        raise Open311Error(400, "status is open, closed or both")
    start, end = _w3(start_date, "start_date"), _w3(end_date, "end_date")
    max_span = timedelta(days=st.catalogue.max_query_days)
    if not ids:
        if start is None and end is None:
            end = datetime.now(UTC)
        if start is None:
            start = (end or datetime.now(UTC)) - max_span
        if end is None:
            end = start + max_span
        if end < start:
            raise Open311Error(400, "end_date is before start_date")
        if end - start > max_span:
            raise Open311Error(400, f"a date range spans at most {max_span.days} days")
    box: tuple[float, float, float, float] | None = None
    if bbox:
        try:
            x0, y0, x1, y1 = (float(v) for v in bbox[:200].split(","))
        except ValueError:
            raise Open311Error(400, "bbox is min_long,min_lat,max_long,max_lat") from None
        if not (x0 <= x1 and y0 <= y1):
            raise Open311Error(400, "bbox minimums exceed its maximums")
        box = (x0, y0, x1, y1)
    q = store.RequestQuery(ids=ids, service_codes=_csv(service_code, "service_code"),
                           statuses=statuses, start=start, end=end, bbox=box,
                           limit=st.catalogue.max_results)
    async with res.pool.connection() as conn:
        rows = await store.find_requests(conn, q)
    by_code = {s.code: s for s in st.catalogue.services}
    return JSONResponse([_public(r, by_code) for r in rows])


@router.get("/requests.{fmt}", summary="Query requests (public: never the reporter)")
async def get_requests(
    request: Request, fmt: str, res: ResourcesDep,
    service_request_id: Annotated[str | None, Query(max_length=4000)] = None,
    service_code: Annotated[str | None, Query(max_length=4000)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    bbox: Annotated[str | None, Query(max_length=200,
                                      description="min_long,min_lat,max_long,max_lat")] = None,
    jurisdiction_id: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    _json_only(fmt)
    _jurisdiction(res, jurisdiction_id)
    return await _query(request, res, ids=_csv(service_request_id, "service_request_id"),
                        service_code=service_code, status=status, start_date=start_date,
                        end_date=end_date, bbox=bbox)


@router.get("/requests/{request_id}.{fmt}", summary="One request by its id")
async def get_request(request: Request, request_id: str, fmt: str,
                      res: ResourcesDep) -> JSONResponse:
    _json_only(fmt)
    answer = await _query(request, res, ids=(request_id[:64],))
    if answer.body == b"[]":
        raise Open311Error(404, "no request has this service_request_id")
    return answer


def _jurisdiction(res: Resources, value: str | None) -> None:
    if value is not None and value != _state(res).catalogue.jurisdiction_id:
        raise Open311Error(404, "unknown jurisdiction_id")


async def _app_key(res: Resources, st: _State, token: str | None) -> ApiKey:
    if not token:
        raise Open311Error(403, "api_key is required to create a request")
    key = await res.keys.authenticate(token[:200])
    if key is None:
        raise Open311Error(403, "unknown or revoked api_key")
    if key.role != "department" or "feedback" not in key.feeds:
        raise Open311Error(403, "this api_key may not create requests (it needs a "
                                "department key with the feedback feed)")
    wait = st.per_key.check(str(key.id))
    if wait > 0:
        raise Open311Error(429, "too many requests with this api_key", retry_after=wait)
    return key


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form of a create (the spec's encoding; no multipart uploads:
    media travel as ``media_url``). The body is bounded by the app's body limit."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise Open311Error(400, "send the request as application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True,
                          strict_parsing=False, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise Open311Error(400, "the form is not valid UTF-8 or has too many fields"
                           ) from None
    return dict(pairs)


def _field(form: dict[str, str], name: str, limit: int = 256) -> str | None:
    value = form.get(name)
    if value is None or value.strip() == "":
        return None
    if len(value) > limit:
        raise Open311Error(400, f"{name} is longer than {limit} characters")
    return value.strip()


def _float(form: dict[str, str], name: str) -> float | None:
    value = _field(form, name, 40)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise Open311Error(400, f"{name} is not a number") from None


@router.post("/requests.{fmt}", summary="Create a request (the spec's api_key)")
async def create_request(request: Request, fmt: str, res: ResourcesDep) -> JSONResponse:
    _json_only(fmt)
    st = _state(res)
    form = await _form(request)
    key = await _app_key(res, st, form.get("api_key"))
    _jurisdiction(res, _field(form, "jurisdiction_id"))
    device = _field(form, "device_id", 128)
    if device is not None:
        wait = st.per_device.check(f"{key.id}:{device}")
        if wait > 0:
            raise Open311Error(429, "too many requests from this device", retry_after=wait)
    code = _field(form, "service_code", 64)
    if code is None:
        raise Open311Error(400, "service_code is required")
    service = st.catalogue.service(code)
    if service is None:
        raise Open311Error(404, "no service has this service_code")
    client_id = _field(form, "client_request_id", 128) or uuid.uuid4().hex
    payload: dict[str, Any] = {
        "event_id": client_id, "source_id": f"open311-key-{key.id}",
        "occurred_at": datetime.now(UTC).isoformat(), "service_code": code,
        "description": _field(form, "description", MAX_FIELD) or "",
        "lat": _float(form, "lat"), "lon": _float(form, "long"),
        "commune_code": _field(form, "commune_code", 5),
        "address": _field(form, "address_string", 256),
        "media_url": _field(form, "media_url", 1024),
    }
    contact = store.Contact(
        email=_field(form, "email", 254), phone=_field(form, "phone", 32),
        first_name=_field(form, "first_name", 100), last_name=_field(form, "last_name", 100),
        device_id=device)
    principal = f"key:{key.name}"
    async with res.pool.connection() as conn:
        try:
            report = msgspec.convert({k: v for k, v in payload.items() if v is not None},
                                     FeedbackReportV1, strict=False)
        except msgspec.ValidationError as exc:
            await store.dead_letter(conn, principal=principal, reason="invalid_field",
                                    detail=str(exc), payload=_redacted(payload))
            raise Open311Error(400, str(exc)[:300]) from None
        reason = check_report(report)
        if reason is not None:
            await store.dead_letter(conn, principal=principal, reason=reason,
                                    detail=reason, payload=_redacted(payload))
            raise Open311Error(400, reason.replace("_", " "))
        try:
            report_id, _created = await store.store_report(
                conn, report, service, contact,
                nearest_max_m=res.settings.geo.nearest_max_m)
        except store.FeedbackRefusedError as exc:
            await store.dead_letter(conn, principal=principal, reason=exc.reason,
                                    detail=exc.detail, payload=_redacted(payload))
            raise Open311Error(400, exc.detail) from None
    notice = (f"Dự kiến xử lý trong {service.sla_hours:g} giờ / "
              f"expected within {service.sla_hours:g} hours")
    return JSONResponse([{"service_request_id": report_id, "service_notice": notice,
                          "account_id": None}], status_code=201)


def _redacted(payload: dict[str, Any]) -> str:
    """The dead-letter copy: the report's fields only (contact fields never stored)."""
    return msgspec.json.encode(payload).decode()
