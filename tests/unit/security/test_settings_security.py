"""Settings that carry secrets: quoting, where passwords come from, client options."""

from __future__ import annotations

from pathlib import Path

import psycopg.conninfo
import pytest
from pydantic import SecretStr

from ioccore.errors import ConfigError
from ioccore.settings import DatabaseSettings, KafkaSettings, Settings, get_settings
from streams.faust_options import faust_options


def test_a_password_cannot_redirect_the_connection() -> None:
    db = DatabaseSettings(password=SecretStr("x host=evil.example port=1 user=postgres"))
    parsed = psycopg.conninfo.conninfo_to_dict(db.conninfo())
    assert parsed["host"] == "127.0.0.1" and parsed["user"] == "ioc_app"
    assert parsed["password"] == "x host=evil.example port=1 user=postgres"
    assert psycopg.conninfo.conninfo_to_dict(db.owner_conninfo("x"))["user"] == "ioc"


def _kafka(tmp_path: Path, **update: object) -> KafkaSettings:
    base = get_settings().kafka
    return base.model_copy(update={"secrets_dir": tmp_path, **update})


def test_password_from_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / "ioc-worker.password").write_text("from-file\n")
    k = _kafka(tmp_path, sasl_username="ioc-worker")
    assert k.client_options()["sasl_plain_password"] == "from-file"
    k = _kafka(tmp_path, sasl_username="ioc-worker", sasl_password=SecretStr("from-env"))
    opts = k.client_options()
    assert opts == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_plain_username": "ioc-worker", "sasl_plain_password": "from-env"}


def test_no_password_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no Kafka password for principal dept-x"):
        _kafka(tmp_path, sasl_username="dept-x").client_options()


def test_faust_and_kcat_get_the_same_credentials(tmp_path: Path) -> None:
    k = _kafka(tmp_path, sasl_username="u", sasl_password=SecretStr("p"))
    creds = faust_options(k)["broker_credentials"]
    assert (creds.username, creds.password, str(creds.mechanism.value)) == \
        ("u", "p", "SCRAM-SHA-512")
    args = k.kcat_args(tmp_path / "kcat")
    assert not any(a.rpartition("=")[2] == "p" or "password" in a for a in args)
    config = Path(args[args.index("-F") + 1])
    assert config.stat().st_mode & 0o777 == 0o600
    assert config.read_text().splitlines() == [
        "security.protocol=SASL_PLAINTEXT", "sasl.mechanisms=SCRAM-SHA-512",
        "sasl.username=u", "sasl.password=p"]


def test_secrets_dir_follows_the_stack_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOC__STACK__HOME", "/srv/other-stack")
    settings = Settings()  # type: ignore[call-arg]
    assert settings.kafka.secrets_dir == Path("/srv/other-stack/secrets/kafka")


def test_department_topics_are_named_by_the_pattern() -> None:
    from streams.ownership import DepartmentTopics

    k = get_settings().kafka
    topics = DepartmentTopics(k.department_topic_pattern)
    assert k.department_topic("env", "sensor") == "ioc.dept.env.sensor.v1"
    assert topics.parse("ioc.dept.env.sensor.v1") == ("env", "sensor")
    assert topics.parse("ioc.dept.01-nnmt.service.v1") == ("01-nnmt", "service")
    for other in ("ioc.sensor.v1", "ioc.dept.env.alerts.v1", "ioc.dept..sensor.v1",
                  "ioc.dept.Env.sensor.v1", "xioc.dept.env.sensor.v1"):
        assert topics.parse(other) is None, other


def test_worker_refuses_a_webhook_without_secret() -> None:
    from ioc.worker import webhook_client

    base = get_settings()
    alerts = base.alerts.model_copy(update={"webhook_url": "http://127.0.0.1:9/hook"})
    with pytest.raises(ConfigError, match="refusing unsigned webhooks"):
        webhook_client(base.model_copy(update={"alerts": alerts}))
    signed = alerts.model_copy(update={"webhook_secret": SecretStr("s"),
                                       "webhook_key_id": "k7"})
    client = webhook_client(base.model_copy(update={"alerts": signed}))
    assert client is not None and client.url == "http://127.0.0.1:9/hook"
