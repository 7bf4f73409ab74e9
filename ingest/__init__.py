"""footfall.ingest component."""
