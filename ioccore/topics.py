"""Kafka topics: create the configured topics with their partitions and retention.

Idempotent: existing topics are left as they are (a partition count that differs from
the configuration is reported, never changed silently, since it would move keys).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from ioccore.settings import KafkaSettings, TopicSettings


@dataclass(frozen=True, slots=True)
class TopicState:
    name: str
    created: bool
    partitions: int
    wanted_partitions: int


def topic_config(topic: TopicSettings, max_message_bytes: int) -> dict[str, str]:
    return {
        "retention.ms": str(topic.retention_hours * 3_600_000),
        "cleanup.policy": "delete",
        "max.message.bytes": str(max_message_bytes + 65_536),
    }


def admin_client(kafka: KafkaSettings) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers,
                            client_id=f"{kafka.client_id}-admin", **kafka.client_options())


def ensure_topics(kafka: KafkaSettings, topics: list[TopicSettings] | None = None
                  ) -> list[TopicState]:
    """Create missing topics; report each topic's partitions against the configuration."""
    wanted = topics if topics is not None else kafka.topics.all()
    admin = admin_client(kafka)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile elsewhere
                admin.create_topics([
                    NewTopic(name=t.name, num_partitions=t.partitions,
                             replication_factor=t.replication,
                             topic_configs=topic_config(t, kafka.max_message_bytes))
                    for t in missing
                ])
        described = {d["name"]: len(d["partitions"])
                     for d in admin.describe_topics([t.name for t in wanted])}
        return [TopicState(t.name, t in missing, described.get(t.name, 0), t.partitions)
                for t in wanted]
    finally:
        admin.close()


def delete_topics(kafka: KafkaSettings, names: list[str]) -> None:
    """Delete topics (tests and `ioc topics reset`)."""
    admin = admin_client(kafka)
    try:
        present = set(admin.list_topics())
        doomed = [n for n in names if n in present]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()
