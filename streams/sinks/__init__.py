"""Sinks: where stage 2 makes events durable."""
