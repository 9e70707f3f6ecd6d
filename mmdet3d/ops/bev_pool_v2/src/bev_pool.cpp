// Python binding of BEVPool v2: input validation (device, dtype, contiguity, shapes and, on the
// CPU, index ranges) and dispatch to the CPU or CUDA kernels.
#include <torch/extension.h>

#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>

#include "bev_pool.h"

namespace bev_pool_v2 {
namespace {

using NamedTensor = std::pair<const char*, const at::Tensor*>;

void check_index_range(const char* name, const at::Tensor& index, int64_t upper) {
  if (index.numel() == 0) return;
  const auto [low, high] = at::aminmax(index);
  TORCH_CHECK(low.item<int64_t>() >= 0 && high.item<int64_t>() < upper, "bev_pool_v2: ", name,
              " must lie in [0, ", upper, "), got values in [", low.item<int64_t>(), ", ",
              high.item<int64_t>(), "]");
}

void check_inputs(const at::Tensor& depth, const at::Tensor& feat, const at::Tensor& ranks_depth,
                  const at::Tensor& ranks_feat, const at::Tensor& ranks_bev,
                  const at::Tensor& interval_starts, const at::Tensor& interval_lengths,
                  int64_t num_voxels) {
  TORCH_CHECK(depth.dim() == 5, "bev_pool_v2: depth must be (B, N, D, H, W), got ",
              depth.sizes());
  TORCH_CHECK(feat.dim() == 5, "bev_pool_v2: feat must be (B, N, H, W, C), got ", feat.sizes());
  TORCH_CHECK(depth.size(0) == feat.size(0) && depth.size(1) == feat.size(1) &&
                  depth.size(3) == feat.size(2) && depth.size(4) == feat.size(3),
              "bev_pool_v2: depth ", depth.sizes(), " and feat ", feat.sizes(),
              " disagree on (B, N, H, W)");
  TORCH_CHECK(feat.size(4) > 0, "bev_pool_v2: feat must have at least one channel");
  TORCH_CHECK(at::isFloatingType(depth.scalar_type()) && depth.scalar_type() == feat.scalar_type(),
              "bev_pool_v2: depth and feat must share one floating-point dtype, got ",
              depth.scalar_type(), " and ", feat.scalar_type());
  const std::vector<NamedTensor> all = {
      {"depth", &depth},         {"feat", &feat}, {"ranks_depth", &ranks_depth},
      {"ranks_feat", &ranks_feat}, {"ranks_bev", &ranks_bev},
      {"interval_starts", &interval_starts}, {"interval_lengths", &interval_lengths}};
  for (const auto& [name, tensor] : all) {
    TORCH_CHECK(tensor->device() == depth.device(), "bev_pool_v2: ", name, " is on ",
                tensor->device(), " but depth is on ", depth.device());
    TORCH_CHECK(tensor->is_contiguous(), "bev_pool_v2: ", name, " must be contiguous");
  }
  for (size_t i = 2; i < all.size(); ++i) {
    TORCH_CHECK(all[i].second->scalar_type() == at::kInt && all[i].second->dim() == 1,
                "bev_pool_v2: ", all[i].first, " must be a 1-D int32 tensor, got ",
                all[i].second->scalar_type(), " with shape ", all[i].second->sizes());
  }
  const int64_t num_points = ranks_depth.numel();
  TORCH_CHECK(ranks_feat.numel() == num_points && ranks_bev.numel() == num_points,
              "bev_pool_v2: ranks_depth, ranks_feat and ranks_bev must have the same length, got ",
              num_points, ", ", ranks_feat.numel(), ", ", ranks_bev.numel());
  TORCH_CHECK(interval_starts.numel() == interval_lengths.numel(),
              "bev_pool_v2: interval_starts and interval_lengths must have the same length, got ",
              interval_starts.numel(), " and ", interval_lengths.numel());
  if (depth.is_cuda()) {
#ifndef WITH_CUDA
    TORCH_CHECK(false, "bev_pool_v2: the extension was built without CUDA kernels");
#endif
    return;  // index ranges are not checked on the device (it would synchronise)
  }
  TORCH_CHECK(depth.device().is_cpu(), "bev_pool_v2: unsupported device ", depth.device());
  TORCH_CHECK(depth.scalar_type() == at::kFloat || depth.scalar_type() == at::kDouble,
              "bev_pool_v2: the CPU kernels take float32 or float64, got ", depth.scalar_type());
  check_index_range("ranks_depth", ranks_depth, depth.numel());
  check_index_range("ranks_feat", ranks_feat, feat.numel() / feat.size(4));
  check_index_range("ranks_bev", ranks_bev, num_voxels);
  if (interval_starts.numel() > 0) {
    check_index_range("interval_starts", interval_starts, std::max<int64_t>(num_points, 1));
    check_index_range("interval_lengths", interval_lengths, num_points + 1);
    const int64_t last = (interval_starts.to(at::kLong) + interval_lengths).max().item<int64_t>();
    TORCH_CHECK(last <= num_points, "bev_pool_v2: an interval ends at ", last,
                ", past the number of points ", num_points);
  }
}

at::Tensor forward(const at::Tensor& depth, const at::Tensor& feat, const at::Tensor& ranks_depth,
                   const at::Tensor& ranks_feat, const at::Tensor& ranks_bev,
                   const at::Tensor& interval_starts, const at::Tensor& interval_lengths,
                   int64_t batch, int64_t size_z, int64_t size_y, int64_t size_x) {
  TORCH_CHECK(batch == depth.size(0) && size_z > 0 && size_y > 0 && size_x > 0,
              "bev_pool_v2: the output grid (B, Z, Y, X) = (", batch, ", ", size_z, ", ", size_y,
              ", ", size_x, ") must be positive with B = depth.size(0) = ", depth.size(0));
  check_inputs(depth, feat, ranks_depth, ranks_feat, ranks_bev, interval_starts,
               interval_lengths, batch * size_z * size_y * size_x);
#ifdef WITH_CUDA
  if (depth.is_cuda()) {
    return forward_cuda(depth, feat, ranks_depth, ranks_feat, ranks_bev, interval_starts,
                        interval_lengths, batch, size_z, size_y, size_x);
  }
#endif
  return forward_cpu(depth, feat, ranks_depth, ranks_feat, ranks_bev, interval_starts,
                     interval_lengths, batch, size_z, size_y, size_x);
}

std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& out_grad, const at::Tensor& depth,
                                            const at::Tensor& feat, const at::Tensor& ranks_depth,
                                            const at::Tensor& ranks_feat,
                                            const at::Tensor& ranks_bev,
                                            const at::Tensor& interval_starts,
                                            const at::Tensor& interval_lengths) {
  TORCH_CHECK(out_grad.dim() == 5 && out_grad.size(0) == depth.size(0) &&
                  out_grad.size(1) == feat.size(4),
              "bev_pool_v2: out_grad must be (B, C, Z, Y, X) with B = ", depth.size(0),
              " and C = ", feat.size(4), ", got ", out_grad.sizes());
  TORCH_CHECK(out_grad.scalar_type() == feat.scalar_type(), "bev_pool_v2: out_grad dtype ",
              out_grad.scalar_type(), " differs from feat dtype ", feat.scalar_type());
  TORCH_CHECK(out_grad.is_contiguous() && out_grad.device() == depth.device(),
              "bev_pool_v2: out_grad must be contiguous and on ", depth.device());
  check_inputs(depth, feat, ranks_depth, ranks_feat, ranks_bev, interval_starts,
               interval_lengths, out_grad.numel() / feat.size(4));
  at::Tensor depth_grad = at::zeros_like(depth);
  at::Tensor feat_grad = at::empty_like(feat);
#ifdef WITH_CUDA
  if (depth.is_cuda()) {
    backward_cuda(out_grad, depth, feat, ranks_depth, ranks_feat, ranks_bev, interval_starts,
                  interval_lengths, depth_grad, feat_grad);
    return {depth_grad, feat_grad};
  }
#endif
  backward_cpu(out_grad, depth, feat, ranks_depth, ranks_feat, ranks_bev, interval_starts,
               interval_lengths, depth_grad, feat_grad);
  return {depth_grad, feat_grad};
}

bool with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace
}  // namespace bev_pool_v2

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "BEVPool v2: sum of depth x feature of the frustum points in each voxel";
  m.def("forward", &bev_pool_v2::forward,
        "forward(depth, feat, ranks_depth, ranks_feat, ranks_bev, interval_starts, "
        "interval_lengths, B, Z, Y, X) -> (B, C, Z, Y, X)");
  m.def("backward", &bev_pool_v2::backward,
        "backward(out_grad (B, C, Z, Y, X), depth, feat, ranks_depth, ranks_feat, ranks_bev, "
        "interval_starts, interval_lengths) -> (depth_grad, feat_grad)");
  m.def("with_cuda", &bev_pool_v2::with_cuda, "whether the CUDA kernels were compiled");
}
