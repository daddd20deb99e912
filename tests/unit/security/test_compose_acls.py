"""docker-compose's kafka-init grants exactly what ioccore.principals grants the worker
and the gateway (issue 24, finding 13: the gateway lacked DESCRIBE on the groups, so
admission control admitted everything; the worker lacked the stage-1 group)."""

from __future__ import annotations

import re
import shlex

import yaml
from kafka.admin import ACLOperation, ResourceType

from ioccore.principals import Grant, gateway_grants, worker_grants
from ioccore.settings import ROOT, get_settings

_OPS = {"Read": ACLOperation.READ, "Write": ACLOperation.WRITE,
        "Describe": ACLOperation.DESCRIBE, "IdempotentWrite": ACLOperation.IDEMPOTENT_WRITE}


def compose_grants() -> dict[str, set[Grant]]:
    """Every ``$$acl User:<p> ...`` line of kafka-init, ``for t in ...`` loops expanded."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    script = compose["services"]["kafka-init"]["command"][0].replace("$$", "$")
    out: dict[str, set[Grant]] = {}
    for line in script.splitlines():
        line = line.strip()
        loop = re.fullmatch(r"for t in ([^;]+); do (.+); done", line)
        lines = ([loop.group(2).replace("$t", t) for t in loop.group(1).split()] if loop
                 else [line])
        for cmd in lines:
            if not cmd.startswith("$acl "):
                continue
            words = shlex.split(cmd)
            principal = words[1].removeprefix("User:")
            ops = [_OPS[words[i + 1]] for i, w in enumerate(words) if w == "--operation"]
            prefixed = "prefixed" in words
            if "--topic" in words:
                rtype, name = ResourceType.TOPIC, words[words.index("--topic") + 1]
            elif "--group" in words:
                rtype, name = ResourceType.GROUP, words[words.index("--group") + 1]
            else:
                rtype, name = ResourceType.CLUSTER, "kafka-cluster"
            out.setdefault(principal, set()).update(
                Grant(rtype, name, op, prefixed=prefixed) for op in ops)
    return out


def test_compose_acls_equal_the_principals_module() -> None:
    settings = get_settings()
    group = settings.stream.app_id
    found = compose_grants()
    assert found["ioc-worker"] == set(worker_grants(settings.kafka, group))
    assert found["ioc-gateway"] == set(gateway_grants(settings.kafka, group=group))
    assert set(found) == {"ioc-worker", "ioc-gateway"}
