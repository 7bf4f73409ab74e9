"""Transport security that has run: a real Mosquitto whose TLS listener requires client certificates
(the CN is the user, so the per-store ACL binds to it), a real InfluxDB serving HTTPS only, and a
private CA with server and client certificates made by the test (tests/tls_support.py).

Every component's TLS goes through footfall.contracts.tls: the edge (replay, and the publisher
`edge run` uses), a bridge, ingest, analytics, POS import and the Grafana push.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from footfall.contracts.config import MqttSettings
from footfall.contracts.events import CrossingEvent, HeartbeatEvent
from footfall.contracts.influx import InfluxClient
from footfall.contracts.measurements import event_to_line
from footfall.contracts.tls import TlsFiles
from footfall.edge.transport import DiskQueue, StoreAndForwardPublisher
from tests.ingest_support import (
    FOOTFALL,
    LoggedProcess,
    MqttTestClient,
    count_points,
    crossing_events,
    ingest_process,
    wait_for_count,
    write_jsonl,
)
from tests.servers import InfluxServer, MosquittoServer
from tests.tls_support import Pki, tls_args

pytestmark = pytest.mark.servers

TLS_ERROR = "ERROR footfall.tls: TLS to the broker"


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A second CA that neither server trusts."""
    return Pki.create(tmp_path_factory.mktemp("other-pki"), "other-ca")


@pytest.fixture(scope="module")
def tls_db(tls_influxdb: InfluxServer) -> InfluxClient:
    return tls_influxdb.create_database(f"tls_{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def tls_ingest(
    tls_mosquitto: MosquittoServer,
    tls_influxdb: InfluxServer,
    tls_db: InfluxClient,
    pki: Pki,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LoggedProcess]:
    """`footfall ingest` with its own certificate (CN ingest), writing over HTTPS (INFLUX_CA)."""
    log = tmp_path_factory.mktemp("tls-ingest") / "ingest.log"
    ingest = ingest_process(
        tls_mosquitto, tls_influxdb, tls_db.database, log, client_id="ing-tls", tls=pki.client("ingest")
    )
    ingest.start().wait_for_log("ingest ready")
    yield ingest
    ingest.terminate()


def _stored(db: InfluxClient, device: str, expected: int, *, store: str = "store-a") -> int:
    """Points of ``device`` once ``expected`` are there (or after 30 s); each must be a distinct event."""
    where = f"WHERE store = '{store}' AND device = '{device}'"
    stored = wait_for_count(db, expected, where=where)
    (series,) = db.query(f'SELECT count(distinct("id")) FROM "crossing" {where}')
    assert series.column("count") == [stored]
    return stored


def _replay(
    events_file: Path, url: str, files: TlsFiles, queue: Path, log: Path, *extra: str
) -> LoggedProcess:
    args = ["edge", "replay", str(events_file), "--mqtt-url", url, "--queue", str(queue)]
    return LoggedProcess([*args, *tls_args(files), *extra], log)


def test_replay_over_tls_stores_exactly_the_events_sent(
    tls_mosquitto: MosquittoServer, tls_ingest: LoggedProcess, tls_db: InfluxClient, pki: Pki, tmp_path: Path
) -> None:
    events = write_jsonl(tmp_path / "events.jsonl", crossing_events(300, device="tls-replay"))
    files = pki.client("edge-store-a")
    # The certificate files through the environment this time (MQTT_CA / MQTT_CERT / MQTT_KEY).
    queue = str(tmp_path / "q")
    replay = LoggedProcess(
        ["edge", "replay", str(events), "--mqtt-url", tls_mosquitto.tls_url(), "--queue", queue],
        tmp_path / "replay.log",
        env={"MQTT_CA": str(files.ca), "MQTT_CERT": str(files.cert), "MQTT_KEY": str(files.key)},
    )
    assert replay.start().wait(60) == 0, replay.log()
    assert "replayed 300 events" in replay.log()
    assert _stored(tls_db, "tls-replay", 300) == 300
    assert "TLS to the" not in tls_ingest.log() + replay.log()


