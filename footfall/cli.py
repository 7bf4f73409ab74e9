"""The one ``footfall`` command. Each component registers its own subcommands.

Components import heavy dependencies (ultralytics, torch, cv2) inside their commands, so that
``footfall ingest`` on a central server starts without the edge's model stack.
"""

from __future__ import annotations

import sys

import typer

from footfall.contracts.config import ConfigError

app = typer.Typer(
    name="footfall",
    help="In-store foot-traffic analytics: edge counting, MQTT transport, ingest, KPIs, dashboards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """In-store foot-traffic analytics: edge counting, MQTT transport, ingest, KPIs, dashboards."""


@app.command()
def version() -> None:
    """Print the footfall version."""
    from footfall import __version__

    typer.echo(__version__)


def _register_components() -> None:
    from footfall.analytics import cli as analytics_cli
    from footfall.dashboards import cli as dashboards_cli
    from footfall.edge import cli as edge_cli
    from footfall.ingest import cli as ingest_cli

    for component in (edge_cli, ingest_cli, analytics_cli, dashboards_cli):
        component.register(app)
    from footfall.edge import transport_cli

    transport_cli.register(app)


_register_components()


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        typer.secho(f"configuration error:\n{exc}", fg="red", err=True)
        sys.exit(2)
