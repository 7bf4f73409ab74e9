"""footfall.edge component."""
