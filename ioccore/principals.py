"""Kafka principals (SCRAM-SHA-512 users) and the ACLs each kind of principal gets.

The broker runs the KRaft ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found``
off, so a principal may do exactly what is granted here (docs/security.md has the table):

* a department ``dept-<code>``: write (idempotently) its own feed topics
  ``ioc.dept.<code>.<feed>.v1``, nothing else;
* the gateway (and the MQTT bridge, docs/mqtt.md): write the shared feed topics
  ``ioc.<feed>.v1`` (it has authenticated the department by API key or MQTT topic and
  checked the source registry before producing) and the dead-letter topic; describe the
  enriched topic and the worker's groups (their lag drives its admission control);
* a worker: read the feed topics (shared and per department, by prefix) and
  ``ioc.enriched.v1``, use its two consumer groups (faust's ``<app_id>``, stage 1's
  ``<app_id>-stage1``), write enriched, dead-letter and alerts;
* an operator: read ``ioc.alerts.v1`` with groups named ``<operator>*``.

Secrets are generated here and returned once; the broker keeps only salted hashes.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    UserScramCredentialUpsertion,
)
from kafka.errors import TopicAlreadyExistsError

from ioccore.errors import ConfigError
from ioccore.settings import KafkaSettings, stage1_group
from ioccore.topics import admin_client, topic_config

DEPARTMENT_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
"""Department codes become topic and principal names: keep them plain."""
FEEDS = ("sensor", "traffic", "service")
CLUSTER = "kafka-cluster"
MECHANISM = "SCRAM-SHA-512"


@dataclass(frozen=True, slots=True)
class Grant:
    """One ALLOW ACL: ``operation`` on a resource (literal name or prefix)."""

    resource: ResourceType
    name: str
    operation: ACLOperation
    prefixed: bool = False

    def acl(self, principal: str) -> ACL:
        pattern = (ACLResourcePatternType.PREFIXED if self.prefixed
                   else ACLResourcePatternType.LITERAL)
        return ACL(principal=f"User:{principal}", host="*", operation=self.operation,
                   permission_type=ACLPermissionType.ALLOW,
                   resource_pattern=ResourcePattern(self.resource, self.name, pattern))


def new_secret() -> str:
    """A SCRAM password: 32 random bytes, URL-safe (no quoting needed anywhere)."""
    return secrets.token_urlsafe(32)


def check_department(code: str, feeds: Iterable[str] = ()) -> None:
    if not DEPARTMENT_CODE.match(code):
        raise ConfigError(f"department code {code!r} must match {DEPARTMENT_CODE.pattern}")
    bad = sorted(set(feeds) - set(FEEDS))
    if bad:
        raise ConfigError(f"unknown feeds {bad}; choose from {FEEDS}")


def department_prefix(kafka: KafkaSettings) -> str:
    """What every department topic name starts with (``ioc.dept.``)."""
    return kafka.department_topic_pattern.split("{department}", 1)[0]


# ------------------------------------------------------------------ who may do what
def department_grants(kafka: KafkaSettings, department: str, feeds: Sequence[str]
                      ) -> list[Grant]:
    check_department(department, feeds)
    topics = [kafka.department_topic(department, f) for f in feeds]
    return [*(Grant(ResourceType.TOPIC, t, ACLOperation.WRITE) for t in topics),
            *(Grant(ResourceType.TOPIC, t, ACLOperation.DESCRIBE) for t in topics),
            Grant(ResourceType.CLUSTER, CLUSTER, ACLOperation.IDEMPOTENT_WRITE)]


def gateway_grants(kafka: KafkaSettings, topics: dict[str, str] | None = None,
                   group: str | None = None) -> list[Grant]:
    """Write the shared feed topics and the dead-letter topic (refusals of the NGSI-LD
    endpoint and of the MQTT bridge, which runs with these grants too); DESCRIBE (never
    READ) the enriched topic and the worker's two groups (``group``: the app id), so
    admission control can read their lag (ioc/api/backpressure.py)."""
    names = topics or {f: t.name for f, t in kafka.topics.raw().items()}
    raw = [names[f] for f in FEEDS]
    enriched = names.get("enriched", kafka.topics.enriched.name)
    deadletter = names.get("deadletter", kafka.topics.deadletter.name)
    grants = [*(Grant(ResourceType.TOPIC, t, ACLOperation.WRITE) for t in (*raw, deadletter)),
              *(Grant(ResourceType.TOPIC, t, ACLOperation.DESCRIBE)
                for t in (*raw, enriched, deadletter)),
              Grant(ResourceType.CLUSTER, CLUSTER, ACLOperation.IDEMPOTENT_WRITE)]
    if group is not None:
        grants += [Grant(ResourceType.GROUP, g, ACLOperation.DESCRIBE)
                   for g in (group, stage1_group(group))]
    return grants


def worker_grants(kafka: KafkaSettings, group: str, topics: dict[str, str] | None = None,
                  department_topics_prefix: str | None = None) -> list[Grant]:
    """``topics``: feed key -> name (sensor, traffic, service, enriched, deadletter, alerts);
    ``group``: the app id, whose faust group (stage 2) and stage-1 group it may use."""
    t = kafka.topics
    names = {"sensor": t.sensor.name, "traffic": t.traffic.name, "service": t.service.name,
             "enriched": t.enriched.name, "deadletter": t.deadletter.name,
             "alerts": t.alerts.name}
    names.update(topics or {})
    read = [names[k] for k in (*FEEDS, "enriched")]
    write = [names[k] for k in ("enriched", "deadletter", "alerts")]
    prefix = department_prefix(kafka) if department_topics_prefix is None \
        else department_topics_prefix
    grants = [*(Grant(ResourceType.TOPIC, n, ACLOperation.READ) for n in read),
              *(Grant(ResourceType.TOPIC, n, ACLOperation.WRITE) for n in write),
              *(Grant(ResourceType.TOPIC, n, ACLOperation.DESCRIBE) for n in {*read, *write}),
              *(Grant(ResourceType.GROUP, g, op) for g in (group, stage1_group(group))
                for op in (ACLOperation.READ, ACLOperation.DESCRIBE)),
              Grant(ResourceType.CLUSTER, CLUSTER, ACLOperation.IDEMPOTENT_WRITE)]
    if prefix:
        grants += [Grant(ResourceType.TOPIC, prefix, ACLOperation.READ, prefixed=True),
                   Grant(ResourceType.TOPIC, prefix, ACLOperation.DESCRIBE, prefixed=True)]
    return grants


def operator_grants(kafka: KafkaSettings, group_prefix: str) -> list[Grant]:
    alerts = kafka.topics.alerts.name
    return [Grant(ResourceType.TOPIC, alerts, ACLOperation.READ),
            Grant(ResourceType.TOPIC, alerts, ACLOperation.DESCRIBE),
            Grant(ResourceType.GROUP, group_prefix, ACLOperation.READ, prefixed=True)]


# ------------------------------------------------------------------ broker calls
def set_password(admin: KafkaAdminClient, user: str, password: str) -> None:
    result = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(user, MECHANISM, password)])
    if result.get(user):
        raise ConfigError(f"setting the SCRAM credential of {user} failed: {result[user]}")


def lock_out(admin: KafkaAdminClient, user: str) -> bool:
    """Replace the user's SCRAM credential with a random secret that is never kept or
    shown, so nobody can log in as it; False when it had none.

    Not a deletion: Kafka 3.9.1's broker rebuilds its SCRAM credentials on restart by
    replaying the metadata log as one delta, and ``ScramDelta.apply`` drops the whole
    mechanism's map when a removal empties it part-way (a removal replayed first, in
    hash order, against the empty start-up image), losing every user after it: one
    deleted credential could lock every principal, the admin included, out of the
    restarted broker (docs/security.md). An overwrite writes no removal record.
    """
    found = admin.describe_user_scram_credentials([user]).get(user)
    if not found or found["error"] or not found["credential_infos"]:
        return False
    set_password(admin, user, new_secret())
    return True


def grant(admin: KafkaAdminClient, principal: str, grants: Sequence[Grant]) -> None:
    result: Any = admin.create_acls([g.acl(principal) for g in grants])
    failed = result.get("failed") if isinstance(result, dict) else None
    if failed:
        raise ConfigError(f"creating ACLs for {principal} failed: {failed}")


def converge(admin: KafkaAdminClient, principal: str, grants: Sequence[Grant]) -> None:
    """Make the principal's ACLs exactly ``grants``: add the missing first, then delete
    the others, so a running client never sees a moment without its ACLs."""
    wanted = {g.acl(principal) for g in grants}
    flt = ACLFilter(principal=f"User:{principal}", host="*", operation=ACLOperation.ANY,
                    permission_type=ACLPermissionType.ANY,
                    resource_pattern=ResourcePatternFilter(
                        ResourceType.ANY, None, ACLResourcePatternType.ANY))
    current, _err = admin.describe_acls(flt)
    have = set(current)
    missing = [a for a in wanted if a not in have]
    if missing:
        result: Any = admin.create_acls(missing)
        if isinstance(result, dict) and result.get("failed"):
            raise ConfigError(f"creating ACLs for {principal} failed: {result['failed']}")
    extra = [a for a in have if a not in wanted]
    if extra:
        admin.delete_acls(list(extra))


def revoke_acls(admin: KafkaAdminClient, principal: str) -> int:
    """Delete every ACL naming the principal; how many were deleted."""
    deleted = 0
    for rtype in (ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER,
                  ResourceType.TRANSACTIONAL_ID):
        flt = ACLFilter(principal=f"User:{principal}", host="*",
                        operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
                        resource_pattern=ResourcePatternFilter(
                            rtype, None, ACLResourcePatternType.ANY))
        for _, matches, _err in admin.delete_acls([flt]):
            deleted += len(matches)
    return deleted


def ensure_department_topics(admin: KafkaAdminClient, kafka: KafkaSettings,
                             department: str, feeds: Sequence[str]) -> list[str]:
    """Create the department's feed topics (partitions, retention of the shared ones)."""
    wanted = {kafka.department_topic(department, f): kafka.topics.raw()[f] for f in feeds}
    existing = set(admin.list_topics())
    missing = [NewTopic(name, t.partitions, t.replication,
                        topic_configs=topic_config(t, kafka.max_message_bytes))
               for name, t in wanted.items() if name not in existing]
    if missing:
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(missing)
    return list(wanted)


