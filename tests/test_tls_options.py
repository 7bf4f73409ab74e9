"""The TLS options: on every command that speaks MQTT, InfluxDB or Grafana, with the same names and
environment variables; bad values fail before anything connects, naming the option (exit 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from footfall.cli import app, main
from footfall.contracts.tls import TlsFiles
from tests.tls_support import Pki

EXPECTED = {
    "--mqtt-url": {"--mqtt-ca": "MQTT_CA", "--mqtt-cert": "MQTT_CERT", "--mqtt-key": "MQTT_KEY"},
    "--influx-url": {"--influx-ca": "INFLUX_CA"},
    "--grafana-url": {"--grafana-ca": "GRAFANA_CA"},
}


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    # Typer's groups are not always click.Group instances (newer Typer vendors click): duck-type.
    for name, command in getattr(group, "commands", {}).items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_command_that_connects_takes_the_tls_options() -> None:
    """Generic over the whole CLI: a future command with --influx-url (e.g. analytics forecast)
    fails here until it uses contracts.options.InfluxCa."""
    seen: dict[str, set[str]] = {url: set() for url in EXPECTED}
    for path, command in _commands(typer.main.get_command(app)):
        envvars = {opt: param.envvar for param in command.params for opt in param.opts}
        for url_option, tls_options in EXPECTED.items():
            if url_option in envvars:
                seen[url_option].add(" ".join(path))
                assert {o: envvars.get(o) for o in tls_options} == tls_options, path
    assert seen["--mqtt-url"] == {"edge run", "edge replay", "bridge wifi", "bridge beam", "ingest"}
    assert {"ingest", "analytics run", "pos import", "report campaign"} <= seen["--influx-url"]
    assert seen["--grafana-url"] == {"dashboards push"}


def _exit_code(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr("sys.argv", ["footfall", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return Pki.create(tmp_path_factory.mktemp("pki")).client("edge-store-a")


def _cases(files: TlsFiles, tmp: Path) -> list[tuple[list[str], str]]:
    events = tmp / "events.jsonl"
    events.write_text("")
    replay = ["edge", "replay", str(events), "--queue", str(tmp / "q.sqlite")]
    other_key = Pki.create(tmp / "other").client("x").key
    tls_url = ["--mqtt-url", "mqtts://127.0.0.1:1"]
    return [
        (
            [*replay, "--mqtt-url", "mqtt://127.0.0.1:1", "--mqtt-ca", str(files.ca)],
            "is not mqtts://; --mqtt-ca need mqtts://",
        ),
        ([*replay, *tls_url, "--mqtt-cert", str(files.cert)], "--mqtt-cert: needs"),
        ([*replay, *tls_url, "--mqtt-key", str(files.key)], "--mqtt-key: needs"),
        (
            [*replay, *tls_url, "--mqtt-ca", str(tmp / "missing.crt")],
            f"--mqtt-ca: {tmp / 'missing.crt'}: not a readable PEM CA file",
        ),
        (
            [*replay, *tls_url, "--mqtt-cert", str(files.cert), "--mqtt-key", str(other_key)],
            "--mqtt-cert / --mqtt-key:",
        ),
        (
            ["analytics", "run", "--influx-url", "http://127.0.0.1:1", "--influx-ca", str(files.ca)],
            "is not https://; --influx-ca need https://",
        ),
        (["analytics", "run", "--db", str(tmp / "x.duckdb"), "--influx-ca", str(files.ca)], "not with --db"),
        (
            ["dashboards", "push", "--grafana-url", "http://127.0.0.1:1", "--grafana-ca", str(files.ca)],
            "is not https://; --grafana-ca need https://",
        ),
        (
            ["dashboards", "push", "--grafana-url", "https://127.0.0.1:1/?verify=false"],
            "--grafana-url: expected",
        ),
    ]


def test_bad_tls_options_fail_before_connecting_and_name_the_option(
    files: TlsFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", "t")
    for argv, message in _cases(files, tmp_path):
        assert _exit_code(monkeypatch, *argv) == 2, argv
        err = capsys.readouterr().err
        assert "configuration error" in err, (argv, err)
        assert message in err, (argv, err)


def test_good_files_pass(files: TlsFiles) -> None:
    context = files.context("127.0.0.1", "broker")
    assert context.check_hostname
    assert context.verify_mode.name == "CERT_REQUIRED"