def test_live_publisher_over_tls_stores_exactly_the_events_sent(
    tls_mosquitto: MosquittoServer, tls_ingest: LoggedProcess, tls_db: InfluxClient, pki: Pki, tmp_path: Path
) -> None:
    """The store-and-forward publisher `footfall edge run` feeds, one event at a time as the counter
    emits them (the camera and model are not part of this test)."""
    settings = MqttSettings.from_url(tls_mosquitto.tls_url(), pki.client("edge-store-a"))
    publisher = StoreAndForwardPublisher(
        settings, DiskQueue(tmp_path / "q.sqlite"), store="store-a", device="tls-live"
    ).start()
    try:
        for event in crossing_events(200, device="tls-live"):
            assert publisher.publish(event)
        assert publisher.wait_drained(60)
    finally:
        publisher.stop()
    assert publisher.stats.acknowledged == 200
    assert _stored(tls_db, "tls-live", 200) == 200


def _refused_files(case: str, pki: Pki, other: Pki) -> tuple[TlsFiles, str]:
    if case == "no client certificate":
        return TlsFiles(ca=pki.ca_file), "requires a client certificate: none given"
    if case == "certificate of another CA":
        foreign = other.client("edge-store-a")
        return TlsFiles(ca=pki.ca_file, cert=foreign.cert, key=foreign.key), "does not trust the CA"
    if case == "expired certificate":
        return pki.client("edge-store-a", expired=True), "refused this client's certificate: it has expired"
    assert case == "wrong hostname"
    mismatch = "hostname mismatch: the broker's certificate is not valid for localhost"
    return pki.client("edge-store-a"), mismatch


@pytest.mark.parametrize(
    "case", ["no client certificate", "certificate of another CA", "expired certificate", "wrong hostname"]
)
def test_refused_connection_is_named_once_and_the_edge_keeps_its_events(
    case: str,
    tls_mosquitto: MosquittoServer,
    tls_ingest: LoggedProcess,
    tls_db: InfluxClient,
    pki: Pki,
    other_pki: Pki,
    tmp_path: Path,
) -> None:
    device = f"tls-refused-{case.split()[0]}"
    events = write_jsonl(tmp_path / "events.jsonl", crossing_events(40, device=device))
    queue = tmp_path / "queue.sqlite"
    files, problem = _refused_files(case, pki, other_pki)
    # "localhost" is the loopback too, but the broker's certificate names only 127.0.0.1.
    url = tls_mosquitto.tls_url("localhost" if case == "wrong hostname" else "127.0.0.1")
    bad = _replay(events, url, files, queue, tmp_path / "bad.log", "--timeout", "6", "--log-level", "DEBUG")
    assert bad.start().wait(60) == 1
    log = bad.log()
    assert "40 events stay queued" in log
    assert problem in log
    assert log.count(TLS_ERROR) == 1, log  # said once, in words ...
    assert "failed again" in log  # ... although it was retried
    assert count_points(tls_db, where=f"WHERE device = '{device}'") == 0
    queued = DiskQueue(queue)
    assert queued.depth == 40
    queued.close()
    # A good certificate: the same queue drains, every event is stored once.
    good = _replay(events, tls_mosquitto.tls_url(), pki.client("edge-store-a"), queue, tmp_path / "good.log")
    assert good.start().wait(60) == 0, good.log()
    assert _stored(tls_db, device, 40) == 40


def test_store_a_certificate_cannot_publish_for_store_b(
    tls_mosquitto: MosquittoServer, tls_ingest: LoggedProcess, tls_db: InfluxClient, pki: Pki, tmp_path: Path
) -> None:
    settings = MqttSettings.from_url(tls_mosquitto.tls_url(), pki.client("edge-store-a"))
    publisher = StoreAndForwardPublisher(
        settings, DiskQueue(tmp_path / "q.sqlite"), store="store-a", device="tls-acl"
    ).start()
    try:
        publisher.publish_many(crossing_events(3, store="store-b", device="tls-acl"))
        publisher.publish_many(crossing_events(5, store="store-a", device="tls-acl"))
        assert publisher.wait_drained(30), "refused events must not block the queue"
    finally:
        publisher.stop()
    assert publisher.stats.refused_by_broker == 3
    assert _stored(tls_db, "tls-acl", 5) == 5
    assert count_points(tls_db, where="WHERE store = 'store-b' AND device = 'tls-acl'") == 0


