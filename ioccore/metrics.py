"""Every Prometheus metric ioc exports, in one place, one comment each.

Names follow ``ioc_<area>_<what>_<unit>``. Processes expose them on ``/metrics``
(workers through their faust web server, the API through FastAPI). Hot paths update
them once per batch, never per event.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# Ingest (stage 1 and the HTTP gateway)
EVENTS_RECEIVED = Counter(
    "ioc_ingest_events_received_total", "Events read from a raw topic or posted over HTTP.",
    ["feed"])
EVENTS_VALID = Counter(
    "ioc_ingest_events_valid_total", "Events that passed validation.", ["feed"])
EVENTS_REJECTED = Counter(
    "ioc_ingest_events_rejected_total",
    "Events sent to the dead-letter topic, by reason code.", ["feed", "reason"])
GEO_LOOKUPS = Counter(
    "ioc_geo_lookups_total",
    "Commune assignments by outcome (code, legacy_code, cache, contains, nearest, unassigned).",
    ["outcome"])

# Stage 2 and sinks
SINK_ROWS_INSERTED = Counter(
    "ioc_sink_rows_inserted_total", "Raw rows the sink inserted (replays insert none).",
    ["feed"])
SINK_ROWS_DUPLICATE = Counter(
    "ioc_sink_rows_duplicate_total", "Rows skipped because the event was already stored.",
    ["feed"])
SINK_CLAIM_RETRIES = Counter(
    "ioc_sink_claim_retries_total",
    "Sink writes run again because another writer claimed some of their event identities"
    " first (two workers or a replay on the same events; the rerun counts them as"
    " duplicates).")
EVENTS_LATE = Counter(
    "ioc_stream_events_late_total",
    "Events that arrived more than the allowed lateness behind their source's progress"
    " (marked late; stored and counted in rollups all the same).", ["feed"])
SINK_BATCH_ROWS = Histogram(
    "ioc_sink_batch_rows", "Rows per sink transaction.",
    buckets=(10, 100, 500, 1000, 5000, 10000, 25000, 50000, 100000))
SINK_FLUSH_SECONDS = Histogram(
    "ioc_sink_flush_seconds", "Duration of one sink transaction (COPY + rollup upsert).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
SINK_BUFFER_ROWS = Gauge(
    "ioc_sink_buffer_rows", "Rows taken from Kafka and not yet durable in the database.")
ROLLUP_UPSERTS = Counter(
    "ioc_rollup_windows_upserted_total", "One-minute window totals written.")
LATENCY_STORED = Histogram(
    "ioc_latency_occurred_to_stored_seconds",
    "From an event's occurred_at to its row being committed.", ["feed"],
    buckets=_LATENCY_BUCKETS)
LATENCY_PROCESSED = Histogram(
    "ioc_latency_occurred_to_processed_seconds",
    "From an event's occurred_at to stage 1 having delivered it enriched (sampled).",
    ["feed"],
    buckets=_LATENCY_BUCKETS)
LATENCY_ALERT = Histogram(
    "ioc_latency_occurred_to_alert_seconds",
    "From the newest event behind a transition to the transition being stored.",
    buckets=_LATENCY_BUCKETS)
BATCH_RETRIES = Counter(
    "ioc_stream_batch_retries_total",
    "Failed attempts at a batch, retried whole (cause: database, kafka or unexpected).",
    ["stage", "cause"])
BATCH_FAILING = Gauge(
    "ioc_stream_batch_failing_seconds",
    "How long the stage's current batch has been failing (0 when it is not).", ["stage"])
DEPENDENCY_UP = Gauge(
    "ioc_stream_dependency_up",
    "1 while the worker's last attempt on the dependency (database, kafka) worked.",
    ["dependency"])
CONSUMER_LAG = Gauge(
    "ioc_kafka_consumer_lag_messages", "Messages behind the partition's high watermark.",
    ["topic", "partition"])
PARTITIONS_ASSIGNED = Gauge(
    "ioc_stream_partitions_assigned",
    "Partitions of its input topics this worker's stage holds now (stage 1: raw topics).",
    ["stage"])
WATERMARK = Gauge(
    "ioc_stream_watermark_seconds",
    "Newest event time this worker stored (epoch seconds); progress is per source.")
EVALUATION_SECONDS = Histogram(
    "ioc_alert_evaluation_seconds",
    "Time one evaluation step spends in the evaluator (per batch or tick, no I/O).",
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
             2.5))
EVALUATION_MINUTES = Counter(
    "ioc_alert_evaluated_minutes_total",
    "Minute boundaries evaluated (rule x scope): event-time evaluation work done.")

STAGE_PHASE_SECONDS = Histogram(
    "ioc_stream_phase_seconds",
    "Where a batch's latency goes, per stage and phase (one observation per batch): "
    "stage1 read_lag (oldest message's producer timestamp -> its batch closed), wait "
    "(getmany waiting for a first record), fill (first record -> batch closed), validate, "
    "send (enriched + dead letters delivered); stage2 fetch_lag (oldest enriched "
    "message's timestamp -> its batch closed), fill, decode, write, plan, commit, publish.",
    ["stage", "phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
STAGE_BATCH_MESSAGES = Histogram(
    "ioc_stream_batch_messages", "Messages per batch a stage takes.", ["stage"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000))
STAGE2_INFLIGHT_BYTES = Gauge(
    "ioc_stream_stage2_inflight_bytes",
    "Bytes of enriched messages stage 2 holds, taken from Kafka and not yet committed "
    "(stage 1 stops reading above stream.stage2_inflight_max_bytes).")

# Alerts
ALERT_TRANSITIONS = Counter(
    "ioc_alerts_transitions_total", "Alert state transitions.", ["to_state", "severity"])
ALERTS_ACTIVE = Gauge(
    "ioc_alerts_active", "Alerts currently pending, firing or acknowledged.",
    ["state", "severity"])
OUTBOX_DELIVERED = Counter(
    "ioc_alerts_outbox_delivered_total", "Notifications delivered.", ["receiver"])
OUTBOX_FAILED = Counter(
    "ioc_alerts_outbox_failures_total", "Notification attempts that failed.", ["receiver"])
OUTBOX_PENDING = Gauge(
    "ioc_alerts_outbox_pending", "Notifications waiting for delivery.", ["receiver"])

# Simulators
SIM_EVENTS_SENT = Counter(
    "ioc_simulator_events_sent_total", "Events a simulator published, valid or malformed.",
    ["feed", "kind"])

# HTTP API
API_INGEST_EVENTS = Counter(
    "ioc_api_ingest_events_total",
    "Events posted to the HTTP gateway by outcome (accepted, or the rejection reason).",
    ["feed", "outcome"])
HTTP_REQUESTS = Counter(
    "ioc_api_requests_total", "HTTP requests by route and status.", ["route", "status"])
API_BACKLOG_SECONDS = Gauge(
    "ioc_api_pipeline_backlog_seconds",
    "The worker groups' lag on the gateway's topics, in seconds of their consumption "
    "rate, as the gateway's admission control last read it.", ["stage"])
API_BACKPRESSURE_REQUESTS = Counter(
    "ioc_api_backpressure_requests_total",
    "Ingest requests that met a pipeline behind its bound, by outcome (paced: admitted "
    "at the drain rate; admitted_after_wait: held until it caught up; refused: 503).",
    ["outcome"])
API_BACKPRESSURE_ERRORS = Counter(
    "ioc_api_backpressure_lag_errors_total",
    "Lag reads that failed (broker down, ACL missing): admission control fails open.")

# Which metrics may have no sample after a normal end-to-end run, and why (checked by
# tests/integration/pipeline/test_metrics_registry.py; every other metric must have one).
ON_EVENT_ONLY: dict[str, str] = {
    "ioc_stream_events_late_total": "only when an event older than the allowed lateness arrives",
    "ioc_stream_batch_retries_total": "only when a batch fails (outage or bug)",
    "ioc_stream_batch_failing_seconds": "set on a stage's first failure, then kept",
    "ioc_alerts_outbox_failures_total": "only when a receiver refuses or is unreachable",
    "ioc_alerts_outbox_delivered_total": "only when there is a notification to deliver",
    "ioc_alerts_transitions_total": "only when an alert changes state",
    "ioc_latency_occurred_to_alert_seconds": "only when an alert changes state",
}
API_ONLY: frozenset[str] = frozenset({
    "ioc_api_ingest_events_total", "ioc_api_requests_total",
    "ioc_api_pipeline_backlog_seconds", "ioc_api_backpressure_requests_total",
    "ioc_api_backpressure_lag_errors_total", "ioc_ngsi_events_total"})
"""Exported by the HTTP API process, not by workers."""
MQTT_BRIDGE_ONLY: frozenset[str] = frozenset({
    "ioc_mqtt_messages_total", "ioc_mqtt_events_total", "ioc_mqtt_batch_retries_total"})
"""Exported by ``ioc mqtt-bridge``, not by workers."""
SIMULATOR_ONLY: frozenset[str] = frozenset({"ioc_simulator_events_sent_total"})
"""Exported by ``ioc simulate`` (iocdev), not by workers."""

# ------------------------------------------------------------------ open-format ingest
MQTT_MESSAGES = Counter(
    "ioc_mqtt_messages_total",
    "MQTT messages the bridge handled: acknowledged to Mosquitto, or left for redelivery "
    "(the connection they came on was lost before their batch was durable).",
    ["outcome"])
MQTT_EVENTS = Counter(
    "ioc_mqtt_events_total",
    "Events the MQTT bridge produced (accepted) or dead-lettered (the reason).",
    ["feed", "outcome"])
MQTT_BATCH_RETRIES = Counter(
    "ioc_mqtt_batch_retries_total",
    "Bridge batches retried because Kafka or the database did not make them durable.",
    ["cause"])
NGSI_EVENTS = Counter(
    "ioc_ngsi_events_total",
    "Events from NGSI-LD entities: accepted, or the rejection reason.",
    ["feed", "outcome"])
