// Elementwise helpers dispatch: validates dtypes, sizes and devices, then runs the kernel for the dtype on
// the tensors' device (ops/dispatch.h). zero and copy work on any dtype (they move bytes); round_to_bf16
// takes f32 to bf16; the arithmetic ones take f32 and f64.
#include "ops/elementwise.h"

#include "ops/cpu/elementwise.h"
#include "ops/cuda/elementwise.h"
#include "ops/dispatch.h"
#include "ops/element_type.h"

namespace prores::ops {

namespace {

// Throws unless t has a shape and, when non-empty, memory.
void check_defined(const char* op, const char* name, const Tensor& t) {
  PRORES_CHECK(t.ndim >= 1 && (t.defined() || t.numel() == 0), op, ": ", name, " is undefined");
}

// Throws unless the tensors hold `n` elements each.
void check_numel(const char* op, int64_t n, std::initializer_list<detail::NamedTensor> tensors) {
  for (const detail::NamedTensor& t : tensors) {
    PRORES_CHECK(t.tensor.numel() == n, op, ": ", t.name, " has shape ", t.tensor.shape_string(), ", expected ", n,
                 " elements like ", tensors.begin()->name, " ", tensors.begin()->tensor.shape_string());
  }
}

}  // namespace

void zero(const Tensor& x) {
  check_defined("zero", "x", x);
  detail::dispatch("zero", {{"x", x}}, [&](auto be) { PRORES_KERNEL(be, zero_bytes)(x.data, x.nbytes()); });
}

void copy(const Tensor& dst, const Tensor& src) {
  constexpr const char* op = "copy";
  check_defined(op, "dst", dst);
  check_defined(op, "src", src);
  check_numel(op, dst.numel(), {{"dst", dst}, {"src", src}});
  detail::check_same_dtype(op, {{"dst", dst}, {"src", src}});
  detail::dispatch(op, {{"dst", dst}, {"src", src}}, [&](auto be) {
    if (dst.data != src.data) PRORES_KERNEL(be, copy_bytes)(dst.data, src.data, dst.nbytes());
  });
}

void round_to_bf16(const Tensor& dst, const Tensor& src, double scale) {
  constexpr const char* op = "round_to_bf16";
  check_defined(op, "dst", dst);
  check_defined(op, "src", src);
  check_numel(op, dst.numel(), {{"dst", dst}, {"src", src}});
  detail::check_dtype(op, DType::BF16, {{"dst", dst}}, " (it takes dst bf16 and src f32)");
  detail::check_dtype(op, DType::F32, {{"src", src}}, " (it takes dst bf16 and src f32)");
  detail::dispatch(op, {{"dst", dst}, {"src", src}}, [&](auto be) {
    PRORES_KERNEL(be, round_to_bf16)(dst.as<uint16_t>(), src.as<float>(), dst.numel(), static_cast<float>(scale));
  });
}

void axpby(const Tensor& out, double a, const Tensor& x, double b, const Tensor& y) {
  constexpr const char* op = "axpby";
  check_defined(op, "out", out);
  check_defined(op, "x", x);
  check_defined(op, "y", y);
  const int64_t n = out.numel();
  check_numel(op, n, {{"out", out}, {"x", x}, {"y", y}});
  detail::check_same_dtype(op, {{"out", out}, {"x", x}, {"y", y}});
  detail::dispatch(op, {{"out", out}, {"x", x}, {"y", y}}, [&](auto be) {
    detail::with_float_type(op, out.dtype, [&]<typename E>(E) {
      PRORES_KERNEL(be, axpby)(out.as<E>(), a, x.as<E>(), b, y.as<E>(), n);
    });
  });
}

void accumulate(const Tensor& dst, double a, const Tensor& src) {
  constexpr const char* op = "accumulate";
  check_defined(op, "dst", dst);
  check_defined(op, "src", src);
  const int64_t n = dst.numel();
  check_numel(op, n, {{"dst", dst}, {"src", src}});
  detail::check_same_dtype(op, {{"dst", dst}, {"src", src}});
  detail::dispatch(op, {{"dst", dst}, {"src", src}}, [&](auto be) {
    detail::with_float_type(op, dst.dtype, [&]<typename E>(E) {
      PRORES_KERNEL(be, accumulate)(dst.as<E>(), a, src.as<E>(), n);
    });
  });
}

double sum_squares(const Tensor& x) {
  check_defined("sum_squares", "x", x);
  return detail::dispatch("sum_squares", {{"x", x}}, [&](auto be) {
    return detail::with_float_type("sum_squares", x.dtype, [&]<typename E>(E) {
      return PRORES_KERNEL(be, sum_squares)(x.as<E>(), x.numel());
    });
  });
}

double sum(const Tensor& x) {
  check_defined("sum", "x", x);
  return detail::dispatch("sum", {{"x", x}}, [&](auto be) {
    return detail::with_float_type("sum", x.dtype, [&]<typename E>(E) {
      return PRORES_KERNEL(be, sum)(x.as<E>(), x.numel());
    });
  });
}

}  // namespace prores::ops
