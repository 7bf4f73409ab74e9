"""docker-compose.yml is valid against the Compose Specification and consistent with the repo.

No Docker engine (nor the ``docker compose`` plugin) exists on these machines, so the file is
validated against the compose-spec JSON schema (vendored by check-jsonschema, offline), after the
same ``${VAR:-default}`` interpolation Compose performs with the values of ``.env.example``. The
broker's entrypoint, ACL and configuration run for real against Mosquitto.
"""

from __future__ import annotations

import getpass
import importlib.resources
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
import pytest
import typer
import yaml

from footfall.cli import app
from footfall.contracts.config import MqttSettings
from footfall.contracts.tls import TlsFiles
from tests.conftest import require
from tests.servers import free_port, have_binary, wait_for_port

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class MissingVariableError(KeyError):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation: ``${X}``, ``${X:-default}``, ``${X:?error}``, ``$$``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        op, arg = match.group(2), match.group(3)
        current = env.get(name)
        if op in (":-", "-"):
            return current if current not in (None, "") or (op == "-" and current is not None) else arg
        if op in (":?", "?") and not current:
            raise MissingVariableError(f"{name}: {arg}")
        return current or ""

    return _VAR.sub(substitute, value)


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    return interpolate(raw, read_env_file(ENV_EXAMPLE))


def test_compose_file_matches_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.Draft202012Validator(schema).validate(compose)
    # The schema really checks something: a misspelt key is refused.
    broken = json.loads(json.dumps(compose))
    broken["services"]["ingest"]["healthcheck"]["intervall"] = "5s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)


def test_every_variable_is_documented_in_env_example(raw: dict[str, Any]) -> None:
    used = {m.group(1) or m.group(4) for m in _VAR.finditer(COMPOSE.read_text()) if m.group(0) != "$$"}
    documented = set(read_env_file(ENV_EXAMPLE))
    assert used - documented == set()
    assert documented - used == set()


def test_passwords_are_required(raw: dict[str, Any]) -> None:
    env = read_env_file(ENV_EXAMPLE)
    del env["INFLUX_WRITE_PASSWORD"]
    with pytest.raises(MissingVariableError, match="INFLUX_WRITE_PASSWORD"):
        interpolate(raw, env)


def test_services_are_wired(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"mosquitto", "influxdb", "grafana", "ingest", "analytics", "edge"}
    declared_volumes = set(compose["volumes"])
    for name, service in services.items():
        assert "healthcheck" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), (name, source)
            elif not source.startswith("/"):
                assert source in declared_volumes, (name, source)
        build = service.get("build")
        if build:
            assert (REPO / build["dockerfile"]).is_file()
    assert services["analytics"]["command"][-2:] == ["--every", "15m"]


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.edge"])
def test_dockerfile_copies_exist(dockerfile: str) -> None:
    text = (REPO / dockerfile).read_text()
    sources = [
        part
        for line in text.splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for part in line.split()[1:-1]
    ]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source


def _cli_command(path: list[str]) -> Any:
    # Typer's groups are not always click.Group instances (newer Typer vendors click): duck-type.
    command: Any = typer.main.get_command(app)
    for name in path:
        if name not in getattr(command, "commands", {}):
            return None
        command = command.commands[name]
    return command


@pytest.mark.parametrize("service", ["ingest", "analytics", "edge"])
def test_service_commands_are_real_cli_commands(compose: dict[str, Any], service: str) -> None:
    """The compose services run the same CLI the tests run: every option must exist there."""
    argv = compose["services"][service]["command"]
    assert argv[0] == "footfall"
    words = [a for a in argv[1:3] if not a.startswith("-")]
    command = _cli_command(words)
    if command is None:
        command = _cli_command(words[:1])
        words = words[:1]
    assert command is not None
    options = {opt for param in command.params for opt in param.opts}
    given = [a for a in argv[1 + len(words) :] if a.startswith("--")]
    assert given
    assert set(given) <= options, set(given) - options


# ---- the broker's real configuration ------------------------------------------------------------


