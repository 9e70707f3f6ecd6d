"""Model utilities: non-strict checkpoint loading with a summary."""
