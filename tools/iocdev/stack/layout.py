"""Where everything of the local stack lives, derived from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ioccore.settings import ROOT
from iocdev.settings import DevSettings


@dataclass(frozen=True, slots=True)
class Layout:
    """Absolute paths of the stack folder and the config files it uses."""

    root: Path
    project: Path

    @classmethod
    def from_settings(cls, settings: DevSettings) -> Layout:
        return cls(root=settings.stack.root, project=ROOT)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def config(self) -> Path:
        return self.project / "config"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def service_dir(self, service: str) -> Path:
        return self.root / service

    def ensure(self) -> None:
        """Create the top-level folders (idempotent)."""
        for path in (self.root, self.logs, self.run, self.build):
            path.mkdir(parents=True, exist_ok=True)
