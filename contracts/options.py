"""Command-line options that several components' commands share, defined once.

Every command that speaks MQTT takes ``--mqtt-ca/--mqtt-cert/--mqtt-key``; every command that speaks
to InfluxDB takes ``--influx-ca``; ``dashboards push`` takes ``--grafana-ca``. A new command gets the
same names, environment variables and help by using these types; ``footfall.contracts.tls`` applies
them (there is deliberately no option that turns verification off).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from footfall.contracts.config import MqttSettings
from footfall.contracts.tls import TlsFiles


def _file(name: str, envvar: str, help: str) -> Any:
    return typer.Option(name, envvar=envvar, help=help, show_default=False)


def _ca(name: str, envvar: str, server: str, scheme: str) -> Any:
    return _file(
        name,
        envvar,
        f"PEM file of the CA that signed {server}'s certificate ({scheme}://; default: the system's CAs)",
    )


MqttCa = Annotated[Path | None, _ca("--mqtt-ca", "MQTT_CA", "the broker", "mqtts")]
MqttCert = Annotated[
    Path | None,
    _file(
        "--mqtt-cert",
        "MQTT_CERT",
        "this client's certificate (PEM, mqtts://); the broker takes its CN as the user",
    ),
]
MqttKey = Annotated[Path | None, _file("--mqtt-key", "MQTT_KEY", "private key of --mqtt-cert (PEM)")]
InfluxCa = Annotated[Path | None, _ca("--influx-ca", "INFLUX_CA", "InfluxDB", "https")]
GrafanaCa = Annotated[Path | None, _ca("--grafana-ca", "GRAFANA_CA", "Grafana", "https")]


def mqtt_settings(url: str, ca: Path | None, cert: Path | None, key: Path | None) -> MqttSettings:
    """``--mqtt-url`` and the three TLS options -> settings; bad files fail here (``ConfigError``)."""
    return MqttSettings.from_url(url, TlsFiles(ca=ca, cert=cert, key=key, option="--mqtt"))
