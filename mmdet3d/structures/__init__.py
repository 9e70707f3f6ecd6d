"""Data structures shared by datasets, models and metrics."""
