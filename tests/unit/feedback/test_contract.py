"""The feedback contract: the committed JSON Schema, the catalogue, and the checks
JSON Schema cannot state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from ioccore.feedback import catalogue, contract
from ioccore.feedback.contract import FeedbackReportV1, FeedbackStatusV1
from ioccore.feedback.store import report_id_of

T = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def test_the_committed_schema_is_generated() -> None:
    assert contract.SCHEMA_PATH.read_text(encoding="utf-8") == contract.render_schema()


def test_the_catalogue_loads_with_bilingual_names_and_slas() -> None:
    cat = catalogue.default()
    flooding = cat.service("flooding")
    assert flooding is not None and flooding.name.en == "Flooding"
    assert flooding.due_at(T) == T + timedelta(hours=4)
    assert all(isinstance(k, str) for s in cat.services for k in s.keywords)


def _report(**kw: object) -> FeedbackReportV1:
    base: dict[str, object] = {"event_id": "e1", "source_id": "app", "occurred_at":
                               T.isoformat(), "service_code": "flooding",
                               "description": "ngập", "lat": 21.0, "lon": 105.8}
    base.update(kw)
    return msgspec.convert({k: v for k, v in base.items() if v is not None},
                           FeedbackReportV1, strict=False)


def test_report_checks() -> None:
    assert contract.check_report(_report()) is None
    assert contract.check_report(_report(lon=None)) == "location_incomplete"
    assert contract.check_report(_report(lat=None, lon=None)) == "location_missing"
    assert contract.check_report(_report(lat=None, lon=None, commune_code="00004")) is None
    assert contract.check_report(_report(description="a\x07b")) == "control_characters"


@pytest.mark.parametrize("bad", [{"media_url": "http://x/y.jpg"},
                                 {"description": "x" * 4001},
                                 {"lat": 48.8, "lon": 2.3},
                                 {"service_code": "Bad Code"}])
def test_bounds_are_part_of_the_contract(bad: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError):
        _report(**bad)


def test_reject_needs_a_reason_and_only_reject_has_one() -> None:
    def change(status: str, reason: str | None) -> FeedbackStatusV1:
        return FeedbackStatusV1(event_id="s", source_id="d", department="env",
                                report_id="fb-1", occurred_at=T,
                                status=status,  # type: ignore[arg-type]
                                reason=reason)  # type: ignore[arg-type]
    assert contract.check_status(change("rejected", None)) == "reject_reason_missing"
    assert contract.check_status(change("resolved", "duplicate")) == "reason_without_reject"
    assert contract.check_status(change("rejected", "duplicate")) is None


def test_report_ids_are_stable_and_opaque() -> None:
    assert report_id_of("app", "e1") == report_id_of("app", "e1")
    assert report_id_of("app", "e1") != report_id_of("app", "e2")
    assert "app" not in report_id_of("app", "e1")
