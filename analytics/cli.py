"""Subcommands of the analytics component: ``analytics run``, ``pos import``, ``report campaign``."""

from __future__ import annotations

import logging
import re
import signal
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from footfall.analytics.config import CampaignsConfig, StoresConfig, load_campaigns, load_stores
from footfall.contracts.config import ConfigError
from footfall.contracts.options import InfluxCa

if TYPE_CHECKING:
    from footfall.analytics.job import JobResult
    from footfall.analytics.store import EventStore

InfluxUrl = Annotated[
    str | None,
    typer.Option(
        "--influx-url", help="InfluxDB URL (credentials: INFLUX_USER/INFLUX_PASSWORD or INFLUX_TOKEN)"
    ),
]
InfluxDb = Annotated[str, typer.Option("--influx-db", help="InfluxDB database")]
DuckDbPath = Annotated[Path | None, typer.Option("--db", help="embedded DuckDB file instead of InfluxDB")]
StoresOpt = Annotated[Path | None, typer.Option("--stores-config", help="store metadata YAML")]
CampaignsOpt = Annotated[Path | None, typer.Option("--campaigns", help="campaigns YAML or CSV")]

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise ConfigError(f"{text!r}: expected a duration like 30s, 15m, 2h or 1d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return timedelta(**{unit: int(match[1])})


def parse_when(text: str, option: str) -> datetime | date:
    """A plain date (a local day of each store) or an ISO 8601 time with offset."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option}: expected YYYY-MM-DD or an ISO 8601 time, got {text!r}") from None
    if value.tzinfo is None:
        raise ConfigError(f"{option}: {text!r} has no UTC offset (or give a plain date)")
    return value


def open_store(
    influx_url: str | None, influx_db: str, db: Path | None, influx_ca: Path | None = None
) -> EventStore:
    from footfall.analytics.store import DuckDBStore, InfluxStore
    from footfall.contracts.influx import InfluxClient

    one_target = "give exactly one target: --influx-url URL (with --influx-db) or --db FILE.duckdb"
    if db is not None:
        if influx_url is not None:
            raise ConfigError(one_target)
        if influx_ca is not None:
            raise ConfigError("--influx-ca (or INFLUX_CA): only for an https:// --influx-url, not with --db")
        return DuckDBStore(db)
    if influx_url is None:
        raise ConfigError(one_target)
    client = InfluxClient.from_env(influx_url, influx_db, timeout_s=120, ca=influx_ca)
    client.create_database()
    return InfluxStore(client)


def _configs(stores_config: Path | None, campaigns: Path | None) -> tuple[StoresConfig, CampaignsConfig]:
    stores = load_stores(stores_config) if stores_config else StoresConfig()
    camps = load_campaigns(campaigns) if campaigns else CampaignsConfig()
    return stores, camps


analytics_app = typer.Typer(help="Compute the KPIs from raw events, POS and campaigns.", no_args_is_help=True)
pos_app = typer.Typer(help="Point-of-sale data.", no_args_is_help=True)
report_app = typer.Typer(help="Reports over the KPIs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this component's commands to the ``footfall`` CLI."""
    app.add_typer(analytics_app, name="analytics")
    app.add_typer(pos_app, name="pos")
    app.add_typer(report_app, name="report")


@analytics_app.command("run")
def run(
    influx_url: InfluxUrl = None,
    influx_db: InfluxDb = "footfall",
    influx_ca: InfluxCa = None,
    db: DuckDbPath = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="first local day (YYYY-MM-DD) or ISO time")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="last local day (inclusive) or ISO time (exclusive)")
    ] = None,
    store: Annotated[str | None, typer.Option("--store", help="only this store")] = None,
    stores_config: StoresOpt = None,
    campaigns: CampaignsOpt = None,
    every: Annotated[
        str | None, typer.Option("--every", help="scheduled mode: recompute every 15m, 1h, ...")
    ] = None,
    recent: Annotated[
        str, typer.Option("--recent", help="scheduled mode: the window recomputed each time")
    ] = "3h",
    forecast_days: Annotated[
        int,
        typer.Option("--forecast-days", min=0, help="scheduled mode: refresh the forecast daily (0: never)"),
    ] = 7,
) -> None:
    """Compute KPIs for a window (or, with --every, the recent window again and again) and write them.

    The scheduled mode also refreshes the staffing forecast (kpi_forecast_hourly) once a day."""
    from footfall.analytics.job import run_job

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stores, camps = _configs(stores_config, campaigns)
    source = open_store(influx_url, influx_db, db, influx_ca)
    if every is None:
        if date_from is None or date_to is None:
            raise ConfigError("--from and --to are required (or use --every for the scheduled mode)")
        result = run_job(
            source, parse_when(date_from, "--from"), parse_when(date_to, "--to"), stores, camps, store
        )
        _print_result(result)
        return
    _run_scheduled(source, parse_duration(every), parse_duration(recent), forecast_days, stores, camps, store)


