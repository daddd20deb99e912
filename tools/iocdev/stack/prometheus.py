"""Prometheus and Alertmanager from Debian, with their configs from ``config/``."""

from __future__ import annotations

import subprocess

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
    def config_file(self) -> str:
        return str(self.layout.config / "prometheus" / "prometheus.yml")

    def prepare(self) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
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
        return str(self.layout.config / "alertmanager" / "alertmanager.yml")

    def prepare(self) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        self.check_tool = ("amtool", "check-config", self.config_file)
        self.check_config()

    def argv(self) -> list[str]:
        return ["/usr/bin/prometheus-alertmanager", f"--config.file={self.config_file}",
                f"--storage.path={self.home / 'data'}",
                f"--web.listen-address={self.host}:{self.port}",
                "--cluster.listen-address="]
