"""A federation on one machine for tests and demos: extra brokers, MirrorMaker 2, the
principals and topics of docs/federation.md (``topology``, ``mirror``)."""
