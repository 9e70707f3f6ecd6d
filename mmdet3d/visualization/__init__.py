"""Drawing: colour maps, figures, images and viewers; never imported from models.

- :mod:`.occ_palette`: palette of the Occ3D labels, BEV projection (numpy only).
- :mod:`.occ_figures`: GT vs prediction BEV figure, 3-D voxel view.
- :mod:`.occ_samples`: pair ``tools/test.py --out`` predictions with the Occ3D GT and draw them.
- :mod:`.camera_rays`, :mod:`.render_figures`: the key-frame LiDAR rays of a sample rendered by
  the model (:mod:`mmdet3d.analysis.render_inspection`), drawn per camera.
- :mod:`.voxel_faces`: exposed faces of occupied voxels as metric quads (numpy only).
- :mod:`.rasterizer`: pinhole cameras and a numpy z-buffer rasteriser of those quads.
- :mod:`.camera_overlay`: GT and prediction voxels drawn into the six raw camera images.
- :mod:`.voxel_view`: 3-D view from a virtual camera, GT | prediction | disagreement.
- :mod:`.html_viewer`: self-contained interactive HTML page per sample (plotly).
- :mod:`.scene_video`: a scene's frames (camera overlay + 3-D view) as GIF/MP4 (imageio).
- :mod:`.image_panels`: titles, grids and legends of RGB panels, atomic PNG writing.
- :mod:`.sample_views`: choose samples by token/scene and write the chosen views.
"""
from .occ_palette import OCC3D_PALETTE, UNOBSERVED, bev_image, bev_top_labels, label_colors

__all__ = ['OCC3D_PALETTE', 'UNOBSERVED', 'bev_image', 'bev_top_labels', 'label_colors']
