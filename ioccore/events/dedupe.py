"""Stage 1's duplicate memory: the last ``capacity`` accepted (source_id, event_id) keys.

Semantics (those of a dict plus a ring of the keys, which this replaces): :meth:`SeenKeys.add`
records a key and returns True, or returns False when the key is among the last
``capacity`` keys recorded (first in, first out: a key is forgotten ``capacity``
recordings after it was recorded, whether or not it was seen again meanwhile).

Why not a dict: 1M keys in a dict plus a ring of Python ints cost about 90 bytes a key
(91 MB of a worker's 300 MB budget). Here a key is its 64-bit hash, and keys live in
two generations:

* **young**: an insertion-ordered dict of the hashes recorded since the last merge (at
  most ``young_max``, 32,768 by default, and never more than ``capacity``, so all of them
  are live: about 2.5 MB), so the common path is a few dict operations;
* **old**: a sorted ``uint64`` array of hashes and a parallel ``uint32`` array of their
  sequence numbers (mod 2**32): 12 bytes a key. A key there is live while
  ``count - seq <= capacity``, so eviction needs no deletion: dead entries are dropped
  at the next merge. In front of it a one-hash Bloom filter of 32 bits a key (4 bytes)
  says "surely not there" for most fresh keys at the cost of one bytearray read; a
  "maybe" (a duplicate, or about 3-6% of fresh keys) costs one ``searchsorted``.

Merging young into old (every ``young_max`` recordings) is linear in ``capacity``
(about 5 ms for 1M keys) and briefly allocates a second copy of the old arrays, so the
footprint at 1M keys is about 17 MB, 30 MB at the moment of a merge (tracemalloc,
``python -m benchmarks.bench_memory dedupe``); recording costs about 390 ns a key at
1M keys against 225 ns for the dict and ring.

**Collisions.** Two different keys with the same 64-bit hash are one key here: a fresh
event whose hash equals that of one of the ``capacity`` live keys is wrongly reported
as a duplicate (and dead-lettered as ``duplicate_event_id``). With a uniform hash that
happens with probability ``capacity / 2**64`` per event: 5.4e-14 at 1M keys, that is
about one wrongly rejected event in 1.8e13 events (about 120 years at 5,000 events/s).
The reverse, a duplicate taken as fresh, cannot happen while the key is live. The
database's unique keys, not this memory, are what make storage exactly-once: this
only spares the database most re-sent events and names them in the dead-letter topic.

The hash is Python's ``hash((source_id, event_id))`` (SipHash of each string, combined):
salted per process, which is enough for per-process state and keeps a hostile sender
from choosing colliding ids.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

YOUNG_MAX: Final = 32_768
"""Keys recorded between two merges (the young dict's bound)."""

BLOOM_BITS_PER_KEY: Final = 32
"""Bloom filter size per key of capacity (rounded up to a power of two)."""

_MASK64: Final = (1 << 64) - 1
_MASK32: Final = (1 << 32) - 1
_MAX_CAPACITY: Final = 1 << 31
_SLACK: Final = 3
"""Dead keys are dropped once this many merges' worth have gathered (not at every merge:
that pass over the arrays is a third of a merge's cost)."""

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]


