"""Open formats turned into ioc envelopes: SenML (RFC 8428) and NGSI-LD entities.

Pure functions, no I/O: the MQTT bridge and the NGSI-LD endpoint convert what a device
or a context broker sent into envelope dicts (docs/events.md) and hand them to the same
validation, authorisation and publication path as ``POST /v1/events``; what cannot be
converted comes back as a :class:`Problem` (a dead letter with its reason).
"""

from ioccore.formats.problems import Problem

__all__ = ["Problem"]
