// Dispatch of the test-only unsharded embedding (unsharded_ops/embedding.h): validates shapes, dtypes and
// devices with the op dispatchers' checks (ops/dispatch.h), then runs the kernel for the dtype (f32 or f64)
// on the tensors' device (unsharded_ops/cpu/embedding.h or unsharded_ops/cuda/embedding.h).
#include "unsharded_ops/embedding.h"

#include "ops/dispatch.h"
#include "ops/element_type.h"
#include "unsharded_ops/cpu/embedding.h"
#include "unsharded_ops/cuda/embedding.h"

namespace prores::unsharded {

namespace detail = ops::detail;

void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte) {
  constexpr const char* op = "embedding_forward";
  const int64_t N = tokens.shape[0], C = wte.shape[1], V = wte.shape[0];
  detail::check_shapes(op, {{"out", out, {N, C}, "(N, C)"}, {"tokens", tokens, {N}, "(N)"},
                            {"wte", wte, {V, C}, "(V, C)"}});
  detail::check_dtype(op, DType::I32, {{"tokens", tokens}});
  detail::check_same_dtype(op, {{"out", out}, {"wte", wte}});
  detail::dispatch(op, {{"out", out}, {"tokens", tokens}, {"wte", wte}}, [&](auto be) {
    detail::with_float_type(op, wte.dtype, [&]<typename E>(E) {
      if constexpr (decltype(be)::is_cuda)
        cuda::embedding_forward(out.as<E>(), tokens.as<int32_t>(), wte.as<E>(), N, C, V);
      else
        cpu::embedding_forward(out.as<E>(), tokens.as<int32_t>(), wte.as<E>(), N, C, V);
    });
  });
}

void embedding_backward(const Tensor& dwte, const Tensor& dout, const Tensor& tokens) {
  constexpr const char* op = "embedding_backward";
  const int64_t N = tokens.shape[0], C = dwte.shape[1], V = dwte.shape[0];
  detail::check_shapes(op, {{"dwte", dwte, {V, C}, "(V, C)"}, {"dout", dout, {N, C}, "(N, C)"},
                            {"tokens", tokens, {N}, "(N)"}});
  detail::check_dtype(op, DType::I32, {{"tokens", tokens}});
  detail::check_same_dtype(op, {{"dwte", dwte}, {"dout", dout}});
  detail::dispatch(op, {{"dwte", dwte}, {"dout", dout}, {"tokens", tokens}}, [&](auto be) {
    detail::with_float_type(op, dwte.dtype, [&]<typename E>(E) {
      if constexpr (decltype(be)::is_cuda)
        cuda::embedding_backward(dwte.as<E>(), dout.as<E>(), tokens.as<int32_t>(), N, C, V);
      else
        cpu::embedding_backward(dwte.as<E>(), dout.as<E>(), tokens.as<int32_t>(), N, C, V);
    });
  });
}

}  // namespace prores::unsharded
