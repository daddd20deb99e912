"""Fault injection on the real services, with an exact ledger per scenario.

Modules: :mod:`stack` (a stack of its own: home and ports apart from the shared one),
:mod:`receiver` (a signed-webhook receiver process that logs every delivery),
:mod:`load` (a known workload with alert probes), :mod:`ledger` (what was published,
stored, rolled up, dead-lettered, fired and delivered), :mod:`scenarios` (the faults)
and :mod:`run` (``python -m iocdev.chaos``, ``make chaos``). docs/chaos.md says how to
run it and what the figures mean.
"""
