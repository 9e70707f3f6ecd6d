"""models rendering package."""