# ------------------------------------------------------------------ one command each
@dataclass(frozen=True, slots=True)
class Provisioned:
    principal: str
    password: str
    topics: list[str]


def create_department(kafka: KafkaSettings, department: str, feeds: Sequence[str]
                      ) -> Provisioned:
    """Topics, SCRAM user and ACLs of a department; the secret is returned, never stored."""
    check_department(department, feeds)
    principal = kafka.principals.department(department)
    password = new_secret()
    admin = admin_client(kafka)
    try:
        topics = ensure_department_topics(admin, kafka, department, feeds)
        set_password(admin, principal, password)
        converge(admin, principal, department_grants(kafka, department, feeds))
    finally:
        admin.close()
    return Provisioned(principal, password, topics)


def create_principal(kafka: KafkaSettings, principal: str, grants: Sequence[Grant],
                     password: str | None = None, *, keep_other_acls: bool = False) -> str:
    """Any principal with exactly ``grants``; returns its (new) password.

    ``keep_other_acls``: at least ``grants``, the ACLs it has beyond them kept. For a
    development stack that several pipelines share with different topic names (tests,
    the demo, benchmarks): converging there would take one pipeline's ACLs away from
    another that is running."""
    secret = password or new_secret()
    admin = admin_client(kafka)
    try:
        set_password(admin, principal, secret)
        if keep_other_acls:
            grant(admin, principal, grants)
        else:
            converge(admin, principal, grants)
    finally:
        admin.close()
    return secret


