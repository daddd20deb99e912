"""A PM2.5 episode reaches exactly its owner's inbox: once firing, once resolved.

Real everything (iocdev.mail_episode): Kafka, TimescaleDB, an ``ioc worker``, an
``ioc api``, an Alertmanager running the shipped routing tree and a Mailpit of the test's
own. The rule fires in 30 communes of one province: one e-mail, not 30. With the SMTP
server down across the firing and again across the resolution, Alertmanager's retries
still deliver both, once (the full two minutes is the ``mail-outage`` chaos run).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from iocdev import mail_episode
from iocdev.mail_episode import OWNER_ADDRESS, OWNER_RECEIVER, Episode
from iocdev.settings import DevSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def check(episode: Episode) -> None:
    owner = episode.owner_messages
    assert [m.subject.split(":")[0] for m in owner] == [
        "[IOC] CẢNH BÁO / FIRING", "[IOC] ĐÃ HẾT CẢNH BÁO / RESOLVED"], owner
    assert "30 đang cảnh báo / firing" in owner[0].subject
    assert "30 đã hết / resolved" in owner[1].subject
    assert episode.rule_id in owner[0].subject
    # Vietnamese first, the English fallback below, each alert with its console link
    firing = episode.texts[0]
    assert firing.index("PM2.5 tại") < firing.index("-- English --") < firing.index("PM2.5 in")
    assert firing.count("/console/?rule=") == 2 * 30
    assert "(ICT)" in firing and "Đơn vị chủ trì: snnmt" in firing
    assert episode.other_messages == []  # no other department, not the duty desk
    assert all(m.to == (OWNER_ADDRESS,) for m in owner)
    # the department's webhook was told the same, and nobody else's
    assert {r for r, _, _ in episode.receipts} == {OWNER_RECEIVER}
    statuses = [s for _, s, _ in episode.receipts]
    assert (statuses[0], statuses[-1]) == ("firing", "resolved"), statuses


def test_episode_reaches_the_owner_once_firing_once_resolved(
        stack: DevSettings, tmp_path: Path) -> None:
    episode = mail_episode.run(stack, tmp_path, communes=30, echo=print)
    check(episode)
    assert episode.email_failures == [0, 0]
    latency = episode.firing_latency_s
    assert latency is not None
    print(f"firing -> owner's inbox: {latency:.1f} s (group_wait {episode.group_wait_s:.0f} s)")
    assert latency <= episode.group_wait_s + 5.0


def test_nothing_is_lost_while_the_smtp_server_is_down(stack: DevSettings, tmp_path: Path) -> None:
    episode = mail_episode.run(stack, tmp_path, communes=30, smtp_down_s=20.0, echo=print)
    check(episode)
    # the outage was real: Alertmanager's attempts failed while firing and while resolving
    firing, resolving = episode.email_failures
    assert firing >= 1 and resolving >= 1, episode.email_failures