def test_ingest_names_its_refused_certificate_once(
    tls_mosquitto: MosquittoServer, tls_influxdb: InfluxServer, pki: Pki, tmp_path: Path
) -> None:
    expired = pki.client("ingest", expired=True)
    ingest = ingest_process(
        tls_mosquitto, tls_influxdb, "unused", tmp_path / "ingest.log", client_id="ing-expired", tls=expired
    )
    ingest.args += ["--log-level", "DEBUG"]
    try:
        ingest.start().wait_for_log("failed again")
    finally:
        ingest.terminate()
    log = ingest.log()
    assert log.count(TLS_ERROR) == 1
    assert "the broker refused this client's certificate: it has expired" in log
    assert "ingest ready" not in log


def test_ingest_with_a_wrong_influx_ca_says_so_and_loses_nothing(
    tls_mosquitto: MosquittoServer, tls_influxdb: InfluxServer, pki: Pki, other_pki: Pki, tmp_path: Path
) -> None:
    db = tls_influxdb.create_database(f"tls_ca_{uuid.uuid4().hex[:8]}")
    ingest_files = pki.client("ingest")

    def ingest(name: str, ca: Path) -> LoggedProcess:
        # The same client id: the broker keeps what the first one could not store for the second.
        return ingest_process(
            tls_mosquitto, tls_influxdb, db.database, tmp_path / f"{name}.log",
            client_id="ing-wrong-ca", tls=ingest_files, influx_ca=ca,
        )  # fmt: skip

    bad = ingest("bad", other_pki.ca_file)
    bad.args += ["--log-level", "DEBUG"]
    bad.start().wait_for_log("ingest ready")
    settings = MqttSettings.from_url(tls_mosquitto.tls_url(), pki.client("edge-store-a"))
    publisher = StoreAndForwardPublisher(
        settings, DiskQueue(tmp_path / "q.sqlite"), store="store-a", device="tls-wrong-ca"
    ).start()
    try:
        publisher.publish_many(crossing_events(50, device="tls-wrong-ca"))
        assert publisher.wait_drained(30)
        bad.wait_for_log("(attempt 3)")
    finally:
        publisher.stop()
        bad.terminate()
    warnings = [line for line in bad.log().splitlines() if "WARNING footfall.ingest: InfluxDB write" in line]
    assert len(warnings) == 1, warnings
    assert "TLS: the InfluxDB server's certificate is not signed by a trusted CA" in warnings[0]
    assert count_points(db) == 0
    good = ingest("good", pki.ca_file).start()
    try:
        assert _stored(db, "tls-wrong-ca", 50) == 50
    finally:
        good.terminate()


def test_bridge_over_tls(
    tls_mosquitto: MosquittoServer, tls_ingest: LoggedProcess, tls_db: InfluxClient, pki: Pki, tmp_path: Path
) -> None:
    """A beam bridge subscribes and publishes over TLS with its certificate (CN bridge); the
    counter publishes with its own (CN sensor)."""
    bridge = LoggedProcess(
        ["bridge", "beam", "--mqtt-url", tls_mosquitto.tls_url(), *tls_args(pki.client("bridge")),
         "--store", "store-tls", "--device", "tls-beam",
         "--queue", str(tmp_path / "q.sqlite")],
        tmp_path / "bridge.log",
    ).start()  # fmt: skip
    sensor = MqttTestClient(tls_mosquitto, "sensor", tls=pki.client("sensor"))
    try:
        bridge.wait_for_log("beam bridge ready")
        ts = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
        sensor.publish("sensors/beam/tls-1", f'{{"in": 3, "out": 1, "ts": "{ts}", "interval_s": 60}}')
        assert _stored(tls_db, "tls-1", 2, store="store-tls") == 2  # the counter is the device
    finally:
        sensor.close()
        bridge.terminate()
    counts = tls_db.query("SELECT sum(\"count\") FROM crossing WHERE device = 'tls-1' GROUP BY direction")
    assert {s.tags["direction"]: s.values[0][1] for s in counts} == {"in": 3, "out": 1}


