"""Settings: the only module that reads the environment.

The base is ``config/ioc.yaml`` (or the file named by ``IOC_CONFIG``); environment
variables ``IOC__<SECTION>__<KEY>`` override single keys. Everything else in the
code base takes a :class:`Settings` (or a section of it) as an argument.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from psycopg.conninfo import make_conninfo
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

ROOT = Path(__file__).resolve().parents[1]
"""The project checkout (config/, .stack/ and reports/ are resolved against it)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataHome(BaseModel):
    """The folder this process keeps local files in unless configured otherwise: Kafka
    password files (``secrets/kafka``) and faust's folders (``faust/``).

    The section is named ``stack`` (``IOC__STACK__HOME``) because the local development
    stack writes those files there; the stack's own keys (versions, host: the
    ``iocdev.settings.StackSettings`` of tools/) are not the deployed code's, so this
    section ignores them instead of refusing them.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    home: Path = Path(".stack")

    @property
    def root(self) -> Path:
        """The folder, absolute (a relative ``home`` is resolved against the checkout)."""
        return self.home if self.home.is_absolute() else ROOT / self.home


class TopicSettings(_Section):
    name: str
    partitions: int = 6
    retention_hours: int = 168
    replication: int = 1


class TopicsSettings(_Section):
    sensor: TopicSettings
    traffic: TopicSettings
    service: TopicSettings
    enriched: TopicSettings
    deadletter: TopicSettings
    alerts: TopicSettings

    def raw(self) -> dict[str, TopicSettings]:
        """The three department feeds by feed name."""
        return {"sensor": self.sensor, "traffic": self.traffic, "service": self.service}

    def all(self) -> list[TopicSettings]:
        return [self.sensor, self.traffic, self.service, self.enriched, self.deadletter,
                self.alerts]


class PrincipalNames(_Section):
    """The IOC's own Kafka principals (SCRAM user names); departments get ``dept-<code>``."""

    admin: str = "ioc-admin"
    worker: str = "ioc-worker"
    gateway: str = "ioc-gateway"
    operator: str = "ioc-operator"
    department_prefix: str = "dept-"

    def department(self, code: str) -> str:
        return f"{self.department_prefix}{code}"


SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:19092"
    controller_port: int = 19094
    security_protocol: str = "SASL_PLAINTEXT"
    sasl_mechanism: str | None = "SCRAM-SHA-512"
    sasl_username: str | None = None
    """This process's principal; None: ``principals.admin`` (development tooling)."""
    sasl_password: SecretStr | None = None
    """From IOC__KAFKA__SASL_PASSWORD; else ``<secrets_dir>/<username>.password``."""
    secrets_dir: Path | None = None
    """Password files of the local stack (default ``<stack.home>/secrets/kafka``)."""
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    principals: PrincipalNames = PrincipalNames()
    department_topic_pattern: str = "ioc.dept.{department}.{feed}.v1"
    """Per-department feed topics: the topic a message came from names its department."""
    client_id: str = "ioc"
    max_message_bytes: int = 1_048_576
    topics: TopicsSettings

    @property
    def port(self) -> int:
        return int(self.bootstrap_servers.rsplit(":", 1)[1].split(",")[0])

    @property
    def username(self) -> str:
        return self.sasl_username or self.principals.admin

    def password(self) -> str | None:
        """This process's SASL password: the setting, else its secrets file, else None."""
        return _secret(self.sasl_password, self.secrets_dir, self.username)

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in SASL_PROTOCOLS

    def department_topic(self, department: str, feed: str) -> str:
        return self.department_topic_pattern.format(department=department, feed=feed)

    def client_options(self) -> dict[str, Any]:
        """Security options in kafka-python/aiokafka spelling (both accept these names).

        Raises :class:`ioccore.errors.ConfigError` when SASL is configured and no
        password is found: a client without one would only fail later, less clearly.
        """
        opts: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_sasl:
            password = self.password()
            if password is None:
                from ioccore.errors import ConfigError

                raise ConfigError(
                    f"no Kafka password for principal {self.username}: set "
                    "IOC__KAFKA__SASL_PASSWORD or run `ioc stack up` (it writes "
                    f"{self.secrets_dir or '<stack>/secrets/kafka'}/<user>.password)")
            opts["sasl_mechanism"] = self.sasl_mechanism or "SCRAM-SHA-512"
            opts["sasl_plain_username"] = self.username
            opts["sasl_plain_password"] = password
        if self.security_protocol in ("SSL", "SASL_SSL"):
            opts["ssl_context"] = self.ssl_context()
        return opts

    def ssl_context(self) -> ssl.SSLContext:
        """TLS for SASL_SSL: the configured CA (else the system's), optional client cert."""
        ctx = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        ctx.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile is not None:
            ctx.load_cert_chain(str(self.ssl_certfile),
                                str(self.ssl_keyfile) if self.ssl_keyfile else None)
        return ctx

    def kcat_args(self, config_dir: Path | None = None) -> list[str]:
        """Arguments for kcat: the broker and ``-F <file>``, a librdkafka properties file
        (mode 0600, in ``config_dir``, default the secrets folder or the temporary one)
        holding the protocol, SASL credentials and CA. The password never goes on the
        command line, where ``/proc/<pid>/cmdline`` shows it to every local user."""
        props = {"security.protocol": self.security_protocol}
        if self.uses_sasl:
            opts = self.client_options()
            props |= {"sasl.mechanisms": opts["sasl_mechanism"],
                      "sasl.username": opts["sasl_plain_username"],
                      "sasl.password": opts["sasl_plain_password"]}
        if self.ssl_cafile is not None:
            props["ssl.ca.location"] = str(self.ssl_cafile)
        folder = config_dir or self.secrets_dir or Path(tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"kcat-{self.username}.properties"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an older file keeps its mode on O_CREAT
        with os.fdopen(fd, "w") as out:
            out.writelines(f"{k}={v}\n" for k, v in props.items())
        return ["-b", self.bootstrap_servers, "-F", str(path)]


class DatabaseSettings(_Section):
    """Two roles: ``user`` (the application: reads and writes rows, no DDL, no superuser)
    and ``owner_user`` (owns the schema; migrations run as it)."""

    host: str = "127.0.0.1"
    port: int = 15432
    dbname: str = "ioc"
    user: str = "ioc_app"
    password: SecretStr | None = None
    owner_user: str = "ioc"
    owner_password: SecretStr | None = None
    sslmode: str | None = None
    pool_min: int = 1
    pool_max: int = 8
    """Sizes of each process's pool (the API's, stage 2's): ioccore/db/connect.py."""
    check_idle_s: float = 1.0
    """Stage 2 checks a pooled connection (a round trip) only when it sat idle this long
    (0: before every batch): ioccore/db/connections.py, ``CheckWhenIdle``."""
    connect_timeout_s: int = 5
    """A connection attempt gives up after this long (libpq ``connect_timeout``)."""
    statement_timeout_s: float = 60.0
    """The application role's statement timeout (0: none); the owner role has none."""

    def _conninfo(self, user: str, password: SecretStr | None, dbname: str | None,
                  statement_timeout_s: float) -> str:
        params: dict[str, Any] = {"host": self.host, "port": self.port,
                                  "dbname": dbname or self.dbname, "user": user,
                                  "application_name": "ioc",
                                  "connect_timeout": self.connect_timeout_s,
                                  "options": f"-c statement_timeout="
                                             f"{round(statement_timeout_s * 1000)}"}
        if password is not None:
            params["password"] = password.get_secret_value()
        if self.sslmode:
            params["sslmode"] = self.sslmode
        return make_conninfo("", **params)

    def conninfo(self, dbname: str | None = None) -> str:
        """The application role's libpq connection string (quoted by psycopg), with the
        connection policy's timeouts (ioccore/db/connect.py opens it)."""
        return self._conninfo(self.user, self.password, dbname, self.statement_timeout_s)

    def owner_conninfo(self, dbname: str | None = None) -> str:
        """The owner role's: migrations, and tests creating their own databases."""
        return self._conninfo(self.owner_user, self.owner_password, dbname, 0)


class HttpService(_Section):
    host: str = "127.0.0.1"
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class BackpressureSettings(_Section):
    """Admission control of the ingest gateway (ioc/api/backpressure.py, docs/api.md)."""

    enabled: bool = True
    max_lag_s: float = 2.5
    """Hold new ingest requests while the pipeline's backlog is longer than this."""
    max_wait_s: float = 5.0
    """A request held this long is answered 503 with ``Retry-After``."""
    sample_interval_s: float = 0.5
    rate_window_s: float = 10.0
    """The consumption rate is measured over this much recent history."""
    min_rate_per_s: float = 20.0
    """Messages/s assumed at least, per consumer group (a stopped worker shows rate 0)."""


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 18080
    max_body_bytes: int = 5 * 1024 * 1024
    rate_limit_per_minute: int = 6000
    # hostile input (issue 15; docs/api.md "Limits")
    max_operator_body_bytes: int = 64 * 1024
    max_events_per_request: int = 5000
    events_per_minute: int = 600_000
    global_requests_per_second: int = 2000
    unauthenticated_per_minute: int = 120
    """Requests without a valid key per client address (they skip the global bucket)."""
    limit_concurrency: int = 512
    """Open connections and tasks of one ``ioc api`` process; more get 503."""
    header_timeout_s: float = 10.0
    """A request's headers must arrive within this (slow-headers clients are closed)."""
    keep_alive_s: float = 5.0
    """An idle keep-alive connection is closed after this."""
    max_header_bytes: int = 16 * 1024
    """Largest request head (request line and headers) accepted."""
    max_streams_per_key: int = 4
    max_streams: int = 64
    validation_threads: int = 2
    validation_budget_s: float = 10.0
    """Time one request's splitting and validation may take in its worker process; past
    it the request is refused 413 ``over_budget`` (the worker stops at the deadline)."""
    key_pepper: SecretStr | None = None  # IOC__API__KEY_PEPPER; mixed into key hashes
    metrics_token: SecretStr | None = None
    """IOC__API__METRICS_TOKEN: /metrics needs it as bearer; unset: loopback clients only."""
    console_tile_url: str | None = None  # optional map tiles for /console ({z}/{x}/{y})
    public_url: str | None = None
    """Where people reach this API and its console (links in notifications, e.g.
    ``https://ioc.example.gov.vn``); unset: ``http://<host>:<port>``."""
    backpressure: BackpressureSettings = BackpressureSettings()


WorkerStages = Literal["all", "stage1", "stage2"]
"""What one worker process runs (``stream.stages``, ``ioc worker --stages``)."""


class StreamSettings(_Section):
    app_id: str = "ioc"
    worker_web_host: str = "127.0.0.1"
    worker_web_port: int = 18100
    batch_max: int = 5000
    batch_within_s: float = 0.1
    commit_interval_s: float = 1.0
    allowed_lateness_s: int = 300
    max_future_skew_s: int = 300
    sink_buffer_max_rows: int = 200_000
    retry_max_s: float = 2.0
    session_timeout_s: float = 6.0
    heartbeat_interval_s: float = 1.0
    rebalance_timeout_s: float = 20.0
    group_instance_prefix: str | None = None
    outage_summary_every_s: float = 30.0
    data_dir: Path | None = None
    """faust's data directory (IOC__STREAM__DATA_DIR); unset: ``<stack home>/faust``, so
    workers never create ``<app-id>-data/`` folders where they were started."""
    stage1_batch_bytes: int = 4 * 1024 * 1024
    """A stage-1 batch closes at this many bytes of raw values (about 12,000 events) or
    at ``batch_max`` messages: one message can hold one event or a thousand."""
    stage2_batch_bytes: int = 8 * 1024 * 1024
    """The same for stage 2 (about 27,000 enriched records, one transaction). An encoded
    record is about 310 bytes and 820 decoded, so this bound is most of a draining
    worker's memory: 8 MB keeps a 1M-event drain under 300 MB (BENCHMARKS.md, "Memory");
    with changed-only evaluation small batches no longer cost throughput."""
    stage1_fetch_max_bytes: int = 4 * 1024 * 1024
    """What stage 1's consumer buffers at most per fetch (the reader's prefetch)."""
    stage1_partition_fetch_bytes: int = 1024 * 1024
    """Per partition and fetch (Kafka still returns one larger message whole)."""
    stage1_message_budget_s: float = 5.0
    """Time validating one raw message may take (in a worker thread, the event loop goes
    on meanwhile); beyond it the message is dead-lettered whole as ``over_budget``. A
    valid 1 MiB message takes 0.1-0.3 s here, 5,000 invalid events up to about 2 s on a
    loaded machine (BENCHMARKS.md, "Hostile input")."""
    stage1_inline_slice_bytes: int = 256 * 1024
    """Stage 1 validates on the event loop in slices of at most this many bytes, yielding
    between them (256 KiB: 3 ms of CPU valid, 7 ms for the costliest hostile shape,
    ``bench_hostile --cpu``); a larger message goes to a worker thread. 0: every batch in
    the thread, as before (docs/architecture.md, "Stage 1: a chain of steps")."""
    stage1_dedupe_capacity: int = 1_000_000
    """(source_id, event_id) pairs stage 1 remembers to name re-sent events duplicates."""
    batch_adaptive: bool = True
    """Both stages close a batch as soon as nothing more is buffered (a light input is
    taken as it comes; a backed-up one still fills batches); False: they wait up to
    ``batch_within_s`` to fill (BENCHMARKS.md, "Session 6, latency and memory")."""
    stage2_inflight_max_bytes: int = 16 * 1024 * 1024
    """Bytes of enriched messages stage 2 may hold (faust's buffer and its batch, not yet
    committed) before stage 1 pauses its reading (streams/inflight.py); 0: no bound."""
    stage1_send_ahead: bool = False
    """Stage 1 takes and processes its next batch while the broker acknowledges the
    last one's messages (their offsets commit only after; streams/raw_reader.py). Off:
    no gain measured here (BENCHMARKS.md, session 8)."""
    stage2_lanes: int = 1
    """Transactions one stage-2 batch is written in at once, one per group of enriched
    partitions (``partition % lanes``): one lane's rows are encoded and sent while the
    other's statements run (streams/stage2.py). 1: one transaction a batch; 2 gave
    envelopes +4 % and 25-40 MB more peak memory on this 2-core machine, where
    PostgreSQL shares the cores (BENCHMARKS.md, session 8)."""
    stages: WorkerStages = "all"
    """What one worker process runs: both stages (the default), or one of them, so that
    stage 1 and stage 2 run in processes of their own (``ioc worker --stages``): each
    stage gets an interpreter and a core, a flood of costly input held up in stage 1
    never delays stage 2's alerts, and each is scaled on its own. Only ``all`` and
    ``stage2`` run the timers, notifications and incidents (docs/operations.md,
    "One stage per process")."""


def stage1_group(app_id: str) -> str:
    """Stage 1's consumer group: its own, since faust's group (``app_id``) speaks faust's
    assignor protocol and a group cannot mix protocols (streams/raw_reader.py)."""
    return f"{app_id}-stage1"


class GeoSettings(_Section):
    nearest_max_m: float = 2000.0
    reference: Path = Path("geo/data/communes_2025.csv.gz")


class AlertSettings(_Section):
    rules_dir: Path = Path("config/rules")
    renotify_interval_s: int = 900
    escalate_after_s: int = 1800
    out_of_orderness_s: int = 10
    """A minute is evaluated once its scope's progress is this far past its end."""
    idle_grace_s: int = 600
    """A source silent this long (wall clock) no longer holds its scopes back."""
    idle_grace_max_s: int = 7200
    """Upper bound of a source's adaptive idle grace (1.5 x its longest arrival gap)."""
    max_sources: int = 200_000
    singleton_every_s: float = 30.0
    """How often the lock holder evaluates the singleton rules (province scope, absence by
    feed or department); every minute boundary their data covers is evaluated whatever
    this is, a shorter period only makes them sooner."""
    feedback_settle_s: float = 30.0
    """Surge rules over citizen reports (docs/feedback.md) evaluate minute boundaries up to
    the wall clock minus this; a report stored later for an older minute is corrected
    after the fact (a re-evaluation of its windows), so this only trades latency for
    fewer corrections."""
    outbox_retry_max_s: int = 300
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    """IOC__ALERTS__WEBHOOK_SECRET; required when ``webhook_url`` is set."""
    webhook_key_id: str = "k1"
    """Names the secret in each signature so receivers can hold two during a rotation."""
    webhook_previous_secret: SecretStr | None = None
    """During a rotation: the old secret, still signed with (second signature)."""
    webhook_previous_key_id: str | None = None
    receiver_tokens_dir: Path | None = None
    """Bearer tokens Alertmanager's webhook receivers present to
    ``/v1/alertmanager/webhook/<receiver>``, one file ``<receiver>.token`` each; unset:
    ``<stack home>/secrets/alertmanager`` (the local stack writes them)."""


class MailSettings(_Section):
    """E-mail notifications, sent by Alertmanager's email receivers (docs/alerts.md).

    The local stack runs Mailpit on ``stack.host`` (SMTP ``smtp_port``, web inbox and
    HTTP API ``web_port``); production sends through the province's relay."""

    smtp_port: int = 11025
    web_port: int = 18025
    smarthost: str | None = None
    """``host:port`` Alertmanager hands mail to (IOC__MAIL__SMARTHOST); unset: the local
    Mailpit."""
    from_address: str = "ioc-canhbao@ioc.local"
    require_tls: bool = False
    """STARTTLS to the smarthost (a relay outside the host must say true)."""


class FederationSettings(_Section):
    """Province or nation (docs/federation.md). A province publishes its summaries to
    ``topic``; the nation reads every province's replicated copy of it."""

    role: Literal["province", "national"] = "province"
    enabled: bool = False
    """A province publishes only when enabled (``ioc federation publish``)."""
    province_code: str | None = None
    """This province's two-digit code (a province's records all carry it)."""
    topic: str = "ioc.federation.v1"
    publish_every_s: float = 2.0
    """The publisher's fallback poll; a committed change wakes it at once (NOTIFY)."""
    snapshot_every_s: float = 30.0
    batch_keys: int = 5000
    origins: dict[str, str] = {}
    """National: MirrorMaker's source alias -> province code. A record is accepted only
    from the replicated topic of the province it names (``<alias>.<topic>``)."""
    ingest_group: str = "ioc-national-federation"


class SlaSettings(_Section):
    """Response deadlines of one severity (docs/incidents.md)."""

    ack_s: int
    resolve_s: int
    escalate_every_s: int


def _default_sla() -> dict[str, SlaSettings]:
    return {"critical": SlaSettings(ack_s=300, resolve_s=4 * 3600, escalate_every_s=600),
            "warning": SlaSettings(ack_s=900, resolve_s=24 * 3600, escalate_every_s=1800),
            "info": SlaSettings(ack_s=3600, resolve_s=72 * 3600, escalate_every_s=7200)}


class IncidentSettings(_Section):
    sops_dir: Path = Path("config/sops")
    rota: Path = Path("config/duty_rota.yaml")
    """Who is on duty which week, each department's head, the IOC leader."""
    reopen_window_s: int = 3600
    """An incident resolved less than this ago reopens when its alerts fire again."""
    poll_interval_s: float = 0.5
    """How often the incident loop looks for new alerts and due timers."""
    in_worker: bool = True
    """Every ``ioc worker`` runs the incident loop (any number may: each timer fires
    once); false when it runs as ``ioc incidents run`` instead."""
    sla: dict[str, SlaSettings] = Field(default_factory=_default_sla)
    console_url: str | None = None
    """Link to an incident in escalation notifications, the id appended; unset:
    ``<api public url>/console/?incident=``."""


class MqttSettings(_Section):
    """Mosquitto (the stack's, or the department-facing broker) and ``ioc mqtt-bridge``
    (docs/mqtt.md)."""

    host: str = "127.0.0.1"
    port: int = 11883
    """Plain MQTT (loopback in development); with ``tls`` the broker listens on
    ``tls_port`` too and the bridge uses it."""
    tls: bool = False
    tls_port: int = 18883
    ca_file: Path | None = None
    """The CA the bridge verifies the broker with (None: the system's)."""
    cert_file: Path | None = None
    """The broker's certificate and key (``ioc stack up`` writes them into its config)."""
    key_file: Path | None = None
    topic_root: str = "ioc"
    """Departments publish under ``<topic_root>/<department>/<feed>/<source_id>``."""
    share_group: str = ""
    """MQTT 5 shared subscription group for several bridges (e.g. ``ioc-bridge``); ""
    (the default) subscribes plainly: one bridge, and nothing lost across Mosquitto
    restarts, which Debian 12's Mosquitto does not guarantee for shared subscriptions
    (docs/mqtt.md, "Mosquitto restarts")."""
    client_id: str = "ioc-bridge-0"
    """Stable per bridge instance: its persistent session (queued messages) follows it."""
    username: str = "ioc-bridge"
    password: SecretStr | None = None
    """From IOC__MQTT__PASSWORD; else ``<secrets_dir>/<username>.password``."""
    secrets_dir: Path | None = None
    """Password files of the local stack (default ``<stack.home>/secrets/mqtt``)."""
    session_expiry_s: int = 7 * 24 * 3600
    """How long Mosquitto keeps a bridge's session (and queues for it) while it is away."""
    receive_maximum: int = 1000
    """Unacknowledged QoS 1 messages Mosquitto may send a bridge at once."""
    batch_max: int = 500
    batch_within_s: float = 0.05
    max_payload_bytes: int = 262_144
    keepalive_s: int = 30

    def secret(self) -> str | None:
        return _secret(self.password, self.secrets_dir, self.username)

    @property
    def bridge_port(self) -> int:
        return self.tls_port if self.tls else self.port


def _secret(setting: SecretStr | None, secrets_dir: Path | None, user: str) -> str | None:
    """A password: the setting, else ``<secrets_dir>/<user>.password``, else None."""
    if setting is not None:
        return setting.get_secret_value()
    if secrets_dir is not None:
        path = secrets_dir / f"{user}.password"
        if path.is_file():
            return path.read_text().strip()
    return None


def config_file() -> Path:
    """The YAML file the settings start from."""
    return Path(os.environ.get("IOC_CONFIG", ROOT / "config" / "ioc.yaml"))


class Settings(BaseSettings):
    """All of ioc's configuration, frozen once read. The development tooling's own keys
    (the local stack's versions and host, Prometheus' address, Grafana's port) are
    ``iocdev.settings.DevSettings``, a subclass; deployed processes ignore their ``IOC__``
    variables."""

    model_config = SettingsConfigDict(
        env_prefix="IOC__", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    stack: DataHome = DataHome()
    kafka: KafkaSettings
    database: DatabaseSettings = DatabaseSettings()
    alertmanager: HttpService = HttpService(port=19093)
    api: ApiSettings = ApiSettings()
    stream: StreamSettings = StreamSettings()
    geo: GeoSettings = GeoSettings()
    alerts: AlertSettings = AlertSettings()
    incidents: IncidentSettings = IncidentSettings()
    federation: FederationSettings = FederationSettings()
    mail: MailSettings = MailSettings()
    mqtt: MqttSettings = MqttSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=config_file())
        return (init_settings, env_settings, yaml_source)

    @model_validator(mode="before")
    @classmethod
    def _stack_secrets(cls, data: Any) -> Any:
        """Default ``kafka.secrets_dir`` and ``mqtt.secrets_dir`` to the stack's (which
        follows IOC__STACK__HOME)."""
        if not isinstance(data, dict):
            return data
        stack = data.get("stack")
        home = Path(str((stack.get("home") if isinstance(stack, dict) else None)
                        or DataHome().home))
        secrets = DataHome(home=home).root / "secrets"
        kafka = data.get("kafka")
        if isinstance(kafka, dict) and kafka.get("secrets_dir") is None:
            data = {**data, "kafka": {**kafka, "secrets_dir": secrets / "kafka"}}
        mqtt = data.get("mqtt") or {}
        if isinstance(mqtt, dict) and mqtt.get("secrets_dir") is None:
            data = {**data, "mqtt": {**mqtt, "secrets_dir": secrets / "mqtt"}}
        return data

    def resolve(self, path: Path) -> Path:
        """A configured relative path, resolved against the project checkout."""
        return path if path.is_absolute() else ROOT / path

    def receiver_tokens_dir(self) -> Path:
        """Where the Alertmanager webhook receivers' bearer tokens are (resolved)."""
        return self.resolve(self.alerts.receiver_tokens_dir
                            or self.stack.root / "secrets" / "alertmanager")

    def public_url(self) -> str:
        """The base of links in notifications (``api.public_url`` or the API's address)."""
        return (self.api.public_url or f"http://{self.api.host}:{self.api.port}").rstrip("/")

    def faust_data_dir(self) -> Path:
        """Where faust keeps its per-app folders (``stream.data_dir``, resolved)."""
        return self.resolve(self.stream.data_dir or self.stack.root / "faust")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()  # type: ignore[call-arg]