class SeenKeys:
    """The last ``capacity`` recorded keys, about 16 bytes a key; not thread-safe."""

    __slots__ = ("_bloom", "_bloom_np", "_count", "_keys", "_recorded_since_rebuild",
                 "_seqs", "_shift", "_young", "_young_max", "capacity")

    def __init__(self, capacity: int, *, young_max: int = YOUNG_MAX) -> None:
        if not 0 < capacity < _MAX_CAPACITY:
            raise ValueError(f"capacity must be in 1..{_MAX_CAPACITY - 1}, got {capacity}")
        self.capacity = capacity
        self._young_max = max(1, min(young_max, capacity))
        bits = max(16, (BLOOM_BITS_PER_KEY * capacity - 1).bit_length())
        self._shift = 64 - (bits - 3)
        """A key's byte in the filter is its top bits: ``hash >> shift`` as Python's signed
        hash, whose negative values index from the end, which is the same byte."""
        self._bloom = bytearray(1 << (bits - 3))
        self._bloom_np: npt.NDArray[np.uint8] = np.frombuffer(self._bloom, dtype=np.uint8)
        self._young: dict[int, None] = {}
        """Keys recorded since the last merge, in order: the i-th has sequence number
        ``_count + i``."""
        self._keys: U64 = np.empty(0, dtype=np.uint64)
        self._seqs: U32 = np.empty(0, dtype=np.uint32)
        self._count = 0
        self._recorded_since_rebuild = 0

    def __len__(self) -> int:
        """How many keys are remembered."""
        return min(self._count + len(self._young), self.capacity)

    @property
    def nbytes(self) -> int:
        """Bytes held by the old generation and the Bloom filter (young excluded)."""
        return int(self._keys.nbytes + self._seqs.nbytes + len(self._bloom))

    def add(self, source_id: str, event_id: str) -> bool:
        """Record the key; False (and nothing recorded) if it is remembered already."""
        h = hash((source_id, event_id))
        young = self._young
        if h in young:  # young keys are all live: young_max <= capacity
            return False
        if self._bloom[h >> self._shift] >> (h & 7) & 1 and self._in_old(h):
            return False
        young[h] = None
        if len(young) >= self._young_max:
            self._merge()
        return True

    def __contains__(self, key: object) -> bool:
        """Whether ``(source_id, event_id)`` is remembered (records nothing)."""
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        h = hash(key)
        return h in self._young or self._in_old(h)

    def clear(self) -> None:
        """Forget every key."""
        self._young.clear()
        self._keys = np.empty(0, dtype=np.uint64)
        self._seqs = np.empty(0, dtype=np.uint32)
        self._bloom_np[:] = 0
        self._count = 0
        self._recorded_since_rebuild = 0

    # ------------------------------------------------------------------ old generation
    def _in_old(self, h: int) -> bool:
        keys = self._keys
        key = np.uint64(h & _MASK64)
        i = int(keys.searchsorted(key))
        count = self._count + len(self._young)
        # A key recorded again after it was evicted is in the arrays twice until the dead
        # copy is dropped (the newer copy is inserted first; every copy is looked at).
        while i < len(keys) and keys[i] == key:
            if 0 < (count - int(self._seqs[i])) & _MASK32 <= self.capacity:
                return True
            i += 1
        return False

    def _merge(self) -> None:
        """Move the young keys into the sorted arrays, dropping keys no longer live."""
        young = self._young
        n = len(young)
        hashes = np.fromiter(young, dtype=np.int64, count=n).view(np.uint64)
        young.clear()
        order = np.argsort(hashes)  # unique (dict keys): no need for a stable sort
        hashes = hashes[order]
        seqs32 = ((order + self._count) & _MASK32).astype(np.uint32)
        self._count += n
        count = self._count
        keys, old_seqs = self._keys, self._seqs
        if len(keys) > self.capacity + _SLACK * self._young_max:
            age = np.uint32(count & _MASK32) - old_seqs
            live = (age - np.uint32(1)) < np.uint32(self.capacity)
            del age
            if not live.all():
                keys, old_seqs = keys[live], old_seqs[live]
            del live
        at = np.searchsorted(keys, hashes)
        self._keys = np.insert(keys, at, hashes)
        self._seqs = np.insert(old_seqs, at, seqs32)
        del keys, old_seqs
        self._recorded_since_rebuild += n
        if self._recorded_since_rebuild >= self.capacity:
            self._bloom_np[:] = 0  # evicted keys' bits would raise the false "maybe" rate
            self._recorded_since_rebuild = 0
            for start in range(0, len(self._keys), 1 << 16):
                self._set_bits(self._keys[start:start + (1 << 16)])
        else:
            self._set_bits(hashes)

    def _set_bits(self, sorted_hashes: U64) -> None:
        """Set the Bloom bits of ``sorted_hashes``: byte from the top bits (so bytes come
        sorted), bit from the low three."""
        if not len(sorted_hashes):
            return
        byte = (sorted_hashes >> np.uint64(self._shift)).astype(np.intp)
        bit = np.left_shift(np.uint8(1), (sorted_hashes & np.uint64(7)).astype(np.uint8))
        starts = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]])
        self._bloom_np[byte[starts]] |= np.bitwise_or.reduceat(bit, starts)
