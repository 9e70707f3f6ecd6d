// BEVPool v2 kernels: declarations shared by the binding and the CPU / CUDA implementations.
//
// Layouts: depth (B, N, D, H, W); feat (B, N, H, W, C); int32 ranks of length P (flat indices
// into depth, into the rows of feat, into the (B, Z, Y, X) grid), sorted by ranks_bev; intervals
// of equal ranks_bev given by interval_starts / interval_lengths (length I).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace bev_pool_v2 {

// Returns the pooled features (B, C, Z, Y, X). Inputs are already validated.
at::Tensor forward_cpu(const at::Tensor& depth, const at::Tensor& feat,
                       const at::Tensor& ranks_depth, const at::Tensor& ranks_feat,
                       const at::Tensor& ranks_bev, const at::Tensor& interval_starts,
                       const at::Tensor& interval_lengths, int64_t batch, int64_t size_z,
                       int64_t size_y, int64_t size_x);

// out_grad: (B, C, Z, Y, X) contiguous gradient of the output. Writes the gradients of depth and
// feat into depth_grad (zero-filled, shape of depth) and feat_grad (shape of feat, any content).
void backward_cpu(const at::Tensor& out_grad, const at::Tensor& depth, const at::Tensor& feat,
                  const at::Tensor& ranks_depth, const at::Tensor& ranks_feat,
                  const at::Tensor& ranks_bev, const at::Tensor& interval_starts,
                  const at::Tensor& interval_lengths, at::Tensor& depth_grad,
                  at::Tensor& feat_grad);

#ifdef WITH_CUDA
at::Tensor forward_cuda(const at::Tensor& depth, const at::Tensor& feat,
                        const at::Tensor& ranks_depth, const at::Tensor& ranks_feat,
                        const at::Tensor& ranks_bev, const at::Tensor& interval_starts,
                        const at::Tensor& interval_lengths, int64_t batch, int64_t size_z,
                        int64_t size_y, int64_t size_x);

void backward_cuda(const at::Tensor& out_grad, const at::Tensor& depth, const at::Tensor& feat,
                   const at::Tensor& ranks_depth, const at::Tensor& ranks_feat,
                   const at::Tensor& ranks_bev, const at::Tensor& interval_starts,
                   const at::Tensor& interval_lengths, at::Tensor& depth_grad,
                   at::Tensor& feat_grad);
#endif

}  // namespace bev_pool_v2
