"""Offline data converters: nuScenes info pkls and occupancy-flow ground truth.

Importing this package is cheap: nuscenes-devkit is imported lazily inside the functions that
need it.
"""
