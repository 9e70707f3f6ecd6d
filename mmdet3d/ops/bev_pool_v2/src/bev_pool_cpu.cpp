// BEVPool v2 CPU kernels, parallelised with at::parallel_for. The (points x C) product is never
// materialised: every output row is accumulated in a C-sized buffer. Each parallel task writes
// disjoint rows and sums in a fixed order, so results do not depend on the number of threads.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "bev_pool.h"

namespace bev_pool_v2 {
namespace {

constexpr int64_t kGrain = 64;

// out (B, C, V) with V = Z * Y * X: one task per interval of equal ranks_bev.
template <typename scalar_t>
void forward_kernel(const scalar_t* depth, const scalar_t* feat, const int32_t* ranks_depth,
                    const int32_t* ranks_feat, const int32_t* ranks_bev,
                    const int32_t* interval_starts, const int32_t* interval_lengths,
                    int64_t num_intervals, int64_t channels, int64_t voxels, scalar_t* out) {
  using acc_t = at::opmath_type<scalar_t>;
  at::parallel_for(0, num_intervals, kGrain, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> acc(channels);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t start = interval_starts[i];
      const int64_t stop = start + interval_lengths[i];
      if (stop == start) continue;
      std::fill(acc.begin(), acc.end(), acc_t(0));
      for (int64_t p = start; p < stop; ++p) {
        const acc_t weight = depth[ranks_depth[p]];
        const scalar_t* row = feat + static_cast<int64_t>(ranks_feat[p]) * channels;
        for (int64_t c = 0; c < channels; ++c) acc[c] += weight * static_cast<acc_t>(row[c]);
      }
      const int64_t bev = ranks_bev[start];
      scalar_t* dst = out + (bev / voxels) * channels * voxels + bev % voxels;
      for (int64_t c = 0; c < channels; ++c) dst[c * voxels] = static_cast<scalar_t>(acc[c]);
    }
  });
}

// The gradient rows of the hit voxels are first gathered into a compact (I, C) buffer (channels
// last, so each point reads one contiguous row; cheaper than transposing the whole grid). Points
// are then grouped by feat row (stable counting sort): one task per feat row computes that row's
// gradient and the per-point depth gradients; the latter are scattered serially, which is exact
// even when ranks_depth repeats. Points outside every interval get no gradient, as they add
// nothing in the forward pass.
template <typename scalar_t>
void backward_kernel(const scalar_t* out_grad, const scalar_t* depth, const scalar_t* feat,
                     const int32_t* ranks_depth, const int32_t* ranks_feat,
                     const int32_t* ranks_bev, const int32_t* interval_starts,
                     const int32_t* interval_lengths, int64_t num_points, int64_t num_intervals,
                     int64_t num_rows, int64_t channels, int64_t voxels, scalar_t* depth_grad,
                     scalar_t* feat_grad) {
  using acc_t = at::opmath_type<scalar_t>;
  std::vector<scalar_t> interval_grad(num_intervals * channels);
  std::vector<int32_t> point_interval(num_points, -1);
  at::parallel_for(0, num_intervals, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t start = interval_starts[i];
      const int64_t stop = start + interval_lengths[i];
      if (stop == start) continue;
      for (int64_t p = start; p < stop; ++p) point_interval[p] = static_cast<int32_t>(i);
      const int64_t bev = ranks_bev[start];
      const scalar_t* src = out_grad + (bev / voxels) * channels * voxels + bev % voxels;
      for (int64_t c = 0; c < channels; ++c) interval_grad[i * channels + c] = src[c * voxels];
    }
  });

  std::vector<int64_t> row_start(num_rows + 1, 0);
  for (int64_t p = 0; p < num_points; ++p) ++row_start[ranks_feat[p] + 1];
  for (int64_t r = 0; r < num_rows; ++r) row_start[r + 1] += row_start[r];
  std::vector<int64_t> cursor(row_start.begin(), row_start.end() - 1);
  std::vector<int32_t> order(num_points);
  for (int64_t p = 0; p < num_points; ++p) order[cursor[ranks_feat[p]]++] = p;

  std::vector<acc_t> point_grad(num_points, acc_t(0));
  at::parallel_for(0, num_rows, kGrain, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> acc(channels);
    for (int64_t r = begin; r < end; ++r) {
      std::fill(acc.begin(), acc.end(), acc_t(0));
      const scalar_t* row = feat + r * channels;
      for (int64_t j = row_start[r]; j < row_start[r + 1]; ++j) {
        const int64_t p = order[j];
        if (point_interval[p] < 0) continue;
        const scalar_t* grad = interval_grad.data() + point_interval[p] * channels;
        const acc_t weight = depth[ranks_depth[p]];
        acc_t dot = 0;
        for (int64_t c = 0; c < channels; ++c) {
          const acc_t g = grad[c];
          acc[c] += g * weight;
          dot += g * static_cast<acc_t>(row[c]);
        }
        point_grad[p] = dot;
      }
      scalar_t* dst = feat_grad + r * channels;
      for (int64_t c = 0; c < channels; ++c) dst[c] = static_cast<scalar_t>(acc[c]);
    }
  });
  for (int64_t p = 0; p < num_points; ++p) {
    depth_grad[ranks_depth[p]] = static_cast<acc_t>(depth_grad[ranks_depth[p]]) + point_grad[p];
  }
}

}  // namespace

