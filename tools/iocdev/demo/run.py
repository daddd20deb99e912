"""The demo's steps in order: stack, earlier runs, migrate, boundaries, topics, workers
and API, simulator with the live view, drain, report, stop.

Every run has a database of its own, ``<database>_demo_<UTC yyyymmddHHMMSS>``: the same
seed publishes the same ``(source_id, event_id)`` pairs, which a database that stored them
once rightly refuses as duplicates, so a second run on one database would store nothing.
A fresh database makes each run exact and self-contained (its rows, rollups, alerts and
report are its own); the topics and consumer groups stay, since the groups' committed
offsets already make each run's workers read only what came after. The previous runs'
databases (of the same ``<database>``) are dropped when a run starts, after the children
an earlier run left running are stopped, so the stack keeps one demo's data at most.

Every step is named; the first essential step that fails ends the run with
:class:`~iocdev.demo.errors.DemoError` naming it. The API is not essential to the pipeline:
if it fails the run goes on and ends non-zero with the API named. Whatever happens
(errors, Ctrl-C, SIGTERM), the children this run started are stopped by pid, and the
stack services it started itself are stopped too, unless ``keep_running``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
from psycopg import sql

from ioccore.settings import ROOT
from iocdev import supervise
from iocdev.demo import queries
from iocdev.demo.errors import DemoError, DemoInterruptedError
from iocdev.demo.live import FEEDS, Snapshot, View, scrape
from iocdev.demo.orchestrate import Children, Exited, log_tail
from iocdev.demo.report import ReportFiles, build_report, collect
from iocdev.settings import DevSettings
from iocdev.stack.postgres import drop_database

Echo = Callable[[str], None]
RATE_WINDOW_S = 5.0
"""Rates in the live view are averaged over this many seconds (sinks commit in bursts)."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``ioc demo`` was asked to do (see ``ioc demo --help``)."""

    province: str = "01"
    span_s: float = 7200.0
    speedup: float = 120.0
    rate: float = 5000.0  # events per wall second, as `ioc simulate --rate`
    seed: int = 42
    workers: int = 1
    bad_share: float = 0.01
    keep_running: bool = False
    report_dir: Path | None = None
    tty: bool = False
    drain_quiet_s: float = 3.0
    drain_timeout_s: float = 180.0
    ready_timeout_s: float = 90.0


@dataclass
class Outcome:
    """What the run produced; ``problems`` name the parts that failed."""

    report: ReportFiles | None = None
    problems: list[str] = field(default_factory=list)
    stored: dict[str, int] = field(default_factory=dict)
    rollup_rows: int = 0
    alerts_active: int = 0
    wall_s: float = 0.0
    sim_wall_s: float = 0.0


