"""What the incident machinery reads at start: SLAs, SOPs by rule, the rota, auto rules.

Built from :class:`ioccore.settings.IncidentSettings` and the rule files by
:func:`load`; the API and the runner hold one each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from alerts.incidents import rota as rota_mod
from alerts.incidents import sops as sops_mod
from alerts.incidents.machine import Sla
from alerts.model import Severity
from ioccore.settings import Settings


@dataclass(frozen=True, slots=True)
class IncidentConfig:
    sla: Mapping[str, Sla]
    sops: Mapping[str, sops_mod.Sop]
    """SOP by rule id."""
    rota: rota_mod.Rota
    auto_rules: frozenset[str]
    """Rules whose firing alerts open an incident by themselves (``incident: auto``)."""
    reopen_window: timedelta
    console_url: str = ""

    def sla_for(self, severity: Severity | str) -> Sla:
        return self.sla.get(severity) or self.sla["warning"]


def sla_from(settings: Settings) -> dict[str, Sla]:
    return {name: Sla(timedelta(seconds=s.ack_s), timedelta(seconds=s.resolve_s),
                      timedelta(seconds=s.escalate_every_s))
            for name, s in settings.incidents.sla.items()}


def load(settings: Settings) -> IncidentConfig:
    """Everything from the configured files; raises on an invalid SOP or rota file.

    Cross-references (an SOP naming a rule no rule file defines, a step department the
    rota lacks) are ``ioc sops check``'s errors, not start-up failures: a deployment
    with fewer rule files (or a test's own) still runs the SOPs of the rules it has."""
    from alerts.ruleload import load_rules_dir

    rules = load_rules_dir(settings.resolve(settings.alerts.rules_dir))
    all_rules = [*rules, *rules.kpi_targets]
    rota = rota_mod.load(settings.resolve(settings.incidents.rota))
    sops = sops_mod.load_dir(settings.resolve(settings.incidents.sops_dir))
    auto = frozenset(r.id for r in all_rules if getattr(r, "incident", "manual") == "auto")
    return IncidentConfig(sla=sla_from(settings), sops=sops, rota=rota, auto_rules=auto,
                          reopen_window=timedelta(seconds=settings.incidents.reopen_window_s),
                          console_url=settings.incidents.console_url
                          or f"{settings.public_url()}/console/?incident=")
