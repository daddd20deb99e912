"""`ioc alerts` commands: list, show, ack, resolve, silence — straight on the database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from alerts.notify import Receiver

app = typer.Typer(no_args_is_help=True)
silence_app = typer.Typer(no_args_is_help=True, help="Silences: add, list, expire.")
app.add_typer(silence_app, name="silence")

T = TypeVar("T")
By = Annotated[str, typer.Option("--by", help="Who does it (recorded in the audit log).")]
Note = Annotated[str | None, typer.Option("--note", help="Why (stored with the transition).")]


def _run(action: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
    from ioccore.db.connections import aconnect
    from ioccore.settings import get_settings

    async def main() -> T:
        conninfo = get_settings().database.conninfo()
        async with await aconnect(conninfo, purpose="cli", autocommit=True) as conn:
            return await action(conn)

    return asyncio.run(main())


def _receivers() -> tuple[list[Receiver], str]:
    from alerts.notify import generator_url, receivers_for
    from ioccore.settings import get_settings

    settings = get_settings()
    return receivers_for(settings), generator_url(settings)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@app.command("list")
def list_(
    state: Annotated[list[str] | None, typer.Option(
        "--state", help="pending, firing, acknowledged, resolved, inactive")] = None,
    severity: Annotated[list[str] | None, typer.Option("--severity")] = None,
    commune: Annotated[list[str] | None, typer.Option("--commune")] = None,
    province: Annotated[list[str] | None, typer.Option("--province")] = None,
    rule: Annotated[list[str] | None, typer.Option("--rule")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List alerts, most recently changed first."""
    from alerts import store

    rows = _run(lambda conn: store.list_alerts(
        conn, states=state or None, severities=severity or None, communes=commune or None,
        provinces=province or None, rule_ids=rule or None, limit=limit))
    if as_json:
        typer.echo(json.dumps([_alert_json(a) for a in rows], ensure_ascii=False, indent=2))
        return
    for a in rows:
        summary = a.annotations.get("summary_vi") or a.annotations.get("summary_en") or ""
        where = a.labels.get("commune_code") or a.labels.get("province_code") or \
            a.labels.get("source_id") or a.labels.get("feed") or ""
        typer.echo(f"{a.fingerprint}  {a.state:<12} {a.severity:<8} {a.rule_id:<28} "
                   f"{where:<8} {summary}")


def _alert_json(a: Any) -> dict[str, Any]:
    return {
        "fingerprint": a.fingerprint, "rule_id": a.rule_id, "state": a.state,
        "severity": a.severity, "labels": a.labels, "annotations": a.annotations,
        "seq": a.seq, "started_at": _iso(a.started_at), "firing_at": _iso(a.firing_at),
        "acknowledged_by": a.acknowledged_by, "acknowledged_at": _iso(a.acknowledged_at),
        "resolved_at": _iso(a.resolved_at), "last_value": a.last_value,
        "updated_at": _iso(a.updated_at),
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


@app.command("show")
def show(fingerprint: str) -> None:
    """One alert with its history."""
    from alerts import store
    from alerts.errors import AlertsError

    try:
        alert, history = _run(lambda conn: store.get_alert(conn, fingerprint))
    except AlertsError as exc:
        raise _fail(exc) from exc
    typer.echo(json.dumps(_alert_json(alert), ensure_ascii=False, indent=2))
    for t in history:
        typer.echo(f"  #{t.seq} {t.at.isoformat()} {t.from_state} -> {t.to_state} "
                   f"({t.kind}) by {t.actor}" + (f": {t.note}" if t.note else ""))


@app.command("ack")
def ack(fingerprint: str, by: By, note: Note = None) -> None:
    """Acknowledge a firing alert (stops re-notification and escalation)."""
    from alerts import store
    from alerts.errors import AlertsError

    receivers, url = _receivers()
    try:
        t = _run(lambda conn: store.acknowledge(conn, fingerprint, by, note,
                                                receivers=receivers, generator_url=url))
    except AlertsError as exc:
        raise _fail(exc) from exc
    typer.echo(f"{fingerprint}: {t.from_state} -> {t.to_state} (#{t.seq})")


@app.command("resolve")
def resolve(fingerprint: str, by: By, note: Note = None) -> None:
    """Resolve an alert by hand."""
    from alerts import store
    from alerts.errors import AlertsError

    receivers, url = _receivers()
    try:
        t = _run(lambda conn: store.resolve(conn, fingerprint, by, note,
                                            receivers=receivers, generator_url=url))
    except AlertsError as exc:
        raise _fail(exc) from exc
    typer.echo(f"{fingerprint}: {t.from_state} -> {t.to_state} (#{t.seq})")


@silence_app.command("add")
def silence_add(
    matchers: Annotated[list[str], typer.Argument(
        help='All must match, e.g. commune_code="00004" alertname=~"pm25_.*"')],
    by: By,
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")] = "2h",
    comment: Annotated[str, typer.Option("--comment")] = "",
) -> None:
    """Silence alerts matching every matcher for a while (state keeps moving)."""
    from alerts import store
    from alerts.durations import parse_duration
    from alerts.silences import Matcher

    try:
        parsed = [Matcher.parse(m) for m in matchers]
        span = parse_duration(duration)
    except ValueError as exc:
        raise _fail(exc) from exc
    start = datetime.now(UTC)
    silence = _run(lambda conn: store.create_silence(
        conn, parsed, starts_at=start, ends_at=start + span, created_by=by, comment=comment))
    typer.echo(f"silence {silence.id} until {silence.ends_at.isoformat()}")


@silence_app.command("list")
def silence_list(
    all_: Annotated[bool, typer.Option("--all", help="Include expired.")] = False,
) -> None:
    """Silences in effect or scheduled (``--all``: expired ones too)."""
    from alerts import store

    for s in _run(lambda conn: store.list_silences(conn, include_expired=all_)):
        matchers = " ".join(str(m) for m in s.matchers)
        typer.echo(f"{s.id:>5}  {s.starts_at.isoformat()} .. {s.ends_at.isoformat()}  "
                   f"{s.created_by}  {matchers}  {s.comment}")


@silence_app.command("expire")
def silence_expire(silence_id: int, by: By) -> None:
    """End a silence now."""
    from alerts import store
    from alerts.errors import AlertsError

    try:
        s = _run(lambda conn: store.expire_silence(conn, silence_id, by))
    except AlertsError as exc:
        raise _fail(exc) from exc
    typer.echo(f"silence {s.id} expired by {by}")


@app.command("receiver-tokens")
def receiver_tokens(
    config: Annotated[str, typer.Option(help="Alertmanager's configuration file.")],
    directory: Annotated[str | None, typer.Option(
        "--dir", help="Where the tokens go; default alerts.receiver_tokens_dir.")] = None,
    shared: Annotated[bool, typer.Option(help="Mode 0644 instead of 0600: for a private "
                                         "volume that Alertmanager and the API, running "
                                         "as different users, both mount (compose).")
                      ] = False,
) -> None:
    """Write a bearer token for every webhook receiver of CONFIG that has none."""
    from pathlib import Path

    import yaml

    from alerts.receiver_tokens import ensure_tokens, token_path, webhook_receivers
    from ioccore.settings import get_settings

    target = Path(directory) if directory else get_settings().receiver_tokens_dir()
    names = sorted({w.receiver for w in webhook_receivers(
        yaml.safe_load(Path(config).read_text()))})
    made = ensure_tokens(target, names)
    if shared:
        for name in names:
            token_path(target, name).chmod(0o644)
    typer.echo(f"{len(made)} token(s) written, {len(names) - len(made)} kept, in {target}")
