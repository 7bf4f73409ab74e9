"""Fixtures for real servers, real weights and real footage.

In CI (``CI=true``) a test whose server, model or footage is missing FAILS: a green run must mean
the real parts were exercised. On a developer machine it is skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from footfall.contracts.influx import InfluxClient
from tests.servers import InfluxServer, MosquittoServer, ServerTls, have_binary
from tests.tls_support import Pki

if TYPE_CHECKING:
    from tests.pipeline_support import PipelineFill

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("FOOTFALL_SHARED_DIR", REPO_ROOT.parent / "shared"))

# Users of the default broker. Each store's edge devices may publish only under their own store.
DEFAULT_MQTT_USERS: dict[str, tuple[str, list[str]]] = {
    "ingest": ("ingest-secret", ["topic read footfall/v1/#", "topic write footfall/v1/deadletter"]),
    "edge-store-a": ("edge-a-secret", ["topic readwrite footfall/v1/store-a/#"]),
    "edge-store-b": ("edge-b-secret", ["topic readwrite footfall/v1/store-b/#"]),
    "bridge": ("bridge-secret", ["topic read sensors/#", "topic write footfall/v1/#"]),
    "sensor": ("sensor-secret", ["topic write sensors/#"]),
    "admin": ("admin-secret", ["topic readwrite #"]),
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(condition: bool, what: str, fix: str = "scripts/test.sh installs it") -> None:
    """Fail in CI, skip elsewhere, when a real part the test needs is missing."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI=true and {what} is missing; {fix}")
    pytest.skip(f"{what} is missing; {fix}")


@pytest.fixture(scope="session")
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., MosquittoServer]]:
    """Start extra brokers (e.g. for fault tests that stop and restart them)."""
    started: list[MosquittoServer] = []

    def make(
        users: dict[str, tuple[str, list[str]]] | None = None, *, tls: ServerTls | None = None
    ) -> MosquittoServer:
        require(have_binary("mosquitto") and have_binary("mosquitto_passwd"), "the mosquitto binary")
        server = MosquittoServer(
            tmp_path_factory.mktemp("mosquitto"), users=users or DEFAULT_MQTT_USERS, tls=tls
        )
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()


@pytest.fixture(scope="session")
def influx_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., InfluxServer]]:
    started: list[InfluxServer] = []

    def make(*, tls: ServerTls | None = None) -> InfluxServer:
        require(have_binary("influxd"), "the influxd binary (Debian package influxdb)")
        server = InfluxServer(tmp_path_factory.mktemp("influxdb"), tls=tls)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A private CA made for this session (client and server certificates: ``pki.issue``)."""
    return Pki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def tls_mosquitto(mosquitto_factory: Callable[..., MosquittoServer], pki: Pki) -> MosquittoServer:
    """A broker whose TLS listener requires a client certificate of ``pki`` (CN = user, same ACL as
    DEFAULT_MQTT_USERS); its own certificate is valid for 127.0.0.1 only."""
    server = pki.issue("broker", "127.0.0.1")
    return mosquitto_factory(tls=ServerTls(pki.ca_file, server.cert, server.key))


@pytest.fixture(scope="session")
def tls_influxdb(influx_factory: Callable[..., InfluxServer], pki: Pki) -> InfluxServer:
    """InfluxDB serving HTTPS only, with a certificate of ``pki`` valid for 127.0.0.1 only."""
    server = pki.issue("influxdb", "127.0.0.1")
    return influx_factory(tls=ServerTls(pki.ca_file, server.cert, server.key))


@pytest.fixture(scope="session")
def session_mosquitto(mosquitto_factory: Callable[..., MosquittoServer]) -> MosquittoServer:
    """One broker shared by the session (users: DEFAULT_MQTT_USERS)."""
    return mosquitto_factory()


@pytest.fixture(scope="module")
def mosquitto(
    request: pytest.FixtureRequest, mosquitto_factory: Callable[..., MosquittoServer]
) -> MosquittoServer:
    """The session's broker; a module that sets ``OWN_BROKER = True`` gets a broker of its own, so
    the retained status messages and persistent ingest sessions it leaves behind reach no other test."""
    if getattr(request.module, "OWN_BROKER", False):
        return mosquitto_factory()
    broker: MosquittoServer = request.getfixturevalue("session_mosquitto")
    return broker


@pytest.fixture(scope="session")
def influxdb(influx_factory: Callable[..., InfluxServer]) -> InfluxServer:
    """One InfluxDB shared by the session; use ``influx_db`` for a fresh database."""
    return influx_factory()


@pytest.fixture
def influx_db(influxdb: InfluxServer) -> InfluxClient:
    """A new, empty database on the shared InfluxDB, with admin credentials."""
    return influxdb.create_database(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    require(
        SHARED_DIR.is_dir(),
        f"the shared models/footage folder {SHARED_DIR}",
        "it lies beside the checkout (../shared) or is named by FOOTFALL_SHARED_DIR",
    )
    return SHARED_DIR


@pytest.fixture(scope="session")
def pose_model_path(shared_dir: Path) -> Path:
    path = shared_dir / "models" / "yolo11n-pose.pt"
    require(path.is_file(), f"the model weights {path}", "they ship in the shared folder")
    return path


@pytest.fixture(scope="session")
def detect_model_path(shared_dir: Path) -> Path:
    """YOLO11n person detection as ONNX: footfall's default model."""
    path = shared_dir / "models" / "yolo11n.onnx"
    require(path.is_file(), f"the model weights {path}", "they ship in the shared folder")
    return path


@pytest.fixture(scope="session")
def video_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "video"
    require(path.is_dir(), f"the footage folder {path}", "it ships in the shared folder")
    return path


@pytest.fixture(autouse=True, scope="session")
def _offline_ultralytics(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Ultralytics must never try the network here, nor write settings into ~/.config.
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("yolo_config")))


@pytest.fixture(scope="session")
def simulated_pipeline(
    mosquitto_factory: Callable[..., MosquittoServer],
    influxdb: InfluxServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> PipelineFill:
    """The simulator's weeks through the real pipeline and the analytics job, once per session
    (``tests/pipeline_support.py``): the analytics e2e and the dashboard tests read the same fill."""
    from tests.pipeline_support import fill

    client = influxdb.create_database(f"sim_{uuid.uuid4().hex[:10]}")
    return fill(mosquitto_factory(), influxdb, client, tmp_path_factory.mktemp("pipeline"))


# Markers follow from the fixtures a test uses (directly or through other fixtures), so a test
# cannot forget them: `-m "not servers and not model"` is then a loop that needs neither.
SERVER_FIXTURES = frozenset(
    {
        "mosquitto_factory",
        "influx_factory",
        "mosquitto",
        "influxdb",
        "influx_db",
        "simulated_pipeline",
        "deployed_broker",  # tests/test_deploy_compose.py: the deploy image's broker, started as it starts
    }
)
MODEL_FIXTURES = frozenset({"shared_dir", "pose_model_path", "detect_model_path", "video_dir"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & SERVER_FIXTURES:
            item.add_marker(pytest.mark.servers)
        if used & MODEL_FIXTURES:
            item.add_marker(pytest.mark.model)
