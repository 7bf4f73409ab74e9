"""footfall.dashboards component."""
