// SwiGLU dispatch: validates shapes, dtypes and devices, then runs the kernel for the dtype (f32, f64 or
// bf16). CUDA tensors go to ops/cuda/swiglu.h in builds with PRORES_WITH_CUDA and fail with a clear message
// otherwise.
#include "ops/swiglu.h"

#include "ops/cpu/swiglu.h"
#include "ops/device_check.h"
#include "ops/element_type.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/swiglu.h"
#endif

namespace prores::ops {

void swiglu_forward(const Tensor& out, const Tensor& inp) {
  PRORES_CHECK(
      out.ndim == 2 && inp.ndim == 2 && inp.shape[0] == out.shape[0] && inp.shape[1] == 2 * out.shape[1],
      "swiglu_forward: expected out (N, F), inp (N, 2F); got out ", out.shape_string(), ", inp ",
      inp.shape_string());
  PRORES_CHECK(out.dtype == inp.dtype, "swiglu_forward: out is ", dtype_name(out.dtype), " but inp is ",
               dtype_name(inp.dtype));
  PRORES_CHECK(out.device == inp.device, "swiglu_forward: out and inp must be on the same device");
  const int64_t N = out.shape[0], F = out.shape[1];
  if (inp.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("swiglu_forward", {{"out", out}, {"inp", inp}});
    return detail::with_element_type("swiglu_forward", inp.dtype,
                                     [&]<typename T>(T) { cuda::swiglu_forward(out.as<T>(), inp.as<T>(), N, F); });
#else
    detail::fail_no_cuda("swiglu_forward");
#endif
  }
  detail::with_element_type("swiglu_forward", inp.dtype,
                            [&]<typename T>(T) { cpu::swiglu_forward(out.as<T>(), inp.as<T>(), N, F); });
}

void swiglu_backward(const Tensor& dinp, const Tensor& dout, const Tensor& inp) {
  PRORES_CHECK(dinp.ndim == 2 && dout.ndim == 2 && inp.ndim == 2 && inp.shape[0] == dout.shape[0] &&
                   inp.shape[1] == 2 * dout.shape[1] && dinp.shape[0] == inp.shape[0] &&
                   dinp.shape[1] == inp.shape[1],
               "swiglu_backward: expected dinp (N, 2F), dout (N, F), inp (N, 2F); got dinp ",
               dinp.shape_string(), ", dout ", dout.shape_string(), ", inp ", inp.shape_string());
  PRORES_CHECK(dinp.dtype == inp.dtype && dout.dtype == inp.dtype, "swiglu_backward: dtypes differ: dinp ",
               dtype_name(dinp.dtype), ", dout ", dtype_name(dout.dtype), ", inp ", dtype_name(inp.dtype));
  PRORES_CHECK(dinp.device == inp.device && dout.device == inp.device,
               "swiglu_backward: dinp, dout and inp must be on the same device");
  const int64_t N = dout.shape[0], F = dout.shape[1];
  if (inp.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("swiglu_backward", {{"dinp", dinp}, {"dout", dout}, {"inp", inp}});
    return detail::with_element_type("swiglu_backward", inp.dtype, [&]<typename T>(T) {
      cuda::swiglu_backward(dinp.as<T>(), dout.as<T>(), inp.as<T>(), N, F);
    });
#else
    detail::fail_no_cuda("swiglu_backward");
#endif
  }
  detail::with_element_type("swiglu_backward", inp.dtype, [&]<typename T>(T) {
    cpu::swiglu_backward(dinp.as<T>(), dout.as<T>(), inp.as<T>(), N, F);
  });
}

}  // namespace prores::ops
