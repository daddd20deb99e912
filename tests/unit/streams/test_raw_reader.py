"""The pure parts of stage 1's reader: which offsets a delivered batch makes committable,
and which of them may be committed now."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ioccore.settings import Settings, stage1_group
from streams.raw_reader import commit_plan, next_offsets, topics_pattern
from streams.stage1 import InMessage


def msg(topic: str, partition: int, offset: int) -> InMessage:
    return InMessage(topic, partition, offset, None, b"{}")


def test_next_offsets_are_one_past_the_last_message_of_each_partition() -> None:
    batch = [msg("a", 0, 5), msg("a", 1, 9), msg("a", 0, 7), msg("b", 0, 0), msg("a", 0, 6)]
    assert next_offsets(batch) == {("a", 0): 8, ("a", 1): 10, ("b", 0): 1}


def test_next_offsets_of_a_batch_read_twice_after_a_rewind_take_the_highest() -> None:
    # A partition revoked and assigned back mid-batch is read again from its committed
    # offset: every message up to the highest one was still delivered by this batch.
    batch = [msg("a", 0, 10), msg("a", 0, 11), msg("a", 0, 10)]
    assert next_offsets(batch) == {("a", 0): 12}


def test_commit_plan_names_only_assigned_partitions() -> None:
    pending = {("a", 0): 8, ("a", 1): 10}
    assert commit_plan(pending, {("a", 0)}, {}) == {("a", 0): 8}


def test_commit_plan_never_moves_an_offset_back() -> None:
    pending = {("a", 0): 8, ("a", 1): 10}
    committed = {("a", 0): 12, ("a", 1): 9}
    assert commit_plan(pending, {("a", 0), ("a", 1)}, committed) == {("a", 1): 10}


@given(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 2), st.integers(0, 50)),
                min_size=1))
def test_every_message_of_a_batch_is_below_its_partitions_next_offset(
        rows: list[tuple[str, int, int]]) -> None:
    batch = [msg(*r) for r in rows]
    offsets = next_offsets(batch)
    assert all(m.offset < offsets[(m.topic, m.partition)] for m in batch)
    assert all(any(m.offset + 1 == off for m in batch if (m.topic, m.partition) == tp)
               for tp, off in offsets.items())


def test_stage1_has_a_group_of_its_own() -> None:
    assert stage1_group("ioc") == "ioc-stage1"


def test_the_worker_may_use_both_of_its_groups_and_no_other(settings: Settings) -> None:
    from kafka.admin import ACLOperation, ResourceType

    from ioccore.principals import worker_grants

    groups = {(g.name, g.operation, g.prefixed) for g in worker_grants(settings.kafka, "app")
              if g.resource == ResourceType.GROUP}
    assert groups == {(name, op, False) for name in ("app", "app-stage1")
                      for op in (ACLOperation.READ, ACLOperation.DESCRIBE)}


def test_the_topics_pattern_matches_the_fixed_topics_and_any_department_topic() -> None:
    import re

    from streams.ownership import DepartmentTopics

    pattern = re.compile(topics_pattern(
        ["ioc.sensor.v1", "ioc.traffic.v1"],
        DepartmentTopics("ioc.dept.{department}.{feed}.v1").regex))
    assert pattern.match("ioc.sensor.v1") and pattern.match("ioc.traffic.v1")
    assert pattern.match("ioc.dept.hanoi-env.sensor.v1")
    for other in ("ioc.enriched.v1", "ioc.sensor.v10", "xioc.sensor.v1", "ioc_sensor_v1",
                  "ioc.dept.hanoi.weather.v1", "ioc.dept.hanoi.sensor.v1.x"):
        assert not pattern.match(other), other
