"""footfall.analytics component."""
