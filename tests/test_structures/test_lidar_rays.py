"""LidarRays: per-ray origins, selection, device/dtype moves, and the flattened batch."""
from __future__ import annotations

import torch

from mmdet3d.models.rendering.ray_batching import flatten_rays
from mmdet3d.structures.lidar_rays import LidarRays


def _rays(num: int, seed: int) -> LidarRays:
    gen = torch.Generator().manual_seed(seed)
    return LidarRays(
        origins=torch.rand(3, 2, 3, generator=gen),  # T=3 frames, N=2 cameras
        directions=torch.rand(num, 3, generator=gen),
        frame_cam=torch.stack([torch.randint(0, 3, (num,), generator=gen),
                               torch.randint(0, 2, (num,), generator=gen)], dim=1),
        depth=torch.rand(num, generator=gen) * 40,
        labels=torch.randint(0, 17, (num,), generator=gen),
        pixels=torch.randint(0, 100, (num, 2), generator=gen))


def test_ray_origins_are_the_camera_centres_of_each_ray():
    rays = _rays(20, 0)
    for r in range(len(rays)):
        frame, cam = rays.frame_cam[r].tolist()
        assert torch.equal(rays.ray_origins()[r], rays.origins[frame, cam])
    assert torch.equal(rays.frame_idx, rays.frame_cam[:, 0])
    assert torch.equal(rays.cam_idx, rays.frame_cam[:, 1])


def test_select_keeps_the_origin_table_and_picks_every_per_ray_field():
    rays = _rays(10, 1)
    picked = rays.select(torch.tensor([7, 2]))
    assert len(picked) == 2 and picked.origins is rays.origins
    for name in ('directions', 'frame_cam', 'depth', 'labels', 'pixels'):
        assert torch.equal(getattr(picked, name), getattr(rays, name)[[7, 2]]), name
    no_pixels = LidarRays(rays.origins, rays.directions, rays.frame_cam, rays.depth, rays.labels)
    assert no_pixels.select(torch.tensor([0])).pixels is None


def test_to_casts_only_the_floating_fields():
    rays = _rays(4, 2).to('cpu', torch.float64)
    assert rays.origins.dtype == rays.directions.dtype == rays.depth.dtype == torch.float64
    assert rays.frame_cam.dtype == rays.labels.dtype == rays.pixels.dtype == torch.int64


def test_flatten_rays_concatenates_the_samples_in_order():
    samples = [_rays(5, 3), _rays(0, 4), _rays(8, 5)]
    batch = flatten_rays(samples)
    assert isinstance(batch, LidarRays) and len(batch) == 13
    assert batch.batch_idx.tolist() == [0] * 5 + [2] * 8
    assert torch.equal(batch.sample_idx(), batch.batch_idx)
    assert batch.origins.shape == (3, 3, 2, 3)  # (B, T, N, 3)
    torch.testing.assert_close(batch.ray_origins(),
                               torch.cat([s.ray_origins() for s in samples]), rtol=0, atol=0)
    for name in ('directions', 'depth', 'labels', 'pixels', 'frame_cam'):
        assert torch.equal(getattr(batch, name), torch.cat([getattr(s, name) for s in samples]))
    assert torch.equal(batch.frame_idx, torch.cat([s.frame_idx for s in samples]))


def test_flatten_rays_pads_the_origin_tables_and_casts_to_the_first_sample():
    """Samples with fewer frames or cameras keep their origins; the batch takes the first
    sample's float dtype; labels and indices become int64; pixels only where all have them."""
    small = LidarRays(origins=torch.rand(1, 1, 3, dtype=torch.float64),
                      directions=torch.rand(2, 3), frame_cam=torch.zeros(2, 2, dtype=torch.int32),
                      depth=torch.rand(2), labels=torch.tensor([3, 4], dtype=torch.uint8))
    large = _rays(4, 6)
    batch = flatten_rays([small, large])
    assert batch.origins.shape == (2, 3, 2, 3) and batch.origins.dtype == torch.float64
    assert batch.directions.dtype == batch.depth.dtype == torch.float64
    assert batch.labels.dtype == batch.frame_cam.dtype == torch.int64 and batch.pixels is None
    expected = torch.cat([small.ray_origins(), large.ray_origins().double()])
    assert torch.equal(batch.ray_origins(), expected)


def test_select_of_a_batch_keeps_the_sample_of_each_ray():
    samples = [_rays(5, 7), _rays(6, 8)]
    batch = flatten_rays(samples)
    picked = batch.select(torch.tensor([9, 0, 5]))
    assert picked.batch_idx.tolist() == [1, 0, 1] and picked.origins is batch.origins
    expected = torch.stack([samples[1].ray_origins()[4], samples[0].ray_origins()[0],
                            samples[1].ray_origins()[0]])
    assert torch.equal(picked.ray_origins(), expected)
    assert picked.to('cpu', torch.float64).batch_idx.dtype == torch.int64
    assert samples[0].batch_idx is None
    assert samples[0].sample_idx().tolist() == [0] * 5
