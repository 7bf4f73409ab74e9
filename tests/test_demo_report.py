"""The HTML report on hand-made KPI points: figures, charts, and what headless Chromium renders."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from footfall.contracts.events import CameraIssueEvent
from footfall.contracts.measurements import (
    CAMERA_ISSUE,
    KPI_CAMPAIGN,
    KPI_DAILY,
    KPI_HOURLY,
    Point,
    datetime_to_ns,
    event_to_point,
)
from footfall.report import ReportInput, camera_issue_rows, charts, kpi_table, render_html, write_report
from tests.conftest import require
from tests.demo_browser import chromium_binary, dump_dom, screenshot

STORE = "demo-store"
DAY = datetime(2026, 3, 9, tzinfo=UTC)  # a Monday
BAR_BLUE = (0x32, 0x74, 0xD9)


def _png(width: int = 64, height: int = 36) -> bytes:
    buf = io.BytesIO()
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = (200, 30, 30)
    mpimg.imsave(buf, pixels, format="png")
    return buf.getvalue()


def synthetic_input(*, with_campaign: bool = True) -> ReportInput:
    points: dict[str, list[Point]] = {KPI_HOURLY: [], KPI_DAILY: [], KPI_CAMPAIGN: []}
    for d in range(3):
        day = DAY + timedelta(days=d)
        visitors_day = passersby_day = tx_day = 0
        for hour in range(9, 19):
            visitors, passersby, tx = 10 + hour + d, 60 + 2 * hour, hour // 2
            visitors_day, passersby_day, tx_day = (
                visitors_day + visitors,
                passersby_day + passersby,
                tx_day + tx,
            )
            points[KPI_HOURLY].append(
                Point(
                    KPI_HOURLY,
                    {"store": STORE},
                    {
                        "visitors": visitors,
                        "passersby": passersby,
                        "walkbys": passersby - visitors,
                        "transactions": tx,
                        "conversion": tx / visitors,
                        "capture_rate": visitors / passersby,
                    },
                    datetime_to_ns(day + timedelta(hours=hour)),
                )
            )
        points[KPI_DAILY].append(
            Point(
                KPI_DAILY,
                {"store": STORE},
                {
                    "visitors": visitors_day,
                    "passersby": passersby_day,
                    "capture_rate": visitors_day / passersby_day,
                    "transactions": tx_day,
                    "conversion": tx_day / visitors_day,
                    "revenue": tx_day * 20.0,
                },
                datetime_to_ns(day),
            )
        )
    # Another store's points must not leak into this store's report.
    points[KPI_DAILY].append(Point(KPI_DAILY, {"store": "other"}, {"visitors": 99999}, datetime_to_ns(DAY)))
    if with_campaign:
        points[KPI_CAMPAIGN].append(
            Point(
                KPI_CAMPAIGN,
                {"store": STORE, "campaign": "spring"},
                {
                    "visitors": 620.0,
                    "baseline": 500.0,
                    "uplift": 120.0,
                    "uplift_pct": 24.0,  # analytics writes percent
                    "ci_low": 60.0,
                    "ci_high": 180.0,
                },
                datetime_to_ns(DAY + timedelta(days=1)),
            )
        )
    return ReportInput(
        store=STORE,
        kpis=points,
        dwell_s={"table": [12.0, 30.0, 45.0, 61.0], "door": [3.0, 4.0, 5.0]},
        frame_png=_png(),
        title="test report",
        notes=["POS and campaign data are generated."],
    )


def test_kpi_table_shows_the_latest_day_of_this_store() -> None:
    rows = dict(kpi_table(synthetic_input()))
    last_visitors = sum(10 + h + 2 for h in range(9, 19))
    assert rows["day"] == "2026-03-11"
    assert rows["visitors"] == f"{last_visitors:,}"
    assert rows["dwell at table (median)"] == "38 s"  # median of 12, 30, 45, 61 = 37.5, shown rounded
    assert rows["campaign spring: uplift"].startswith("+24.0 %")
    assert "99,999" not in " ".join(rows.values())


@pytest.mark.parametrize(("with_campaign", "expected"), [(True, 4), (False, 3)])
def test_charts_present_only_with_data(with_campaign: bool, expected: int) -> None:
    made = charts(synthetic_input(with_campaign=with_campaign))
    assert len(made) == expected
    for chart in made:
        assert chart.svg.startswith("<svg")
        assert chart.svg.count("<path") > 5


def test_html_is_self_contained() -> None:
    page = render_html(synthetic_input())
    # Nothing to fetch: no external scripts, stylesheets, images or fonts.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "data:image/png;base64," in page
    assert page.count("<svg") == 4


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    require(chromium_binary() is not None, "chromium (Debian package chromium)")
    page = write_report(synthetic_input(), tmp_path / "report.html")
    dom = dump_dom(page, tmp_path / "profile")
    assert dom.count("<svg") == 4
    assert "annotated camera frame" in dom
    shot = screenshot(page, tmp_path / "report.png", tmp_path / "profile")
    pixels = (mpimg.imread(shot)[..., :3] * 255).round().astype(int)
    # The visitors bars were painted: their exact colour covers a real area of the page.
    blue = np.all(np.abs(pixels - np.array(BAR_BLUE)) <= 2, axis=-1)
    assert blue.sum() > 500


# ---- expected traffic and camera health (issue #12) ------------------------------------------------


def with_expected(inp: ReportInput) -> ReportInput:
    """Every hourly point expected at 20 visitors (interval 12-28); the last day has 21-30 visitors an
    hour, so its 29 and 30 lie above."""
    hourly = []
    for p in inp.kpis[KPI_HOURLY]:
        visitors = int(p.fields["visitors"])
        flag = -1 if visitors < 12 else int(visitors > 28)
        fields = {"visitors_expected": 20.0, "visitors_expected_low": 12.0, "visitors_expected_high": 28.0}
        hourly.append(Point(p.measurement, p.tags, {**p.fields, **fields, "traffic_anomaly": flag}, p.ts_ns))
    return ReportInput(**{**inp.__dict__, "kpis": {**inp.kpis, KPI_HOURLY: hourly}})


def test_expected_traffic_chart_and_figures() -> None:
    inp = with_expected(synthetic_input())
    made = charts(inp)
    assert [c.title for c in made].count("Visitors against expected, 2026-03-11") == 1
    rows = dict(kpi_table(inp))
    assert rows["visitors expected"] == "200"  # 10 hours x 20
    # day 3: 21 .. 30 visitors: 29 and 30 are above 28
    assert rows["hours below / above expected"] == "0 / 2 of 10"
    assert len(charts(synthetic_input())) == len(made) - 1  # no expectation, no chart


def issue(state: str, minute: int) -> Point:
    ts = DAY + timedelta(hours=11, minutes=minute)
    event = CameraIssueEvent(
        id=f"i-{state}",
        store=STORE,
        device="cam-1",
        ts=ts,
        issue="covered",
        state=state,
        score=0.9,  # type: ignore[arg-type]
    )
    return event_to_point(event)


def test_camera_health_section() -> None:
    base = synthetic_input()
    assert camera_issue_rows(base) is None
    assert "Camera health" not in render_html(base)  # no scene monitor data given: no section
    none = ReportInput(**{**base.__dict__, "kpis": {**base.kpis, CAMERA_ISSUE: []}})
    assert "no camera issue" in render_html(none)
    some = ReportInput(
        **{**base.__dict__, "kpis": {**base.kpis, CAMERA_ISSUE: [issue("cleared", 5), issue("started", 0)]}}
    )
    assert camera_issue_rows(some) == [
        ("2026-03-09 11:00:00", "cam-1", "covered", "started", "0.90"),
        ("2026-03-09 11:05:00", "cam-1", "covered", "cleared", "0.90"),
    ]
    page = render_html(some)
    assert page.count("<td>covered</td>") == 2
    assert "no camera issue" not in page
