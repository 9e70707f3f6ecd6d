// BEVPool v2 CUDA kernels. Forward: one thread per (interval, channel), each voxel written once
// (no atomics). Backward: the hit voxels' gradient rows are gathered per interval, then one
// thread per (feat row, channel) over the points regrouped by ranks_feat, and one thread per
// point for the depth gradient. Accumulation is in float for
// float16 / bfloat16 inputs (at::opmath_type). The stream comes from c10/cuda/CUDAStream.h.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <tuple>

#include "bev_pool.h"

namespace bev_pool_v2 {
namespace {

constexpr int kThreads = 256;

inline unsigned int num_blocks(int64_t num_threads) {
  return static_cast<unsigned int>((num_threads + kThreads - 1) / kThreads);
}

// out_cl: (B*Z*Y*X, C) channels last, zero-filled.
template <typename scalar_t>
__global__ void forward_kernel(const scalar_t* __restrict__ depth,
                               const scalar_t* __restrict__ feat,
                               const int32_t* __restrict__ ranks_depth,
                               const int32_t* __restrict__ ranks_feat,
                               const int32_t* __restrict__ ranks_bev,
                               const int32_t* __restrict__ interval_starts,
                               const int32_t* __restrict__ interval_lengths,
                               int64_t num_intervals, int64_t channels,
                               scalar_t* __restrict__ out_cl) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= num_intervals * channels) return;
  const int64_t interval = idx / channels;
  const int64_t c = idx % channels;
  const int64_t start = interval_starts[interval];
  const int64_t stop = start + interval_lengths[interval];
  if (stop == start) return;
  acc_t acc = 0;
  for (int64_t p = start; p < stop; ++p) {
    acc += static_cast<acc_t>(depth[ranks_depth[p]]) *
           static_cast<acc_t>(feat[static_cast<int64_t>(ranks_feat[p]) * channels + c]);
  }
  out_cl[static_cast<int64_t>(ranks_bev[start]) * channels + c] = static_cast<scalar_t>(acc);
}

// interval_grad (I, C): the output gradient row of each interval's voxel, channels last;
// point_interval (P,), preset to -1: the interval of each point.
template <typename scalar_t>
__global__ void gather_kernel(const scalar_t* __restrict__ out_grad,
                              const int32_t* __restrict__ ranks_bev,
                              const int32_t* __restrict__ interval_starts,
                              const int32_t* __restrict__ interval_lengths,
                              int64_t num_intervals, int64_t channels, int64_t voxels,
                              scalar_t* __restrict__ interval_grad,
                              int32_t* __restrict__ point_interval) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= num_intervals * channels) return;
  const int64_t interval = idx / channels;
  const int64_t c = idx % channels;
  const int64_t start = interval_starts[interval];
  const int64_t length = interval_lengths[interval];
  if (length == 0) return;
  const int64_t bev = ranks_bev[start];
  interval_grad[idx] = out_grad[((bev / voxels) * channels + c) * voxels + bev % voxels];
  for (int64_t p = start + c; p < start + length; p += channels) {
    point_interval[p] = static_cast<int32_t>(interval);
  }
}

// feat_grad (rows, C), zero-filled; rows[i] and its points order[row_starts[i] ...].
template <typename scalar_t>
__global__ void feat_grad_kernel(const scalar_t* __restrict__ interval_grad,
                                 const int32_t* __restrict__ point_interval,
                                 const scalar_t* __restrict__ depth,
                                 const int32_t* __restrict__ ranks_depth,
                                 const int64_t* __restrict__ order,
                                 const int64_t* __restrict__ rows,
                                 const int64_t* __restrict__ row_starts,
                                 const int64_t* __restrict__ row_lengths, int64_t num_rows,
                                 int64_t channels, scalar_t* __restrict__ feat_grad) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= num_rows * channels) return;
  const int64_t i = idx / channels;
  const int64_t c = idx % channels;
  const int64_t start = row_starts[i];
  const int64_t stop = start + row_lengths[i];
  acc_t acc = 0;
  for (int64_t j = start; j < stop; ++j) {
    const int64_t p = order[j];
    const int64_t interval = point_interval[p];
    if (interval < 0) continue;
    acc += static_cast<acc_t>(interval_grad[interval * channels + c]) *
           static_cast<acc_t>(depth[ranks_depth[p]]);
  }
  feat_grad[rows[i] * channels + c] = static_cast<scalar_t>(acc);
}

// point_grad (P,) in the accumulation type: d out / d depth of each point.
template <typename scalar_t>
__global__ void point_grad_kernel(const scalar_t* __restrict__ interval_grad,
                                  const int32_t* __restrict__ point_interval,
                                  const scalar_t* __restrict__ feat,
                                  const int32_t* __restrict__ ranks_feat, int64_t num_points,
                                  int64_t channels,
                                  at::opmath_type<scalar_t>* __restrict__ point_grad) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= num_points) return;
  const int64_t interval = point_interval[p];
  acc_t dot = 0;
  if (interval >= 0) {
    const scalar_t* grad = interval_grad + interval * channels;
    const scalar_t* row = feat + static_cast<int64_t>(ranks_feat[p]) * channels;
    for (int64_t c = 0; c < channels; ++c) {
      dot += static_cast<acc_t>(grad[c]) * static_cast<acc_t>(row[c]);
    }
  }
  point_grad[p] = dot;
}

}  // namespace