at::Tensor forward_cpu(const at::Tensor& depth, const at::Tensor& feat,
                       const at::Tensor& ranks_depth, const at::Tensor& ranks_feat,
                       const at::Tensor& ranks_bev, const at::Tensor& interval_starts,
                       const at::Tensor& interval_lengths, int64_t batch, int64_t size_z,
                       int64_t size_y, int64_t size_x) {
  const int64_t channels = feat.size(4);
  const int64_t voxels = size_z * size_y * size_x;
  at::Tensor out = at::zeros({batch, channels, size_z, size_y, size_x}, feat.options());
  AT_DISPATCH_FLOATING_TYPES(depth.scalar_type(), "bev_pool_v2_forward_cpu", [&] {
    forward_kernel<scalar_t>(depth.data_ptr<scalar_t>(), feat.data_ptr<scalar_t>(),
                             ranks_depth.data_ptr<int32_t>(), ranks_feat.data_ptr<int32_t>(),
                             ranks_bev.data_ptr<int32_t>(), interval_starts.data_ptr<int32_t>(),
                             interval_lengths.data_ptr<int32_t>(), interval_starts.numel(),
                             channels, voxels, out.data_ptr<scalar_t>());
  });
  return out;
}

void backward_cpu(const at::Tensor& out_grad, const at::Tensor& depth, const at::Tensor& feat,
                  const at::Tensor& ranks_depth, const at::Tensor& ranks_feat,
                  const at::Tensor& ranks_bev, const at::Tensor& interval_starts,
                  const at::Tensor& interval_lengths, at::Tensor& depth_grad,
                  at::Tensor& feat_grad) {
  const int64_t channels = feat.size(4);
  const int64_t voxels = out_grad.numel() / (out_grad.size(0) * channels);
  AT_DISPATCH_FLOATING_TYPES(depth.scalar_type(), "bev_pool_v2_backward_cpu", [&] {
    backward_kernel<scalar_t>(
        out_grad.data_ptr<scalar_t>(), depth.data_ptr<scalar_t>(), feat.data_ptr<scalar_t>(),
        ranks_depth.data_ptr<int32_t>(), ranks_feat.data_ptr<int32_t>(),
        ranks_bev.data_ptr<int32_t>(), interval_starts.data_ptr<int32_t>(),
        interval_lengths.data_ptr<int32_t>(), ranks_depth.numel(), interval_starts.numel(),
        feat.numel() / channels, channels, voxels, depth_grad.data_ptr<scalar_t>(),
        feat_grad.data_ptr<scalar_t>());
  });
}

}  // namespace bev_pool_v2
