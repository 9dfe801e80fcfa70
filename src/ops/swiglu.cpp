// SwiGLU dispatch: validates shapes, dtypes and devices, then runs the kernel for the dtype (f32, f64 or
// bf16) on the tensors' device (ops/dispatch.h).
#include "ops/swiglu.h"

#include "ops/cpu/swiglu.h"
#include "ops/cuda/swiglu.h"
#include "ops/dispatch.h"
#include "ops/element_type.h"

namespace prores::ops {

void swiglu_forward(const Tensor& out, const Tensor& inp) {
  constexpr const char* op = "swiglu_forward";
  const int64_t N = out.shape[0], F = out.shape[1];
  detail::check_shapes(op, {{"out", out, {N, F}, "(N, F)"}, {"inp", inp, {N, 2 * F}, "(N, 2F)"}});
  detail::check_same_dtype(op, {{"out", out}, {"inp", inp}});
  detail::dispatch(op, {{"out", out}, {"inp", inp}}, [&](auto be) {
    detail::with_element_type(op, inp.dtype, [&]<typename T>(T) {
      PRORES_KERNEL(be, swiglu_forward)(out.as<T>(), inp.as<T>(), N, F);
    });
  });
}

void swiglu_backward(const Tensor& dinp, const Tensor& dout, const Tensor& inp) {
  constexpr const char* op = "swiglu_backward";
  const int64_t N = dout.shape[0], F = dout.shape[1];
  detail::check_shapes(op, {{"dinp", dinp, {N, 2 * F}, "(N, 2F)"}, {"dout", dout, {N, F}, "(N, F)"},
                            {"inp", inp, {N, 2 * F}, "(N, 2F)"}});
  detail::check_same_dtype(op, {{"dinp", dinp}, {"dout", dout}, {"inp", inp}});
  detail::dispatch(op, {{"dinp", dinp}, {"dout", dout}, {"inp", inp}}, [&](auto be) {
    detail::with_element_type(op, inp.dtype, [&]<typename T>(T) {
      PRORES_KERNEL(be, swiglu_backward)(dinp.as<T>(), dout.as<T>(), inp.as<T>(), N, F);
    });
  });
}

}  // namespace prores::ops
