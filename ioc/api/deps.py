"""What the routers share: the process's resources and the auth dependencies.

:class:`Resources` owns the database pool, the Kafka producer, the key store, the rate
limiter and the validator; the app's lifespan starts and closes it and routers reach
it through :func:`get_resources`. Authentication is a dependency: :func:`require_role`
for the operator API, :func:`require_department` for the ingest gateway. Both refuse
with 401 (no, unknown or revoked key), 403 (wrong role) or 429 (rate limit), and put
the key's name in the request scope for the access log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool

from ioc.api import validation
from ioc.api.auth import ApiKey, KeyStore, OperatorRole, settings_pepper
from ioc.api.backpressure import Backpressure
from ioc.api.errors import ForbiddenError, RateLimitedError, UnauthorizedError, UnavailableError
from ioc.api.ratelimit import RateLimiter
from ioccore.db import connections
from ioccore.events.validate import Validator
from ioccore.settings import Settings

log = logging.getLogger("ioc.api")

KEY_NAME_SCOPE = "ioc.key_name"
"""Request-scope entry holding the caller's key name (read by the access log)."""

_KAFKA_RETRY_S = 2.0


class Resources:
    """Process-wide state of the API; :meth:`start` and :meth:`close` bracket its life.

    ``start`` never fails because Kafka or the database is down: the pool connects in
    the background and the producer is retried every few seconds, so ``/healthz``
    answers at once and ``/readyz`` says what is missing.
    """

    def __init__(self, settings: Settings, *, pool: AsyncConnectionPool[Any] | None = None,
                 validator: Validator | None = None) -> None:
        self.settings = settings
        self.pool: AsyncConnectionPool[Any] = pool or connections.pool(
            settings.database.conninfo(), purpose="api", min_size=settings.database.pool_min,
            max_size=settings.database.pool_max, autocommit=True)
        self._own_pool = pool is None
        self.keys = KeyStore(self.pool, settings_pepper(settings.api))
        self.limiter = RateLimiter(settings.api.rate_limit_per_minute)
        self.event_limiter = RateLimiter(settings.api.events_per_minute)
        """Events per key and minute (a request of N events costs N)."""
        self.global_limiter = RateLimiter(settings.api.global_requests_per_second * 60,
                                          burst=settings.api.global_requests_per_second)
        """All authenticated requests of this process together."""
        self.anonymous_limiter = RateLimiter(settings.api.unauthenticated_per_minute)
        """Requests without a valid key, per client address: they never drain the global
        bucket, so a keyless flood cannot lock the keyed clients out."""
        self.validation = self._new_validation_pool()
        """Ingest validation runs in these processes, never on the event loop."""
        self.validation_inflight: dict[str, int] = {}
        """Requests being validated, per key id."""
        self.streams: dict[int, int] = {}
        """Open live streams per key id."""
        # the gateway keeps no per-process memory that would differ between processes.
        self.validator = validator or Validator(
            max_message_bytes=settings.kafka.max_message_bytes,
            max_future_skew_s=settings.stream.max_future_skew_s)
        self.producer: AIOKafkaProducer | None = None
        self.backpressure = Backpressure(settings)
        """Admission control of ``POST /v1/events`` by the pipeline's lag."""
        self._kafka_task: asyncio.Task[None] | None = None
        self.extras: dict[str, Any] = {}
        """Per-router state (caches), keyed by router."""

    def _new_validation_pool(self) -> ProcessPoolExecutor:
        api = self.settings.api
        return validation.new_pool(api.validation_threads,
                                   max_message_bytes=self.settings.kafka.max_message_bytes,
                                   max_future_skew_s=self.settings.stream.max_future_skew_s,
                                   max_events=api.max_events_per_request)

    def restart_validation(self) -> None:
        """Replace a broken validation pool (a worker process died)."""
        old = self.validation
        self.validation = self._new_validation_pool()
        old.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._own_pool:
            await self.pool.open(wait=False)
        await validation.warm_up(self.validation, self.settings.api.validation_threads)
        await self.backpressure.start()
        if not await self._start_producer():
            self._kafka_task = asyncio.create_task(self._retry_producer(),
                                                   name="ioc-api-kafka-connect")

    async def close(self) -> None:
        await self.backpressure.close()
        if self._kafka_task is not None:
            self._kafka_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._kafka_task
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await self.producer.stop()
            self.producer = None
        if self._own_pool:
            await self.pool.close()
        self.validation.shutdown(wait=False, cancel_futures=True)

    async def _start_producer(self) -> bool:
        kafka = self.settings.kafka
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap_servers, client_id=f"{kafka.client_id}-api",
            acks="all", enable_idempotence=True, request_timeout_ms=15_000,
            max_request_size=kafka.max_message_bytes + 65_536, linger_ms=5,
            **kafka.client_options())
        try:
            await producer.start()
        except Exception as exc:
            log.warning("kafka producer not started: %s", exc)
            with contextlib.suppress(Exception):
                await producer.stop()
            return False
        self.producer = producer
        log.info("kafka producer started (%s)", kafka.bootstrap_servers)
        return True

    async def _retry_producer(self) -> None:
        while True:
            await asyncio.sleep(_KAFKA_RETRY_S)
            if await self._start_producer():
                return

    def require_producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            raise UnavailableError("Kafka is not reachable yet; retry shortly",
                                   code="kafka_unavailable")
        return self.producer

    # ------------------------------------------------------------------ checks
    async def check_database(self, timeout_s: float = 3.0) -> str | None:
        """None when ``SELECT 1`` answers, else a short word (details go to the log:
        ``/readyz`` is public and exception text can name hosts and users)."""
        try:
            async with asyncio.timeout(timeout_s):
                async with self.pool.connection(timeout=timeout_s) as conn:
                    await conn.execute("SELECT 1")
        except Exception as exc:
            log.warning("readiness: database check failed: %s: %s", type(exc).__name__, exc)
            return "unreachable"
        return None

    async def check_kafka(self, timeout_s: float = 3.0) -> str | None:
        """None when a metadata request answers, else what went wrong."""
        if self.producer is None:
            return "producer not connected"
        try:
            async with asyncio.timeout(timeout_s):
                await self.producer.client.fetch_all_metadata()
        except Exception as exc:
            log.warning("readiness: kafka check failed: %s: %s", type(exc).__name__, exc)
            return "unreachable"
        return None


