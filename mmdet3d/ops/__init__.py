"""Custom operators (compiled kernels with pure-PyTorch references)."""
