"""Flow volume construction and the static-density filter on hand-built cases."""
from __future__ import annotations

import torch

from mmdet3d.datasets.transforms.bev_aug import flip_flow_rows
from mmdet3d.models.rendering.flow_warping import apply_flow_clipped, create_static_density

CAR, PED, ROAD = 4, 7, 11


def _row(src, tgt, cls, frame):
    """A flow row: src zyx | tgt zyx | floor zyx | class | frame."""
    return list(src) + list(tgt) + [0, 0, 0, cls, frame]


def _scene(size=(1, 4, 5)):
    """Density = 1 + x + 10 y, logits one-hot ROAD, a car at x=1,2 (y=1) and a pedestrian at
    (y=3, x=0)."""
    size_z, size_y, size_x = size
    ys, xs = torch.meshgrid(torch.arange(size_y), torch.arange(size_x), indexing='ij')
    density = (1.0 + xs + 10 * ys).float().expand(size_z, size_y, size_x)[None, ..., None]
    labels = torch.full((1, size_z, size_y, size_x), ROAD)
    labels[0, :, 1, 1:3] = CAR
    labels[0, :, 3, 0] = PED
    semantics = torch.nn.functional.one_hot(labels, 17).float() * 5.0
    return density.contiguous(), semantics


def test_move_one_object_by_one_voxel_and_average_overlaps():
    density, semantics = _scene()
    flow = torch.tensor([
        _row((0, 1, 1), (0, 1, 2), CAR, 0),  # car moves +1 x in frame 0
        _row((0, 1, 2), (0, 1, 3), CAR, 0),
        _row((0, 1, 1), (0, 2, 4), CAR, 2),  # frame 2: both car voxels land on one target
        _row((0, 1, 2), (0, 2, 4), CAR, 2),
        _row((0, 3, 0), (0, 0, 0), CAR, 1),  # class mismatch (pedestrian predicted): ignored
    ], dtype=torch.uint8)
    out_d, out_s = apply_flow_clipped(density, semantics, [flow], num_frames=3)
    assert out_d.shape == (1, 3, 1, 4, 5, 1) and out_s.shape == (1, 3, 1, 4, 5, 17)
    expected = density[:, None].repeat(1, 3, 1, 1, 1, 1).clone()
    expected[0, 0, 0, 1, 1] = 0.0
    expected[0, 0, 0, 1, 2] = density[0, 0, 1, 1]
    expected[0, 0, 0, 1, 3] = density[0, 0, 1, 2]
    expected[0, 2, 0, 1, 1:3] = 0.0
    expected[0, 2, 0, 2, 4] = (density[0, 0, 1, 1] + density[0, 0, 1, 2]) / 2
    torch.testing.assert_close(out_d, expected, rtol=0, atol=0)
    assert out_s[0, 0, 0, 1, 3].argmax() == CAR and out_s[0, 0, 0, 1, 1].abs().sum() == 0
    torch.testing.assert_close(out_s[0, 1], semantics[0])


def test_without_the_class_filter_every_row_moves():
    """The pedestrian voxel moves although its row says car (``class_filter=False``)."""
    density, semantics = _scene()
    flow = torch.tensor([_row((0, 3, 0), (0, 0, 0), CAR, 1)], dtype=torch.uint8)
    filtered, _ = apply_flow_clipped(density, semantics, [flow], 3)
    torch.testing.assert_close(filtered, density[:, None].expand(1, 3, 1, 4, 5, 1))
    out_d, out_s = apply_flow_clipped(density, semantics, [flow], 3,
                                      class_filter=False)
    expected = density[:, None].repeat(1, 3, 1, 1, 1, 1).clone()
    expected[0, 1, 0, 3, 0] = 0.0
    expected[0, 1, 0, 0, 0] = density[0, 0, 3, 0]
    torch.testing.assert_close(out_d, expected, rtol=0, atol=0)
    assert out_s[0, 1, 0, 0, 0].argmax() == PED and out_s[0, 1, 0, 3, 0].abs().sum() == 0


def _flipped(rows: torch.Tensor, flip_dx: bool, flip_dy: bool) -> torch.Tensor:
    """The rows as ``LoadAnnotationsBEVDepth`` flips them on the (X, Y, Z) = (5, 4, 1) grid."""
    return torch.from_numpy(flip_flow_rows(rows.numpy(), flip_dx, flip_dy, (5, 4, 1)))


def test_bev_flipped_rows_move_the_flipped_volume():
    """Rows flipped by the pipeline's BEV augmentation move the flipped volume's object."""
    density, semantics = _scene()
    flipped_d = density.flip(3)  # x-flip of the volume, (B, Z, Y, X, 1)
    flipped_s = semantics.flip(3)
    flow = torch.tensor([_row((0, 1, 1), (0, 1, 2), CAR, 0)], dtype=torch.uint8)  # unflipped
    out_d, _ = apply_flow_clipped(flipped_d, flipped_s, [_flipped(flow, True, False)],
                                  num_frames=2)
    expected = flipped_d[:, None].repeat(1, 2, 1, 1, 1, 1).clone()
    expected[0, 0, 0, 1, 5 - 1 - 1] = 0.0
    expected[0, 0, 0, 1, 5 - 1 - 2] = flipped_d[0, 0, 1, 5 - 1 - 1]
    torch.testing.assert_close(out_d, expected, rtol=0, atol=0)
    out_d, _ = apply_flow_clipped(density.flip(2), semantics.flip(2),
                                  [_flipped(flow, False, True)], 2)
    assert out_d[0, 0, 0, 4 - 1 - 1, 1].item() == 0.0
    assert out_d[0, 0, 0, 4 - 1 - 1, 2].item() == density[0, 0, 1, 1].item()


def test_nothing_moves_returns_pair_and_keeps_gradients():
    density, semantics = _scene()
    density.requires_grad_()
    flow = torch.tensor([_row((0, 0, 0), (0, 0, 1), CAR, 0)], dtype=torch.uint8)
    out = apply_flow_clipped(density, semantics, [flow], 3)
    assert isinstance(out, tuple) and len(out) == 2
    torch.testing.assert_close(out[0], density[:, None].expand(1, 3, 1, 4, 5, 1))
    moving = torch.tensor([_row((0, 1, 1), (0, 0, 0), CAR, 1)], dtype=torch.uint8)
    out_d, _ = apply_flow_clipped(density, semantics, [moving], 3)
    out_d[0, 1, 0, 0, 0, 0].backward()
    grad = torch.zeros_like(density)
    grad[0, 0, 1, 1, 0] = 1.0
    torch.testing.assert_close(density.grad, grad)


def test_static_density_zeroes_dynamic_argmax():
    density, semantics = _scene()
    static = create_static_density(density, semantics, torch.tensor([0, 1, 3, CAR, 5, PED]))
    expected = density.clone()
    expected[0, 0, 1, 1:3] = 0.0
    expected[0, 0, 3, 0] = 0.0
    torch.testing.assert_close(static, expected, rtol=0, atol=0)
