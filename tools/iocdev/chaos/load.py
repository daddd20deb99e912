"""A known workload: sensor events at a steady rate, alert probes, invalid events.

Every event has a unique id ``<tag>-<n>`` and ``occurred_at`` = the moment it was built,
so the ledger can tell exactly which were acknowledged by the broker (published), which
were stored, and when. Background events are PM2.5 readings of at most 50 µg/m³ in the
``load`` communes (and, after its probe, in each probe commune); a probe is three
readings of 900 µg/m³ in a commune of its own, so each probe must produce exactly one
firing alert of the chaos probe rule (:data:`PROBE_RULE`). Every ``invalid_every``-th
message is one event with an unknown unit, which must be dead-lettered
(``unknown_unit``) and nothing else.

Alerts follow event time (docs/architecture.md, "Time model"): a probe's minute is
evaluated only once its commune's clock (the slowest live source of the commune's sensor
feed; here the probe commune's one source) has passed the minute's end plus
``alerts.out_of_orderness_s``. So the probe commune's source keeps reporting after its
probe (low readings, which the rule's ``max`` does not dilute), and when the load is
stopped it goes on with one low reading a second per probe commune until every probed
minute has closed (:meth:`Load.stop`); a probe then alerts 10 to 70 s (the rest of its
minute + out-of-orderness) plus one reporting interval after it was sent, instead of
after the 10-minute idle grace.

The producer takes its connection options from the settings (``client_options``), and
retries for as long as a broker outage in a scenario lasts: an event counts as
published only once the broker acknowledged it (``acks=all``).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer

from ioccore.settings import Settings

PROBE_RULE = """\
groups:
  - name: chaos
    rules:
      - id: chaos_probe_{tag}
        feed: sensor
        metric: pm25
        scope: commune
        aggregate: max
        window: 1m
        op: ">"
        threshold: 500
        clear: 100
        for: 0m
        keep_firing_for: 1h
        severity: warning
        labels: {{ chaos_run: "{tag}" }}
        annotations:
          summary:
            vi: "Đầu dò chaos tại {{commune}}"
            en: "Chaos probe in {{commune_en}}"
"""
"""One alert per probe commune; it keeps firing for the rest of the scenario. ``max``, not
``avg``: the probe commune's later low readings in the same minute (its event-time
progress) must not average the probe away."""

PROBE_VALUE = 900.0


@dataclass(frozen=True, slots=True)
class Probe:
    commune_code: str
    built_at: float  # wall-clock seconds


@dataclass
class Published:
    """What the broker acknowledged, filled in by the producer's callbacks."""

    valid: dict[str, float] = field(default_factory=dict)
    """event id -> occurred_at (wall-clock seconds) of every acknowledged valid event."""
    invalid: set[str] = field(default_factory=set)
    probes: list[Probe] = field(default_factory=list)
    failed: int = 0
    """Events whose send failed for good (not published; they may still be stored)."""
    commune_of: dict[str, str] = field(default_factory=dict)
    """event id -> commune, for the probe events only."""
    sum_by_window: dict[tuple[str, int], tuple[int, float]] = field(default_factory=dict)
    """(commune, minute epoch) -> (count, sum) over the acknowledged valid events."""