def rotate(kafka: KafkaSettings, principal: str) -> str:
    """A new password for an existing principal (the old one stops working at once;
    sessions already authenticated keep going until they reconnect)."""
    password = new_secret()
    admin = admin_client(kafka)
    try:
        found = admin.describe_user_scram_credentials([principal]).get(principal)
        if not found or found["error"] or not found["credential_infos"]:
            raise ConfigError(f"no SCRAM user {principal}")
        set_password(admin, principal, password)
    finally:
        admin.close()
    return password


def revoke(kafka: KafkaSettings, principal: str) -> tuple[bool, int]:
    """Lock the principal out (:func:`lock_out`) and delete every ACL naming it."""
    admin = admin_client(kafka)
    try:
        had = lock_out(admin, principal)
        return had, revoke_acls(admin, principal)
    finally:
        admin.close()


def list_principals(kafka: KafkaSettings) -> dict[str, list[str]]:
    """Every SCRAM user with a one-line summary of each of its ACLs."""
    admin = admin_client(kafka)
    try:
        users = sorted(admin.describe_user_scram_credentials())
        out: dict[str, list[str]] = {u: [] for u in users}
        flt = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY,
                        permission_type=ACLPermissionType.ANY,
                        resource_pattern=ResourcePatternFilter(
                            ResourceType.ANY, None, ACLResourcePatternType.ANY))
        acls, _err = admin.describe_acls(flt)
        for acl in acls:
            user = acl.principal.removeprefix("User:")
            rp = acl.resource_pattern
            out.setdefault(user, []).append(
                f"{acl.permission_type.name} {acl.operation.name} {rp.resource_type.name}:"
                f"{rp.resource_name}{'*' if rp.pattern_type.name == 'PREFIXED' else ''}")
        return out
    finally:
        admin.close()
