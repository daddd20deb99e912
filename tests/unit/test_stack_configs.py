"""The stack's Prometheus and Alertmanager configs follow the settings' ports, so a
second stack (chaos) never scrapes, alerts or notifies the first."""

from __future__ import annotations

from pathlib import Path

from iocdev.chaos.stack import chaos_settings
from iocdev.settings import get_dev_settings
from iocdev.stack.layout import Layout
from iocdev.stack.prometheus import Alertmanager, Prometheus


def _targets(config: dict[str, object]) -> dict[str, list[str]]:
    jobs = config["scrape_configs"]
    assert isinstance(jobs, list)
    return {j["job_name"]: [t for sc in j["static_configs"] for t in sc["targets"]]
            for j in jobs}


def test_rendered_configs_use_the_ports_of_the_settings(tmp_path: Path) -> None:
    settings = chaos_settings(get_dev_settings(), home=tmp_path, port_base=41000)
    layout = Layout.from_settings(settings)
    prom = Prometheus(settings, layout).render()
    targets = _targets(prom)
    assert targets["prometheus"] == ["127.0.0.1:41090"]
    assert targets["alertmanager"] == ["127.0.0.1:41093"]
    assert targets["ioc-api"] == ["127.0.0.1:41080"]
    assert targets["ioc-worker"][0] == "127.0.0.1:41100"
    alerting = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alerting == ["127.0.0.1:41093"]
    assert all(Path(f).is_absolute() for f in prom["rule_files"])
    am = Alertmanager(settings, layout).render()
    urls = [h["url"] for r in am["receivers"] for h in r.get("webhook_configs", [])]
    assert urls and all(u.startswith("http://127.0.0.1:41080/v1/alertmanager/webhook/")
                        for u in urls)
    assert am["global"]["smtp_smarthost"] == f"127.0.0.1:{settings.mail.smtp_port}"
