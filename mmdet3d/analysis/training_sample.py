"""One sample through a config's training pipeline, kept before and after ``PackOccInputs``.

What the render inspection and the training diagnostics feed the model: the key frame's LiDAR
rays of every render frame, the flow rows and the Occ3D ground truth come with the sample.
"""
from __future__ import annotations

from dataclasses import dataclass

from mmengine.config import Config
from mmengine.dataset import BaseDataset

from mmdet3d.datasets.transforms.formatting import PackOccInputs
from mmdet3d.datasets.transforms.image_inputs import PrepareImageInputs
from mmdet3d.datasets.transforms.ray_generation import GenerateRays
from mmdet3d.registry import DATASETS


def _find(transforms: list, kind: type, what: str):
    found = [t for t in transforms if isinstance(t, kind)]
    if not found:
        raise ValueError(f'the training pipeline has no {kind.__name__} ({what})')
    return found[0]


@dataclass
class TrainingSample:
    """One training-pipeline sample prepared for the render inspection and the diagnostics.

    Attributes:
        results: the results dict before ``PackOccInputs`` (``gt_rays``, ``cam_names``,
            ``img_inputs``, ``gt_occ``, ...).
        packed: the packed ``{'inputs', 'data_samples'}``.
        swap_rb: ``PrepareImageInputs``' channel swap (to undo the normalisation).
        depth_along_ray: ``GenerateRays``' depth convention (False: camera z-depth).
        half_pixel_shift: ``GenerateRays``' pixel-centre quirk.
    """

    results: dict
    packed: dict
    swap_rb: bool
    depth_along_ray: bool
    half_pixel_shift: bool


def load_training_sample(cfg: Config, index: int) -> TrainingSample:
    """Run the training pipeline of ``cfg.train_dataloader.dataset`` on one sample.

    Args:
        cfg: full config (dataset, pipeline).
        index: sample index (sorted by timestamp; negative counts from the end).
    """
    return prepare_sample(DATASETS.build(cfg.train_dataloader.dataset), index)


def prepare_sample(dataset: BaseDataset, index: int) -> TrainingSample:
    """Run a dataset's training-style pipeline (ending with ``PackOccInputs``) on one sample.

    Args:
        dataset: a dataset whose pipeline generates rays (``GenerateRays``).
        index: sample index (sorted by timestamp; negative counts from the end).
    """
    if not -len(dataset) <= index < len(dataset):
        raise IndexError(f'sample index {index} out of range for {len(dataset)} samples')
    transforms = list(dataset.pipeline.transforms)
    if not transforms or not isinstance(transforms[-1], PackOccInputs):
        raise ValueError('the training pipeline must end with PackOccInputs')
    generate = _find(transforms, GenerateRays, 'the rays to render')
    prepare = _find(transforms, PrepareImageInputs, 'the camera images')
    results = dataset.get_data_info(index)
    for transform in transforms[:-1]:
        results = transform(results)
        if results is None:
            raise RuntimeError(f'{type(transform).__name__} dropped sample {index}')
    pack = transforms[-1]
    packed = pack(dict(results))
    return TrainingSample(results, packed, prepare.swap_rb, generate.depth_along_ray,
                          generate.half_pixel_shift)
