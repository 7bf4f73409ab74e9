"""The one ``footfall`` command. Each component registers its own subcommands.

Components import heavy dependencies (ultralytics, torch, cv2) inside their commands, so that
``footfall ingest`` on a central server starts without the edge's model stack.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from footfall.contracts.config import ConfigError
from footfall.contracts.influx import InfluxError

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


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="folder for report.html, frame.png and the DuckDB store")] = Path(
        "footfall-demo"
    ),
    model: Annotated[
        str | None,
        typer.Option(help="model (default: FOOTFALL_MODEL, then the default model: `footfall model fetch`)"),
    ] = None,
    source: Annotated[Path | None, typer.Option(help="video file (default: the bundled sample clip)")] = None,
    config: Annotated[
        Path | None, typer.Option(help="camera YAML for --source (default: the sample's)")
    ] = None,
    weeks: Annotated[int, typer.Option(min=2, max=12, help="weeks of store history to build")] = 5,
    day: Annotated[
        str | None, typer.Option(help="last day of the history, YYYY-MM-DD (default: yesterday)")
    ] = None,
    timezone: Annotated[str, typer.Option(help="the store's IANA time zone")] = "Europe/Berlin",
    seed: Annotated[int, typer.Option(help="seed of the generated traffic, POS and campaign")] = 7,
) -> None:
    """Run the whole pipeline offline on the sample clip and write an HTML report (no servers)."""
    from footfall.demo import SAMPLE_CLIP, SAMPLE_CONFIG, print_summary, run_demo

    last_day = _parse_day(day) if day else None
    try:
        made = run_demo(
            out,
            model=model,
            source=source or SAMPLE_CLIP,
            config_path=config or SAMPLE_CONFIG,
            weeks=weeks,
            last_day=last_day,
            timezone=timezone,
            seed=seed,
        )
    except ImportError as exc:
        if not (exc.name or "").startswith("footfall."):
            raise
        typer.secho(f"the demo needs the edge and analytics components: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    print_summary(made)


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--day: expected YYYY-MM-DD, got {text!r}") from None


def _register_components() -> None:
    from footfall.analytics import cli as analytics_cli
    from footfall.dashboards import cli as dashboards_cli
    from footfall.edge import cli as edge_cli
    from footfall.ingest import cli as ingest_cli

    for component in (edge_cli, ingest_cli, analytics_cli, dashboards_cli):
        component.register(app)
    from footfall.edge import model_cli, transport_cli

    transport_cli.register(app)
    model_cli.register(app)


_register_components()


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        typer.secho(f"configuration error:\n{exc}", fg="red", err=True)
        sys.exit(2)
    except InfluxError as exc:  # a one-shot command (analytics, POS import, report) cannot go on
        typer.secho(f"InfluxDB: {exc}", fg="red", err=True)
        sys.exit(1)
