"""Subcommands of the ingest component: ``footfall ingest``."""

from __future__ import annotations

import gc
import logging
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from footfall.contracts.options import InfluxCa, MqttCa, MqttCert, MqttKey, mqtt_settings

if TYPE_CHECKING:
    from footfall.contracts.influx import InfluxClient


def register(app: typer.Typer) -> None:
    """Add this component's commands to the ``footfall`` CLI."""
    app.command("ingest")(ingest)


def ingest(
    mqtt_url: Annotated[
        str, typer.Option(help="mqtt://[user:pass@]host:port (or MQTT_USER / MQTT_PASSWORD[_FILE])")
    ],
    influx_url: Annotated[str, typer.Option(help="InfluxDB base URL, e.g. http://influx:8086")],
    influx_db: Annotated[str, typer.Option(help="database (InfluxDB 2/3: the bucket mapped to it)")],
    mqtt_ca: MqttCa = None,
    mqtt_cert: MqttCert = None,
    mqtt_key: MqttKey = None,
    influx_ca: InfluxCa = None,
    influx_user: Annotated[str | None, typer.Option(help="or INFLUX_USER[_FILE]")] = None,
    influx_password: Annotated[str | None, typer.Option(help="or INFLUX_PASSWORD[_FILE]")] = None,
    influx_token: Annotated[str | None, typer.Option(help="or INFLUX_TOKEN[_FILE] (InfluxDB 2/3)")] = None,
    group: Annotated[
        str, typer.Option(help="shared-subscription group; workers of one group split the load")
    ] = ("footfall-ingest"),
    share: Annotated[
        bool, typer.Option(help="shared subscription ($share/GROUP/...); --no-share: one exclusive worker")
    ] = True,
    client_id: Annotated[
        str | None,
        typer.Option(help="stable MQTT client id of this worker (default footfall-ingest-HOSTNAME)"),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="points per InfluxDB write")] = 5000,
    max_latency: Annotated[
        float, typer.Option(min=0.0, help="seconds a message may wait for its batch")
    ] = 0.5,
    create_db: Annotated[bool, typer.Option(help="CREATE DATABASE at start (needs admin rights)")] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Store events from MQTT in InfluxDB: validated, batched, acknowledged only once written."""
    from footfall.contracts.influx import InfluxClient
    from footfall.ingest.service import IngestService, IngestSettings, default_client_id

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    mqtt = mqtt_settings(mqtt_url, mqtt_ca, mqtt_cert, mqtt_key)
    influx = InfluxClient.from_env(
        influx_url,
        influx_db,
        username=influx_user,
        password=influx_password,
        token=influx_token,
        ca=influx_ca,
    )
    if create_db:
        _create_database(influx, influx_db)
    settings = IngestSettings(
        mqtt=mqtt,
        group=group,
        shared=share,
        client_id=client_id or default_client_id(),
        batch_size=batch_size,
        max_latency_s=max_latency,
    )
    service = IngestService(settings, influx)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop())
    _tune_gc()
    service.run()


def _create_database(influx: InfluxClient, name: str) -> None:
    """CREATE DATABASE, warning (not failing) without admin rights: the database may exist."""
    from footfall.contracts.influx import InfluxError

    try:
        influx.create_database()
    except InfluxError as exc:
        logging.getLogger("footfall.ingest").warning("could not create database %s: %s", name, exc)


def _tune_gc() -> None:
    # Everything imported so far lives as long as the process: keep it out of the collector's scans,
    # and collect less often, since each batch allocates thousands of short-lived objects at once.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
