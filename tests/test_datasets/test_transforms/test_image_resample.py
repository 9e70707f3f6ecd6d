"""resize_crop: byte-identical to PIL's bicubic resize + crop (+ flip), computed in the window."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmdet3d.datasets.transforms.image_resample import resample_weights, resize_crop


def pil_resize_crop(img: np.ndarray, size, box, flip: bool) -> np.ndarray:
    out = Image.fromarray(img).resize(size).crop(box)
    if flip:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(out)


def textured_image(height: int, width: int, seed: int) -> np.ndarray:
    """Noise, hard edges and saturated areas (the bicubic lobes overshoot and clip there)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    img[: height // 3, : width // 2] = 255
    img[height // 2:, width // 3: width // 2] = 0
    return img


# (resized size, window) for a 60 x 100 source: inside, past the right/bottom edge, starting
# left of/above the image, wholly outside, upscaled, same size, paper-like scales
CASES = [
    ((88, 52), (3, 20, 83, 52)),
    ((82, 49), (0, 17, 88, 49)),
    ((95, 57), (-4, -3, 70, 40)),
    ((90, 54), (100, 60, 120, 70)),
    ((130, 78), (7, 30, 117, 78)),
    ((100, 60), (10, 5, 90, 55)),
    ((1, 1), (0, 0, 1, 1)),
    ((99, 59), (0, 0, 99, 59)),
]


@pytest.mark.parametrize('size, box', CASES)
@pytest.mark.parametrize('flip', [False, True])
def test_equals_pil(size, box, flip: bool) -> None:
    img = textured_image(60, 100, seed=len(CASES) * size[0] + box[0])
    out = resize_crop(img, size, box, flip)
    np.testing.assert_array_equal(out, pil_resize_crop(img, size, box, flip))


def test_equals_pil_at_paper_size() -> None:
    """A 1600x900 camera image to the paper's 1408x512 window, the train scales' extremes."""
    img = textured_image(900, 1600, seed=1)
    for resize in (0.82, 0.99):
        size = (int(1600 * resize), int(900 * resize))
        box = (17, size[1] - 512, 17 + 1408, size[1])
        np.testing.assert_array_equal(resize_crop(img, size, box, True),
                                      pil_resize_crop(img, size, box, True))


def test_weights_sum_to_one_and_identity_at_scale_one() -> None:
    start, taps, weights = resample_weights(100, 88, 0, 88)
    np.testing.assert_allclose(weights.sum(1) / (1 << 22), 1.0, atol=2e-6)
    assert (weights[np.arange(weights.shape[1])[None] >= taps[:, None]] == 0).all()
    start, taps, weights = resample_weights(50, 50, 0, 50)
    centre = weights.argmax(1) + start
    np.testing.assert_array_equal(centre, np.arange(50))
    assert (weights.max(1) == 1 << 22).all() and (weights.sum(1) == 1 << 22).all()


def test_rejects_non_rgb_uint8() -> None:
    with pytest.raises(ValueError, match=r'\(H, W, 3\) uint8'):
        resize_crop(np.zeros((4, 4, 3), dtype=np.float32), (2, 2), (0, 0, 2, 2))
    with pytest.raises(ValueError, match=r'\(H, W, 3\) uint8'):
        resize_crop(np.zeros((4, 4), dtype=np.uint8), (2, 2), (0, 0, 2, 2))
