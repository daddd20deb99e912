"""Prometheus and Alertmanager from Debian, with their configs from ``config/``.

The configs in ``config/`` name the default ports; ``prepare`` writes the copy a
service runs with into its stack folder, every target and URL taken from the settings,
so a second stack on other ports (a chaos run, ``IOC__*__PORT``) never scrapes,
alerts or notifies the first one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from alerts.receiver_tokens import ensure_tokens, token_path, webhook_receivers
from iocdev.errors import StackError
from iocdev.settings import DevSettings
from iocdev.stack.ready import http_ok
from iocdev.stack.service import Service


class _HttpService(Service):
    check_tool: tuple[str, ...] = ()

    def check_config(self) -> None:
        """Validate the config file with the vendor's checker before starting."""
        result = subprocess.run([*self.check_tool], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            with self.log.open("a") as out:
                out.write(result.stdout + result.stderr)
            raise StackError(self.name, f"invalid configuration: {result.stderr.strip()}",
                             str(self.log))

    def probe(self) -> bool:
        return http_ok(f"http://{self.host}:{self.port}/-/ready")


class Prometheus(_HttpService):
    name = "prometheus"
    packages = ("prometheus",)

    @property
    def port(self) -> int:
        return self.settings.prometheus.port

    workers: int = 4
    """Worker web ports scraped: ``stream.worker_web_port`` and the next ones."""

    @property
    def config_file(self) -> str:
        return str(self.home / "prometheus.yml")

    def render(self) -> dict[str, Any]:
        """config/prometheus/prometheus.yml with the targets of these settings."""
        source = self.layout.config / "prometheus"
        config: dict[str, Any] = yaml.safe_load((source / "prometheus.yml").read_text())
        s = self.settings
        host = s.stack.host
        targets = {
            "prometheus": [f"{host}:{s.prometheus.port}"],
            "alertmanager": [f"{host}:{s.alertmanager.port}"],
            "ioc-api": [f"{s.api.host}:{s.api.port}"],
            "ioc-worker": [f"{s.stream.worker_web_host}:{s.stream.worker_web_port + i}"
                           for i in range(self.workers)],
        }
        config["rule_files"] = [str(source / Path(f)) for f in config.get("rule_files", [])]
        config["alerting"]["alertmanagers"] = [
            {"static_configs": [{"targets": list(targets["alertmanager"])}]}]
        for job in config["scrape_configs"]:
            if job["job_name"] in targets:
                job["static_configs"] = [{"targets": list(targets[job["job_name"]])}]
        return config

    def prepare(self) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        Path(self.config_file).write_text(yaml.safe_dump(self.render(), sort_keys=False))
        self.check_tool = ("promtool", "check", "config", self.config_file)
        self.check_config()

    def argv(self) -> list[str]:
        return ["/usr/bin/prometheus", f"--config.file={self.config_file}",
                f"--web.listen-address={self.host}:{self.port}",
                f"--storage.tsdb.path={self.home / 'data'}",
                "--storage.tsdb.retention.time=7d"]  # no lifecycle API: nobody may stop it


class Alertmanager(_HttpService):
    name = "alertmanager"
    packages = ("prometheus-alertmanager",)

    @property
    def port(self) -> int:
        return self.settings.alertmanager.port

    @property
    def config_file(self) -> str:
        return str(self.home / "alertmanager.yml")

    def render(self) -> dict[str, Any]:
        """config/alertmanager/alertmanager.yml for these settings: :func:`render_alertmanager`."""
        return render_alertmanager(self.layout.config / "alertmanager" / "alertmanager.yml",
                                   self.settings)

    def prepare(self) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        config = self.render()
        ensure_tokens(self.settings.receiver_tokens_dir(),
                      sorted({w.receiver for w in webhook_receivers(config)}))
        Path(self.config_file).write_text(yaml.safe_dump(config, sort_keys=False))
        self.check_tool = ("amtool", "check-config", self.config_file)
        self.check_config()

    def argv(self) -> list[str]:
        return ["/usr/bin/prometheus-alertmanager", f"--config.file={self.config_file}",
                f"--storage.path={self.home / 'data'}",
                f"--web.listen-address={self.host}:{self.port}",
                "--cluster.listen-address="]


def render_alertmanager(source: Path, settings: DevSettings, *, api_url: str | None = None,
                        smarthost: str | None = None,
                        tokens_dir: Path | None = None) -> dict[str, Any]:
    """An Alertmanager configuration file made runnable anywhere: the smarthost and
    sender from ``mail``, every webhook URL on the API of ``settings`` (or ``api_url``),
    the templates and each receiver's token file (``<receiver>.token`` in the receiver
    tokens folder) as absolute paths. The routing tree is left exactly as written."""
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    api = (api_url or f"http://{settings.api.host}:{settings.api.port}").rstrip("/")
    tokens = tokens_dir or settings.receiver_tokens_dir()
    glob = config.setdefault("global", {})
    glob["smtp_smarthost"] = smarthost or settings.smarthost()
    glob["smtp_from"] = settings.mail.from_address
    glob["smtp_require_tls"] = settings.mail.require_tls
    config["templates"] = [str(source.parent / t) for t in config.get("templates", [])]
    for receiver in config.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            path = hook["url"].split("/", 3)[3] if hook["url"].count("/") >= 3 else ""
            hook["url"] = f"{api}/{path}"
            auth = hook.get("http_config", {}).get("authorization")
            if auth and "credentials_file" in auth:
                auth["credentials_file"] = str(token_path(tokens, receiver["name"]))
    return config
