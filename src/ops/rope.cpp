// Rotary position embedding dispatch: validates shapes, dtypes and devices, then runs the kernel (x in the
// table's dtype, or bf16 next to an f32 table) on the tensors' device (ops/dispatch.h).
#include "ops/rope.h"

#include "core/bf16.h"
#include "ops/cpu/rope.h"
#include "ops/cuda/rope.h"
#include "ops/dispatch.h"
#include "ops/element_type.h"

namespace prores::ops {

namespace {

// Checks x (B, H, T, HS) and cos, sin (T, HS/2) and runs the rotation `forward` or its inverse.
void rotate(const char* op, bool forward, const Tensor& x, const Tensor& cos, const Tensor& sin) {
  const int64_t B = x.shape[0], H = x.shape[1], T = cos.shape[0], HS = 2 * cos.shape[1];
  detail::check_shapes(op, {{"x", x, {B, H, T, HS}, "(B, H, T, HS)"}, {"cos", cos, {T, HS / 2}, "(T, HS/2)"},
                            {"sin", sin, {T, HS / 2}, "(T, HS/2)"}});
  detail::check_same_dtype(op, {{"cos", cos}, {"sin", sin}});
  if (!(x.dtype == DType::BF16 && cos.dtype == DType::F32))
    detail::check_same_dtype(op, {{"x", x}, {"cos", cos}}, " (x may be bf16 next to an f32 table)");
  detail::dispatch(op, {{"x", x}, {"cos", cos}, {"sin", sin}}, [&](auto be) {
    detail::with_element_type(op, x.dtype, [&]<typename E>(E) {
      using S = compute_type<E>;  // the table's type: f32 next to bf16
      if (forward) return PRORES_KERNEL(be, rope_forward)(x.as<E>(), cos.as<S>(), sin.as<S>(), B, H, T, HS);
      PRORES_KERNEL(be, rope_backward)(x.as<E>(), cos.as<S>(), sin.as<S>(), B, H, T, HS);
    });
  });
}

}  // namespace

void rope_table(const Tensor& cos, const Tensor& sin, double base) {
  constexpr const char* op = "rope_table";
  const int64_t T = cos.shape[0], HS = 2 * cos.shape[1];
  detail::check_shapes(op, {{"cos", cos, {T, HS / 2}, "(T, HS/2)"}, {"sin", sin, {T, HS / 2}, "(T, HS/2)"}});
  detail::check_same_dtype(op, {{"cos", cos}, {"sin", sin}});
  PRORES_CHECK(base > 0, op, ": base must be positive, got ", base);
  detail::dispatch(op, {{"cos", cos}, {"sin", sin}}, [&](auto be) {
    detail::with_float_type(op, cos.dtype, [&]<typename E>(E) {
      PRORES_KERNEL(be, rope_table)(cos.as<E>(), sin.as<E>(), T, HS, base);
    });
  });
}

void rope_forward(const Tensor& x, const Tensor& cos, const Tensor& sin) { rotate("rope_forward", true, x, cos, sin); }

void rope_backward(const Tensor& dx, const Tensor& cos, const Tensor& sin) {
  rotate("rope_backward", false, dx, cos, sin);
}

}  // namespace prores::ops
