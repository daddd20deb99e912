"""`ioc geo` commands: load boundaries, rebuild the bundled reference, look points up."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)

REFERENCE_VALID_FROM = date(2025, 7, 1)
"""The two-tier administrative units (34 provinces, 3,321 communes) took effect."""


@app.command("load")
def load(
    file: Annotated[Path | None, typer.Argument(
        help="GeoJSON, GeoPackage or Shapefile; omit to load the bundled reference "
             "(approximate polygons).")] = None,
    mapping: Annotated[str | None, typer.Option(
        help="Column mapping, e.g. code=ma_xa,name=ten_xa,parent_code=ma_tinh,level=cap "
             "(an empty value marks a field absent).")] = None,
    valid_from: Annotated[str | None, typer.Option(
        help="Date (YYYY-MM-DD) the boundaries take effect; default today for a file, "
             "2025-07-01 (when the two-tier units took effect) for the reference.")] = None,
    layer: Annotated[str | None, typer.Option(help="Layer of a multi-layer file.")] = None,
    crs: Annotated[str | None, typer.Option(
        help="CRS to assume when the file declares none, e.g. EPSG:4326.")] = None,
    source: Annotated[str | None, typer.Option(
        help="Source label stored with the rows; default: the file name.")] = None,
    database: Annotated[str | None, typer.Option(
        help="Database name; default from settings.")] = None,
) -> None:
    """Write administrative units to TimescaleDB (table admin_units), keeping history."""
    import psycopg

    from geo.errors import BoundaryFileError
    from geo.store import write_units
    from ioccore.db.connections import connect
    from ioccore.errors import GeoError
    from ioccore.settings import get_settings

    settings = get_settings()
    try:
        if valid_from:
            day = date.fromisoformat(valid_from)
        else:
            day = REFERENCE_VALID_FROM if file is None else date.today()
    except ValueError as exc:
        raise typer.BadParameter(f"not a date: {valid_from}") from exc
    try:
        if file is None:
            from geo.reference import SOURCE, read_reference

            units = read_reference(settings.resolve(settings.geo.reference)).units
            label = source or SOURCE
        else:
            from geo.loader import ColumnMapping, read_units

            units = read_units(file, ColumnMapping.parse(mapping), layer=layer,
                               assume_crs=crs)
            label = source or file.name
        with connect(settings.database.conninfo(database), purpose="cli") as conn:
            report = write_units(conn, units, source=label, valid_from=day)
    except BoundaryFileError as exc:
        typer.echo(f"error ({exc.reason}): {exc.message}", err=True)
        raise typer.Exit(2) from exc
    except (GeoError, psycopg.Error) as exc:
        typer.echo(f"error: {exc}", err=True)
        if isinstance(exc, psycopg.errors.UndefinedTable):
            typer.echo("hint: run `ioc db migrate` first", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{label}: {report}")


@app.command("build-reference")
def build_reference(
    out: Annotated[Path | None, typer.Option(help="Output folder; default geo/data.")] = None,
) -> None:
    """Regenerate the bundled reference (geo/data) from the vietnamadminunits package."""
    from geo.reference import DATA_DIR, build

    for name, path in build(out or DATA_DIR).items():
        typer.echo(f"{name}: {path} ({path.stat().st_size / 1024:.0f} KiB)")


@app.command("lookup")
def lookup(
    lat: Annotated[float, typer.Argument(help="Latitude (WGS 84).")],
    lon: Annotated[float, typer.Argument(help="Longitude (WGS 84).")],
    from_db: Annotated[bool, typer.Option(
        "--db", help="Use current_admin_units instead of the bundled reference.")] = False,
) -> None:
    """Show which commune a point falls in (debugging aid)."""
    from geo.index import index_for
    from ioccore.settings import get_settings

    index = index_for(get_settings(), source="database" if from_db else "reference")
    commune, province, outcome = index.assign([lat], [lon])
    typer.echo(f"commune={commune[0]} province={province[0]} outcome={outcome[0]}")
