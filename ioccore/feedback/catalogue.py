"""The service catalogue (``config/feedback.yaml``): categories, routing and SLAs.

One file holds what a province configures about citizen reports: the Open311 services
(bilingual), the department each is routed to, its SLA, and the abuse and privacy
bounds. Read once per process; a bad file fails at start, not on a citizen's request.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ioccore.settings import ROOT

DEFAULT_PATH: Final = ROOT / "config" / "feedback.yaml"


class Bilingual(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    vi: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)


class Service(BaseModel):
    """One category of report (an Open311 service)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    group: str
    department: str
    sla_hours: float = Field(gt=0, le=24 * 365)
    keywords: tuple[str, ...] = ()
    name: Bilingual
    description: Bilingual

    def due_at(self, received_at: datetime) -> datetime:
        return received_at + timedelta(hours=self.sla_hours)


class Catalogue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    jurisdiction_id: str
    contact_retention_days: int = Field(ge=1, le=3650)
    requests_per_minute_per_key: int = Field(ge=0)
    requests_per_hour_per_device: int = Field(ge=0)
    max_query_days: int = Field(ge=1, le=366)
    max_results: int = Field(ge=1, le=10_000)
    services: tuple[Service, ...]

    def service(self, code: str) -> Service | None:
        return next((s for s in self.services if s.code == code), None)


def load(path: Path = DEFAULT_PATH) -> Catalogue:
    """Read and check the catalogue; codes must be unique."""
    cat = Catalogue.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    codes = [s.code for s in cat.services]
    if len(codes) != len(set(codes)):
        raise ValueError(f"{path}: duplicate service codes")
    return cat


@cache
def default() -> Catalogue:
    return load()