at::Tensor forward_cuda(const at::Tensor& depth, const at::Tensor& feat,
                        const at::Tensor& ranks_depth, const at::Tensor& ranks_feat,
                        const at::Tensor& ranks_bev, const at::Tensor& interval_starts,
                        const at::Tensor& interval_lengths, int64_t batch, int64_t size_z,
                        int64_t size_y, int64_t size_x) {
  const c10::cuda::CUDAGuard guard(depth.device());
  const int64_t channels = feat.size(4);
  at::Tensor out_cl = at::zeros({batch, size_z, size_y, size_x, channels}, feat.options());
  const int64_t num_threads = interval_starts.numel() * channels;
  if (num_threads > 0) {
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, depth.scalar_type(), "bev_pool_v2_forward_cuda", [&] {
          forward_kernel<scalar_t><<<num_blocks(num_threads), kThreads, 0, stream>>>(
              depth.data_ptr<scalar_t>(), feat.data_ptr<scalar_t>(),
              ranks_depth.data_ptr<int32_t>(), ranks_feat.data_ptr<int32_t>(),
              ranks_bev.data_ptr<int32_t>(), interval_starts.data_ptr<int32_t>(),
              interval_lengths.data_ptr<int32_t>(), interval_starts.numel(), channels,
              out_cl.data_ptr<scalar_t>());
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
  }
  // (B, Z, Y, X, C) -> (B, C, Z, Y, X)
  return out_cl.permute({0, 4, 1, 2, 3}).contiguous();
}

void backward_cuda(const at::Tensor& out_grad, const at::Tensor& depth, const at::Tensor& feat,
                   const at::Tensor& ranks_depth, const at::Tensor& ranks_feat,
                   const at::Tensor& ranks_bev, const at::Tensor& interval_starts,
                   const at::Tensor& interval_lengths, at::Tensor& depth_grad,
                   at::Tensor& feat_grad) {
  const c10::cuda::CUDAGuard guard(depth.device());
  const int64_t channels = feat.size(4);
  const int64_t voxels = out_grad.numel() / (out_grad.size(0) * channels);
  const int64_t num_points = ranks_depth.numel();
  const int64_t num_intervals = interval_starts.numel();
  feat_grad.zero_();
  if (num_points == 0 || num_intervals == 0) return;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  // regroup the points by feat row: rows[i] owns order[row_starts[i] : + row_lengths[i]]
  at::Tensor sorted_feat, order, rows, inverse, row_lengths;
  std::tie(sorted_feat, order) = at::sort(ranks_feat, /*stable=*/true, 0, false);
  std::tie(rows, inverse, row_lengths) =
      at::unique_consecutive(sorted_feat.to(at::kLong), false, true);
  const at::Tensor row_starts = row_lengths.cumsum(0) - row_lengths;
  const int64_t num_rows = rows.numel();
  at::Tensor point_interval = at::full({num_points}, -1, ranks_bev.options());
  at::Tensor interval_grad = at::empty({num_intervals, channels}, feat.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, depth.scalar_type(), "bev_pool_v2_backward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        gather_kernel<scalar_t><<<num_blocks(num_intervals * channels), kThreads, 0, stream>>>(
            out_grad.data_ptr<scalar_t>(), ranks_bev.data_ptr<int32_t>(),
            interval_starts.data_ptr<int32_t>(), interval_lengths.data_ptr<int32_t>(),
            num_intervals, channels, voxels, interval_grad.data_ptr<scalar_t>(),
            point_interval.data_ptr<int32_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        feat_grad_kernel<scalar_t><<<num_blocks(num_rows * channels), kThreads, 0, stream>>>(
            interval_grad.data_ptr<scalar_t>(), point_interval.data_ptr<int32_t>(),
            depth.data_ptr<scalar_t>(), ranks_depth.data_ptr<int32_t>(),
            order.data_ptr<int64_t>(), rows.data_ptr<int64_t>(), row_starts.data_ptr<int64_t>(),
            row_lengths.data_ptr<int64_t>(), num_rows, channels, feat_grad.data_ptr<scalar_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        at::Tensor point_grad =
            at::empty({num_points}, depth.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
        point_grad_kernel<scalar_t><<<num_blocks(num_points), kThreads, 0, stream>>>(
            interval_grad.data_ptr<scalar_t>(), point_interval.data_ptr<int32_t>(),
            feat.data_ptr<scalar_t>(), ranks_feat.data_ptr<int32_t>(), num_points, channels,
            point_grad.data_ptr<acc_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        // summed in the accumulation type, so repeated ranks_depth add up exactly
        at::Tensor grad_acc = at::zeros({depth.numel()}, point_grad.options());
        grad_acc.index_add_(0, ranks_depth, point_grad);
        depth_grad.copy_(grad_acc.view(depth.sizes()));
      });
}

}  // namespace bev_pool_v2
