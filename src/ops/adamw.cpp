// AdamW dispatch for device tensors (ops/adamw.h): checks, then the CUDA kernel of ops/cuda/adamw.h.
#include "ops/adamw.h"

#include "ops/device_check.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/adamw.h"
#endif

namespace prores::ops {

void adamw_step(const Tensor& params, const Tensor& grads, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                const AdamWUpdate& u) {
  constexpr const char* op = "adamw_step";
  for (const Tensor* t : {&grads, &exp_avg, &exp_avg_sq})
    PRORES_CHECK(t->numel() == params.numel() && t->dtype == DType::F32 && t->device == params.device, op,
                 ": params, grads and moments must be f32 of ", params.numel(), " elements on one device");
  PRORES_CHECK(params.dtype == DType::F32, op, ": params must be f32, got ", dtype_name(params.dtype));
  PRORES_CHECK(params.device == Device::CUDA, op, ": host tensors take prores::AdamW (optim/adamw.h)");
  PRORES_CHECK(u.step >= 1, op, ": step count must be >= 1, got ", u.step);
#if defined(PRORES_WITH_CUDA)
  detail::check_device_memory(op, {{"params", params}, {"grads", grads}, {"exp_avg", exp_avg},
                                   {"exp_avg_sq", exp_avg_sq}});
  cuda::adamw_step(params.as<float>(), grads.as<float>(), exp_avg.as<float>(), exp_avg_sq.as<float>(),
                   params.numel(), u.lr, u.beta1, u.beta2, u.eps, u.weight_decay, u.step, u.grad_scale);
#else
  detail::fail_no_cuda(op);
#endif
}

}  // namespace prores::ops
