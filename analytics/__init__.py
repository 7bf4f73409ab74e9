"""footfall.analytics: retail KPIs from raw events, point-of-sale data and campaigns.

Public API (see docs/analytics.md):

- ``DuckDBStore(path)`` / ``InfluxStore(client)``: the two ``EventStore`` implementations
  (``write_points``, ``write_columns``, ``read_raw``, ``read_points``, ``store_ids``).
- ``run_job(source, start, end, stores, campaigns, store=None, write=True) -> JobResult``.
- ``load_stores``, ``load_campaigns``, ``read_pos_file`` / ``parse_mapping`` / ``PosTransaction``.
- ``report_campaign(source, name, campaigns, stores)`` and ``format_uplift_table``.
- ``compute_kpis(raw, grid, stores)`` with ``raw_from_events`` / ``build_grid``: the pure core.
"""

from footfall.analytics.campaign import Uplift, campaign_uplift, format_uplift_table, uplift_points
from footfall.analytics.config import (
    Campaign,
    CampaignsConfig,
    StaffRules,
    StoreMeta,
    StoresConfig,
    WifiRules,
    load_campaigns,
    load_stores,
)
from footfall.analytics.core import KpiTables, compute_kpis
from footfall.analytics.frames import RawData, raw_from_events
from footfall.analytics.grid import build_grid
from footfall.analytics.job import JobResult, campaign_rows, report_campaign, run_job
from footfall.analytics.pos import (
    PosError,
    PosMapping,
    PosTransaction,
    parse_mapping,
    pos_points,
    read_pos_file,
)
from footfall.analytics.store import DuckDBStore, EventStore, InfluxStore

__all__ = [
    "Campaign",
    "CampaignsConfig",
    "DuckDBStore",
    "EventStore",
    "InfluxStore",
    "JobResult",
    "KpiTables",
    "PosError",
    "PosMapping",
    "PosTransaction",
    "RawData",
    "StaffRules",
    "StoreMeta",
    "StoresConfig",
    "Uplift",
    "WifiRules",
    "build_grid",
    "campaign_rows",
    "campaign_uplift",
    "compute_kpis",
    "format_uplift_table",
    "load_campaigns",
    "load_stores",
    "parse_mapping",
    "pos_points",
    "raw_from_events",
    "read_pos_file",
    "report_campaign",
    "run_job",
    "uplift_points",
]
