"""Print the environment: Python, torch/CUDA, mmengine, key packages and the bev_pool_v2 status.

    python tools/misc/collect_env.py
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from mmengine.utils.dl_utils import collect_env as mmengine_env  # noqa: E402

import mmdet3d  # noqa: E402
from mmdet3d.ops import ext_status  # noqa: E402


def collect_env() -> dict[str, str]:
    """mmengine's environment summary plus this package's version and extension status."""
    env = {k: str(v) for k, v in mmengine_env().items()}
    env['mmdet3d (OccFlowNet)'] = mmdet3d.__version__
    env['bev_pool_v2 extension'] = ext_status()
    for name in ('nerfacc', 'numpy', 'numba', 'nuscenes'):
        try:
            module = __import__(name)
            env[name] = getattr(module, '__version__', 'installed')
        except ImportError as e:
            env[name] = f'not importable ({e})'
    return env


if __name__ == '__main__':
    for key, value in collect_env().items():
        print(f'{key}: {value}')
