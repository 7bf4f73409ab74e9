"""footfall: in-store foot-traffic analytics."""

__version__ = "0.1.0"
