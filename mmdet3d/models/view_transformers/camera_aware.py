"""Camera-aware conditioning of the DepthNet (spec 2.7.2): the 27-value camera vector, its MLP and
the squeeze-excitation gate it drives."""
from __future__ import annotations

import torch
from torch import Tensor, nn

MLP_INPUT_DIM = 27


def camera_mlp_input(sensor2ego: Tensor, intrins: Tensor, post_rots: Tensor, post_trans: Tensor,
                     bda: Tensor) -> Tensor:
    """The 27 camera parameters each camera's depth prediction is conditioned on.

    Order: fx, fy, cx, cy; post_rot[0,0], post_rot[0,1], post_tran[0], post_rot[1,0],
    post_rot[1,1], post_tran[1]; bda[0,0], bda[0,1], bda[1,0], bda[1,1], bda[2,2]; the first three
    rows of ``sensor2ego`` row-major (12 values).

    Args:
        sensor2ego: (B, N, 4, 4) camera -> key ego of the KEY frame (also for adjacent frames).
        intrins: (B, N, 3, 3) K of the frame.
        post_rots: (B, N, 3, 3) image augmentation of the frame.
        post_trans: (B, N, 3) image augmentation translation of the frame.
        bda: (B, 3, 3) BEV augmentation.

    Returns:
        (B, N, 27).
    """
    batch, cams = sensor2ego.shape[:2]
    bda = bda.view(batch, 1, 3, 3).expand(batch, cams, 3, 3)  # (B, 3, 3) -> (B, N, 3, 3)
    values = torch.stack([
        intrins[:, :, 0, 0], intrins[:, :, 1, 1], intrins[:, :, 0, 2], intrins[:, :, 1, 2],
        post_rots[:, :, 0, 0], post_rots[:, :, 0, 1], post_trans[:, :, 0],
        post_rots[:, :, 1, 0], post_rots[:, :, 1, 1], post_trans[:, :, 1],
        bda[:, :, 0, 0], bda[:, :, 0, 1], bda[:, :, 1, 0], bda[:, :, 1, 1], bda[:, :, 2, 2],
    ], dim=-1)  # (B, N, 15)
    extrinsics = sensor2ego[:, :, :3, :].reshape(batch, cams, 12)  # (B, N, 3, 4) -> (B, N, 12)
    return torch.cat([values, extrinsics], dim=-1)


class Mlp(nn.Module):
    """Linear (``fc1``) -> ReLU -> Linear (``fc2``); dropout-free, as configured in the original.

    Args:
        in_features: input width.
        hidden_features: hidden width.
        out_features: output width.
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., in_features) -> (..., out_features)."""
        return self.fc2(self.act(self.fc1(x)))


class SELayer(nn.Module):
    """Gate features with a vector: ``x * sigmoid(conv_expand(relu(conv_reduce(x_se))))``.

    Args:
        channels: channels of the features and of the gating vector (1x1 convs with bias).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, channels, kernel_size=1, bias=True)
        self.act1 = nn.ReLU()
        self.conv_expand = nn.Conv2d(channels, channels, kernel_size=1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor, x_se: Tensor) -> Tensor:
        """x: (B, C, H, W), x_se: (B, C, 1, 1) -> (B, C, H, W)."""
        x_se = self.conv_expand(self.act1(self.conv_reduce(x_se)))
        return x * self.gate(x_se)
