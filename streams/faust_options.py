"""faust's spelling of the Kafka credentials (it ignores kafka-python's option names).

It lives in the stream layer because only the stream imports faust; the core stays free
of it.
"""

from __future__ import annotations

from typing import Any

import faust

from ioccore.settings import KafkaSettings


def faust_options(kafka: KafkaSettings) -> dict[str, Any]:
    """``broker_credentials`` for faust from the same settings every other client uses."""
    if not kafka.uses_sasl:
        if kafka.security_protocol == "SSL":
            return {"broker_credentials": kafka.ssl_context()}
        return {}
    opts = kafka.client_options()
    return {"broker_credentials": faust.SASLCredentials(
        username=opts["sasl_plain_username"], password=opts["sasl_plain_password"],
        mechanism=opts["sasl_mechanism"], ssl_context=opts.get("ssl_context"))}
