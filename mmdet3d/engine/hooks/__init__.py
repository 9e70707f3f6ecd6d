"""engine hooks package."""
