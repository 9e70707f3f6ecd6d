"""Golden: LSSViewTransformerBEVStereo against the original (state-dict layout, fn_* vectors and the
tiny model's recorded view-transformer inputs and outputs)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdet3d.models.losses.depth_loss import depth_bce_loss, downsample_gt_depth
from mmdet3d.models.view_transformers.frustum_geometry import create_frustum
from mmdet3d.models.view_transformers.lss_view_transformer import LSSViewTransformerBEVStereo
from mmdet3d.models.view_transformers.stereo_cost_volume import (stereo_cost_volume,
                                                                 stereo_sampling_grid)
from mmdet3d.models.view_transformers.temporal_geometry import prepare_temporal_inputs
from mmdet3d.ops.bev_pool_v2 import voxel_pooling_prepare_v2
from mmdet3d.structures.camera_inputs import CameraInputs
from mmdet3d.testing.geometry import occ3d_geometry

PREFIX = 'img_view_transformer.'
TOL = dict(rtol=1e-4, atol=1e-4)


@pytest.fixture(autouse=True, scope='module')
def _single_thread():
    """Intra-op thread barriers make these small convs very slow on an oversubscribed CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _load_npz(path: Path) -> dict[str, torch.Tensor]:
    with np.load(path) as npz:
        return {k: torch.from_numpy(npz[k]) for k in npz.files if npz[k].dtype.kind != 'U'}


def test_state_dict_matches_manifest(golden_dir: Path):
    """Paper configuration: the 120 ``img_view_transformer.`` entries, names, order and shapes."""
    with torch.device('meta'):
        vt = LSSViewTransformerBEVStereo(
            geometry=occ3d_geometry(),  # the paper's 200x200x16 grid, 0.5 m depth bins
            input_size=(512, 1408), downsample=16, in_channels=512, out_channels=32,
            collapse_z=False, loss_depth_weight=0.05,
            depthnet_cfg=dict(use_dcn=False, aspp_mid_channels=96, stereo=True, bias=5.0))
    manifest = json.loads((golden_dir.parent / 'occflownet-state-dict-keys.json').read_text())
    expected = [(key[len(PREFIX):], tuple(entry['shape']))
                for key, entry in manifest['keys'].items() if key.startswith(PREFIX)]
    assert len(expected) == 120
    assert [(key, tuple(value.shape)) for key, value in vt.state_dict().items()] == expected


def _geometry_vt(golden: dict[str, torch.Tensor], shape: tuple[int, int, int],
                 **kwargs) -> LSSViewTransformerBEVStereo:
    vt = LSSViewTransformerBEVStereo(
        geometry=occ3d_geometry(grid_shape=shape, depth_bins=[1.0, 45.0, 4.0]),
        input_size=(64, 176), in_channels=8, out_channels=4,
        depthnet_cfg=dict(stereo=True, aspp_mid_channels=4, bias=5.0), **kwargs)
    torch.testing.assert_close(vt.frustum, golden['frustum'], rtol=0, atol=0)
    return vt


def _assert_same_ranks(ours, golden: dict[str, torch.Tensor], prefix: str) -> None:
    """Same point -> voxel map (apart from flagged near-face points), then the same intervals and
    the same (ranks_depth, ranks_feat) multiset within each interval."""
    names = ('ranks_bev', 'ranks_depth', 'ranks_feat', 'interval_starts', 'interval_lengths')
    ours = dict(zip(names, (t.long().numpy() for t in ours)))
    gold = {name: golden[f'{prefix}out_{name}'].long().numpy() for name in names}
    flagged = set(golden[f'{prefix}out_near_boundary_point_idx'].tolist())
    ours_map = dict(zip(ours['ranks_depth'].tolist(), ours['ranks_bev'].tolist()))
    gold_map = dict(zip(gold['ranks_depth'].tolist(), gold['ranks_bev'].tolist()))
    assert set(ours_map) - flagged == set(gold_map) - flagged
    assert all(ours_map[p] == gold_map[p] for p in set(gold_map) - flagged)
    if ours_map != gold_map:  # a flagged point went to a neighbouring voxel: allowed
        return
    for name in ('ranks_bev', 'interval_starts', 'interval_lengths'):
        np.testing.assert_array_equal(ours[name], gold[name])

    def triples(ranks: dict[str, np.ndarray]) -> np.ndarray:
        order = np.lexsort((ranks['ranks_feat'], ranks['ranks_depth'], ranks['ranks_bev']))
        return np.stack([ranks[n][order] for n in names[:3]])

    np.testing.assert_array_equal(triples(ours), triples(gold))