def _run_scheduled(
    source: EventStore,
    period: timedelta,
    window: timedelta,
    forecast_days: int,
    stores: StoresConfig,
    camps: CampaignsConfig,
    store: str | None,
) -> None:
    """Recompute the recent window every period until SIGTERM; refresh the forecast once a day."""
    from footfall.analytics.job import run_forecast, run_job

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    forecast_day: date | None = None  # the day the forecast was last refreshed
    while not stop.is_set():
        now = datetime.now(UTC)
        try:
            _print_result(run_job(source, now - window, now, stores, camps, store))
            if forecast_days and forecast_day != now.date():
                points = run_forecast(source, now.date(), forecast_days, stores, camps, store)
                typer.echo(f"forecast: wrote {len(points)} hourly points from {now.date()}")
                forecast_day = now.date()
        except Exception as exc:  # keep the schedule alive through a database outage
            logging.getLogger("footfall.analytics").error("run failed, retrying next period: %s", exc)
        stop.wait(period.total_seconds())


@analytics_app.command("forecast")
def forecast(
    influx_url: InfluxUrl = None,
    influx_db: InfluxDb = "footfall",
    influx_ca: InfluxCa = None,
    db: DuckDbPath = None,
    days: Annotated[int, typer.Option("--days", min=1, max=62, help="how many days to forecast")] = 7,
    date_from: Annotated[
        str | None, typer.Option("--from", help="first local day (YYYY-MM-DD); default: today (UTC)")
    ] = None,
    store: Annotated[str | None, typer.Option("--store", help="only this store")] = None,
    stores_config: StoresOpt = None,
    campaigns: CampaignsOpt = None,
) -> None:
    """Forecast the visitors of every open hour of the coming days (kpi_forecast_hourly), from the
    weeks of kpi_hourly before them; campaign hours and broken days do not count."""
    from footfall.analytics.job import run_forecast

    stores, camps = _configs(stores_config, campaigns)
    first = datetime.now(UTC).date() if date_from is None else parse_when(date_from, "--from")
    if isinstance(first, datetime):
        raise ConfigError(f"--from: give a day (YYYY-MM-DD), got {date_from!r}")
    source = open_store(influx_url, influx_db, db, influx_ca)
    points = run_forecast(source, first, days, stores, camps, store)
    by_store: dict[str, float] = {}
    for p in points:
        by_store[p.tags["store"]] = by_store.get(p.tags["store"], 0.0) + p.number("visitors_expected")
    typer.echo(f"forecast {first} + {days} days: wrote {len(points)} hourly points")
    if not points:
        typer.echo("no kpi_hourly history in the weeks before: run `footfall analytics run` over them first")
    for name, total in sorted(by_store.items()):
        typer.echo(f"  {name}: {total:.0f} visitors expected")


@pos_app.command("import")
def pos_import(
    file: Annotated[Path, typer.Argument(help="CSV or JSON file", exists=True, dir_okay=False)],
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--mapping", help="KEY=VALUE (repeatable) or a mapping YAML file; see docs/analytics.md"
        ),
    ] = None,
    influx_url: InfluxUrl = None,
    influx_db: InfluxDb = "footfall",
    influx_ca: InfluxCa = None,
    db: DuckDbPath = None,
) -> None:
    """Import POS transactions (store, ts, transaction_id, amount[, items]); re-import changes nothing."""
    from footfall.analytics.pos import PosError, parse_mapping, pos_points, read_pos_file

    try:
        transactions = read_pos_file(file, fmt, parse_mapping(mapping))
    except PosError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from None
    source = open_store(influx_url, influx_db, db, influx_ca)
    n = source.write_points(pos_points(transactions))
    stores = sorted({t.store for t in transactions})
    typer.echo(f"imported {n} transactions for {len(stores)} store(s): {', '.join(stores[:10])}")


@report_app.command("campaign")
def report_campaign_cmd(
    name: Annotated[str, typer.Argument(help="campaign name")],
    campaigns: Annotated[Path, typer.Option("--campaigns", help="campaigns YAML or CSV")],
    influx_url: InfluxUrl = None,
    influx_db: InfluxDb = "footfall",
    influx_ca: InfluxCa = None,
    db: DuckDbPath = None,
    stores_config: StoresOpt = None,
    write: Annotated[bool, typer.Option("--write/--no-write", help="also write kpi_campaign points")] = True,
) -> None:
    """Print the uplift table of a campaign (visitors vs the same weekday-hours of prior weeks)."""
    from footfall.analytics.campaign import format_uplift_table
    from footfall.analytics.job import report_campaign

    stores, camps = _configs(stores_config, campaigns)
    source = open_store(influx_url, influx_db, db, influx_ca)
    campaign, rows = report_campaign(source, name, camps, stores, write=write)
    typer.echo(format_uplift_table(campaign, rows))


def _print_result(result: JobResult) -> None:
    k = result.kpis
    secs = ", ".join(f"{key} {value:.2f}s" for key, value in result.seconds.items())
    typer.echo(
        f"read {result.events_read} events; wrote {result.points_written} KPI points "
        f"({len(k.hourly)} hourly, {len(k.daily)} daily, {len(k.zone_hourly) + len(k.zone_daily)} zone, "
        f"{len(k.campaign)} campaign); {secs}"
    )
