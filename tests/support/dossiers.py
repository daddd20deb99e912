"""Simulated public-service dossiers as ``service_events`` rows, for tests that store
them directly (the KPI fold, federation) instead of through the pipeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from iocdev.simulate.generator import events

INSERT = """
INSERT INTO service_events (time, event_id, source_id, department, commune_code,
    province_code, dossier_id, procedure_code, agency, channel, status, due_at, resolved_at,
    fee_bearing, paid_online, digitised, geo, received_at)
VALUES (%s, %s, %s, 'pscc', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'code', now())
ON CONFLICT DO NOTHING
"""
"""One row of :func:`service_rows` (department ``pscc``; ``geo`` from the commune code)."""


def service_rows(province: str, start: datetime, span_s: float, *, rate: float,
                 seed: int) -> list[tuple[Any, ...]]:
    """The simulator's service events of ``province`` as parameters of :data:`INSERT`."""
    out = []
    for ev in events(province, start, span_s, rate=rate, seed=seed):
        p = ev.payload
        if ev.feed != "service" or not isinstance(p, dict):
            continue
        b = p["body"]
        out.append((datetime.fromisoformat(p["occurred_at"]), p["event_id"], p["source_id"],
                    p["commune_code"], province, b["dossier_id"], b["procedure_code"],
                    b["agency"], b["channel"], b["status"], datetime.fromisoformat(b["due_at"]),
                    datetime.fromisoformat(b["resolved_at"]) if b.get("resolved_at") else None,
                    b["fee_bearing"], b.get("paid_online"), b["digitised"]))
    return out
