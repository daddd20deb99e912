"""Simulated department feeds: air, water, traffic and dossier flows for one province.

``generate(province, start, span, rate, seed, bad_share)`` yields (feed, key, payload)
without any broker; :func:`iocdev.simulate.generator.events` adds the ground truth.
"""

from iocdev.simulate.generator import SimEvent, Truth, events, generate

__all__ = ["SimEvent", "Truth", "events", "generate"]
