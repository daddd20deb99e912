"""Citizen reports (the ``feedback`` feed): contract, service catalogue, storage, KPIs.

Reports come in over Open311 GeoReport v2 (``ioc.api.open311``) and departments move
them through their statuses (``ioc.api.feedback``). They are stored in their own
idempotent tables (migration 0100), not in the sensor/traffic/service raw hypertables:
see docs/feedback.md for why.
"""