def test_view_geometry(golden_dir: Path):
    g = _load_npz(golden_dir / 'fn_view_geometry.npz')
    vt = _geometry_vt(g, (25, 25, 8))  # 3.2 x 3.2 x 0.8 m
    torch.testing.assert_close(vt.grid_lower_bound, g['grid_lower_bound'], rtol=0, atol=0)
    torch.testing.assert_close(vt.grid_interval, g['grid_interval'], rtol=0, atol=0)
    torch.testing.assert_close(vt.grid_size, g['grid_size'], rtol=0, atol=0)
    cams = (g['in_sensor2ego'], g['in_intrins'], g['in_post_rots'], g['in_post_trans'])
    coor = vt.get_lidar_coor(*cams, g['in_bda'])
    torch.testing.assert_close(coor, g['out_coor'], rtol=0, atol=1e-4)
    torch.testing.assert_close(vt.get_mlp_input(*cams, g['in_bda']), g['out_mlp_input'],
                               rtol=0, atol=1e-4)
    _assert_same_ranks(
        voxel_pooling_prepare_v2(coor, vt.grid_lower_bound, vt.grid_interval, (25, 25, 8)), g, '')

    fine = _geometry_vt(g, (200, 200, 16))  # 0.4 m
    torch.testing.assert_close(fine.grid_size, g['fine_grid_size'], rtol=0, atol=0)
    fine_cams = [t[:1] for t in cams]
    fine_coor = fine.get_lidar_coor(*fine_cams, g['fine_in_bda'])
    torch.testing.assert_close(fine_coor, g['fine_out_coor'], rtol=0, atol=1e-4)
    _assert_same_ranks(
        voxel_pooling_prepare_v2(fine_coor, fine.grid_lower_bound, fine.grid_interval,
                                 (200, 200, 16)), g, 'fine_')


def test_stereo_cost_volume(golden_dir: Path):
    g = _load_npz(golden_dir / 'fn_stereo_cost_volume.npz')
    frustum = create_frustum([1.0, 45.0, 4.0], (64, 176), downsample=4)
    torch.testing.assert_close(frustum, g['in_frustum'], rtol=0, atol=0)
    grid = stereo_sampling_grid(g['in_frustum'], g['in_k2s_sensor'], g['in_intrins'],
                                g['in_post_rots'], g['in_post_trans'], (64, 176))
    torch.testing.assert_close(grid, g['out_grid'], rtol=0, atol=1e-4)
    cost = stereo_cost_volume(g['in_prev'], g['in_curr'], grid, 11, float(g['bias']))
    torch.testing.assert_close(cost, g['out_cost_volume'], rtol=0, atol=1e-5)


@pytest.mark.parametrize('case', ['case0', 'case1'])
def test_depth_supervision(golden_dir: Path, case: str):
    g = _load_npz(golden_dir / 'fn_depth_supervision.npz')
    assert int(g['downsample']) == 16
    labels = downsample_gt_depth(g[f'{case}_in_gt_depth'], 16, g['depth_cfg'].tolist(), 88)
    torch.testing.assert_close(labels, g[f'{case}_out_downsampled_onehot'], rtol=0, atol=0)
    loss = depth_bce_loss(labels, g[f'{case}_in_depth_preds'], float(g['loss_depth_weight']))
    torch.testing.assert_close(loss, g[f'{case}_out_loss_depth'], rtol=1e-5, atol=0)


