// Rotary position embedding dispatch: validates shapes, dtypes and devices, then runs the kernel (x in the
// table's dtype, or bf16 next to an f32 table). CUDA tensors go to ops/cuda/rope.h in builds with
// PRORES_WITH_CUDA and fail with a clear message otherwise.
#include "ops/rope.h"

#include "ops/cpu/rope.h"
#include "core/bf16.h"
#include "ops/device_check.h"
#include "ops/element_type.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/rope.h"
#endif

namespace prores::ops {

namespace {

// Throws unless x (B, H, T, HS) and cos, sin (T, HS/2) agree in shape, dtype and device; for CUDA tensors,
// unless their memory is CUDA device memory (always, in a build without the CUDA path).
void check_rotation(const char* op, const Tensor& x, const Tensor& cos, const Tensor& sin) {
  PRORES_CHECK(x.ndim == 4 && cos.ndim == 2 && sin.ndim == 2 && cos.shape[0] == sin.shape[0] &&
                   cos.shape[1] == sin.shape[1] && x.shape[2] == cos.shape[0] &&
                   x.shape[3] == 2 * cos.shape[1],
               op, ": expected x (B, H, T, HS), cos and sin (T, HS/2); got x ", x.shape_string(), ", cos ",
               cos.shape_string(), ", sin ", sin.shape_string());
  const bool bf16_x = x.dtype == DType::BF16 && cos.dtype == DType::F32;
  PRORES_CHECK((cos.dtype == x.dtype || bf16_x) && sin.dtype == cos.dtype, op, ": dtypes differ: x ",
               dtype_name(x.dtype), ", cos ", dtype_name(cos.dtype), ", sin ", dtype_name(sin.dtype),
               " (x may be bf16 next to an f32 table)");
  PRORES_CHECK(cos.device == x.device && sin.device == x.device, op,
               ": x, cos and sin must be on the same device");
  if (x.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory(op, {{"x", x}, {"cos", cos}, {"sin", sin}});
#else
    detail::fail_no_cuda(op);
#endif
  }
}

}  // namespace

void rope_table(const Tensor& cos, const Tensor& sin, double base) {
  PRORES_CHECK(cos.ndim == 2 && sin.ndim == 2 && cos.shape[0] == sin.shape[0] && cos.shape[1] == sin.shape[1],
               "rope_table: expected cos and sin (T, HS/2); got cos ", cos.shape_string(), ", sin ",
               sin.shape_string());
  PRORES_CHECK(cos.dtype == sin.dtype, "rope_table: cos is ", dtype_name(cos.dtype), " but sin is ",
               dtype_name(sin.dtype));
  PRORES_CHECK(cos.device == sin.device, "rope_table: cos and sin must be on the same device");
  PRORES_CHECK(base > 0, "rope_table: base must be positive, got ", base);
  const int64_t T = cos.shape[0], HS = 2 * cos.shape[1];
  if (cos.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("rope_table", {{"cos", cos}, {"sin", sin}});
    return detail::with_float_type("rope_table", cos.dtype, [&]<typename E>(E) {
      return cuda::rope_table(cos.as<E>(), sin.as<E>(), T, HS, base);
    });
#else
    detail::fail_no_cuda("rope_table");
#endif
  }
  return detail::with_float_type("rope_table", cos.dtype, [&]<typename E>(E) {
    return cpu::rope_table(cos.as<E>(), sin.as<E>(), T, HS, base);
  });
}

void rope_forward(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  check_rotation("rope_forward", x, cos, sin);
  const int64_t B = x.shape[0], H = x.shape[1], T = x.shape[2], HS = x.shape[3];
#if defined(PRORES_WITH_CUDA)
  if (x.device == Device::CUDA) {
    return detail::with_element_type("rope_forward", x.dtype, [&]<typename E>(E) {
      using S = compute_type<E>;  // the table's type: f32 next to bf16
      cuda::rope_forward(x.as<E>(), cos.as<S>(), sin.as<S>(), B, H, T, HS);
    });
  }
#endif
  detail::with_element_type("rope_forward", x.dtype, [&]<typename E>(E) {
    using S = compute_type<E>;
    cpu::rope_forward(x.as<E>(), cos.as<S>(), sin.as<S>(), B, H, T, HS);
  });
}

void rope_backward(const Tensor& dx, const Tensor& cos, const Tensor& sin) {
  check_rotation("rope_backward", dx, cos, sin);
  const int64_t B = dx.shape[0], H = dx.shape[1], T = dx.shape[2], HS = dx.shape[3];
#if defined(PRORES_WITH_CUDA)
  if (dx.device == Device::CUDA) {
    return detail::with_element_type("rope_backward", dx.dtype, [&]<typename E>(E) {
      using S = compute_type<E>;  // the table's type: f32 next to bf16
      cuda::rope_backward(dx.as<E>(), cos.as<S>(), sin.as<S>(), B, H, T, HS);
    });
  }
#endif
  detail::with_element_type("rope_backward", dx.dtype, [&]<typename E>(E) {
    using S = compute_type<E>;
    cpu::rope_backward(dx.as<E>(), cos.as<S>(), sin.as<S>(), B, H, T, HS);
  });
}

}  // namespace prores::ops
