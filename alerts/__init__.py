"""Alert rules: loading, pure evaluation, and storage and delivery of what they decide.

The modules other packages use (``streams``, ``ioc``) are listed in ``__all__``; the rest
are the evaluator's parts (``undo``, ``absence``, ``annotations``, ``backfill``,
``lifecycle``, ``windows``, ``templates``, ``series``, ``yamlnodes``) and may change
without notice. Pure modules do no I/O; ``store``, ``outbox``, ``webhook`` and
``alertmanager`` talk to PostgreSQL and HTTP.
"""

__all__ = [
    "alertmanager",  # Alertmanager client
    "durations",  # "15m" <-> timedelta
    "errors",  # the alerts error tree
    "evaluator",  # windowed and absence rules: Evaluator (plan, commit, discard)
    "kpi_target_evaluator",  # KPI target rules: KpiTargetEvaluator (same protocol)
    "model",  # WindowPoint, AlertState, Transition, CommuneInfo, Reading
    "notify",  # receivers of a transition
    "outbox",  # delivery of stored notifications
    "receiver_tokens",  # department receivers' tokens (the Alertmanager webhook route)
    "ruleload",  # rule files -> RuleSet (with file:line errors)
    "rules",  # the rule kinds and RuleSet
    "ruletest",  # `ioc rules test`
    "silences",  # silence matchers
    "source_clocks",  # per-source event-time progress: Sighting, sightings()
    "store",  # PostgreSQL: persist, operator actions, and what evaluators restore from
    "surges",  # surges of citizen reports: SurgeEvaluator (same protocol), late corrections
    "undo",  # Plan
    "webhook",  # signed webhook delivery
]
