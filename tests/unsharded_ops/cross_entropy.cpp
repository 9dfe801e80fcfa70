// Dispatch of the test-only unsharded cross-entropy (unsharded_ops/cross_entropy.h): validates shapes, dtypes
// and devices with the op dispatchers' checks (ops/dispatch.h), then runs the kernel for the dtype (f32 or
// f64) on the tensors' device (unsharded_ops/cpu/cross_entropy.h or unsharded_ops/cuda/cross_entropy.h).
#include "unsharded_ops/cross_entropy.h"

#include "ops/dispatch.h"
#include "ops/element_type.h"
#include "unsharded_ops/cpu/cross_entropy.h"
#include "unsharded_ops/cuda/cross_entropy.h"

namespace prores::unsharded {

namespace detail = ops::detail;

void cross_entropy_forward(const Tensor& losses, const Tensor& logits, const Tensor& targets) {
  constexpr const char* op = "cross_entropy_forward";
  const int64_t N = logits.shape[0], V = logits.shape[1];
  detail::check_shapes(op, {{"losses", losses, {N}, "(N)"}, {"logits", logits, {N, V}, "(N, V)"},
                            {"targets", targets, {N}, "(N)"}});
  detail::check_dtype(op, DType::I32, {{"targets", targets}});
  detail::check_same_dtype(op, {{"losses", losses}, {"logits", logits}});
  detail::dispatch(op, {{"losses", losses}, {"logits", logits}, {"targets", targets}}, [&](auto be) {
    detail::with_float_type(op, logits.dtype, [&]<typename E>(E) {
      if constexpr (decltype(be)::is_cuda)
        cuda::cross_entropy_forward(losses.as<E>(), logits.as<E>(), targets.as<int32_t>(), N, V);
      else
        cpu::cross_entropy_forward(losses.as<E>(), logits.as<E>(), targets.as<int32_t>(), N, V);
    });
  });
}

void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& targets, double dloss) {
  constexpr const char* op = "cross_entropy_backward";
  const int64_t N = logits.shape[0], V = logits.shape[1];
  detail::check_shapes(op, {{"dlogits", dlogits, {N, V}, "(N, V)"}, {"logits", logits, {N, V}, "(N, V)"},
                            {"targets", targets, {N}, "(N)"}});
  detail::check_dtype(op, DType::I32, {{"targets", targets}});
  detail::check_same_dtype(op, {{"dlogits", dlogits}, {"logits", logits}});
  detail::dispatch(op, {{"dlogits", dlogits}, {"logits", logits}, {"targets", targets}}, [&](auto be) {
    detail::with_float_type(op, logits.dtype, [&]<typename E>(E) {
      if constexpr (decltype(be)::is_cuda)
        cuda::cross_entropy_backward(dlogits.as<E>(), logits.as<E>(), targets.as<int32_t>(), N, V, dloss);
      else
        cpu::cross_entropy_backward(dlogits.as<E>(), logits.as<E>(), targets.as<int32_t>(), N, V, dloss);
    });
  });
}

}  // namespace prores::unsharded
