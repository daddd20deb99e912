"""Settings: the only module that reads the environment.

The base is ``config/ioc.yaml`` (or the file named by ``IOC_CONFIG``); environment
variables ``IOC__<SECTION>__<KEY>`` override single keys. Everything else in the
code base takes a :class:`Settings` (or a section of it) as an argument.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

ROOT = Path(__file__).resolve().parents[2]
"""The project checkout (config/, .stack/ and reports/ are resolved against it)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StackSettings(_Section):
    home: Path = Path(".stack")
    kafka_version: str = "3.9.1"
    scala_version: str = "2.13"
    host: str = "127.0.0.1"

    @property
    def root(self) -> Path:
        """Absolute folder holding every install, data directory, log and pid file."""
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


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:19092"
    controller_port: int = 19094
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    client_id: str = "ioc"
    max_message_bytes: int = 1_048_576
    topics: TopicsSettings

    @property
    def port(self) -> int:
        return int(self.bootstrap_servers.rsplit(":", 1)[1].split(",")[0])

    def client_options(self) -> dict[str, Any]:
        """Security options in kafka-python/aiokafka spelling, passed through as given."""
        opts: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            opts["sasl_mechanism"] = self.sasl_mechanism
            opts["sasl_plain_username"] = self.sasl_username
            if self.sasl_password is not None:
                opts["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return opts


class DatabaseSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 15432
    dbname: str = "ioc"
    user: str = "ioc"
    password: SecretStr | None = None
    pool_min: int = 1
    pool_max: int = 8

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq connection string; the password is only included when set."""
        parts = [f"host={self.host}", f"port={self.port}", f"dbname={dbname or self.dbname}",
                 f"user={self.user}", "application_name=ioc"]
        if self.password is not None:
            parts.append(f"password={self.password.get_secret_value()}")
        return " ".join(parts)


class HttpService(_Section):
    host: str = "127.0.0.1"
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class GrafanaSettings(_Section):
    port: int = 13000


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
    max_streams_per_key: int = 4
    max_streams: int = 64
    validation_threads: int = 2
    key_pepper: SecretStr | None = None  # IOC__API__KEY_PEPPER; mixed into key hashes
    console_tile_url: str | None = None  # optional map tiles for /console ({z}/{x}/{y})


class StreamSettings(_Section):
    app_id: str = "ioc"
    worker_web_host: str = "127.0.0.1"
    worker_web_port: int = 18100
    batch_max: int = 5000
    batch_within_s: float = 0.25
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
    outbox_retry_max_s: int = 300
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None


def config_file() -> Path:
    """The YAML file the settings start from."""
    return Path(os.environ.get("IOC_CONFIG", ROOT / "config" / "ioc.yaml"))


class Settings(BaseSettings):
    """All of ioc's configuration, frozen once read."""

    model_config = SettingsConfigDict(
        env_prefix="IOC__", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    stack: StackSettings = StackSettings()
    kafka: KafkaSettings
    database: DatabaseSettings = DatabaseSettings()
    prometheus: HttpService = HttpService(port=19090)
    alertmanager: HttpService = HttpService(port=19093)
    grafana: GrafanaSettings = GrafanaSettings()
    api: ApiSettings = ApiSettings()
    stream: StreamSettings = StreamSettings()
    geo: GeoSettings = GeoSettings()
    alerts: AlertSettings = AlertSettings()

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

    def resolve(self, path: Path) -> Path:
        """A configured relative path, resolved against the project checkout."""
        return path if path.is_absolute() else ROOT / path


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()  # type: ignore[call-arg]
