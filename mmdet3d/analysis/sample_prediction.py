"""Predict chosen samples with a checkpoint and save them as ``tools/test.py --out`` does.

Lets the visualisation tool draw a checkpoint's prediction of a few sample tokens without a
test run over the whole split (``tools/visualize_occupancy.py --config CFG --checkpoint CKPT
--token T``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mmdet3d.evaluation.metrics.occ_sample import as_mapping, predicted_labels
from mmdet3d.formats.occ_predictions import save_occ_prediction
from mmdet3d.registry import DATASETS

from .render_inspection import build_model


@torch.no_grad()
def predict_tokens(cfg: Config, checkpoint: str, tokens: Sequence[str], out_dir: str,
                   device: str = 'cpu') -> list[str]:
    """Write ``<out_dir>/<scene>/<token>.npz`` (the first threshold's labels) per token.

    Args:
        cfg: the model's config; its test dataset (pipeline and info pkl) gives the samples.
        checkpoint: the weights (loaded through the project's checked checkpoint loader).
        tokens: sample tokens of the test dataset's info pkl.
        out_dir: root folder of the predictions.
        device: where the model runs. Defaults to 'cpu'.

    Returns:
        the written paths, in the order of ``tokens``.

    Raises:
        KeyError: a token that is not in the test dataset's info pkl.
    """
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    index_of = {dataset.get_data_info(i)['sample_idx']: i for i in range(len(dataset))}
    missing = [t for t in tokens if t not in index_of]
    if missing:
        raise KeyError(f'tokens {missing[:3]} are not in {cfg.test_dataloader.dataset.ann_file}')
    model = build_model(cfg, checkpoint, device)
    written = []
    for token in tokens:
        data = model.data_preprocessor(pseudo_collate([dataset[index_of[token]]]), False)
        (sample,) = model(**data, mode='predict')
        fields = as_mapping(sample)
        labels = predicted_labels(fields, 'predict_tokens')[0]
        written.append(save_occ_prediction(out_dir, str(fields['scene_name']), token,
                                           labels.cpu().numpy()))
    return written
