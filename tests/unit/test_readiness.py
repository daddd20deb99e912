"""``/readyz``'s one answer (ioccore/readiness.py): schema, cache, what counts as down."""

from __future__ import annotations

import asyncio

from ioccore.readiness import Readiness


class Probe:
    """A dependency check that answers ``ok`` and counts how often it ran."""

    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        await asyncio.sleep(0.01)
        return self.ok


async def test_ready_when_every_check_answers() -> None:
    readiness = Readiness({"kafka": Probe(), "database": Probe()}, waiting=lambda: 3)
    status, body = await readiness.answer()
    assert status == 200
    assert body == {"status": "ready", "failed": [], "checks": {"kafka": "ok", "database": "ok"},
                    "down_since": {}, "waiting": 3}


async def test_a_failing_or_raising_check_is_failed_with_since_and_no_text() -> None:
    async def broken() -> bool:
        raise OSError("connection refused to 10.0.0.5:5432 user=ioc")

    readiness = Readiness({"kafka": Probe(ok=False), "database": broken}, ttl_s=0)
    status, body = await readiness.answer()
    assert status == 503 and body["status"] == "not ready"
    assert body["failed"] == ["kafka", "database"]
    assert body["checks"] == {"kafka": "failed", "database": "failed"}
    assert set(body["down_since"]) == {"kafka", "database"}
    assert "refused" not in str(body) and "10.0.0.5" not in str(body)


async def test_checks_run_once_per_ttl_however_many_ask() -> None:
    kafka, database = Probe(), Probe()
    readiness = Readiness({"kafka": kafka, "database": database}, ttl_s=60)
    answers = await asyncio.gather(*(readiness.answer() for _ in range(50)))
    assert {status for status, _ in answers} == {200}
    assert (kafka.calls, database.calls) == (1, 1)


async def test_what_the_process_saw_fail_counts_even_when_a_probe_answers() -> None:
    readiness = Readiness({"kafka": Probe(), "database": Probe()},
                          down=lambda: {"database": 1_700_000_000.0})
    status, body = await readiness.answer()
    assert status == 503 and body["failed"] == ["database"]
    assert body["checks"] == {"kafka": "ok", "database": "failed"}
    assert body["down_since"] == {"database": "2023-11-14T22:13:20+00:00"}


async def test_recovery_clears_down_since() -> None:
    probe = Probe(ok=False)
    readiness = Readiness({"database": probe}, ttl_s=0)
    assert (await readiness.answer())[0] == 503
    probe.ok = True
    status, body = await readiness.answer()
    assert status == 200 and body["down_since"] == {}


async def test_a_hanging_check_times_out_as_failed() -> None:
    async def hangs() -> bool:
        await asyncio.sleep(60)
        return True

    readiness = Readiness({"database": hangs}, timeout_s=0.05)
    status, body = await readiness.answer()
    assert status == 503 and body["checks"] == {"database": "failed"}