@pytest.fixture(scope='module')
def tiny(golden_dir: Path) -> tuple[LSSViewTransformerBEVStereo, dict[str, torch.Tensor]]:
    """The tiny model's view transformer (its README config) with its weights, in eval mode."""
    vt = LSSViewTransformerBEVStereo(
        geometry=occ3d_geometry(grid_shape=(32, 32, 8), depth_bins=[1.0, 45.0, 4.0]),
        input_size=(64, 192), downsample=16, in_channels=64, out_channels=8, sid=False,
        collapse_z=False, loss_depth_weight=0.05,
        depthnet_cfg=dict(use_dcn=False, aspp_mid_channels=8, stereo=True, bias=5.0))
    state = torch.load(golden_dir / 'tiny_model_state_dict.pt', weights_only=True)
    vt.load_state_dict({k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)},
                       strict=True)
    return vt.eval(), _load_npz(golden_dir / 'tiny_model_forward.npz')


@pytest.mark.parametrize('case', ['c0', 'c1'])
@torch.no_grad()
def test_tiny_model_view_transformer(tiny, case: str):
    """Frame passes t (stereo prev t-1) and t-1 (stereo prev t-2) from the recorded inputs."""
    vt, g = tiny
    cameras = CameraInputs(imgs=g['in_imgs'], sensor2egos=g['in_sensor2egos'],
                           ego2globals=g['in_ego2globals'], intrins=g['in_intrins'],
                           post_rots=g['in_post_rots'], post_trans=g['in_post_trans'],
                           bda=g[f'{case}_in_bda'])
    inputs = prepare_temporal_inputs(cameras, num_frames=3)
    assert inputs.curr2adjsensors[2] is None
    for fid, (name, prev_name) in enumerate([('t', 'tm1'), ('tm1', 'tm2')]):
        torch.testing.assert_close(inputs.sensor2keyegos[fid], g[f'{case}_sensor2keyego_{name}'],
                                   rtol=0, atol=1e-4)
        torch.testing.assert_close(inputs.curr2adjsensors[fid],
                                   g[f'{case}_curr2adjsensor_{name}'], rtol=0, atol=1e-4)
        cams = (inputs.intrins[fid], inputs.post_rots[fid], inputs.post_trans[fid])
        mlp_input = vt.get_mlp_input(inputs.sensor2keyegos[0], *cams, inputs.bda)
        torch.testing.assert_close(mlp_input, g[f'{case}_mlp_input_{name}'], rtol=0, atol=1e-4)
        curr, prev = g[f'{case}_stereo_feat_{name}'], g[f'{case}_stereo_feat_{prev_name}']
        feats = g[f'{case}_img_neck_{name}'].view(1, 2, 64, 4, 12)  # (B*N, ...) -> (B, N, ...)

        cost = vt.depth_net.cost_volume(vt.cv_frustum, prev, curr, inputs.curr2adjsensors[fid],
                                        *cams, (64, 192))
        torch.testing.assert_close(cost, g[f'{case}_cost_volume_{name}'], **TOL)
        raw = vt.depth_net(feats.flatten(0, 1), mlp_input, cost)
        torch.testing.assert_close(raw, g[f'{case}_depthnet_out_{name}'], **TOL)
        bev_feat, depth = vt(feats, inputs.sensor2keyegos[fid], *cams, inputs.bda, mlp_input,
                             stereo_curr=curr, stereo_prev=prev,
                             k2s_sensor=inputs.curr2adjsensors[fid])
        torch.testing.assert_close(depth, g[f'{case}_depth_{name}'], **TOL)
        torch.testing.assert_close(bev_feat, g[f'{case}_lss_bev_feat_{name}'], **TOL)
