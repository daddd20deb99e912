"""Federation processes: a province's publisher and the nation's ingest
(docs/federation.md). ``ioc.federation`` composes them into processes."""

from streams.federation.ingest import Ingest, topic_pattern
from streams.federation.publisher import Publisher

__all__ = ["Ingest", "Publisher", "topic_pattern"]
