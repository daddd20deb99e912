"""Incidents: the unit of response (docs/incidents.md).

``machine`` is the pure state machine, ``sops`` and ``rota`` read the YAML the
incidents follow, ``store`` writes (every change audited), ``intake`` gathers firing
alerts into incidents, ``timers`` fires escalations exactly once, ``queries`` reads
boards, timelines and KPIs, ``runner`` is the loop ``ioc incidents run`` starts.
"""
