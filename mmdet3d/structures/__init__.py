"""Data structures shared by datasets, models and metrics: the typed model inputs
(:class:`CameraInputs`, :class:`LidarRays`), the data sample, the Occ3D grid and label set
(:mod:`.occ3d`), the scene geometry of a config (:mod:`.occ_geometry`), poses (:mod:`.pose`) and
voxel layouts and grids (:mod:`.voxel_grids`)."""
from .camera_inputs import CameraInputs
from .lidar_rays import LidarRays
from .occ_data_sample import OccDataSample

__all__ = ['CameraInputs', 'LidarRays', 'OccDataSample']
