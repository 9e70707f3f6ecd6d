"""fit_fields.py: free voxel fields fitted to a config's losses learn what the rays show."""
from __future__ import annotations

from tools.analysis_tools import fit_fields


def test_fitted_fields_learn_the_ground_from_the_render_losses(tiny_render_config, small_grid_cli,
                                                              tmp_path):
    """80 Adam steps of 2048 rays on one sample of the one-scene world (40x40x8 grid of 2 m
    cells): the fields start free everywhere (mIoU 0) and learn the ground the rays end on
    (measured, any thread count: mIoU 11.10, driveable surface IoU 20.9 against a 25.4
    ceiling at 2 m cells, 0.3 % of its voxels missed)."""
    out = tmp_path / 'fit.json'
    summary = fit_fields.main([tiny_render_config, '--split', 'train', '--max-samples', '1',
                               '--iters', '80', '--tau', '0.1', '--json', str(out),
                               '--no-progress', '--cfg-options', *small_grid_cli,
                               'model.rays_batch_size=2048'])
    assert out.exists() and summary['iters'] == 80 and len(summary['final_losses']) == 1
    ground = summary['per_class']['driveable_surface']
    assert ground['iou'] > 8 and ground['missed_occupied'] < 10
    assert summary['miou'] > 3