def get_resources(request: Request) -> Resources:
    res: Resources = request.app.state.resources
    return res


bearer_scheme = HTTPBearer(auto_error=False,
                           description="An IOC API key: `Bearer ioc_xxxxxxxx_...`")
"""The bearer-credentials dependency (the live stream re-checks its key while open)."""


async def authenticate(request: Request, creds: HTTPAuthorizationCredentials | None,
                        res: Resources) -> ApiKey:
    """The caller's key. A request without a valid key costs its client address one
    token of :attr:`Resources.anonymous_limiter`; an address out of tokens gets 429
    before any key lookup, unless its key was valid within the last 10 minutes (a
    keyless flood from a shared address does not lock out that address's keyed
    clients). Only authenticated requests take from the global bucket."""
    address = request.client.host if request.client is not None else "unknown"
    token = (creds.credentials if creds is not None and creds.scheme.lower() == "bearer"
             else "")
    if (res.anonymous_limiter.wait(address) > 0
            and not (token and res.keys.seen_valid(token))):
        raise RateLimitedError("too many requests without a valid key from this address",
                               retry_after=1.0, code="too_many_unauthenticated")
    if not token:
        res.anonymous_limiter.debit(address, 1.0)
        raise UnauthorizedError("send the API key as 'Authorization: Bearer <key>'",
                           code="missing_key")
    key = await res.keys.authenticate(token)
    if key is None:
        res.anonymous_limiter.debit(address, 1.0)
        raise UnauthorizedError("unknown or revoked API key", code="invalid_key")
    request.scope[KEY_NAME_SCOPE] = key.name
    if res.global_limiter.check("*") > 0:
        raise RateLimitedError("the API is busy; retry shortly", retry_after=1.0,
                               code="overloaded")
    wait = res.limiter.check(str(key.id))
    if wait > 0:
        raise RateLimitedError(
            f"more than {res.limiter.per_minute} requests a minute with this key",
            retry_after=wait)
    return key




def require_role(role: OperatorRole) -> Callable[..., Awaitable[ApiKey]]:
    """Dependency: a valid key whose operator role is ``role`` or above."""

    async def dependency(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
        res: Annotated[Resources, Depends(get_resources)],
    ) -> ApiKey:
        key = await authenticate(request, creds, res)
        if not key.at_least(role):
            raise ForbiddenError(f"this needs the {role} role; the key has {key.role}",
                            code="insufficient_role")
        return key

    return dependency


async def require_department(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    res: Annotated[Resources, Depends(get_resources)],
) -> ApiKey:
    """Dependency: a valid department key (the ingest gateway)."""
    key = await authenticate(request, creds, res)
    if key.role != "department" or key.department is None:
        raise ForbiddenError("publishing events needs a department key", code="insufficient_role")
    return key


ResourcesDep = Annotated[Resources, Depends(get_resources)]
ViewerKey = Annotated[ApiKey, Depends(require_role("viewer"))]
OperatorKey = Annotated[ApiKey, Depends(require_role("operator"))]
AdminKey = Annotated[ApiKey, Depends(require_role("admin"))]
DepartmentKey = Annotated[ApiKey, Depends(require_department)]