class Load:
    """Produce until :meth:`stop`; run in a thread of its own (:meth:`start`)."""

    def __init__(self, settings: Settings, topic: str, *, tag: str,
                 load_communes: list[str], probe_communes: list[str], rate: float = 200.0,
                 per_message: int = 20, probe_every_s: float = 5.0,
                 invalid_every: int = 25, close_after_s: float = 15.0) -> None:
        self.settings = settings
        self.topic = topic
        self.tag = tag
        self.load_communes = load_communes
        self.probe_communes = list(probe_communes)
        self.rate = rate
        self.per_message = per_message
        self.probe_every_s = probe_every_s
        self.invalid_every = invalid_every
        self.close_after_s = close_after_s
        """After stopping, probe communes report until this long past their probe's minute
        end (``alerts.out_of_orderness_s`` + a margin): their minutes then close."""
        self.published = Published()
        self.built = 0
        self.probing = True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._n = 0
        self._messages = 0
        self._probed: list[str] = []
        self._last_probe: float | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the load, let probe communes report until their probed minutes closed
        (:meth:`closes_at`), then wait until every send was acknowledged or failed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=600)
        if self._error is not None:
            raise RuntimeError(f"the load producer failed: {self._error!r}") from self._error

    def closes_at(self) -> float:
        """Wall-clock time by which every probed minute has closed in event time."""
        with self._lock:
            built = [p.built_at for p in self.published.probes]
        if self._last_probe is not None:
            built.append(self._last_probe)
        if not built:
            return 0.0
        return (max(built) // 60) * 60 + 60 + self.close_after_s

    def snapshot(self) -> dict[str, float]:
        """A copy of the acknowledged valid events (id -> occurred_at)."""
        with self._lock:
            return dict(self.published.valid)

    # ------------------------------------------------------------------ producing
    def _producer(self) -> KafkaProducer:
        return KafkaProducer(
            bootstrap_servers=self.settings.kafka.bootstrap_servers, acks="all",
            linger_ms=20, retries=1_000_000, retry_backoff_ms=250,
            reconnect_backoff_max_ms=1000, request_timeout_ms=15_000,
            delivery_timeout_ms=600_000, max_block_ms=600_000,
            max_in_flight_requests_per_connection=5, max_request_size=2_000_000,
            **self.settings.kafka.client_options())

    def _event(self, commune: str, value: float, unit: str = "ug/m3") -> dict[str, Any]:
        self._n += 1
        return {"schema_version": 1, "event_id": f"{self.tag}-{self._n}",
                "source_id": f"chaos-{commune}", "department": "chaos", "feed": "sensor",
                "occurred_at": datetime.now(UTC).isoformat(), "commune_code": commune,
                "body": {"metric": "pm25", "value": value, "unit": unit}}

    def _send(self, producer: KafkaProducer, events: list[dict[str, Any]], *,
              valid: bool, probe: str | None = None) -> None:
        key = str(events[0]["source_id"]).encode()
        future = producer.send(self.topic, key=key, value=json.dumps(events).encode())
        built_at = time.time()

        def acked(_: Any) -> None:
            with self._lock:
                p = self.published
                if not valid:
                    p.invalid.update(e["event_id"] for e in events)
                    return
                for e in events:
                    at = datetime.fromisoformat(e["occurred_at"]).timestamp()
                    p.valid[e["event_id"]] = at
                    window = (e["commune_code"], int(at // 60) * 60)
                    n, s = p.sum_by_window.get(window, (0, 0.0))
                    p.sum_by_window[window] = (n + 1, s + e["body"]["value"])
                if probe is not None:
                    p.probes.append(Probe(probe, built_at))
                    p.commune_of.update((e["event_id"], probe) for e in events)

        def failed(_: Any) -> None:
            with self._lock:
                self.published.failed += len(events)

        future.add_callback(acked)
        future.add_errback(failed)

    def _run(self) -> None:
        try:
            producer = self._producer()
            try:
                self._loop(producer)
            finally:
                producer.flush(timeout=600)
                producer.close(timeout=60)
        except BaseException as exc:  # reported by stop()
            self._error = exc

    def _loop(self, producer: KafkaProducer) -> None:
        t0 = time.monotonic()
        next_probe = t0 + 2.0
        sent = 0
        while not self._stop.is_set():
            now = time.monotonic()
            target = int(self.rate * (now - t0))
            if target - sent > self.rate:  # stalled (broker down): never burst > 1 s
                sent = target - int(self.rate)
            due = target - sent
            while due >= self.per_message:
                # Probed communes stay in the rotation (low readings from the probe's own
                # source), so their event-time progress moves past the probe's minute and
                # the window is evaluated without waiting for the idle grace.
                rotation = self.load_communes + self._probed
                commune = rotation[self._messages % len(rotation)]
                self._messages += 1
                if self.invalid_every and self._messages % self.invalid_every == 0:
                    self._send(producer, [self._event(commune, 1.0, unit="furlong")],
                               valid=False)
                batch = [self._event(commune, float(1 + (self._n % 50)))
                         for _ in range(self.per_message)]
                self._send(producer, batch, valid=True)
                sent += len(batch)
                due -= len(batch)
                self.built += len(batch)
            if self.probing and now >= next_probe and self.probe_communes:
                commune = self.probe_communes.pop(0)
                self._probed.append(commune)
                self._send(producer, [self._event(commune, PROBE_VALUE) for _ in range(3)],
                           valid=True, probe=commune)
                self._last_probe = time.time()
                next_probe = now + self.probe_every_s
            time.sleep(0.05)
        self._close_probed_minutes(producer)

    def _close_probed_minutes(self, producer: KafkaProducer) -> None:
        """One low reading a second from every probe commune's source until every probed
        minute is past its end + out-of-orderness in event time (see module docstring)."""
        until = self.closes_at()
        while self._probed and time.time() < until:
            for commune in self._probed:
                self._send(producer, [self._event(commune, float(1 + (self._n % 50)))],
                           valid=True)
                self.built += 1
            time.sleep(1.0)
