"""Shared pytest setup: registries, seeding, the ``cuda`` marker and the reference folder."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdet3d.utils import register_all_modules

REPO_ROOT = Path(__file__).resolve().parents[1]
# The original implementation's golden vectors and state-dict manifest ship with the repository
# (tests/data, see its README); OCCFLOWNET_REFERENCE points the suite at another copy of the same
# layout (<dir>/golden/*, <dir>/occflownet-state-dict-keys.json).
REFERENCE_DIR = Path(os.environ.get('OCCFLOWNET_REFERENCE', REPO_ROOT / 'tests' / 'data'))
GOLDEN_DIR = REFERENCE_DIR / 'golden'

register_all_modules()
# The suite runs under pytest-xdist with one worker per core: one intra-op thread each avoids
# oversubscription (small convolutions get orders of magnitude slower when threads compete).
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_cuda = pytest.mark.skip(reason='needs a CUDA device')
    for item in items:
        if 'cuda' in item.keywords:
            item.add_marker(skip_cuda)


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope='session')
def golden_dir() -> Path:
    """Folder of the original implementation's golden vectors (tests/data/golden)."""
    if not GOLDEN_DIR.is_dir():
        pytest.fail(f'golden vectors not found at {GOLDEN_DIR}; set OCCFLOWNET_REFERENCE')
    return GOLDEN_DIR