def _footfall(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FOOTFALL, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def test_pos_import_and_analytics_over_https(tls_influxdb: InfluxServer, tmp_path: Path) -> None:
    db = tls_influxdb.create_database(f"tls_kpi_{uuid.uuid4().hex[:8]}")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    beat = HeartbeatEvent(id="hb", store="s1", device="cam", ts=hour, fps=5, latency_ms=1, dropped_frames=0)
    crossings = [
        CrossingEvent(id=f"c{i}", store="s1", device="cam", ts=hour + timedelta(minutes=i), line="door",
                      kind="entrance", direction="in", track_id=i)
        for i in range(1, 8)
    ]  # fmt: skip
    db.write_lines([event_to_line(e) for e in [beat, *crossings]])
    pos = tmp_path / "pos.csv"
    pos.write_text(
        "store,ts,transaction_id,amount\n"
        + "".join(f"s1,{(hour + timedelta(minutes=5 * i)).isoformat()},t{i},{10 + i}.50\n" for i in range(3))
    )
    env = {"INFLUX_USER": tls_influxdb.admin_user, "INFLUX_PASSWORD": tls_influxdb.admin_password}
    target = ["--influx-url", tls_influxdb.url, "--influx-db", db.database]
    ca = ["--influx-ca", str(tls_influxdb.tls.ca)]  # type: ignore[union-attr]
    imported = _footfall("pos", "import", str(pos), *target, *ca, env=env)
    assert imported.returncode == 0, imported.stderr
    assert "imported 3 transactions" in imported.stdout
    window = ["--from", hour.isoformat(), "--to", (hour + timedelta(hours=1)).isoformat()]
    run = _footfall("analytics", "run", *target, *window, env={**env, "INFLUX_CA": ca[1]})
    assert run.returncode == 0, run.stderr
    (series,) = db.query("SELECT visitors, transactions FROM kpi_hourly WHERE store = 's1'")
    assert [row[1:] for row in series.values] == [[7, 3]]
    # Without the CA, the system's CAs do not know the server: refused, and said so.
    refused = _footfall("analytics", "run", *target, *window, env=env)
    assert refused.returncode == 1
    assert "TLS: the InfluxDB server's certificate is not signed by a trusted CA" in refused.stderr
    assert "give --influx-ca" in refused.stderr


def test_grafana_push_verifies_the_server(tls_influxdb: InfluxServer, tmp_path: Path) -> None:
    """No Grafana server can be installed here: InfluxDB's HTTPS port stands in for the TLS side
    (a server with a certificate of the private CA). With --grafana-ca the request gets through TLS
    and the server answers (InfluxDB has no Grafana API: 404); without it, or under another host
    name, the push stops at the certificate, saying why."""
    ca = str(tls_influxdb.tls.ca)  # type: ignore[union-attr]
    env = {"GRAFANA_TOKEN": "t", "INFLUX_USER": "", "INFLUX_PASSWORD": ""}
    url = tls_influxdb.url
    no_ca = _footfall("dashboards", "push", "--grafana-url", url, env=env)
    assert no_ca.returncode == 1
    assert "TLS: the Grafana server's certificate is not signed by a trusted CA" in no_ca.stderr
    wrong_host = url.replace("127.0.0.1", "localhost")
    mismatch = _footfall("dashboards", "push", "--grafana-url", wrong_host, "--grafana-ca", ca, env=env)
    assert mismatch.returncode == 1
    assert "hostname mismatch: the Grafana server's certificate is not valid for localhost" in mismatch.stderr
    through = _footfall("dashboards", "push", "--grafana-url", url, env={**env, "GRAFANA_CA": ca})
    assert through.returncode == 1
    assert "404" in through.stderr
    assert "certificate" not in through.stderr


def test_https_only_influxdb_refuses_plain_http(tls_influxdb: InfluxServer) -> None:
    plain = InfluxClient(url=tls_influxdb.url.replace("https://", "http://"), database="x")
    assert not plain.ping()
    assert tls_influxdb.client("x").ping()
