// Token embedding dispatch: validates shapes, dtypes and devices, then runs the kernel for the dtype. CUDA
// tensors go to ops/cuda/embedding.h in builds with PRORES_WITH_CUDA and fail with a clear message otherwise.
#include "ops/embedding.h"

#include "ops/cpu/embedding.h"
#include "ops/device_check.h"
#include "ops/element_type.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/embedding.h"
#endif

namespace prores::ops {

void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte) {
  PRORES_CHECK(out.ndim == 2 && tokens.ndim == 1 && wte.ndim == 2 && out.shape[0] == tokens.shape[0] &&
                   out.shape[1] == wte.shape[1],
               "embedding_forward: expected out (N, C), tokens (N), wte (V, C); got out ", out.shape_string(),
               ", tokens ", tokens.shape_string(), ", wte ", wte.shape_string());
  PRORES_CHECK(tokens.dtype == DType::I32, "embedding_forward: tokens must be i32, got ",
               dtype_name(tokens.dtype));
  PRORES_CHECK(out.dtype == wte.dtype, "embedding_forward: out is ", dtype_name(out.dtype), " but wte is ",
               dtype_name(wte.dtype));
  PRORES_CHECK(out.device == tokens.device && out.device == wte.device,
               "embedding_forward: out, tokens and wte must be on the same device");
  const int64_t N = out.shape[0], C = out.shape[1], V = wte.shape[0];
  if (out.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("embedding_forward", {{"out", out}, {"tokens", tokens}, {"wte", wte}});
    return detail::with_float_type("embedding_forward", wte.dtype, [&]<typename E>(E) {
      return cuda::embedding_forward(out.as<E>(), tokens.as<int32_t>(), wte.as<E>(), N, C, V);
    });
#else
    detail::fail_no_cuda("embedding_forward");
#endif
  }
  return detail::with_float_type("embedding_forward", wte.dtype, [&]<typename E>(E) {
    return cpu::embedding_forward(out.as<E>(), tokens.as<int32_t>(), wte.as<E>(), N, C, V);
  });
}

void embedding_backward(const Tensor& dwte, const Tensor& dout, const Tensor& tokens) {
  PRORES_CHECK(dwte.ndim == 2 && dout.ndim == 2 && tokens.ndim == 1 && dout.shape[0] == tokens.shape[0] &&
                   dout.shape[1] == dwte.shape[1],
               "embedding_backward: expected dwte (V, C), dout (N, C), tokens (N); got dwte ",
               dwte.shape_string(), ", dout ", dout.shape_string(), ", tokens ", tokens.shape_string());
  PRORES_CHECK(tokens.dtype == DType::I32, "embedding_backward: tokens must be i32, got ",
               dtype_name(tokens.dtype));
  PRORES_CHECK(dwte.dtype == dout.dtype, "embedding_backward: dwte is ", dtype_name(dwte.dtype),
               " but dout is ", dtype_name(dout.dtype));
  PRORES_CHECK(dwte.device == dout.device && dwte.device == tokens.device,
               "embedding_backward: dwte, dout and tokens must be on the same device");
  const int64_t N = dout.shape[0], C = dout.shape[1], V = dwte.shape[0];
  if (dwte.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("embedding_backward", {{"dwte", dwte}, {"dout", dout}, {"tokens", tokens}});
    return detail::with_float_type("embedding_backward", dwte.dtype, [&]<typename E>(E) {
      return cuda::embedding_backward(dwte.as<E>(), dout.as<E>(), tokens.as<int32_t>(), N, C, V);
    });
#else
    detail::fail_no_cuda("embedding_backward");
#endif
  }
  return detail::with_float_type("embedding_backward", dwte.dtype, [&]<typename E>(E) {
    return cpu::embedding_backward(dwte.as<E>(), dout.as<E>(), tokens.as<int32_t>(), N, C, V);
  });
}

}  // namespace prores::ops
