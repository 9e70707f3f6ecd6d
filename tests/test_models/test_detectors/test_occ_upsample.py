"""OccFlowNet with a model grid coarser than the geometry's label grid, predicted and supervised
on the label grid.

Predictions are nearest-upsampled to the label grid; flow rows given in label-grid indices are
divided down to the model grid; the 3-D losses learn each block's majority label. Built from the
tiny golden config (32x32x8 model grid) with a 64x64x16 label grid on the synthetic world of
``occ_inputs``.
"""
from __future__ import annotations


import pytest
import torch

from mmdet3d.datasets.transforms.bev_aug import flip_flow_rows
from mmdet3d.models.rendering.flow_warping import downsample_flow
from mmdet3d.testing.geometry import occ3d_geometry
from mmdet3d.testing.occ_inputs import CAR, make_batch, take_sample, with_gt
from mmdet3d.testing.tiny_model import build_tiny_model as build_model

FINE = (64, 64, 16)
#: the tiny config's geometry with 64x64x16 labels over its 32x32x8 model grid
FINE_LABELS = dict(label_grid=dict(shape=list(FINE)))


@pytest.fixture(scope='module')
def single() -> dict:
    return take_sample(make_batch(batch_size=2), 1)  # the x-flipped sample


def test_upsample_labels_is_nearest_per_axis():
    model = build_model(geometry=dict(label_grid=dict(shape=[64, 96, 8])))  # x 2, y 3, z 1
    labels = torch.randint(0, 18, (2, 32, 32, 8), dtype=torch.uint8)  # (n_tau, X, Y, Z)
    up = model.upsample_labels(labels)
    assert up.shape == (2, 64, 96, 8) and up.dtype == torch.uint8
    x, y, z = torch.meshgrid(torch.arange(64), torch.arange(96), torch.arange(8), indexing='ij')
    assert torch.equal(up, labels[:, x // 2, y // 3, z])


def test_predict_on_the_gt_grid_equals_the_upsampled_coarse_prediction(single):
    torch.manual_seed(0)
    coarse = build_model().eval()
    fine = build_model(geometry=FINE_LABELS).eval()
    fine.load_state_dict(coarse.state_dict())
    with torch.no_grad():
        coarse_pred = coarse(**single, mode='predict')[0].pred_occ  # (1, 32, 32, 8)
        fine_pred = fine(**single, mode='predict')[0].pred_occ
    assert coarse_pred.shape == (1, 32, 32, 8) and fine_pred.shape == (1, *FINE)
    assert len(coarse_pred.unique()) > 1  # a non-constant prediction
    expected = coarse_pred.repeat_interleave(2, 1).repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert torch.equal(fine_pred, expected)


def test_downsample_flow_divides_the_voxel_columns_only():
    geometry = occ3d_geometry(model_grid_shape=[100, 50, 8])  # Occ3D labels: x 2, y 4, z 2
    assert geometry.grid_factors == (2, 4, 2)
    rows = torch.tensor([[15, 199, 3, 14, 0, 198, 1, 2, 3, 4, 5],
                         [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]], dtype=torch.uint8)  # zyx columns
    out, = downsample_flow([rows], geometry.grid_factors)
    assert out.dtype == torch.uint8
    assert out.tolist() == [[7, 49, 1, 7, 0, 99, 0, 0, 1, 4, 5],
                            [0, 0, 1, 1, 1, 2, 3, 1, 4, 9, 0]]
    assert downsample_flow([rows], occ3d_geometry().grid_factors)[0] is rows


def test_downsampled_flow_commutes_with_the_bev_flip():
    """Flipping fine indices then dividing equals dividing then flipping on the coarse grid."""
    model = build_model(geometry=FINE_LABELS)
    generator = torch.Generator().manual_seed(0)
    rows = torch.cat([torch.randint(0, 16, (50, 1), generator=generator),
                      torch.randint(0, 64, (50, 2), generator=generator),
                      torch.randint(0, 16, (50, 1), generator=generator),
                      torch.randint(0, 64, (50, 2), generator=generator),
                      torch.zeros(50, 5, dtype=torch.long)], dim=1)
    factors = model.geometry.grid_factors  # (2, 2, 2)

    def flip(rows: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        return torch.from_numpy(flip_flow_rows(rows.numpy(), True, True, grid))
    fine_first = downsample_flow([flip(rows, FINE)], factors)[0]
    coarse_first = flip(downsample_flow([rows], factors)[0], (32, 32, 8))
    assert torch.equal(fine_first[:, :6], coarse_first[:, :6])


def test_loss_with_fine_flow_equals_loss_with_coarse_flow(single):
    """Flow rows at 64x64x16 (every coarse voxel's fine sub-voxels) train like the coarse rows."""
    coarse_rows = single['data_samples'][0].gt_flow.long()  # (F, 11) in the 32x32x8 grid
    assert len(coarse_rows)
    offsets = torch.tensor([[dz, dy, dx] for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)])
    fine_rows = coarse_rows.repeat_interleave(8, 0)
    sub = offsets.repeat(len(coarse_rows), 1)
    for start in (0, 3, 6):
        fine_rows[:, start:start + 3] = fine_rows[:, start:start + 3] * 2 + sub
    fine_input = with_gt(single, gt_flow=[fine_rows.to(torch.uint8)])

    torch.manual_seed(0)
    coarse = build_model(rays_batch_size=10**6)
    with torch.no_grad():  # most voxels predict the car class, so the flow rows are kept
        coarse.semantic_decoder.layers[-1].bias[CAR] += 3.0
    fine = build_model(FINE_LABELS, rays_batch_size=10**6)
    fine.load_state_dict(coarse.state_dict())
    torch.manual_seed(1)
    expected = coarse(**single, mode='loss')
    torch.manual_seed(1)
    got = fine(**fine_input, mode='loss')
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6)
    for other_flow in (coarse_rows, coarse_rows[:0]):  # rows in the wrong grid / no flow
        torch.manual_seed(1)
        other = fine(**with_gt(single, gt_flow=[other_flow.to(torch.uint8)]), mode='loss')
        assert not torch.allclose(other['loss_render_semantics'],
                                  expected['loss_render_semantics'])


def test_3d_losses_on_fine_labels_equal_those_on_the_pooled_coarse_labels():
    """Fine labels train the coarse grid like their block majorities; a minority moved in does
    not change the loss, a majority does."""
    batch = make_batch(batch_size=1, with_gt_occ=True)
    coarse_labels = torch.from_numpy(batch['data_samples'][0].gt_occ['semantics'])[None]
    fine_labels = coarse_labels.repeat_interleave(2, 1).repeat_interleave(2, 2).repeat_interleave(
        2, 3).clone()
    occupied = (coarse_labels != 17).nonzero()[0]
    x, y, z = (2 * int(v) for v in occupied[1:])
    fine_labels[0, x, y, z] = 17  # 1 of 8 sub-voxels freed: the block's majority is unchanged
    losses_3d = dict(loss_occ_density=dict(type='OccDensityBCELoss'),
                     loss_occ_semantics=dict(type='OccSemanticCELoss'))
    torch.manual_seed(0)
    coarse = build_model(**losses_3d)
    fine = build_model(FINE_LABELS, **losses_3d)
    fine.load_state_dict(coarse.state_dict())

    def losses(model, labels):
        torch.manual_seed(1)
        out = model(**with_gt(batch, gt_occ=[dict(semantics=labels[0].numpy())]), mode='loss')
        return out['loss_density'], out['loss_semantic']

    expected = losses(coarse, coarse_labels)
    for got, want in zip(losses(fine, fine_labels), expected):
        torch.testing.assert_close(got, want)
    fine_labels[0, x:x + 2, y:y + 2, z] = 17
    fine_labels[0, x, y, z + 1] = 17  # 5 of 8 freed: the block becomes free (4 would tie)
    assert not torch.allclose(losses(fine, fine_labels)[0], expected[0])


@pytest.mark.parametrize('size', [[64, 64], [0, 64, 16]])
def test_bad_label_grid_is_rejected(size):
    with pytest.raises(ValueError, match='shape'):
        build_model(geometry=dict(label_grid=dict(shape=size)))


def test_label_grid_not_a_multiple_of_the_model_grid_is_rejected():
    with pytest.raises(ValueError, match='not a multiple'):
        build_model(geometry=dict(label_grid=dict(shape=[60, 64, 16])))


def test_3d_labels_not_on_the_label_grid_are_rejected():
    batch = make_batch(batch_size=1, with_gt_occ=True)  # labels of 32x32x8
    model = build_model(FINE_LABELS, loss_occ_density=dict(type='OccDensityBCELoss'),
                        loss_occ_semantics=dict(type='OccSemanticCELoss'))
    with pytest.raises(ValueError, match='label grid'):
        model(**batch, mode='loss')
