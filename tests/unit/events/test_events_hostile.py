"""Hostile input (issue 15): the validator never raises, and every element of a batch
ends up accepted or in exactly one rejection, whatever bytes surround it."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioccore.events import validate as validate_mod
from ioccore.events.batch_split import split_array
from ioccore.events.models import EnvelopeV1, SensorEnvelopeV1
from ioccore.events.reasons import Reason
from ioccore.events.validate import (
    FORBIDDEN_CHARS,
    RUN_COLLAPSE,
    Rejection,
    Validator,
    collapse_runs,
)

NOW = 1_762_160_000.0


def event(i: int) -> bytes:
    return json.dumps({
        "schema_version": 1, "feed": "sensor", "event_id": f"ok-{i}", "source_id": "aq-1",
        "department": "env", "occurred_at": "2025-11-03T08:00:00+07:00",
        "location": {"lat": 21.04, "lon": 105.82},
        "body": {"metric": "pm10", "value": 80.5, "unit": "ug/m3"}}).encode()


def make() -> Validator:
    return Validator(max_message_bytes=1 << 20, max_future_skew_s=300)


JUNK = st.sampled_from([b"}", b"]", b"{", b"[", b'"', b'{"a": [1', b'{"a": "x', b"1",
                        b"null", b"{}", b"]]}}", b"\\", b'"\\"', b"\x00", b"\xff\xfe",
                        b'{"schema_version": 1}', b"[[[[", b",", b"", b"nan"])


def accounted(value: bytes, n_valid: int, v: Validator) -> None:
    """Each valid event is accepted, or its bytes are in exactly one rejection."""
    records, rejections = v.validate(value, now=NOW)
    got = {r.event_id for r in records}
    assert len(got) == len(records)
    for i in range(n_valid):
        needle = event(i)
        holders = [r for r in rejections if needle in r.raw]
        assert (f"ok-{i}" in got) + len(holders) == 1, (i, rejections)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.integers(0, 7).map(lambda i: ("ok", i)),
                          st.lists(JUNK, min_size=1, max_size=4).map(lambda j: ("junk",
                                                                                  b"".join(j)))),
                max_size=12),
       st.booleans())
def test_no_valid_event_is_lost_whatever_junk_surrounds_it(
        parts: list[tuple[str, Any]], closed: bool) -> None:
    pieces: list[bytes] = []
    n = 0
    for kind, x in parts:
        if kind == "ok":
            pieces.append(event(n))
            n += 1
        else:
            pieces.append(x)
    value = b"[" + b",".join(pieces) + (b"]" if closed else b"")
    accounted(value, n, make())


def test_stray_closers_at_depth_zero_do_not_end_the_split() -> None:
    value = b"[" + event(0) + b", } ," + event(1) + b", ] ," + event(2) + b"]"
    pieces = split_array(value)
    assert pieces == [event(0), b"}", event(1), b"]", event(2)]
    records, rejections = make().validate(value, now=NOW)
    assert [r.event_id for r in records] == ["ok-0", "ok-1", "ok-2"]
    assert [(r.reason, r.index) for r in rejections] == [("not_json", 1), ("not_json", 3)]


def test_an_unclosed_bracket_is_one_dead_letter_and_the_rest_is_found_again() -> None:
    value = b"[" + event(0) + b', {"a": [1, ' + event(1) + b"," + event(2) + b"]"
    records, rejections = make().validate(value, now=NOW)
    assert [r.event_id for r in records] == ["ok-0", "ok-1", "ok-2"]
    assert [(r.reason, r.raw) for r in rejections] == [("not_json", b'{"a": [1')]


def test_amplification_is_one_dead_letter() -> None:
    records, rejections = make().validate(b"[" + b",".join([b"1"] * 10_000) + b"]", now=NOW)
    assert records == [] and len(rejections) == 1
    assert rejections[0].reason == Reason.TOO_MANY_EVENTS and rejections[0].count == 10_000
    value = b"[" + event(0) + b"," + b",".join([b"1"] * 3_000) + b"," + event(1) + b"]"
    records, rejections = make().validate(value, now=NOW)
    assert len(records) == 2
    assert [(r.reason, r.index, r.count) for r in rejections] == [("not_an_object", 1, 3000)]


def test_short_runs_keep_one_rejection_per_element() -> None:
    rejs = [Rejection("not_json", "m", b"x", i) for i in range(RUN_COLLAPSE)]
    assert collapse_runs(rejs) == rejs
    merged = collapse_runs([*rejs, Rejection("wrong_type", "m", b"y", RUN_COLLAPSE)])
    assert [(r.reason, r.index, r.count) for r in merged] == [
        ("rejected_run", 0, RUN_COLLAPSE + 1)]
    assert merged[0].raw == b",".join([b"x"] * RUN_COLLAPSE + [b"y"])


def test_a_bug_in_a_check_costs_one_element(monkeypatch: pytest.MonkeyPatch) -> None:
    v = make()
    real = v._accept

    def flaky(env: Any, *args: Any, **kwargs: Any) -> Any:
        if env.event_id == "ok-1":
            raise ZeroDivisionError("bug")
        return real(env, *args, **kwargs)

    monkeypatch.setattr(v, "_accept", flaky)
    records, rejections = v.validate(b"[" + event(0) + b"," + event(1) + b"," + event(2)
                                     + b"]", now=NOW)
    assert [r.event_id for r in records] == ["ok-0", "ok-2"]
    assert [(r.reason, r.index) for r in rejections] == [("internal_error", 1)]


def test_tombstone_and_missing_key() -> None:
    v = make()
    _, (rej,) = v.validate(None, key=b"aq-1", check_key=True)
    assert rej.reason == Reason.TOMBSTONE
    assert json.loads(rej.raw) == {"tombstone": True, "key": "aq-1", "key_b64": "YXEtMQ=="}
    _, (rej,) = v.validate(event(0), key=None, check_key=True)
    assert rej.reason == Reason.MISSING_KEY and rej.raw == event(0)
    ok, bad = v.validate(event(0), key=b"aq-1", check_key=True)
    assert len(ok) == 1 and not bad


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x85", "\u200b", "\u200d",
                                  "\u202e", "\u2066", "\ufeff", "\u2028", "\u061c"])
def test_forbidden_characters(char: str) -> None:
    assert FORBIDDEN_CHARS.search(f"aq{char}1")
    doc = json.loads(event(0))
    doc["source_id"] = f"aq{char}1"
    _, (rej,) = make().validate(json.dumps(doc).encode(), now=NOW)
    assert rej.reason == Reason.FORBIDDEN_CHARACTER
    assert f"U+{ord(char):04X}" in rej.message


def test_vietnamese_identifiers_are_fine() -> None:
    assert not FORBIDDEN_CHARS.search("Phường Ba Đình µg/m³ ubnd-00004")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_never_raises_on_any_bytes(value: bytes) -> None:
    v = make()
    records, rejections = v.validate(value, now=NOW)
    v.validate(b"[" + value + b"]", now=NOW)
    v.validate_items([value, value], now=NOW)
    assert len(records) + sum(r.count for r in rejections) >= 1


def test_module_documents_its_caps() -> None:
    assert validate_mod.MAX_EVENTS_PER_MESSAGE == 5_000


WELL_FORMED_JUNK = st.sampled_from([b"1", b"null", b"{}", b'"x"', b"[]", b'{"a": 1}',
                                    b'{"schema_version": 2}', b"true", b"[[[1]]]"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 9).map(lambda i: ("ok", i)),
                          WELL_FORMED_JUNK.map(lambda j: ("junk", j))), max_size=14))
def test_same_verdicts_alone_or_batched(parts: list[tuple[str, Any]]) -> None:
    """Every element gets the same verdict in a batch as on its own (as one element)."""
    items = [event(x) if kind == "ok" else x for kind, x in parts]
    if not items:
        return
    alone = [make().validate_items([item], now=NOW) for item in items]
    records, rejections = make().validate(b"[" + b",".join(items) + b"]", now=NOW)
    assert [r.event_id for r in records] == [rs[0].event_id for rs, _ in alone if rs]
    by_index: dict[int, str] = {}
    for r in rejections:
        assert r.index is not None
        for i in range(r.index, r.index + r.count):
            by_index[i] = str(r.reason) if r.count == 1 else "run"
    for i, (ok, bad) in enumerate(alone):
        if ok:
            assert i not in by_index
        elif by_index[i] != "run":
            assert by_index[i] == str(bad[0].reason)


STRUCTURE = st.sampled_from([b"[", b"]", b"{", b"}", b",", b'"', b"a", b" ", b"1", b":",
                             b"{}", b'{"a":1}', b", {", b",{", b'{"a":"b"}', b"\n",
                             b'"x\\"y"', b'"\\\\"', b'{"a":"\\\\","b":1}'])
"""Structural fragments, restart points, and strings with backslashes."""


@settings(max_examples=1000, deadline=None)
@given(st.lists(STRUCTURE, max_size=40), st.booleans())
def test_the_vectorised_cut_is_the_former_scanner_s_cut(parts: list[bytes],
                                                        closed: bool) -> None:
    """The structural index gives the pieces the per-token scanner gave (kept in
    ``scanner_oracle``), restarts included (``min_restart=0``: the scanner restarted at
    objects of any size), whenever backslashes stay inside strings."""
    from tests.support.scanner_oracle import reference_split

    if any(b"\\" in p for p in parts):  # keep backslashes inside strings: no lone quote
        parts = [p for p in parts if p != b'"']
    value = b"[" + b"".join(parts) + (b"]" if closed else b"")
    for limit in (None, 2):
        want = reference_split(value, limit)
        # the structural index, and the small-body scanner (whole, never over budget)
        assert split_array(value, limit, min_restart=0, scan_below=0) == want, (value, limit)
        assert split_array(value, limit, min_restart=0) == want, (value, limit)


EVENTISH = st.sampled_from([b"[", b"]", b"{", b"}", b",", b'"', b" ", b"1", b", {", b",{",
                            b'{"a":"b"}', b'"x\\"y"', event(0), event(1)[:-1],
                            event(2)[40:], b'{"a": [1'])
"""Fragments around whole events: restarts that span ``MIN_RESTART`` bytes."""


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENTISH, max_size=30), st.booleans(), st.integers(0, 2))
def test_the_small_body_scanner_cuts_as_the_index_at_every_size(
        parts: list[bytes], closed: bool, pad: int) -> None:
    """Both paths of :func:`split_array` give the same pieces (with the production
    ``min_restart``), whichever takes the body: below, at and above ``scan_below``, and
    when the scanner runs out of steps and hands over to the index."""
    from ioccore.events import batch_scan
    from ioccore.events.batch_split import MIN_RESTART

    if any(b"\\" in p for p in parts):
        parts = [p for p in parts if p != b'"']
    value = b"[" + b"".join(parts) + b" " * pad + (b"]" if closed else b"")
    want = split_array(value, None, scan_below=0)
    lo, hi = 1, len(value.rstrip())
    if hi > 1 and value[hi - 1] == 0x5D:  # as split_array finds the array's inside
        hi -= 1
    n = hi - lo
    for below in (n - 1, n, n + 1):
        assert split_array(value, None, scan_below=below) == want, (value, below)
    if value[1:hi].strip():
        try:  # the scanner alone, with any budget it completes in
            got = batch_scan.scan_split(value, lo, hi, None, (10**6, 1), MIN_RESTART)
        except batch_scan.OverBudget:  # pragma: no cover - a million steps suffice
            raise AssertionError(value) from None
        assert got == want, value
        for budget in ((0, 1000), (3, 64), (20, 8)):  # over budget: no partial result
            with contextlib.suppress(batch_scan.OverBudget):
                assert batch_scan.scan_split(value, lo, hi, None, budget, MIN_RESTART) == want


def test_short_restart_objects_stay_in_their_malformed_piece() -> None:
    """An object shorter than MIN_RESTART cannot be an event: no cut there."""
    value = b'[{"a":1 ,{"b":2}, ' + event(0) + b"]"
    assert split_array(value, min_restart=0) == [b'{"a":1', b'{"b":2}', event(0)]
    assert split_array(value) == [b'{"a":1 ,{"b":2}', event(0)]


def test_issue24_payloads_cost_linear_time() -> None:
    """Issue 24, item 1: ``[{"a":1 `` + k x (63 x ``,{x `` then ``,{} ``) + ``]`` took
    0.74 s at 8 KB and 3.0 s at 16 KB (x4 per doubling). Linear now: 64 KB within a
    small multiple of 16 KB's time, and both far below the former figures."""
    import time

    unit = b",{x " * 63 + b",{} "

    def cost(n: int) -> float:
        value = b'[{"a":1 ' + unit * (n // len(unit)) + b"]"
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            make().validate(value, now=NOW)
            best = min(best, time.perf_counter() - t0)
        return best

    small, large = cost(16_384), cost(65_536)
    assert large < 8 * small + 0.05, (small, large)  # quadratic would be x16
    assert small < 0.5, small


def test_a_run_of_tiny_elements_is_one_rejection_with_its_tally() -> None:
    """Tiny elements (never an event) in bulk: one rejection per run, each distinct
    spelling diagnosed once, the tally by reason kept when the run merges with its
    neighbours; the events around it are accepted."""
    value = (b"[" + event(0) + b"," + b",".join([b"1"] * 20 + [b"{}"] * 5) + b","
             + b'{"schema_version": 2, "x": "' + b"y" * 80 + b'"},' + event(1) + b"]")
    records, rejections = make().validate(value, now=NOW)
    assert [r.event_id for r in records] == ["ok-0", "ok-1"]
    (run,) = rejections
    assert (run.reason, run.index, run.count) == (Reason.REJECTED_RUN, 1, 26)
    assert run.tally == {"not_an_object": 20, "missing_field": 5,
                         "unsupported_schema_version": 1}
    assert "not_an_object x20, missing_field x5, unsupported_schema_version x1" in run.message


TINY_SPELLING = st.one_of(
    st.integers(-10**6, 10**6).map(lambda i: b"%d" % i),
    st.text("ab\\\"", max_size=6).map(lambda t: json.dumps(t).encode()),
    st.sampled_from([b"true", b"null", b"[]", b"[1]", b"{}", b'{"a":1}', b'{"feed":"x"}',
                     b'{"schema_version":null}', b'{"schema_version":2}',
                     b'{"schema_version":"1"}', b'{"schema_version":1}', b"x", b"1e999", b"-"]),
    st.integers(0, 200).map(lambda i: b'{"k%d":%d}' % (i, i)))


@settings(max_examples=150, deadline=None)
@given(st.lists(TINY_SPELLING, min_size=RUN_COLLAPSE + 1, max_size=120), st.booleans())
def test_a_tiny_run_s_tally_is_each_element_s_own_reason(spellings: list[bytes],
                                                         whole: bool) -> None:
    """Distinct tiny spellings are tallied in bulk (a type check of the parsed values,
    one C parse per spelling): the tally is what diagnosing each element alone gives,
    whether the batch parses whole or is split."""
    v = make()
    tail = b"" if whole else b",1 2"  # a malformed element: the batch is split
    value = b"[" + b",".join(spellings) + tail + b"]"
    _, rejections = v.validate(value, now=NOW)
    want: dict[str, int] = {}
    for raw in spellings:  # each alone in a batch: diagnosed in full, never in bulk
        _, (alone,) = v.validate(b"[" + raw + b"]", now=NOW)
        want[str(alone.reason)] = want.get(str(alone.reason), 0) + 1
    if not whole:
        last = str(v.validate(b"[1 2]", now=NOW)[1][0].reason)
        want[last] = want.get(last, 0) + 1
    (run,) = rejections
    assert run.count == len(spellings) + (0 if whole else 1)
    assert (run.tally or {str(run.reason): run.count}) == want, value


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(",[]{}\" \\ab", max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("a,", max_size=2),
                                                               inner, max_size=3),
    max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(JSON_VALUE, min_size=1, max_size=12), st.sampled_from(["", " ", "\n ", "\t"]))
def test_a_parsed_batch_s_elements_are_its_raw_values(values: list[Any], blank: str) -> None:
    """The one-split cut of a batch whose commas all separate gives each element's bytes
    exactly as the C decoder's raw values do; a batch with a comma inside an element
    is copied per element (the same bytes)."""
    import msgspec

    sep = f"{blank},{blank}".encode()
    value = (blank.encode() + b"[" + blank.encode()
             + sep.join(json.dumps(v).encode() for v in values) + blank.encode() + b"]")
    raws = msgspec.json.Decoder(list[msgspec.Raw]).decode(value)
    assert validate_mod._items(value, raws) == [bytes(r) for r in raws], value


@settings(max_examples=100, deadline=None)
@given(TINY_SPELLING, st.integers(RUN_COLLAPSE + 1, 300), st.booleans())
def test_a_run_of_one_spelling_is_tallied_as_each_element_alone(spelling: bytes, n: int,
                                                                whole: bool) -> None:
    """A run of one spelling repeated (recognised without hashing) has the tally that
    diagnosing its elements one by one gives, whether the batch parses whole or not."""
    v = make()
    tail = b"" if whole else b",1 2"
    _, rejections = v.validate(b"[" + b",".join([spelling] * n) + tail + b"]", now=NOW)
    _, (alone,) = v.validate(b"[" + spelling + b"]", now=NOW)
    want = {str(alone.reason): n}
    if not whole:
        last = str(v.validate(b"[1 2]", now=NOW)[1][0].reason)
        want[last] = want.get(last, 0) + 1
    (run,) = rejections
    assert (run.tally or {str(run.reason): run.count}) == want, spelling
    assert run.raw == b",".join([spelling] * n + ([b"1 2"] if not whole else []))


def test_a_too_deep_element_keeps_the_ids_it_names() -> None:
    """An element nested deeper than any event is refused as too deep; its ids are read
    without building its levels (a skipping decode), as a full parse read them."""
    deep = b'{"a":' * 700 + b"1" + b"}" * 700
    element = (b'{"source_id":"aq-9","event_id":"e-9","department":"env","x":' + deep
               + b"}")
    for value in (element, b"[" + element + b"," + event(0) + b"]"):
        _, rejections = make().validate(value, now=NOW)
        (too_deep,) = [r for r in rejections if r.reason == Reason.TOO_DEEPLY_NESTED]
        assert (too_deep.source_id, too_deep.event_id, too_deep.department) == (
            "aq-9", "e-9", "env")
        assert too_deep.raw == element


def test_a_window_that_cannot_be_an_object_is_not_parsed() -> None:
    """The scanner refuses a window that does not end in ``}`` without parsing it (a deep
    unclosed body built every level before failing): same cut, same verdict."""
    from ioccore.events import batch_scan

    assert not batch_scan._parses_as_object(b'{"a":{"a":{"a":')
    assert batch_scan._parses_as_object(b'{"a":1} \n')
    assert not batch_scan._parses_as_object(b"[1] ")
    value = b"[" + b'{"a":' * 300 + b"]"
    assert split_array(value) == split_array(value, scan_below=0) == [value[1:-1]]


def junk_pairs(kinds: int) -> st.SearchStrategy[list[tuple[list[bytes], int, bytes]]]:
    """Malformed elements, then an element of kind 0..``kinds``, then a separator."""
    return st.lists(st.tuples(st.lists(JUNK, min_size=1, max_size=3), st.integers(0, kinds),
                              st.sampled_from([b",", b", ", b" ,\n"])),
                    min_size=2, max_size=10)


def junk_array(pairs: list[tuple[list[bytes], int, bytes]], closed: bool,
               element: Any) -> bytes:
    """The array of ``pairs``: each element is ``element(kind, k)``."""
    body = b"".join(b"".join(junk) + sep + element(i, k) + sep
                    for k, (junk, i, sep) in enumerate(pairs))
    return b"[" + body.rstrip(b" ,\n") + (b"]" if closed else b"")


@settings(max_examples=300, deadline=None)
@given(junk_pairs(5), st.booleans())
def test_junk_between_events_cuts_alike_on_every_path(pairs: list[tuple[list[bytes], int,
                                                                          bytes]],
                                                      closed: bool) -> None:
    """Malformed elements between valid events (restart after restart): the index
    gives the same pieces as the small-body scanner (production ``min_restart``) and as
    the former scanner (``min_restart=0``), and every whole event is found again or
    dead-lettered once."""
    from tests.support.scanner_oracle import reference_split

    value = junk_array(pairs, closed, lambda i, k: event(k) if i else event(k)[:-1])
    if b"\\" in value:
        value = value.replace(b"\\", b"")
    index = split_array(value, scan_below=0)
    assert index == split_array(value, scan_below=1 << 30), value
    assert split_array(value, min_restart=0, scan_below=0) == reference_split(value), value
    records, rejections = make().validate(value, now=NOW)
    got = [r.event_id for r in records]
    for k, (_, i, _) in enumerate(pairs):
        if i:  # a whole event: accepted, or its bytes in exactly one rejection
            held = sum(event(k) in r.raw for r in rejections)
            assert got.count(f"ok-{k}") + held == 1, (k, value)


_TYPED = msgspec.json.Decoder(EnvelopeV1)
_GENERIC = msgspec.json.Decoder()
NOT_AN_ENVELOPE = event(0).replace(b'"sensor"', b'"other"')
"""An object the splitter may restart at (it parses) that is no v1 envelope."""


@settings(max_examples=300, deadline=None)
@given(junk_pairs(6), st.booleans())
def test_the_split_hands_over_the_events_it_decoded(pairs: list[tuple[list[bytes], int,
                                                                       bytes]],
                                                    closed: bool) -> None:
    """``split_array(events=...)`` (the validator's call) cuts as without it on both
    paths, and each envelope it hands over is its piece decoded on its own; the
    validator's verdicts are each element's own."""
    kinds = {0: lambda k: event(k)[:-1], 6: lambda k: NOT_AN_ENVELOPE}
    value = junk_array(pairs, closed, lambda i, k: kinds.get(i, event)(k))
    for below in (0, 1 << 30):
        events: dict[int, Any] = {}
        pieces = split_array(value, scan_below=below, events=events)
        assert pieces == split_array(value, scan_below=below), value
        assert pieces is not None
        for i, env in events.items():
            assert _TYPED.decode(pieces[i]) == env, (value, i)
    records, rejections = make().validate(value, now=NOW)
    pieces = split_array(value)
    assert pieces is not None
    one_by_one = make().validate_items(pieces, now=NOW)
    assert [r.event_id for r in records] == [r.event_id for r in one_by_one[0]]
    assert [(r.index, r.reason, r.count) for r in rejections] == [
        (r.index, r.reason, r.count) for r in one_by_one[1]]


@pytest.mark.parametrize("value, unit", [
    (b"1e400", b"u"), (b"-1e400", b"u"), (b"1" + b"0" * 400, b"u"), (b"42", b"\xff\xfe"),
    (b"42", b"\xed\xa0\x80"), (b"42", b"\\ud800"), (b"42", b"\\udc00x"), (b"NaN", b"u"),
    (b"42", b"\x00"), (b"4.2e-400", b"u"), (b"42", b"\\u0000")])
def test_what_decodes_as_an_envelope_parses_generically(value: bytes, unit: bytes) -> None:
    """The splitter's typed parse of a restart object stands for its generic parse
    (the cut must not change): every v1 struct forbids unknown fields, so nothing is
    skipped unread, and a text the typed decoder accepts the generic one accepts."""
    text = event(0).replace(b"80.5", value).replace(b'"ug/m3"', b'"' + unit + b'"')
    with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
        _TYPED.decode(text)
        assert isinstance(_GENERIC.decode(text), dict)
    doubled = event(0).replace(b'"department"', b'"department": "x", "department"')
    assert isinstance(_TYPED.decode(doubled), SensorEnvelopeV1)
    assert isinstance(_GENERIC.decode(doubled), dict)


def test_a_window_whose_object_closes_early_is_read_exactly() -> None:
    """The walk first takes each window's last brace as its object's close; a window
    ``EVENT,2}`` does not parse so, and the exact reading finds the event (closed
    before the ``,2}``) as the scanner does. A malformed element and then a batch whole
    again (every window one event) is cut by the first walk alone."""
    early = b'[{"a": [1,' + event(0) + b",2}," + event(1) + b"," + event(2) + b"]"
    unclosed = b'[{"a": "x, ' + b",".join(event(i) for i in range(4)) + b"]"
    for value, found in ((early, 3), (unclosed, 4)):
        pieces = split_array(value, scan_below=0)
        assert pieces == split_array(value, scan_below=1 << 30), value
        assert pieces is not None
        records, _ = make().validate(value, now=NOW)
        assert len(records) == found, (value, pieces)
        assert {r.event_id for r in records} <= {f"ok-{i}" for i in range(4)}


@pytest.mark.parametrize("first_alike", [0, 100, 400])
def test_many_tiny_spellings_are_tallied_from_the_values(first_alike: int) -> None:
    """Hundreds of distinct spellings (some objects with a ``schema_version``, which
    are diagnosed one by one), after ``first_alike`` copies of one spelling (the run
    looks uniform at first): the same tally as each element alone."""
    kinds = (lambda i: b"%d" % i, lambda i: b'"s%d"' % i, lambda i: b'{"k%d":1}' % i,
             lambda i: b'{"schema_version":%d}' % (i % 4), lambda i: b"[%d]" % i)
    spellings = [b"7"] * first_alike + [kinds[i % 5](i) for i in range(600)]
    v = make()
    (run,) = v.validate(b"[" + b",".join(spellings) + b"]", now=NOW)[1]
    want: dict[str, int] = {}
    for raw in spellings:
        _, (alone,) = v.validate(b"[" + raw + b"]", now=NOW)
        want[str(alone.reason)] = want.get(str(alone.reason), 0) + 1
    assert run.count == len(spellings)
    assert run.tally == want


@pytest.mark.parametrize("first_big", [False, True])
def test_the_tiny_runs_look_at_the_deadline(first_big: bool) -> None:
    """The loop over the tiny runs (junk between events) reads the clock every 64 runs,
    whether the batch starts with a tiny element or an event: 300 more runs, at least
    4 more reads (the split's reads do not grow with the elements)."""
    from ioccore.events.budget import Deadline

    def reads(pairs: int) -> int:
        body = [b'{"a": [1', event(0)] * pairs
        value = b"[" + b",".join(body[1:] if first_big else body) + b"]"
        count = [0]

        def clock() -> float:
            count[0] += 1
            return 0.0

        make().validate(value, now=NOW, deadline=Deadline(1.0, clock))
        return count[0]

    assert reads(600) - reads(300) >= 4