def _connect(port: int, user: str | None, password: str | None) -> tuple[mqtt.Client, int]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{time.monotonic_ns()}")
    if user:
        client.username_pw_set(user, password)
    result: dict[str, int] = {}
    done = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        result["rc"] = reason.value
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert done.wait(10)
    return client, result["rc"]


@dataclass
class DeployedBroker:
    """deploy/mosquitto (entrypoint, config, ACL) running for real, with certificates from
    scripts/make-certs.sh; only the paths and ports are changed to fit a test."""

    port: int
    tls_port: int
    certs: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`scripts/make-certs.sh compose STORE 127.0.0.1`, as an operator would run it."""
    require(have_binary("openssl"), "the openssl binary (Debian package openssl)")
    out = tmp_path_factory.mktemp("certs")
    store = read_env_file(ENV_EXAMPLE)["FOOTFALL_STORE"]
    subprocess.run(
        ["bash", str(REPO / "scripts/make-certs.sh"), "compose", store, "127.0.0.1"],
        env={**os.environ, "CERTS_DIR": str(out)},
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def deployed_broker(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[DeployedBroker]:
    require(have_binary("mosquitto") and have_binary("mosquitto_passwd"), "the mosquitto binary")
    tmp_path = tmp_path_factory.mktemp("deployed-broker")
    port, tls_port = free_port(), free_port()
    conf = (REPO / "deploy/mosquitto/mosquitto.conf").read_text()
    conf = conf.replace("/mosquitto/data/", f"{tmp_path}/").replace(
        "/mosquitto/config/acl", str(REPO / "deploy/mosquitto/acl")
    )
    conf = conf.replace("listener 1883", f"listener {port} 127.0.0.1")
    conf = conf.replace("listener 8883", f"listener {tls_port} 127.0.0.1").replace(
        "/run/secrets/", f"{certs}/"
    )
    # As root, mosquitto would switch to the "mosquitto" user, which cannot read the temp dir.
    conf += f"user {getpass.getuser()}\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    env = read_env_file(ENV_EXAMPLE) | {
        "PATH": os.environ["PATH"] + ":/usr/sbin",
        "MOSQUITTO_PASSWD_FILE": str(tmp_path / "passwd"),
        "MOSQUITTO_CONF": str(tmp_path / "mosquitto.conf"),
    }
    log = (tmp_path / "log").open("wb")
    proc = subprocess.Popen(
        ["sh", str(REPO / "deploy/mosquitto/entrypoint.sh")], env=env, stdout=log, stderr=log
    )
    try:
        wait_for_port(port)
        wait_for_port(tls_port)
        yield DeployedBroker(port, tls_port, certs, {**env, "passwd": (tmp_path / "passwd").read_text()})
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _subscribe_to_every_store(client: mqtt.Client) -> list[str]:
    """Subscribe ``client`` to footfall/v1/#; the returned list fills with the topics that arrive."""
    received: list[str] = []
    subscribed = threading.Event()
    client.on_message = lambda _c, _u, msg: received.append(msg.topic)
    client.on_subscribe = lambda *_args: subscribed.set()
    client.subscribe("footfall/v1/#", qos=1)
    assert subscribed.wait(5)
    return received


