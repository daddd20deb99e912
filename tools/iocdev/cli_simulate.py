"""`ioc simulate` and `ioc replay`: department feeds for demos and tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

FILE_DEFAULT_START = "2025-12-01T00:00:00+07:00"


def simulate(
    province: Annotated[str, typer.Option(help="Province code (01 = Hà Nội).")] = "01",
    rate: Annotated[float, typer.Option(help="Events per wall-clock second.")] = 100.0,
    speedup: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 1.0,
    duration: Annotated[str, typer.Option(help="Simulated span, e.g. 90s, 15m, 2h, 1d.")
                        ] = "1h",
    start: Annotated[str | None, typer.Option(
        help="Simulated start (ISO 8601 with offset). Default: now for kafka/http, "
             f"{FILE_DEFAULT_START} for file.")] = None,
    seed: Annotated[int, typer.Option(help="Same seed and options: same events.")] = 0,
    bad_share: Annotated[float, typer.Option(help="Share of malformed events (0..1).")
                         ] = 0.0,
    target: Annotated[str, typer.Option(help="kafka | http | file")] = "kafka",
    out: Annotated[Path | None, typer.Option(help="NDJSON output for --target file.")
                   ] = None,
    batch: Annotated[int, typer.Option(help="Events per message (kafka) or request (http).")
                     ] = 100,
    api_key: Annotated[str | None, typer.Option(
        envvar="IOC_API_KEY", help="Department API key for --target http.")] = None,
    max_speed: Annotated[bool, typer.Option(help="Do not pace; send as fast as possible.")
                         ] = False,
    metrics_port: Annotated[int, typer.Option(
        help="Serve Prometheus /metrics on 127.0.0.1:PORT while running (0: off).")] = 0,
    online_rise: Annotated[str | None, typer.Option(
        help="Month-on-month rise of the online share for the province's dossiers, "
             "YYYY-MM:before:after (Vietnam time), e.g. 2026-11:0.008:0.26.")] = None,
) -> None:
    """Publish simulated department feeds (air, water, traffic, dossiers)."""
    from iocdev.settings import get_dev_settings
    from iocdev.simulate.dossiers import OnlineRise
    from iocdev.simulate.run import parse_span, run
    from iocdev.simulate.targets import FileTarget, HttpTarget, KafkaTarget, Target

    if target not in ("kafka", "http", "file"):
        raise typer.BadParameter("use kafka, http or file", param_hint="--target")
    if not 0.0 <= bad_share <= 1.0 or rate <= 0 or speedup <= 0:
        raise typer.BadParameter("need 0 <= --bad-share <= 1, --rate > 0, --speedup > 0")
    try:
        rise = OnlineRise.parse(online_rise) if online_rise else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--online-rise") from exc
    settings = get_dev_settings()
    if metrics_port:
        import prometheus_client

        prometheus_client.start_http_server(metrics_port, addr="127.0.0.1")
    if start is not None:
        t0 = datetime.fromisoformat(start)
        if t0.tzinfo is None:
            raise typer.BadParameter("give an offset, e.g. +07:00", param_hint="--start")
    elif target == "file":
        t0 = datetime.fromisoformat(FILE_DEFAULT_START)
    else:
        t0 = datetime.now(UTC).replace(microsecond=0)
    sink: Target
    if target == "file":
        if out is None:
            raise typer.BadParameter("--target file needs --out FILE", param_hint="--out")
        sink = FileTarget(out)
    elif target == "kafka":
        k = settings.kafka
        sink = KafkaTarget(
            bootstrap_servers=k.bootstrap_servers,
            topics={f: t.name for f, t in k.topics.raw().items()}, batch=batch,
            client_options=k.client_options(), max_request_size=k.max_message_bytes)
    else:
        if not api_key:
            raise typer.BadParameter("--target http needs --api-key (or IOC_API_KEY)")
        api_url = f"http://{settings.api.host}:{settings.api.port}"
        sink = HttpTarget(url=api_url, api_key=api_key, batch=batch)
    counts = run(sink, province=province, start=t0, span_s=parse_span(duration), rate=rate,
                 speedup=speedup, seed=seed, bad_share=bad_share,
                 pace=target != "file" and not max_speed, online_rise=rise)
    typer.echo(json.dumps(counts))


def replay(
    file: Annotated[Path, typer.Argument(help="NDJSON file, one envelope per line.")],
    batch: Annotated[int, typer.Option(help="Events per Kafka message (per source).")] = 100,
    fallback_feed: Annotated[str, typer.Option(
        help="Topic feed for lines whose feed cannot be read.")] = "sensor",
) -> None:
    """Send an NDJSON file to Kafka, each line to its feed's topic, keyed by source_id."""
    import msgspec

    from iocdev.settings import get_dev_settings
    from iocdev.simulate.targets import KafkaTarget

    k = get_dev_settings().kafka
    topics = {f: t.name for f, t in k.topics.raw().items()}
    if fallback_feed not in topics:
        raise typer.BadParameter(f"one of {sorted(topics)}", param_hint="--fallback-feed")
    sink = KafkaTarget(bootstrap_servers=k.bootstrap_servers, topics=topics, batch=batch,
                       client_options=k.client_options(), max_request_size=k.max_message_bytes)
    decoder = msgspec.json.Decoder()
    with file.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            raw = line.rstrip(b"\r\n")
            if not raw:
                continue
            feed, key = fallback_feed, "unknown"
            try:
                obj = decoder.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                obj = None
            if isinstance(obj, dict):
                if obj.get("feed") in topics:
                    feed = obj["feed"]
                if isinstance(obj.get("source_id"), str):
                    key = obj["source_id"]
            sink.send(feed, key, raw)
            if n % 1000 == 0:
                sink.poll()
    typer.echo(json.dumps(sink.close()))
