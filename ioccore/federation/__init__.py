"""Federation: what a province publishes for the nation (docs/federation.md).

The contract (:mod:`ioccore.federation.contract`) is the only thing provinces and the
nation share; the publisher and the national ingest live in ``streams.federation``.
"""

from ioccore.federation.contract import (
    SCHEMA,
    AlertCount,
    AlertSummary,
    AlertSummaryRecord,
    FeedHealth,
    FeedHealthRecord,
    FeedRow,
    KpiDayKey,
    KpiDayRecord,
    KpiDayValues,
    Record,
    RecordError,
    decode,
    encode,
    record_key,
)

__all__ = [
    "SCHEMA",
    "AlertCount",
    "AlertSummary",
    "AlertSummaryRecord",
    "FeedHealth",
    "FeedHealthRecord",
    "FeedRow",
    "KpiDayKey",
    "KpiDayRecord",
    "KpiDayValues",
    "Record",
    "RecordError",
    "decode",
    "encode",
    "record_key",
]
