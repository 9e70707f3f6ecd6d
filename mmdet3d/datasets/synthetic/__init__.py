"""datasets synthetic package."""
