// Cross-entropy dispatch: validates shapes, dtypes and devices, then runs the kernel for the dtype. CUDA
// tensors go to ops/cuda/cross_entropy.h in builds with PRORES_WITH_CUDA and fail with a clear message
// otherwise.
#include "ops/cross_entropy.h"

#include "ops/cpu/cross_entropy.h"
#include "ops/device_check.h"
#include "ops/element_type.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/cross_entropy.h"
#endif

namespace prores::ops {

void cross_entropy_forward(const Tensor& losses, const Tensor& logits, const Tensor& targets) {
  PRORES_CHECK(losses.ndim == 1 && logits.ndim == 2 && targets.ndim == 1 &&
                   losses.shape[0] == logits.shape[0] && targets.shape[0] == logits.shape[0],
               "cross_entropy_forward: expected losses (N), logits (N, V), targets (N); got losses ",
               losses.shape_string(), ", logits ", logits.shape_string(), ", targets ",
               targets.shape_string());
  PRORES_CHECK(targets.dtype == DType::I32, "cross_entropy_forward: targets must be i32, got ",
               dtype_name(targets.dtype));
  PRORES_CHECK(losses.dtype == logits.dtype, "cross_entropy_forward: losses are ", dtype_name(losses.dtype),
               " but logits are ", dtype_name(logits.dtype));
  PRORES_CHECK(losses.device == logits.device && targets.device == logits.device,
               "cross_entropy_forward: losses, logits and targets must be on the same device");
  const int64_t N = logits.shape[0], V = logits.shape[1];
  if (logits.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("cross_entropy_forward",
                                {{"losses", losses}, {"logits", logits}, {"targets", targets}});
    return detail::with_float_type("cross_entropy_forward", logits.dtype, [&]<typename E>(E) {
      return cuda::cross_entropy_forward(losses.as<E>(), logits.as<E>(), targets.as<int32_t>(), N, V);
    });
#else
    detail::fail_no_cuda("cross_entropy_forward");
#endif
  }
  return detail::with_float_type("cross_entropy_forward", logits.dtype, [&]<typename E>(E) {
    return cpu::cross_entropy_forward(losses.as<E>(), logits.as<E>(), targets.as<int32_t>(), N, V);
  });
}

void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                            double dloss) {
  PRORES_CHECK(
      dlogits.ndim == 2 && logits.ndim == 2 && targets.ndim == 1 && dlogits.shape[0] == logits.shape[0] &&
          dlogits.shape[1] == logits.shape[1] && targets.shape[0] == logits.shape[0],
      "cross_entropy_backward: expected dlogits (N, V), logits (N, V), targets (N); got dlogits ",
      dlogits.shape_string(), ", logits ", logits.shape_string(), ", targets ", targets.shape_string());
  PRORES_CHECK(targets.dtype == DType::I32, "cross_entropy_backward: targets must be i32, got ",
               dtype_name(targets.dtype));
  PRORES_CHECK(dlogits.dtype == logits.dtype, "cross_entropy_backward: dlogits are ",
               dtype_name(dlogits.dtype), " but logits are ", dtype_name(logits.dtype));
  PRORES_CHECK(dlogits.device == logits.device && targets.device == logits.device,
               "cross_entropy_backward: dlogits, logits and targets must be on the same device");
  const int64_t N = logits.shape[0], V = logits.shape[1];
  if (logits.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("cross_entropy_backward",
                                {{"dlogits", dlogits}, {"logits", logits}, {"targets", targets}});
    return detail::with_float_type("cross_entropy_backward", logits.dtype, [&]<typename E>(E) {
      return cuda::cross_entropy_backward(dlogits.as<E>(), logits.as<E>(), targets.as<int32_t>(), N, V, dloss);
    });
#else
    detail::fail_no_cuda("cross_entropy_backward");
#endif
  }
  return detail::with_float_type("cross_entropy_backward", logits.dtype, [&]<typename E>(E) {
    return cpu::cross_entropy_backward(dlogits.as<E>(), logits.as<E>(), targets.as<int32_t>(), N, V, dloss);
  });
}

}  // namespace prores::ops
