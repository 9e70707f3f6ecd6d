"""Data structures shared by datasets, models and metrics."""
from .occ_data_sample import OccDataSample

__all__ = ['OccDataSample']
