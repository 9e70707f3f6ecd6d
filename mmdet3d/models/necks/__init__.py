"""models necks package."""
