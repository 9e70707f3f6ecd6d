"""models view_transformers package."""
