"""Prometheus and Alertmanager from Debian, with their configs from ``config/``.

The files in ``config/`` name the default ports; ``prepare`` writes a copy into the
service's folder with every address taken from the settings, so a second stack on
other ports (IOC__PROMETHEUS__PORT, ...) never scrapes or alerts the first one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from ioc.core.errors import StackError
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

    @property
    def source_file(self) -> Path:
        return self.layout.config / "prometheus" / "prometheus.yml"

    @property
    def config_file(self) -> str:
        return str(self.home / "prometheus.yml")

    def render(self) -> dict[str, Any]:
        """``config/prometheus/prometheus.yml`` with the addresses of the settings."""
        s = self.settings
        host = self.host
        config: dict[str, Any] = yaml.safe_load(self.source_file.read_text())
        config["rule_files"] = [str(self.source_file.parent / r)
                                for r in config.get("rule_files", [])]
        targets = {"prometheus": [f"{host}:{s.prometheus.port}"],
                   "alertmanager": [f"{host}:{s.alertmanager.port}"],
                   "ioc-api": [f"{host}:{s.api.port}"],
                   "ioc-worker": [f"{host}:{s.stream.worker_web_port + i}" for i in range(4)]}
        for job in config["scrape_configs"]:
            if job["job_name"] in targets:
                job["static_configs"] = [{"targets": targets[job["job_name"]]}]
        config["alerting"]["alertmanagers"] = [
            {"static_configs": [{"targets": [f"{host}:{s.alertmanager.port}"]}]}]
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
        """``config/alertmanager/alertmanager.yml`` posting to the configured API port."""
        source = self.layout.config / "alertmanager" / "alertmanager.yml"
        config: dict[str, Any] = yaml.safe_load(source.read_text())
        url = f"http://{self.settings.api.host}:{self.settings.api.port}/v1/alertmanager/webhook"
        for receiver in config.get("receivers", []):
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = url
        return config

    def prepare(self) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        Path(self.config_file).write_text(yaml.safe_dump(self.render(), sort_keys=False))
        self.check_tool = ("amtool", "check-config", self.config_file)
        self.check_config()

    def argv(self) -> list[str]:
        return ["/usr/bin/prometheus-alertmanager", f"--config.file={self.config_file}",
                f"--storage.path={self.home / 'data'}",
                f"--web.listen-address={self.host}:{self.port}",
                "--cluster.listen-address="]
