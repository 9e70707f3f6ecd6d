"""Procedural demo world and generator of a tiny nuScenes-layout dataset (see docs/demo_world.md).

Modules: ``world`` (scene layout, agents, ego), ``rigs`` (sensors), ``raycast`` (numba ray
casting), ``lidar`` and ``cameras`` (sensor data), ``occ3d`` (Occ3D ground truth), ``tables``
(v1.0 records), ``fileio`` (deterministic atomic output) and ``generator`` (the whole set).
"""
from .generator import DemoConfig, generate, scene_names

__all__ = ['DemoConfig', 'generate', 'scene_names']
