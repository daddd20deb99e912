"""The faults, and the frame every scenario runs in.

Frame (:func:`run_scenario`): an isolated pipeline on the chaos stack (fresh topics with
six partitions, consumer group and database), the probe rule, a webhook receiver
process, ``workers`` real ``ioc worker`` processes; the load starts, the fault is
injected once storage is under way, the load runs on for ``after_s``, then the run
waits until everything published is stored and every probe alert delivered (or
``drain_s`` passes) and the ledger is counted.

A fault function blocks for the length of the fault and returns the wall-clock time the
fault ended (the service is back, or the worker was killed).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from iocdev import supervise
from iocdev.chaos import stack
from iocdev.chaos.ledger import Ledger, alertmanager_communes, collect
from iocdev.chaos.load import PROBE_RULE, Load
from iocdev.chaos.receiver import read_log
from iocdev.sandbox import Pipeline, pipeline
from iocdev.settings import DevSettings
from iocdev.simulate.communes import load_communes
from iocdev.supervise import Process

Echo = Callable[[str], None]


class Receiver:
    """The webhook receiver process; ``down``/``up`` by its pid, same port and log."""

    def __init__(self, tmp: Path, secret: bytes) -> None:
        self.port = supervise.free_port()
        self.log = tmp / "webhook-deliveries.jsonl"
        self.secret_file = tmp / "webhook.secret"
        self.secret_file.write_bytes(secret)
        self.tmp = tmp
        self.proc: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        import sys

        self.proc = supervise.spawn(
            "webhook-receiver",
            [sys.executable, "-m", "iocdev.chaos.receiver", "--port", str(self.port),
             "--log", str(self.log), "--secret-file", str(self.secret_file)],
            log=self.tmp / "webhook-receiver.log", cwd=self.tmp)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"the webhook receiver did not start\n{self.proc.describe()}")

    def down(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=10)


@dataclass
class Run:
    """What a fault function has at hand."""

    settings: DevSettings
    pipe: Pipeline
    load: Load
    receiver: Receiver
    worker_env: dict[str, str]
    echo: Echo
    workers: list[Process] = field(default_factory=list)

    def start_worker(self) -> Process:
        proc = self.pipe.start_worker(extra_env=self.worker_env)
        self.workers.append(proc)
        return proc

    def stored(self) -> int:
        return self.pipe.stored_readings()

    def wait_storing(self, timeout: float = 120.0) -> None:
        """Until rows are being stored right now (so a kill lands mid-batch)."""
        self.pipe.wait_storing(timeout, 0.5, lambda: (
            "nothing was stored before the fault\n"
            + "\n".join(w.describe() for w in self.workers)))

    def session_timeout_s(self) -> float:
        """The consumer-group session timeout the workers run with."""
        return self.settings.stream.session_timeout_s


Fault = Callable[[Run], float]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    fault: Fault
    workers: int = 1
    after_s: float = 15.0
    drain_s: float = 300.0
    idle_s: float = 90.0
    """Stop waiting when nothing was stored or delivered for this long."""
    quick: bool = False
    """Short enough for CI."""


# ---------------------------------------------------------------------------- faults
def _sigkill_mid_batch(run: Run) -> float:
    (worker,) = run.workers
    run.wait_storing()
    worker.kill()
    killed = time.time()
    worker.wait(timeout=30)
    run.echo(f"   SIGKILL worker pid {worker.pid} mid-batch; restarting it")
    run.start_worker()
    return killed


def _two_workers_one_killed(run: Run) -> float:
    run.wait_storing()
    victim = run.workers[0]
    victim.kill()
    killed = time.time()
    victim.wait(timeout=30)
    run.echo(f"   SIGKILL worker pid {victim.pid}; the other must take its partitions")
    return killed


def _outage(service: str, seconds: float) -> Fault:
    def fault(run: Run) -> float:
        run.wait_storing()
        run.echo(f"   stopping {service} for {seconds:.0f} s")
        stack.stop_service(run.settings, service)
        time.sleep(seconds)
        took = stack.start_service(run.settings, service)
        run.echo(f"   {service} back (start took {took:.1f} s)")
        return time.time()
    return fault


def _receivers_down(seconds: float) -> Fault:
    def fault(run: Run) -> float:
        run.wait_storing()
        run.echo(f"   webhook receiver and Alertmanager down for {seconds:.0f} s")
        run.receiver.down()
        stack.stop_service(run.settings, "alertmanager")
        time.sleep(seconds)
        stack.start_service(run.settings, "alertmanager")
        run.receiver.up()
        return time.time()
    return fault


def _zombie(run: Run) -> float:
    run.wait_storing()
    zombie = run.workers[0]
    pause = run.session_timeout_s() + 10.0
    run.echo(f"   SIGSTOP worker pid {zombie.pid} for {pause:.0f} s (session timeout + 10 s)")
    zombie.pause()
    time.sleep(pause)
    zombie.resume()
    run.echo("   SIGCONT: the zombie wakes up holding a batch it no longer owns")
    return time.time()


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("sigkill", "SIGKILL of a worker mid-batch", _sigkill_mid_batch, quick=True),
    Scenario("two-workers-one-killed", "two workers, one killed with SIGKILL",
             _two_workers_one_killed, workers=2),
    Scenario("broker-restart", "Kafka broker stopped for 20 s and restarted",
             _outage("kafka", 20.0)),
    Scenario("postgres-fast-restart", "PostgreSQL fast restart under load",
             _outage("postgres", 0.0), quick=True),
    Scenario("postgres-outage-60s", "PostgreSQL down for 60 s under load",
             _outage("postgres", 60.0)),
    Scenario("receivers-down-120s", "webhook receiver and Alertmanager down for 120 s",
             _receivers_down(120.0), drain_s=480.0, idle_s=330.0),
    Scenario("zombie-sigstop", "a worker paused with SIGSTOP past the session timeout",
             _zombie, workers=2),
)


def by_name(names: list[str]) -> list[Scenario]:
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown scenario(s) {unknown}; choose from {sorted(known)}")
    return [known[n] for n in names]


# ---------------------------------------------------------------------------- frame
def _wait_ready(pipe: Pipeline, procs: list[Process], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    pending = {i for i, _ in enumerate(pipe.workers) if pipe.workers[i] in procs}
    while pending and time.monotonic() < deadline:
        for i in list(pending):
            proc = pipe.workers[i]
            if proc.poll() is not None:
                raise RuntimeError(f"worker died while starting\n{proc.describe()}")
            try:
                r = httpx.get(f"http://127.0.0.1:{pipe.web_ports[i]}/readyz", timeout=2)
                if r.status_code == 200:
                    pending.discard(i)
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    if pending:
        raise RuntimeError("workers not ready\n" + "\n".join(
            pipe.workers[i].describe() for i in pending))


def _drained(run: Run, tag: str) -> bool:
    published = run.load.published
    if run.stored() < len(published.valid):
        return False
    probes = {p.commune_code for p in published.probes}
    hooked = {e.get("fingerprint") for e in read_log(run.receiver.log)
              if e.get("rule_id") == f"chaos_probe_{tag}" and e.get("to_state") == "firing"}
    if len(hooked) < len(probes):
        return False
    return probes <= alertmanager_communes(run.settings, tag)


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        return 0


def _drain(run: Run, tag: str, limit_s: float, echo: Echo, idle_s: float = 90.0) -> None:
    """Wait until drained, ``limit_s`` passed, or nothing moved for ``idle_s`` (a loss:
    waiting longer only hides it)."""
    start = last_move = time.monotonic()
    seen = (-1, -1)
    while time.monotonic() - start < limit_s:
        if _drained(run, tag):
            return
        now = (run.stored(), len(read_log(run.receiver.log)))
        if now != seen:
            seen, last_move = now, time.monotonic()
        elif time.monotonic() - last_move > idle_s:
            echo(f"   nothing moved for {idle_s:.0f} s: counting what is there")
            return
        time.sleep(1.0)
    echo(f"   not drained within {limit_s:.0f} s: counting what is there")


def run_scenario(scenario: Scenario, settings: DevSettings, tmp: Path, *, echo: Echo = print,
                 before_s: float = 8.0, rate: float = 200.0) -> Ledger:
    """Run one scenario on the stack ``settings`` names; its ledger."""
    tmp.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    rules = tmp / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "chaos.yaml").write_text(PROBE_RULE.format(tag=tag))
    secret = uuid.uuid4().hex.encode()
    communes = [c.code for c in load_communes("01")]
    load_communes_, probe_communes = communes[:40], communes[40:]
    receiver = Receiver(tmp, secret)
    receiver.up()
    echo(f"== {scenario.name}: {scenario.title}")
    try:
        with pipeline(settings, tmp, partitions=6) as pipe:
            worker_env = {"IOC__ALERTS__RULES_DIR": str(rules),
                          "IOC__ALERTS__WEBHOOK_URL": receiver.url,
                          "IOC__ALERTS__WEBHOOK_SECRET": secret.decode()}
            load = Load(settings, pipe.topics["sensor"], tag=tag,
                        load_communes=load_communes_, probe_communes=probe_communes,
                        rate=rate,
                        close_after_s=settings.alerts.out_of_orderness_s + 5.0)
            run = Run(settings, pipe, load, receiver, worker_env, echo)
            for _ in range(scenario.workers):
                run.start_worker()
            _wait_ready(pipe, run.workers)
            t0 = time.monotonic()
            load.start()
            time.sleep(before_s)
            fault_end = scenario.fault(run)
            time.sleep(scenario.after_s)
            load.probing = False
            load.stop()  # after the probe communes reported past their probed minutes
            echo(f"   load stopped after {time.monotonic() - t0:.0f} s: "
                 f"{len(load.published.valid)} events, {len(load.published.probes)} probes;"
                 " draining")
            _drain(run, tag, scenario.drain_s, echo, scenario.idle_s)
            time.sleep(3.0)  # anything still in flight (a duplicate) lands in the ledger
            ledger = collect(scenario.name, settings=settings, conninfo=pipe.conninfo,
                             deadletter_topic=pipe.topics["deadletter"], tag=tag,
                             published=load.published, receiver_log=receiver.log,
                             fault_end=fault_end)
            ledger.worker_log_lines = sum(_lines(log) for log in pipe.logs)
            dead = [w for w in pipe.workers if w.poll() not in (None, -9)]
            if dead:
                ledger.notes.extend(f"worker ended unexpectedly: {w.describe()}"
                                    for w in dead)
    finally:
        receiver.down()
    echo(ledger.format())
    return ledger
