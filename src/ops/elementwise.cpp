// Elementwise helpers dispatch: validates dtypes, sizes and devices, then runs the kernel for the dtype.
// zero and copy work on any dtype (they move bytes); round_to_bf16 takes f32 to bf16; the arithmetic ones
// take f32 and f64. CUDA tensors go to ops/cuda/elementwise.h in builds with PRORES_WITH_CUDA and fail with
// a clear message otherwise.
#include "ops/elementwise.h"

#include "ops/device_check.h"
#include "ops/element_type.h"
#include "ops/cpu/elementwise.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/device.h"
#include "ops/cuda/elementwise.h"
#endif

namespace prores::ops {

namespace {

// Throws unless t has a shape and, when non-empty, memory.
void check_defined(const char* op, const char* name, const Tensor& t) {
  PRORES_CHECK(t.ndim >= 1 && (t.defined() || t.numel() == 0), op, ": ", name, " is undefined");
}

}  // namespace

void zero(const Tensor& x) {
  check_defined("zero", "x", x);
  if (x.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("zero", {{"x", x}});
    return cuda::zero_bytes(x.data, x.nbytes());
#else
    detail::fail_no_cuda("zero");
#endif
  }
  cpu::zero_bytes(x.data, x.nbytes());
}

void copy(const Tensor& dst, const Tensor& src) {
  check_defined("copy", "dst", dst);
  check_defined("copy", "src", src);
  PRORES_CHECK(dst.dtype == src.dtype && dst.numel() == src.numel(), "copy: dst ", dtype_name(dst.dtype), " ",
               dst.shape_string(), " and src ", dtype_name(src.dtype), " ", src.shape_string(),
               " differ in dtype or numel");
  PRORES_CHECK(dst.device == src.device, "copy: dst and src must be on the same device");
  if (dst.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("copy", {{"dst", dst}});
    detail::check_device_memory("copy", {{"src", src}});
    if (dst.data != src.data) cuda::copy_bytes(dst.data, src.data, dst.nbytes());
    return;
#else
    detail::fail_no_cuda("copy");
#endif
  }
  if (dst.data == src.data) return;
  cpu::copy_bytes(dst.data, src.data, dst.nbytes());
}

void round_to_bf16(const Tensor& dst, const Tensor& src, double scale) {
  check_defined("round_to_bf16", "dst", dst);
  check_defined("round_to_bf16", "src", src);
  PRORES_CHECK(dst.dtype == DType::BF16 && src.dtype == DType::F32 && dst.numel() == src.numel(),
               "round_to_bf16: expected dst bf16 and src f32 of one numel, got dst ", dtype_name(dst.dtype), " ",
               dst.shape_string(), " and src ", dtype_name(src.dtype), " ", src.shape_string());
  PRORES_CHECK(dst.device == src.device, "round_to_bf16: dst and src must be on the same device");
  if (dst.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("round_to_bf16", {{"dst", dst}, {"src", src}});
    return cuda::round_to_bf16(dst.as<uint16_t>(), src.as<float>(), dst.numel(), static_cast<float>(scale));
#else
    detail::fail_no_cuda("round_to_bf16");
#endif
  }
  cpu::round_to_bf16(dst.as<uint16_t>(), src.as<float>(), dst.numel(), static_cast<float>(scale));
}

void axpby(const Tensor& out, double a, const Tensor& x, double b, const Tensor& y) {
  check_defined("axpby", "out", out);
  check_defined("axpby", "x", x);
  check_defined("axpby", "y", y);
  PRORES_CHECK(x.numel() == out.numel() && y.numel() == out.numel(), "axpby: numel differs: out ",
               out.shape_string(), ", x ", x.shape_string(), ", y ", y.shape_string());
  PRORES_CHECK(x.dtype == out.dtype && y.dtype == out.dtype, "axpby: dtypes differ: out ",
               dtype_name(out.dtype), ", x ", dtype_name(x.dtype), ", y ", dtype_name(y.dtype));
  PRORES_CHECK(x.device == out.device && y.device == out.device,
               "axpby: out, x and y must be on the same device");
  const int64_t n = out.numel();
  if (out.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("axpby", {{"out", out}});
    detail::check_device_memory("axpby", {{"x", x}});
    detail::check_device_memory("axpby", {{"y", y}});
    return detail::with_float_type("axpby", out.dtype, [&]<typename E>(E) {
      return cuda::axpby(out.as<E>(), a, x.as<E>(), b, y.as<E>(), n);
    });
#else
    detail::fail_no_cuda("axpby");
#endif
  }
  return detail::with_float_type("axpby", out.dtype, [&]<typename E>(E) {
    return cpu::axpby(out.as<E>(), a, x.as<E>(), b, y.as<E>(), n);
  });
}

void accumulate(const Tensor& dst, double a, const Tensor& src) {
  check_defined("accumulate", "dst", dst);
  check_defined("accumulate", "src", src);
  PRORES_CHECK(src.numel() == dst.numel(), "accumulate: numel differs: dst ", dst.shape_string(), ", src ",
               src.shape_string());
  PRORES_CHECK(src.dtype == dst.dtype, "accumulate: dst is ", dtype_name(dst.dtype), " but src is ",
               dtype_name(src.dtype));
  PRORES_CHECK(src.device == dst.device, "accumulate: dst and src must be on the same device");
  const int64_t n = dst.numel();
  if (dst.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("accumulate", {{"dst", dst}});
    detail::check_device_memory("accumulate", {{"src", src}});
    return detail::with_float_type("accumulate", dst.dtype, [&]<typename E>(E) {
      return cuda::accumulate(dst.as<E>(), a, src.as<E>(), n);
    });
#else
    detail::fail_no_cuda("accumulate");
#endif
  }
  return detail::with_float_type("accumulate", dst.dtype, [&]<typename E>(E) {
    return cpu::accumulate(dst.as<E>(), a, src.as<E>(), n);
  });
}

double sum_squares(const Tensor& x) {
  check_defined("sum_squares", "x", x);
  if (x.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("sum_squares", {{"x", x}});
    return detail::with_float_type("sum_squares", x.dtype, [&]<typename E>(E) {
      return cuda::sum_squares(x.as<E>(), x.numel());
    });
#else
    detail::fail_no_cuda("sum_squares");
#endif
  }
  return detail::with_float_type("sum_squares", x.dtype, [&]<typename E>(E) {
    return cpu::sum_squares(x.as<E>(), x.numel());
  });
}

double sum(const Tensor& x) {
  check_defined("sum", "x", x);
  if (x.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("sum", {{"x", x}});
    return detail::with_float_type("sum", x.dtype, [&]<typename E>(E) {
      return cuda::sum(x.as<E>(), x.numel());
    });
#else
    detail::fail_no_cuda("sum");
#endif
  }
  return detail::with_float_type("sum", x.dtype, [&]<typename E>(E) {
    return cpu::sum(x.as<E>(), x.numel());
  });
}

}  // namespace prores::ops