def test_broker_entrypoint_acl_and_config(deployed_broker: DeployedBroker) -> None:
    port, env = deployed_broker.port, deployed_broker.env
    clients: list[mqtt.Client] = []
    try:
        assert "change-me" not in env["passwd"]  # hashed, never stored in clear
        _, anonymous_rc = _connect(port, None, None)
        assert anonymous_rc != 0
        _, wrong_rc = _connect(port, "ingest", "wrong")
        assert wrong_rc != 0

        ingest, rc = _connect(port, "ingest", env["MQTT_INGEST_PASSWORD"])
        edge, rc_edge = _connect(port, env["FOOTFALL_STORE"], env["MQTT_EDGE_PASSWORD"])
        clients += [ingest, edge]
        assert rc == rc_edge == 0
        received = _subscribe_to_every_store(ingest)
        own = f"footfall/v1/{env['FOOTFALL_STORE']}/cam-1/crossing"
        edge.publish(own, b"{}", qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while own not in received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received == [own]
        # Another store's topic is refused by the ACL: nothing reaches the subscriber.
        edge.publish("footfall/v1/other-store/cam-1/crossing", b"{}", qos=0)
        time.sleep(1.0)
        assert received == [own]
    finally:
        for client in clients:
            client.loop_stop()
            client.disconnect()


def _tls_client(broker: DeployedBroker, name: str | None) -> tuple[mqtt.Client, threading.Event]:
    """An MQTT v5 client on the TLS listener with certificate ``name`` from make-certs.sh (or none),
    connected: the returned event is set once the broker accepted it."""
    files = TlsFiles(ca=broker.certs / "ca.crt")
    if name is not None:
        files = TlsFiles(ca=files.ca, cert=broker.certs / f"{name}.crt", key=broker.certs / f"{name}.key")
    settings = MqttSettings.from_url(f"mqtts://127.0.0.1:{broker.tls_port}", files)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{name}", protocol=mqtt.MQTTv5)
    settings.configure(client)
    accepted = threading.Event()
    client.on_connect = lambda _c, _u, _f, reason, _p: accepted.set() if not reason.is_failure else None
    client.connect(settings.host, settings.port)
    client.loop_start()
    return client, accepted


def test_broker_tls_listener_binds_device_certificates_to_their_store(
    deployed_broker: DeployedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """Stores reach the broker with their certificate; its CN (the store id) is the user the ACL's
    pattern binds. No certificate, no connection."""
    store = deployed_broker.env["FOOTFALL_STORE"]
    ingest, ingest_ok = _tls_client(deployed_broker, "ingest")
    edge, edge_ok = _tls_client(deployed_broker, "edge")
    anonymous, anonymous_ok = _tls_client(deployed_broker, None)
    try:
        assert ingest_ok.wait(10)
        assert edge_ok.wait(10)
        acks: dict[int, int] = {}
        edge.on_publish = lambda _c, _u, mid, reason, _p: acks.__setitem__(mid, reason.value)
        received = _subscribe_to_every_store(ingest)
        own = edge.publish(f"footfall/v1/{store}/cam-1/crossing", b"{}", qos=1)
        other = edge.publish("footfall/v1/other-store/cam-1/crossing", b"{}", qos=1)
        own.wait_for_publish(5)
        other.wait_for_publish(5)
        # MQTT v5: the broker answers the refused publish with "not authorized" (0x87).
        assert (acks[own.mid], acks[other.mid]) == (0, 0x87)
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received == [f"footfall/v1/{store}/cam-1/crossing"]
        deadline = time.monotonic() + 10
        while "requires a client certificate" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "requires a client certificate" in caplog.text
        assert not anonymous_ok.is_set()
    finally:
        for client in (ingest, edge, anonymous):
            client.loop_stop()
            client.disconnect()


def test_compose_secrets_are_what_make_certs_writes(raw: dict[str, Any], certs: Path) -> None:
    """Every certificate compose hands a service is a file `make-certs.sh compose` writes to
    deploy/tls/ (ignored by git), and every /run/secrets path a service uses is one it is given."""
    secrets = raw["secrets"]
    assert {name: spec["file"] for name, spec in secrets.items()} == {
        name: f"./deploy/tls/{name}" for name in secrets
    }
    assert set(secrets) <= {p.name for p in certs.iterdir()}
    assert "deploy/tls/" in (REPO / ".gitignore").read_text().splitlines()
    used = {
        name: {
            a.removeprefix("/run/secrets/")
            for a in service.get("command", [])
            if a.startswith("/run/secrets/")
        }
        for name, service in raw["services"].items()
    }
    used["mosquitto"] |= set(
        re.findall(r"/run/secrets/(\S+)", (REPO / "deploy/mosquitto/mosquitto.conf").read_text())
    )
    for name, files in used.items():
        assert files <= set(raw["services"][name].get("secrets", [])), name
    assert used["mosquitto"] == {"ca.crt", "mosquitto.crt", "mosquitto.key"}
    assert used["edge"] == {"ca.crt", "edge.crt", "edge.key"}
