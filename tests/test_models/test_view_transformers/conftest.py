"""Run the view-transformer tests single-threaded: on an oversubscribed CPU, intra-op thread
barriers make the small convolutions here hundreds of times slower."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope='module')
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
