"""docker-compose.yml agrees with config/ioc.yaml; so do the Prometheus and Alertmanager
configs of the local stack. (That it is valid Compose needs the specification from PyPI:
tests/integration/test_compose_spec.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from iocdev.settings import DevSettings

from ioccore.settings import ROOT, Settings

COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _published(service: dict[str, Any]) -> dict[int, int]:
    """{container port: host port} of a service; every port bound to loopback."""
    ports: dict[int, int] = {}
    for spec in service.get("ports", []):
        host_ip, host, container = str(spec).split(":")
        assert host_ip == "127.0.0.1", f"{spec} is not published on loopback only"
        ports[int(container)] = int(host)
    return ports


def test_host_ports_equal_the_configured_ports(compose: dict[str, Any],
                                               settings: DevSettings) -> None:
    services = compose["services"]
    expected = {
        "kafka": settings.kafka.port,
        "timescaledb": settings.database.port,
        "prometheus": settings.prometheus.port,
        "alertmanager": settings.alertmanager.port,
        "grafana": settings.grafana.port,
        "api": settings.api.port,
        "worker": settings.stream.worker_web_port,
        "mosquitto": settings.mqtt.port,
    }
    for name, port in expected.items():
        assert port in _published(services[name]).values(), (name, port)
    mail = {settings.mail.smtp_port, settings.mail.web_port}  # Mailpit: SMTP, web inbox
    assert set(_published(services["mailpit"]).values()) == mail
    published_anywhere = {p for s in services.values() for p in _published(s).values()}
    assert published_anywhere == set(expected.values()) | mail


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict)
    return {str(k): str(v) for k, v in env.items()}


def test_container_ports_agree_with_the_ioc_environment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = _env(services["worker"])
    db_host, db_port = env["IOC__DATABASE__HOST"], int(env["IOC__DATABASE__PORT"])
    assert db_port in _published(services[db_host])
    for section in ("ALERTMANAGER",):  # the one the deployed processes call
        host, port = env[f"IOC__{section}__HOST"], int(env[f"IOC__{section}__PORT"])
        assert port in _published(services[host])
    kafka_host, kafka_port = env["IOC__KAFKA__BOOTSTRAP_SERVERS"].split(":")
    kafka_env = _env(services[kafka_host])
    assert f"//{kafka_host}:{kafka_port}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    api_env = _env(services["api"])
    assert api_env["IOC__API__HOST"] == "0.0.0.0"


def test_ioc_environment_names_real_settings_keys(compose: dict[str, Any]) -> None:
    seen = 0
    for name, service in compose["services"].items():
        for key in _env(service):
            if not key.startswith("IOC__"):
                continue
            parts = key.removeprefix("IOC__").lower().split("__")
            assert len(parts) == 2, f"{name}: {key}"
            section, field = parts
            assert section in Settings.model_fields, f"{name}: {key}: no section {section}"
            model = Settings.model_fields[section].annotation
            assert model is not None and field in model.model_fields, f"{name}: {key}"
            seen += 1
    assert seen > 0


def test_ioc_services_are_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    commands = {name: services[name]["command"] for name in ("worker", "api", "simulator")}
    assert commands == {"worker": ["worker"], "api": ["api"], "simulator": ["simulate"]}
    for name in ("worker", "api"):
        assert services[name]["build"] == "."  # the default stage: ioc alone
    assert services["simulator"]["build"] == {"context": ".", "target": "dev"}
    assert "FROM base AS dev" in (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["ioc"]' in (ROOT / "Dockerfile").read_text()


def test_init_job_creates_the_configured_topics(compose: dict[str, Any],
                                                settings: DevSettings) -> None:
    script = "\n".join(compose["services"]["kafka-init"]["command"])
    created = {
        m["name"]: (int(m["partitions"]), int(m["retention"]))
        for m in re.finditer(r"--create --if-not-exists --topic (?P<name>\S+) "
                             r"--partitions (?P<partitions>\d+) --replication-factor 1 "
                             r"--config retention\.ms=(?P<retention>\d+)", script)
    }
    expected = {t.name: (t.partitions, t.retention_hours * 3_600_000)
                for t in settings.kafka.topics.all()}
    assert created == expected
    kafka_env = _env(compose["services"]["kafka"])
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert int(kafka_env["KAFKA_MESSAGE_MAX_BYTES"]) == settings.kafka.max_message_bytes


def _targets(config: dict[str, Any]) -> dict[str, set[str]]:
    return {job["job_name"]: {t for sc in job["static_configs"] for t in sc["targets"]}
            for job in config["scrape_configs"]}


def test_local_prometheus_scrapes_the_configured_ports(settings: DevSettings) -> None:
    local = yaml.safe_load((ROOT / "config/prometheus/prometheus.yml").read_text())
    compose = yaml.safe_load((ROOT / "config/prometheus/prometheus.compose.yml").read_text())
    host = settings.stack.host
    workers = {f"{host}:{settings.stream.worker_web_port + i}" for i in range(4)}
    assert _targets(local) == {
        "prometheus": {f"{host}:{settings.prometheus.port}"},
        "alertmanager": {f"{host}:{settings.alertmanager.port}"},
        "ioc-api": {f"{host}:{settings.api.port}"},
        "ioc-worker": workers,
    }
    assert _targets(compose).keys() == _targets(local).keys()
    for config in (local, compose):
        assert config["rule_files"] == ["rules/*.yml"]
    assert local["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        f"{host}:{settings.alertmanager.port}"]


def test_alertmanager_webhook_points_at_the_api(settings: DevSettings) -> None:
    local = yaml.safe_load((ROOT / "config/alertmanager/alertmanager.yml").read_text())
    hooks = [(r["name"], w["url"]) for r in local["receivers"]
             for w in r.get("webhook_configs", [])]
    base = f"http://{settings.api.host}:{settings.api.port}/v1/alertmanager/webhook"
    assert hooks and all(url == f"{base}/{name}" for name, url in hooks)
    assert local["global"]["smtp_smarthost"] == f"{settings.stack.host}:{settings.mail.smtp_port}"


def test_kafka_template_follows_the_settings(settings: DevSettings) -> None:
    from iocdev.stack.kafka import Kafka
    from iocdev.stack.layout import Layout

    props = dict(
        line.split("=", 1)
        for line in Kafka(settings, Layout.from_settings(settings)).render_properties()
        .splitlines() if line and not line.startswith("#")
    )
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert int(props["message.max.bytes"]) == settings.kafka.max_message_bytes
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["listener.security.protocol.map"].startswith("CLIENT:SASL_PLAINTEXT,")
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["super.users"].split(";")[0] == f"User:{settings.kafka.principals.admin}"
    assert props["listeners"] == (f"CLIENT://{settings.stack.host}:{settings.kafka.port},"
                                  f"CONTROLLER://{settings.stack.host}:"
                                  f"{settings.kafka.controller_port}")