def format_span(seconds: float) -> str:
    """Seconds as the simulator's duration syntax (``7200`` -> ``"2h"``)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def simulator_sent(log: Path) -> int | None:
    """Valid events the simulator sent, from the JSON counts it prints when done."""
    for line in reversed(log_tail(log, 5).splitlines()):
        if line.startswith("{") and '"sensor"' in line:
            try:
                counts = json.loads(line)
                return int(sum(int(counts.get(f, 0)) for f in FEEDS) - int(counts["bad"]))
            except (ValueError, KeyError, TypeError):
                return None
    return None


@contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`DemoInterruptedError` while the demo runs."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise DemoInterruptedError(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def run_database(base: str, at: datetime) -> str:
    """The database of a run started at ``at`` on the configured database ``base``."""
    return f"{base}_demo_{at:%Y%m%d%H%M%S}"


def is_run_database(base: str, name: str) -> bool:
    """Whether ``name`` is a run database of ``base`` (never another base's run, whose
    name merely starts alike: ``ioc_demo_x_demo_...`` is not a run of ``ioc``)."""
    return re.fullmatch(re.escape(base) + r"_demo_\d{14}", name) is not None


class Demo:
    """One run of the demo."""

    def __init__(self, settings: DevSettings, opts: DemoOptions, *, echo: Echo = print) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        self.base_db = settings.database.dbname
        self.run_db = run_database(self.base_db, now)
        self.settings = settings.model_copy(update={
            "database": settings.database.model_copy(update={"dbname": self.run_db})})
        """The configured settings on this run's database (what its children get)."""
        self.opts = opts
        self.echo = echo
        root = settings.stack.root
        db = self.base_db
        self.children = Children(log_dir=root / "logs", run_dir=root / "run", cwd=ROOT,
                                 env={**os.environ, "IOC__DATABASE__DBNAME": self.run_db},
                                 prefix="demo-" if db == "ioc" else f"demo@{db}-")
        self.outcome = Outcome()
        self.started_services: list[str] = []
        self.t0 = time.monotonic()
        self.window = queries.Window(
            province=opts.province, sim_start=now - timedelta(seconds=opts.span_s),
            sim_end=now, since=now - timedelta(seconds=5))
        stamp = now.strftime("%Y%m%d-%H%M%S")
        self.report_dir = opts.report_dir or ROOT / "reports" / f"demo-{stamp}"

    # -------------------------------------------------------------- helpers
    def _cli(self, *args: str) -> list[str]:
        return supervise.ioc_argv(*args)

    def _conn(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.settings.database.conninfo(), autocommit=True)

    def _step(self, name: str) -> None:
        self.echo(f"[{time.monotonic() - self.t0:6.1f}s] {name}")

    def _worker_urls(self) -> list[str]:
        base = self.settings.stream.worker_web_port
        return [f"http://127.0.0.1:{base + i}/metrics" for i in range(self.opts.workers)]

    # -------------------------------------------------------------- steps
    def stack_up(self) -> None:
        from iocdev.errors import StackError
        from iocdev.stack import manager

        self._step("stack: starting what is not running")
        try:
            before = {row.name: row.pid for row in manager.status(self.settings)}
            manager.up(self.settings, echo=self.echo)
            after = {row.name: row.pid for row in manager.status(self.settings)}
        except StackError as exc:
            raise DemoError("stack", exc.reason,
                            Path(exc.log) if exc.log else None) from exc
        self.started_services = [n for n, pid in after.items()
                                 if pid is not None and before.get(n) is None]

    def earlier_runs(self) -> None:
        """Stop what an earlier run left running, then drop the earlier runs' databases."""
        left = self.children.stop_leftovers()
        if left:
            self.echo(f"stopped processes an earlier demo left running: pids {left}")
        db = self.settings.database
        try:
            with psycopg.connect(db.owner_conninfo(dbname="postgres"), autocommit=True) as conn:
                names = [str(r[0]) for r in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s",
                    (f"{self.base_db}_demo_%",))]
                earlier = sorted(n for n in names
                                 if is_run_database(self.base_db, n) and n != self.run_db)
            for name in earlier:  # an earlier run's backends may still be closing
                drop_database(db, name)
        except psycopg.Error as exc:
            raise DemoError("earlier runs", str(exc)) from exc
        if earlier:
            self.echo(f"database: dropped earlier demo runs {', '.join(earlier)}")

    def migrate(self) -> None:
        from ioccore.db.migrate import apply_migrations
        from ioccore.errors import StorageError

        db = self.settings.database
        self._step(f"database: {db.dbname} migrations")
        try:
            with psycopg.connect(db.owner_conninfo(dbname="postgres"), autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                      (db.dbname,)).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(
                        sql.Identifier(db.dbname)))
                    self.echo(f"database: created {db.dbname}")
            applied = apply_migrations(db.owner_conninfo())
        except (psycopg.Error, StorageError) as exc:
            raise DemoError("migrate", str(exc)) from exc
        self.echo("database: applied " + (", ".join(applied) if applied else "nothing"))

    def boundaries(self) -> None:
        with self._conn() as conn:
            n = queries.boundaries_loaded(conn, self.opts.province)
        if n:
            self.echo(f"boundaries: {n} communes of {self.opts.province} already loaded")
            self.agencies()
            return
        self._step("boundaries: loading the bundled reference (approximate polygons)")
        self._run_to_end("geo", self._cli("geo", "load"), timeout=600)
        with self._conn() as conn:
            n = queries.boundaries_loaded(conn, self.opts.province)
        if not n:
            raise DemoError("geo", f"no communes of province {self.opts.province} after "
                            "loading", self.children.log_path("geo"))
        self.echo(f"boundaries: {n} communes of {self.opts.province}")
        self.agencies()

    def agencies(self) -> None:
        """The bundled agency registry (tiers of the KPIs); a reload changes nothing."""
        from ioccore.agencies import BUNDLED, BUNDLED_VALID_FROM, read_registry, write_registry

        with self._conn() as conn:
            report = write_registry(conn, read_registry(BUNDLED), source=BUNDLED.name,
                                    valid_from=BUNDLED_VALID_FROM)
        self.echo(f"agencies: {report}")

    def topics(self) -> None:
        from ioccore.topics import ensure_topics

        self._step("topics: ensure")
        try:
            states = ensure_topics(self.settings.kafka)
        except Exception as exc:  # kafka-python raises many unrelated classes
            raise DemoError("topics", f"{type(exc).__name__}: {exc}") from exc
        created = [s.name for s in states if s.created]
        self.echo("topics: " + (f"created {', '.join(created)}" if created else "all exist"))

    def _run_to_end(self, name: str, argv: list[str], *, timeout: float) -> None:
        child = self.children.start(name, argv)
        try:
            code = self.children.wait(child, timeout=timeout)
        except BaseException:
            self.children.stop(child)
            raise
        if code != 0:
            raise DemoError(name, f"exited with code {code}", child.log)

    def start_services(self) -> None:
        import httpx

        self._step(f"starting {self.opts.workers} worker(s) and the API")
        for i in range(self.opts.workers):
            c = self.children.start(f"worker-{i}", self._cli("worker", "--index", str(i)))
            self.echo(f"worker-{i}: pid {c.pid}, log {c.log}")
        c = self.children.start("api", self._cli("api"))
        self.echo(f"api: pid {c.pid}, log {c.log}")
        waiting = {f"worker-{i}": url for i, url in enumerate(self._worker_urls())}
        api = self.settings.api
        waiting["api"] = f"http://{api.host}:{api.port}/healthz"
        deadline = time.monotonic() + self.opts.ready_timeout_s
        while waiting and time.monotonic() < deadline:
            for ended in self.children.poll():
                self._child_ended(ended)
                waiting.pop(ended.name, None)
            for name, url in list(waiting.items()):
                try:
                    if httpx.get(url, timeout=1.0).status_code < 500:
                        self.echo(f"{name}: answers on {url.rsplit('/', 1)[0]}")
                        del waiting[name]
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        for name in waiting:
            child = self.children.get(name)
            problem = DemoError(name, f"did not answer within {self.opts.ready_timeout_s:.0f} s",
                                child.log)
            if name == "api":
                self._problem(problem)
            else:
                raise problem

    def _problem(self, err: DemoError) -> None:
        """Record a non-essential failure (the run goes on, exits non-zero)."""
        self.outcome.problems.append(f"{err.part}: {err.reason}")
        self.echo(f"FAILED {err.part}: {err.reason}")
        if err.log is not None:
            self.echo(f"--- last lines of {err.log} ---\n{log_tail(err.log)}\n---")

    def _child_ended(self, ended: Exited) -> None:
        if ended.name == "simulate" and ended.code == 0:
            return
        err = DemoError(ended.name, f"exited with code {ended.code}", ended.log)
        if ended.name == "api":
            self._problem(err)
        else:
            raise err

    def snapshot(self, conn: psycopg.Connection[Any], phase: str, before: Snapshot | None,
                 *, kpis: bool, rate_base: Snapshot | None = None) -> Snapshot:
        w = self.window
        clock = queries.sim_clock(conn, w)
        progress = 0.0
        if clock is not None:
            progress = min(1.0, max(0.0, (clock - w.sim_start).total_seconds()
                                    / max(1.0, self.opts.span_s)))
        metrics = scrape(self._worker_urls())
        snap = Snapshot(at=time.monotonic(), elapsed_s=time.monotonic() - self.t0,
                        phase=phase, progress=progress, sim_clock=clock,
                        stored=queries.raw_counts(conn, w), received=metrics["received"],
                        rejected=metrics["rejected"], alerts=queries.active_alerts(conn, w),
                        kpis=queries.province_kpis(conn, w) if kpis or before is None
                        else before.kpis)
        return snap.with_rates(rate_base or before)

    def simulate_and_watch(self) -> None:
        o = self.opts
        argv = self._cli("simulate", "--province", o.province, "--rate", f"{o.rate:g}",
                         "--speedup", f"{o.speedup:g}", "--duration", format_span(o.span_s),
                         "--start", self.window.sim_start.isoformat(), "--seed", str(o.seed),
                         "--bad-share", f"{o.bad_share:g}", "--target", "kafka")
        self._step(f"simulating {format_span(o.span_s)} of province {o.province} at "
                   f"{o.speedup:g}x ({o.rate:g} events/s): about "
                   f"{o.span_s / o.speedup:.0f} s")
        sim = self.children.start("simulate", argv)
        sim_t0 = time.monotonic()
        title = f"province {o.province}, {format_span(o.span_s)} at {o.speedup:g}x"
        with self._conn() as conn, View(tty=o.tty, title=title, echo=self.echo) as view:
            snap: Snapshot | None = None
            phase = "simulate"
            quiet_since: float | None = None
            expected: int | None = None
            drain_deadline = float("inf")
            quiet_s = max(o.drain_quiet_s, 3 * self.settings.stream.batch_within_s)
            tick = 0
            history: deque[Snapshot] = deque()  # the last RATE_WINDOW_S of snapshots
            while True:
                for ended in self.children.poll():
                    self._child_ended(ended)
                if phase == "simulate" and sim.poll() == 0:
                    phase = "drain"
                    self.outcome.sim_wall_s = time.monotonic() - sim_t0
                    drain_deadline = time.monotonic() + o.drain_timeout_s
                prev = snap
                while history and time.monotonic() - history[0].at > RATE_WINDOW_S:
                    history.popleft()
                snap = self.snapshot(conn, phase, prev, kpis=tick % 3 == 0,
                                     rate_base=history[0] if history else None)
                history.append(snap)
                tick += 1
                if phase == "drain":
                    stored = sum(snap.stored.values())
                    if expected is None:
                        expected = simulator_sent(sim.log)
                    # Drained: every valid event the simulator sent is stored, or (some
                    # were dropped, e.g. as late) nothing changed for a few sink flush
                    # intervals after rows started to arrive.
                    if expected is not None and stored >= expected:
                        view.show(snap, force=True)
                        break
                    if (prev is not None and stored > 0 and snap.stored == prev.stored
                            and snap.received == prev.received):
                        quiet_since = quiet_since or prev.at
                        if snap.at - quiet_since >= quiet_s:
                            view.show(snap, force=True)
                            break
                    else:
                        quiet_since = None
                    if time.monotonic() > drain_deadline:
                        raise DemoError(
                            "drain", f"pipeline not drained {o.drain_timeout_s:.0f} s after "
                            f"the simulator finished: {stored:,} rows stored of about "
                            f"{expected if expected is not None else '?'} valid events sent",
                            self.children.get("worker-0").log)
                view.show(snap)
                time.sleep(1.0)
            snap = self.snapshot(conn, "done", snap, kpis=True)
            view.show(snap, force=True)
        self.outcome.stored = dict(snap.stored)
        self.outcome.alerts_active = len(snap.alerts)
        if sum(snap.stored.values()) == 0:
            raise DemoError("pipeline", "the simulator finished but no raw rows were stored",
                            self.children.get("worker-0").log)

    def write_report(self) -> None:
        self._step("report")
        o = self.opts
        with self._conn() as conn:
            self.outcome.rollup_rows = queries.rollup_rows(conn, self.window)
            facts = {
                "province": o.province,
                "simulated span": f"{format_span(o.span_s)} at {o.speedup:g}x "
                                  f"({o.rate:g} events per wall second, seed {o.seed}, "
                                  f"{100 * o.bad_share:g}% malformed)",
                "workers": str(o.workers),
                "wall time of the simulation": f"{self.outcome.sim_wall_s:.1f} s",
                "raw rows stored": ", ".join(f"{f} {self.outcome.stored.get(f, 0):,}"
                                             for f in FEEDS),
                "rollup_1m rows": f"{self.outcome.rollup_rows:,}",
                "alerts seen (by severity)": ", ".join(
                    f"{k} {v}" for k, v in sorted(queries.alerts_seen(conn, self.window)
                                                  .items())) or "none",
                "database": self.settings.database.dbname,
            }
            data = collect(conn, self.window, facts=facts, problems=self.outcome.problems)
        self.outcome.report = build_report(data, self.report_dir)
        if self.outcome.rollup_rows == 0:
            raise DemoError("pipeline", "no rollup_1m rows for the simulated span",
                            self.children.get("worker-0").log)

    def stop(self, *, keep: bool) -> None:
        if keep:
            names = ", ".join(f"{c.name} (pid {c.pid})" for c in self.children.children
                              if c.ours())
            self.echo(f"--keep-running: left running {names}; pid files under "
                      f"{self.children.run_dir}")
            self.children.keep()
            return
        stopped = self.children.stop_all()
        if stopped:
            self.echo(f"stopped {', '.join(stopped)}")
        if self.started_services:
            from iocdev.stack import manager

            manager.down(self.settings, self.started_services, echo=self.echo)

    # -------------------------------------------------------------- the whole run
    def run(self) -> Outcome:
        """Run every step; raises DemoError (after stopping everything) on failure."""
        ok = False
        with _signals_raise():
            try:
                self.stack_up()
                self.earlier_runs()
                self.migrate()
                self.boundaries()
                self.topics()
                self.start_services()
                self.simulate_and_watch()
                self.write_report()
                ok = True
            finally:
                self.outcome.wall_s = time.monotonic() - self.t0
                # Stopping must not be cut short by a second Ctrl-C or SIGTERM.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                self.stop(keep=self.opts.keep_running and ok)
        return self.outcome
