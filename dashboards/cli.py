"""Subcommands of the dashboards component: ``footfall dashboards build|push|queries``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from footfall.contracts.config import ConfigError
from footfall.contracts.options import GrafanaCa, InfluxCa

dashboards_app = typer.Typer(help="Grafana dashboards as code.", no_args_is_help=True)


@dashboards_app.command("build")
def build_command(
    out: Annotated[
        Path | None, typer.Option(help="Folder for the dashboard JSON (default: the package's)")
    ] = None,
) -> None:
    """Regenerate the dashboard JSON and the Grafana provisioning YAML from the definitions."""
    from footfall.dashboards.build import JSON_DIR, write_all
    from footfall.dashboards.provision import write_provisioning

    for path in [*write_all(out or JSON_DIR), *write_provisioning()]:
        typer.echo(f"wrote {path}")


@dashboards_app.command("push")
def push_command(
    grafana_url: Annotated[str, typer.Option(help="Grafana base URL, e.g. http://grafana:3000")],
    influx_url: Annotated[
        str, typer.Option(help="InfluxDB URL as Grafana reaches it")
    ] = "http://influxdb:8086",
    database: Annotated[str, typer.Option(help="InfluxDB database")] = "footfall",
    grafana_ca: GrafanaCa = None,
    influx_ca: InfluxCa = None,
) -> None:
    """Upload the datasource and the dashboards through Grafana's HTTP API.

    The API token comes from GRAFANA_TOKEN (or GRAFANA_TOKEN_FILE); the datasource's read-only
    InfluxDB credentials from INFLUX_USER / INFLUX_PASSWORD (or *_FILE). With --influx-ca, the
    datasource carries that CA and Grafana verifies the https:// InfluxDB with it.
    """
    from urllib.parse import urlsplit

    from grafana_client.client import GrafanaClientError

    from footfall.contracts.influx import secret_from_env
    from footfall.contracts.tls import TlsFiles
    from footfall.dashboards.provision import InfluxSource, push

    token = secret_from_env("GRAFANA_TOKEN")
    if not token:
        raise ConfigError("GRAFANA_TOKEN: not set (a Grafana service-account token with Editor rights)")
    source = InfluxSource(
        influx_url,
        database,
        secret_from_env("INFLUX_USER"),
        secret_from_env("INFLUX_PASSWORD"),
        TlsFiles(ca=influx_ca, option="--influx").ca_pem(influx_url),
    )
    tls = TlsFiles(ca=grafana_ca, option="--grafana")
    try:
        urls = push(grafana_url, token, source, tls=tls)
    except OSError as exc:  # niquests' connection errors; a certificate problem is said in words
        problem = tls.describe(exc, urlsplit(grafana_url).hostname or grafana_url, "Grafana server")
        why = f"TLS: {problem}" if problem else str(exc)
        typer.secho(f"cannot reach {grafana_url}: {why}", fg="red", err=True)
        raise typer.Exit(1) from None
    except GrafanaClientError as exc:
        typer.secho(f"{grafana_url} refused the push: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    for url in urls:
        typer.echo(f"pushed {grafana_url.rstrip('/')}{url}")


@dashboards_app.command("queries")
def queries_command() -> None:
    """Print every panel's InfluxQL (with Grafana's $store, $timeFilter, $__interval macros)."""
    from footfall.dashboards.definitions import panel_queries

    for q in panel_queries():
        typer.echo(f"{q.dashboard_uid}\t{q.panel_title}\t{q.ref}\t{q.influxql}")


def register(app: typer.Typer) -> None:
    """Add this component's commands to the ``footfall`` CLI."""
    app.add_typer(dashboards_app, name="dashboards")
