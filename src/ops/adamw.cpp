// AdamW dispatch (ops/adamw.h): checks, then the kernel of the tensors' device (ops/dispatch.h): the CPU
// kernel of ops/cpu/adamw.h or its CUDA twin of ops/cuda/adamw.h, which take the same arguments.
#include "ops/adamw.h"

#include "ops/cpu/adamw.h"
#include "ops/cuda/adamw.h"
#include "ops/dispatch.h"

namespace prores::ops {

void adamw_step(const Tensor& params, const Tensor& grads, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                const std::vector<AdamWSegment>& segments, const AdamWUpdate& u) {
  constexpr const char* op = "adamw_step";
  const int64_t n = params.numel();
  detail::check_dtype(op, DType::F32,
                      {{"params", params}, {"grads", grads}, {"exp_avg", exp_avg}, {"exp_avg_sq", exp_avg_sq}});
  for (const detail::NamedTensor& t :
       {detail::NamedTensor{"grads", grads}, {"exp_avg", exp_avg}, {"exp_avg_sq", exp_avg_sq}})
    PRORES_CHECK(t.tensor.numel() == n, op, ": ", t.name, " has shape ", t.tensor.shape_string(), ", expected ", n,
                 " elements like params ", params.shape_string());
  PRORES_CHECK(u.step >= 1, op, ": step count must be >= 1, got ", u.step);
  for (const AdamWSegment& s : segments)
    PRORES_CHECK(s.offset >= 0 && s.count >= 0 && s.count <= n - s.offset, op, ": segment [", s.offset, ", ",
                 s.offset + s.count, ") is not within the ", n, " elements");
  detail::dispatch(op, {{"params", params}, {"grads", grads}, {"exp_avg", exp_avg}, {"exp_avg_sq", exp_avg_sq}},
                   [&](auto be) {
                     PRORES_KERNEL(be, adamw_step)(params.as<float>(), grads.as<float>(), exp_avg.as<float>(),
                                                   exp_avg_sq.as<float>(), segments.data(),
                                                   static_cast<int64_t>(segments.size()), u);
                   });
}

}  // namespace prores::ops
