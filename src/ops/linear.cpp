// Linear-layer dispatch: validates shapes (leading dimensions flatten into N, so (B, T, C) tensors work
// as (B * T, C)), dtypes and devices, then calls the CPU kernel for f32 / f64 (bf16 matmul precision: f32
// only). CUDA tensors go to the
// cuBLASLt kernels (ops/cuda/linear.h) in builds with PRORES_WITH_CUDA: f32 or bf16, and on CUDA an f32
// dweight may accumulate the gradient of bf16 tensors; other builds fail with a clear message.
#include "ops/linear.h"

#include <cstdint>
#include <initializer_list>

#include "ops/device_check.h"
#include "ops/cpu/linear.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/device.h"
#include "ops/cuda/linear.h"
#endif

namespace prores::ops {
namespace {

struct LinearDims {
  int64_t N, IC, OC;
};

// Checks weight (OC, IC) and inp (..., IC); returns the sizes with N the product of inp's leading dims.
LinearDims linear_dims(const char* op, const Tensor& inp, const Tensor& weight) {
  PRORES_CHECK(weight.ndim == 2, op, ": weight must be (OC, IC), got ", weight.shape_string());
  PRORES_CHECK(inp.ndim >= 1 && inp.size(-1) == weight.size(1), op, ": inp ", inp.shape_string(),
               " does not end in IC = ", weight.size(1), " of weight ", weight.shape_string());
  const int64_t IC = weight.size(1);
  return {IC == 0 ? 0 : inp.numel() / IC, IC, weight.size(0)};
}

// Checks that t is an (N, last) matrix: last dimension `last`, leading dimensions flattening to N.
void check_rows(const char* op, const char* name, const Tensor& t, int64_t N, int64_t last) {
  PRORES_CHECK(t.ndim >= 1 && t.size(-1) == last && t.numel() == N * last, op, ": ", name, " has shape ",
               t.shape_string(), ", expected ", N, " rows of ", last);
}

void check_same_kind(const char* op, const Tensor& a, const Tensor& b) {
  PRORES_CHECK(a.dtype == b.dtype, op, ": dtype mismatch ", dtype_name(a.dtype), " vs ", dtype_name(b.dtype));
  PRORES_CHECK(a.device == b.device, op, ": tensors on different devices");
}

template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.as<T>() : nullptr;
}

#if defined(PRORES_WITH_CUDA)
// bf16 tensor data as raw 16-bit elements (nullptr for an undefined tensor).
uint16_t* bf16_data(const Tensor& t) { return static_cast<uint16_t*>(t.data); }
#endif

}  // namespace

void linear_forward(const Tensor& out, const Tensor& inp, const Tensor& weight, MatmulPrecision precision) {
  const char* op = "linear_forward";
  const LinearDims d = linear_dims(op, inp, weight);
  check_rows(op, "out", out, d.N, d.OC);
  check_same_kind(op, out, inp);
  check_same_kind(op, out, weight);
  const bool bf16 = detail::bf16_matmuls(op, precision, out.dtype);
  if (out.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory(op, {{"out", out}, {"inp", inp}, {"weight", weight}});
    switch (out.dtype) {
      case DType::F32:
        return cuda::linear_forward(out.as<float>(), inp.as<float>(), weight.as<float>(), d.N, d.IC, d.OC, bf16);
      case DType::BF16:
        return cuda::linear_forward<uint16_t>(bf16_data(out), bf16_data(inp), bf16_data(weight), d.N,
                                              d.IC, d.OC);
      default:
        PRORES_FAIL(op, ": unsupported dtype ", dtype_name(out.dtype), " on CUDA (f32 or bf16)");
    }
#else
    detail::fail_no_cuda(op);
#endif
  }
  switch (out.dtype) {
    case DType::F32:
      cpu::linear_forward(out.as<float>(), inp.as<float>(), weight.as<float>(), d.N, d.IC, d.OC, bf16);
      return;
    case DType::F64:
      cpu::linear_forward(out.as<double>(), inp.as<double>(), weight.as<double>(), d.N, d.IC, d.OC);
      return;
    default:
      PRORES_FAIL(op, ": unsupported dtype ", dtype_name(out.dtype));
  }
}

void linear_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                     const Tensor& weight, MatmulPrecision precision) {
  const char* op = "linear_backward";
  const LinearDims d = linear_dims(op, inp, weight);
  const bool bf16 = detail::bf16_matmuls(op, precision, dout.dtype);
  check_rows(op, "dout", dout, d.N, d.OC);
  check_same_kind(op, dout, inp);
  check_same_kind(op, dout, weight);
  if (dinp.defined()) {
    check_rows(op, "dinp", dinp, d.N, d.IC);
    check_same_kind(op, dout, dinp);
  }
  if (dweight.defined()) {
    PRORES_CHECK(dweight.ndim == 2 && dweight.shape == weight.shape, op, ": dweight has shape ",
                 dweight.shape_string(), ", weight ", weight.shape_string());
    // An f32 dweight may accumulate the gradient of bf16 tensors on CUDA (fp32 gradient accumulation).
    if (dout.dtype == DType::BF16 && dweight.dtype == DType::F32 && dout.device == Device::CUDA)
      PRORES_CHECK(dweight.device == dout.device, op, ": tensors on different devices");
    else
      check_same_kind(op, dout, dweight);
  }
  if (dout.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory(op, {{"dinp", dinp}, {"dweight", dweight}, {"dout", dout}, {"inp", inp}, {"weight", weight}});
    if (dout.dtype == DType::F32)
      return cuda::linear_backward<float, float>(data_or_null<float>(dinp), data_or_null<float>(dweight),
                                                 dout.as<float>(), inp.as<float>(), weight.as<float>(), d.N, d.IC,
                                                 d.OC, bf16);
    PRORES_CHECK(dout.dtype == DType::BF16, op, ": unsupported dtype ", dtype_name(dout.dtype),
                 " on CUDA (f32 or bf16)");
    if (dweight.defined() && dweight.dtype == DType::F32)
      return cuda::linear_backward<uint16_t, float>(bf16_data(dinp), dweight.as<float>(), bf16_data(dout),
                                                    bf16_data(inp), bf16_data(weight), d.N, d.IC, d.OC);
    return cuda::linear_backward<uint16_t, uint16_t>(bf16_data(dinp), bf16_data(dweight), bf16_data(dout),
                                                     bf16_data(inp), bf16_data(weight), d.N, d.IC, d.OC);
#else
    detail::fail_no_cuda(op);
#endif
  }
  switch (dout.dtype) {
    case DType::F32:
      cpu::linear_backward(data_or_null<float>(dinp), data_or_null<float>(dweight), dout.as<float>(),
                           inp.as<float>(), weight.as<float>(), d.N, d.IC, d.OC, bf16);
      return;
    case DType::F64:
      cpu::linear_backward(data_or_null<double>(dinp), data_or_null<double>(dweight), dout.as<double>(),
                           inp.as<double>(), weight.as<double>(), d.N, d.IC, d.OC);
      return;
    default:
      PRORES_FAIL(op, ": unsupported dtype ", dtype_name(dout.dtype));
  }
}

}  // namespace prores::ops
