"""Contracts shared by the components: event schema, InfluxDB measurements, configuration."""
