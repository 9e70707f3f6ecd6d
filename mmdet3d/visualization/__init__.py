"""Colour maps, figures and render inspection; never imported from models.

- :mod:`.occ_palette`: palette of the Occ3D labels, BEV projection (numpy only).
- :mod:`.occ_figures`: GT vs prediction BEV figure, 3-D voxel view.
- :mod:`.occ_samples`: pair ``tools/test.py --out`` predictions with the Occ3D GT and draw them.
- :mod:`.render_inspection`, :mod:`.render_figures`: render the key-frame LiDAR rays of a sample
  with the model's ``VolumeRenderer`` and draw them per camera.
"""
from .occ_palette import OCC3D_PALETTE, UNOBSERVED, bev_image, bev_top_labels, label_colors

__all__ = ['OCC3D_PALETTE', 'UNOBSERVED', 'bev_image', 'bev_top_labels', 'label_colors']
