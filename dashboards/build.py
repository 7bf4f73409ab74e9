"""Turn the dashboard definitions into Grafana dashboard JSON with grafana-foundation-sdk.

The SDK has no InfluxDB query type, so ``InfluxQLTarget`` is a small ``Dataquery`` of our own that
writes the target JSON Grafana's InfluxDB datasource stores in InfluxQL raw-query mode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import barchart, common, stat, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.builders.dashboard import QueryVariable
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    GridPos,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from footfall.dashboards.definitions import DASHBOARDS
from footfall.dashboards.spec import DATASOURCE_TYPE, DATASOURCE_UID, Dashboard, Panel, Query

JSON_DIR = Path(__file__).resolve().parent / "json"
GRID_WIDTH = 24
DATASOURCE = DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)
EXPRESSION_DATASOURCE = {"type": "__expr__", "uid": "__expr__"}


class InfluxQLTarget(cogvariants.Dataquery):
    def __init__(self, query: Query) -> None:
        self.query = query

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.query.ref,
            "datasource": DATASOURCE.to_json(),
            "rawQuery": True,
            "query": self.query.influxql,
            "resultFormat": self.query.result_format,
            "alias": self.query.alias,
        }


class InfluxQLTargetBuilder(cogbuilder.Builder[InfluxQLTarget]):
    def __init__(self, query: Query) -> None:
        self._target = InfluxQLTarget(query)

    def build(self) -> InfluxQLTarget:
        return self._target


_PANEL_BUILDERS: dict[str, Any] = {
    "stat": stat.Panel,
    "timeseries": timeseries.Panel,
    "table": table.Panel,
    "barchart": barchart.Panel,
}


def _layout(panels: tuple[Panel, ...]) -> list[GridPos]:
    """Left to right, wrapping at Grafana's 24 columns; a row is as tall as its tallest panel."""
    positions: list[GridPos] = []
    x = y = row_height = 0
    for panel in panels:
        if x + panel.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        positions.append(GridPos(h=panel.height, w=panel.width, x=x, y=y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return positions


def _panel_builder(panel: Panel, panel_id: int, pos: GridPos) -> Any:
    builder = (
        _PANEL_BUILDERS[panel.kind]()
        .id(panel_id)
        .title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .grid_pos(pos)
        .unit(panel.unit)
    )
    if panel.kind == "stat":
        # One number: the last non-null value of the (single-row) result.
        builder = builder.reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    elif panel.kind == "timeseries":
        builder = builder.legend(
            common.VizLegendOptions()
            .show_legend(True)
            .display_mode(common_models.LegendDisplayMode.LIST)
            .placement(common_models.LegendPlacement.BOTTOM)
            .calcs([])
        )
    elif panel.kind == "table":
        builder = builder.show_header(True)
    elif panel.kind == "barchart":
        builder = builder.x_tick_label_rotation(0)
    if panel.decimals is not None:
        builder = builder.decimals(panel.decimals)
    if panel.time_from:
        builder = builder.time_from(panel.time_from)
    if panel.time_shift:
        builder = builder.time_shift(panel.time_shift)
    for query in panel.queries:
        builder = builder.with_target(InfluxQLTargetBuilder(query))
    return builder


def _variable(dash: Dashboard) -> QueryVariable:
    var = dash.store_variable
    builder = (
        QueryVariable("store")
        .label("Store")
        .datasource(DATASOURCE)
        .query(var.query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(var.multi)
        .include_all(var.include_all)
        .current(VariableOption(selected=False, text="", value=""))
    )
    if var.regex:
        builder = builder.regex(var.regex)
    return builder


def build_dashboard(dash: Dashboard) -> dict[str, Any]:
    """The dashboard JSON Grafana imports (the ``dashboard`` object of its HTTP API)."""
    builder = (
        DashboardBuilder(dash.title)
        .uid(dash.uid)
        .description(dash.description)
        .tags(list(dash.tags))
        .timezone("browser")
        .time(dash.time_from, "now")
        .refresh("1m")
        .editable()
        .with_variable(_variable(dash))
    )
    for panel_id, (panel, pos) in enumerate(zip(dash.panels, _layout(dash.panels), strict=True), start=1):
        builder = builder.with_panel(_panel_builder(panel, panel_id, pos))
    model: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    _add_expressions(model, dash)
    # The SDK's annotation target only models Grafana's built-in source; InfluxQL annotations
    # carry their query and column mapping directly, as Grafana stores them.
    model.setdefault("annotations", {}).setdefault("list", []).extend(
        {
            "name": a.name,
            "datasource": DATASOURCE.to_json(),
            "enable": True,
            "iconColor": a.color,
            "query": a.influxql,
            "textColumn": a.text_column,
            "tagsColumn": a.tags_column,
        }
        for a in dash.annotations
    )
    return model


def _add_expressions(model: dict[str, Any], dash: Dashboard) -> None:
    """A panel's server-side math expression: its inputs are hidden, the result is shown."""
    for panel_json, panel in zip(model.get("panels", []), dash.panels, strict=True):
        if panel.expression is None:
            continue
        for target in panel_json["targets"]:
            target["hide"] = True
        panel_json["targets"].append(
            {
                "refId": "RESULT",
                "datasource": EXPRESSION_DATASOURCE,
                "type": "math",
                "expression": panel.expression,
            }
        )


def render_all() -> dict[str, str]:
    """File name -> JSON text for every dashboard (stable key order, trailing newline)."""
    return {
        f"{dash.uid}.json": json.dumps(build_dashboard(dash), indent=2, sort_keys=True) + "\n"
        for dash in DASHBOARDS
    }


def write_all(out_dir: Path = JSON_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
