"""The committed dashboard JSON and provisioning are what the code generates, and they fit together.

``footfall dashboards push`` is exercised only up to its payloads: no Grafana server can be
installed on these machines, and a fake one would prove nothing about Grafana.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel

from footfall.dashboards.build import JSON_DIR, build_dashboard, render_all
from footfall.dashboards.definitions import DASHBOARDS, panel_queries
from footfall.dashboards.provision import (
    PROVISIONING_DIR,
    InfluxSource,
    dashboard_payloads,
    datasource_payload,
    provisioning_files,
)
from footfall.dashboards.spec import DATASOURCE_UID, render_query, store_regex

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_committed_json_is_what_the_code_generates() -> None:
    generated = render_all()
    committed = {p.name: p.read_text(encoding="utf-8") for p in JSON_DIR.glob("*.json")}
    assert committed == generated, "run `footfall dashboards build` and commit dashboards/json"


def test_committed_provisioning_is_what_the_code_generates() -> None:
    for rel, text in provisioning_files().items():
        assert (PROVISIONING_DIR / rel).read_text(encoding="utf-8") == text, rel


def test_build_command_writes_the_same_json(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "footfall", "dashboards", "build", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    assert {p.name: p.read_text() for p in tmp_path.glob("*.json")} == render_all()


@pytest.mark.parametrize("dash", DASHBOARDS, ids=lambda d: d.uid)
def test_dashboard_json_shape(dash: object) -> None:
    model = build_dashboard(dash)  # type: ignore[arg-type]
    # The SDK's own model reads it back (catches fields of the wrong type).
    assert DashboardModel.from_json(model).uid == model["uid"]
    variables = model["templating"]["list"]
    assert [v["name"] for v in variables] == ["store"]
    panels = model["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"]["uid"] == DATASOURCE_UID
        pos = panel["gridPos"]
        assert pos["x"] >= 0
        assert pos["x"] + pos["w"] <= 24
        influx_targets = [t for t in panel["targets"] if t["datasource"]["uid"] == DATASOURCE_UID]
        assert influx_targets
        assert all(t["rawQuery"] and t["query"] for t in influx_targets)
    # No two panels overlap on the grid.
    cells = [
        (x, y)
        for p in panels
        for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
        for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])
    ]
    assert len(cells) == len(set(cells))


def test_panel_queries_cover_every_target() -> None:
    in_json = sum(
        1
        for dash in DASHBOARDS
        for panel in build_dashboard(dash)["panels"]
        for t in panel["targets"]
        if "query" in t
    )
    listed = [q for q in panel_queries() if q.ref not in ("var", "ann")]
    assert len(listed) == in_json


@pytest.mark.parametrize(
    ("stores", "expected"),
    [("store-a", r"store\-a"), (["s.1", "s-2"], r"(s\.1|s\-2)"), ("a:b_c", "a:b_c")],
)
def test_store_regex_escapes_like_grafana(stores: str | list[str], expected: str) -> None:
    assert store_regex(stores) == expected


def test_render_query_substitutes_every_macro() -> None:
    q = (
        'SELECT mean("fps") FROM "heartbeat" WHERE "store" =~ /^$store$/ AND $timeFilter '
        "GROUP BY time($__interval)"
    )
    assert render_query(q, store="s", start_ms=1, end_ms=2, interval="5m") == (
        'SELECT mean("fps") FROM "heartbeat" WHERE "store" =~ /^s$/ AND time >= 1ms and time <= 2ms '
        "GROUP BY time(5m)"
    )


def test_push_payloads() -> None:
    ds = datasource_payload(InfluxSource("http://influxdb:8086", "footfall", "grafana", "pw"))
    assert ds["uid"] == DATASOURCE_UID
    assert ds["jsonData"] == {"version": "InfluxQL", "dbName": "footfall", "httpMode": "GET"}
    assert ds["secureJsonData"] == {"password": "pw"}
    assert "secureJsonData" not in datasource_payload(InfluxSource("http://x:8086"))
    # A private CA (--influx-ca) travels in the datasource: Grafana verifies the https:// InfluxDB.
    pem = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"
    with_ca = datasource_payload(InfluxSource("https://influxdb:8086", "footfall", "grafana", "pw", pem))
    assert with_ca["jsonData"]["tlsAuthWithCACert"] is True
    assert with_ca["secureJsonData"] == {"password": "pw", "tlsCACert": pem}
    bodies = dashboard_payloads("folder-1")
    assert [b["dashboard"]["uid"] for b in bodies] == [d.uid for d in DASHBOARDS]
    for body in bodies:
        # id None + overwrite: Grafana matches by uid, so pushing twice updates instead of failing.
        assert body["dashboard"]["id"] is None
        assert body["overwrite"] is True
        assert body["folderUid"] == "folder-1"
        json.dumps(body)


def test_provisioning_points_grafana_at_the_dashboards() -> None:
    files = {rel: yaml.safe_load(text) for rel, text in provisioning_files().items()}
    (source,) = files["datasources/footfall.yaml"]["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["jsonData"]["version"] == "InfluxQL"
    # Secrets are Grafana environment references, never values.
    assert source["secureJsonData"]["password"].startswith("${")
    (provider,) = files["dashboards/footfall.yaml"]["providers"]
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    grafana_mounts = [
        v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"] if isinstance(v, str)
    ]
    assert ["./dashboards/json", provider["options"]["path"]] in grafana_mounts


def test_push_without_a_token_is_a_config_error() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAFANA_TOKEN")}
    proc = subprocess.run(
        [sys.executable, "-m", "footfall", "dashboards", "push", "--grafana-url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2
    assert "GRAFANA_TOKEN" in proc.stderr
