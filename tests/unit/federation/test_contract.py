"""The federation contract: what decodes, what is refused and why, and the schema file."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ioccore.federation import (
    SCHEMA,
    AlertCount,
    AlertSummary,
    AlertSummaryRecord,
    KpiDayKey,
    KpiDayRecord,
    KpiDayValues,
    RecordError,
    decode,
    encode,
    record_key,
)
from ioccore.federation.schema import PATH, render

AT = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def kpi(province: str = "01", received: int = 3) -> KpiDayRecord:
    return KpiDayRecord(
        schema=SCHEMA, province_code=province, as_of=AT,
        key=KpiDayKey(day=date(2026, 12, 1), agency="so-tnmt", applicant_province=province,
                      applicant_commune="00004"),
        values=KpiDayValues(province, "00004", "province", received, 1, 0, 2, 1, 2, 1, 0, 0))


def test_a_record_round_trips_and_its_key_names_the_quantity() -> None:
    r = kpi()
    assert decode(encode(r)) == r
    assert record_key(r) == b"01|kpi_day|2026-12-01|so-tnmt|01|00004"
    s = AlertSummaryRecord(schema=SCHEMA, province_code="31", as_of=AT, values=AlertSummary(
        alerts=[AlertCount(rule_id="pm25", severity="critical", state="firing", count=2)]))
    assert decode(encode(s)) == s
    assert record_key(s) == b"31|alert_summary"


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{", "malformed_json"),
    (b"[]", "invalid_record"),
    (encode(kpi()).replace(b'"received":3', b'"received":-1'), "invalid_record"),
    (encode(kpi()).replace(b'"schema":"ioc.federation.v1"', b'"schema":"v9"'), "invalid_record"),
    (encode(kpi()).replace(b'"province_code":"01"', b'"province_code":"1"', 1),
     "invalid_record"),
    (encode(kpi()).replace(b'"kind":"kpi_day"', b'"kind":"raw_event"'), "invalid_record"),
    (encode(kpi())[:-1] + b',"extra":1}', "invalid_record"),
    (encode(kpi()).replace(b'Z"', b'"'), "invalid_record"),  # a time without offset
    (b" " * (1024 * 1024 + 1), "too_large"),
])
def test_what_breaks_the_contract_is_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(RecordError) as info:
        decode(raw)
    assert info.value.reason == reason


def test_the_schema_file_is_generated_from_the_types() -> None:
    assert PATH.read_text() == render(), "run: python -m ioccore.federation.schema"
