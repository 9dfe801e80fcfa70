// Linear-layer dispatch: validates shapes (leading dimensions flatten into N, so (B, T, C) tensors work
// as (B * T, C)), dtypes and devices, then picks one of two families of kernels:
//  - one dtype throughout, exact products: f32 or f64 on the CPU; on CUDA (ops/cuda/linear.h) f32, or bf16
//    with an optional f32 dweight (fp32 gradient accumulation);
//  - bf16 matmuls, taken for MatmulPrecision::Bf16 (with an f32 weight or its bf16 copy) or any bf16
//    activation next to an f32 weight: dweight f32, the weight and each activation (out, inp; dinp, dout) f32
//    or bf16 (cpu/cuda linear_*_bf16).
// The forward also has a residual form (linear_forward_residual): on the CPU the product, then axpby; on CUDA
// one GEMM whose epilogue adds the residual. The device is picked by ops/dispatch.h.
#include "ops/linear.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "ops/cpu/linear.h"
#include "ops/cuda/linear.h"
#include "ops/dispatch.h"
#include "ops/element_type.h"
#include "ops/elementwise.h"

namespace prores::ops {
namespace {

using detail::Dims;

struct LinearDims {
  int64_t N, IC, OC;
};

// The sizes of a linear layer with weight (OC, IC) and input (..., IC): N is the product of inp's leading
// dimensions. check_shapes then holds the tensors to them.
LinearDims linear_dims(const Tensor& inp, const Tensor& weight) {
  const int64_t IC = weight.shape[1];
  return {IC == 0 ? 0 : inp.numel() / IC, IC, weight.shape[0]};
}

// Whether the call takes the bf16-matmul family: Bf16 precision with an f32 or bf16 weight, or a bf16
// activation next to an f32 weight.
bool bf16_family(const char* op, MatmulPrecision precision, const Tensor& weight,
                 std::initializer_list<const Tensor*> activations) {
  bool bf16 = detail::bf16_matmuls(op, precision, weight.dtype);  // throws for Bf16 with f64
  if (weight.dtype == DType::BF16) return bf16;
  if (weight.dtype != DType::F32) return false;
  for (const Tensor* t : activations) bf16 = bf16 || (t->defined() && t->dtype == DType::BF16);
  return bf16;
}

// A tensor's name (for messages) and dtype, for with_storages.
struct NamedDType {
  const char* name;
  DType dtype;
};

// Calls fn(T{}) with T the storage type of dtype (float or uint16_t); throws for other dtypes.
template <typename Fn>
void with_storage(const char* op, const char* name, DType dtype, Fn&& fn) {
  if (dtype == DType::F32) return fn(float{});
  PRORES_CHECK(dtype == DType::BF16, op, ": ", name, " must be f32 or bf16 for bf16 matmuls, got ",
               dtype_name(dtype));
  fn(uint16_t{});
}

// Calls fn(T0{}, ..., Tk{}) with Ti the storage type of dtypes[i] (float or uint16_t); throws naming the
// first dtype that is neither. The types chosen so far travel in `chosen`.
template <size_t I = 0, size_t K, typename Fn, typename... Chosen>
void with_storages(const char* op, const std::array<NamedDType, K>& dtypes, Fn&& fn, Chosen... chosen) {
  if constexpr (I == K) {
    fn(chosen...);
  } else {
    with_storage(op, dtypes[I].name, dtypes[I].dtype,
                 [&](auto type) { with_storages<I + 1>(op, dtypes, fn, chosen..., type); });
  }
}

// out (=) alpha · product + beta · residual, for linear_forward_residual; none: out (=) the product.
struct ResidualAdd {
  double alpha = 1;
  Tensor residual;
  double beta = 0;
};

// The CPU's residual add after its product: out (=) beta · residual + alpha · out, the numbers of the
// product written out and then axpby. CUDA forms the same sum in the GEMM's epilogue instead.
void add_residual_on_cpu(const Tensor& out, const ResidualAdd& add) {
  if (add.residual.defined()) axpby(out, add.beta, add.residual, add.alpha, out);
}

void forward(const char* op, const Tensor& out, const Tensor& inp, const Tensor& weight, MatmulPrecision precision,
             const ResidualAdd& add) {
  const LinearDims d = linear_dims(inp, weight);
  detail::check_shapes(op, {{"weight", weight, {d.OC, d.IC}, "(OC, IC)"},
                            {"inp", inp, Dims::rows(d.N, d.IC), "(..., IC)"},
                            {"out", out, Dims::rows(d.N, d.OC), "(..., OC)"}});
  const std::initializer_list<detail::NamedTensor> tensors = {
      {"out", out}, {"inp", inp}, {"weight", weight}, {"residual", add.residual}};
  detail::common_device(op, tensors);
  const auto alpha = static_cast<float>(add.alpha), beta = static_cast<float>(add.beta);
  if (bf16_family(op, precision, weight, {&out, &inp})) {
    const std::array<NamedDType, 3> dtypes{{{"out", out.dtype}, {"inp", inp.dtype}, {"weight", weight.dtype}}};
    return detail::dispatch(op, tensors, [&](auto be) {
      with_storages(op, dtypes, [&]<typename TOut, typename TIn, typename TW>(TOut, TIn, TW) {
        if constexpr (decltype(be)::is_cuda) {
          cuda::linear_forward_bf16(out.as_or_null<TOut>(), inp.as<TIn>(), weight.as<TW>(), d.N, d.IC, d.OC, alpha,
                                    add.residual.as_or_null<TOut>(), beta);
        } else {
          cpu::linear_forward_bf16(out.as_or_null<TOut>(), inp.as<TIn>(), weight.as<TW>(), d.N, d.IC, d.OC);
          add_residual_on_cpu(out, add);
        }
      });
    });
  }
  detail::check_same_dtype(op, {{"out", out}, {"inp", inp}, {"weight", weight}});
  detail::dispatch(op, tensors, [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      if (out.dtype == DType::F32)
        return cuda::linear_forward(out.as<float>(), inp.as<float>(), weight.as<float>(), d.N, d.IC, d.OC, alpha,
                                    add.residual.as_or_null<float>(), beta);
      PRORES_CHECK(out.dtype == DType::BF16, op, ": unsupported dtype ", dtype_name(out.dtype),
                   " on CUDA (f32 or bf16)");
      cuda::linear_forward<uint16_t>(out.as_or_null<uint16_t>(), inp.as_or_null<uint16_t>(),
                                     weight.as_or_null<uint16_t>(), d.N, d.IC, d.OC, alpha,
                                     add.residual.as_or_null<uint16_t>(), beta);
    } else {
      detail::with_float_type(op, out.dtype, [&]<typename E>(E) {
        cpu::linear_forward(out.as<E>(), inp.as<E>(), weight.as<E>(), d.N, d.IC, d.OC);
      });
      add_residual_on_cpu(out, add);
    }
  });
}

// Whether the bytes of a and b overlap.
bool overlap(const Tensor& a, const Tensor& b) {
  const auto* a0 = static_cast<const unsigned char*>(a.data);
  const auto* b0 = static_cast<const unsigned char*>(b.data);
  return a.nbytes() > 0 && b.nbytes() > 0 && a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

}  // namespace

void linear_forward(const Tensor& out, const Tensor& inp, const Tensor& weight, MatmulPrecision precision) {
  forward("linear_forward", out, inp, weight, precision, {});
}

void linear_forward_residual(const Tensor& out, const Tensor& inp, const Tensor& weight, double alpha,
                             const Tensor& residual, double beta, MatmulPrecision precision) {
  constexpr const char* op = "linear_forward_residual";
  PRORES_CHECK(residual.defined() && residual.shape == out.shape, op, ": residual has shape ",
               residual.shape_string(), ", out ", out.shape_string());
  detail::check_same_dtype(op, {{"out", out}, {"residual", residual}});
  PRORES_CHECK(out.dtype != DType::BF16, op, ": out and residual hold the residual stream: f32 or f64, got bf16");
  PRORES_CHECK(!overlap(out, residual), op, ": out and residual overlap");
  forward(op, out, inp, weight, precision, {alpha, residual, beta});
}

void linear_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                     const Tensor& weight, MatmulPrecision precision, InputGrad dinp_write) {
  constexpr const char* op = "linear_backward";
  const float beta = dinp_write == InputGrad::Accumulate ? 1.0f : 0.0f;
  const LinearDims d = linear_dims(inp, weight);
  detail::check_shapes(op, {{"weight", weight, {d.OC, d.IC}, "(OC, IC)"},
                            {"inp", inp, Dims::rows(d.N, d.IC), "(..., IC)"},
                            {"dout", dout, Dims::rows(d.N, d.OC), "(..., OC)"},
                            {"dinp", dinp, Dims::rows(d.N, d.IC), "(..., IC)", detail::kOptional},
                            {"dweight", dweight, {d.OC, d.IC}, "(OC, IC)", detail::kOptional}});
  const std::initializer_list<detail::NamedTensor> tensors = {
      {"dinp", dinp}, {"dweight", dweight}, {"dout", dout}, {"inp", inp}, {"weight", weight}};
  const bool on_cuda = detail::common_device(op, tensors) == Device::CUDA;
  if (bf16_family(op, precision, weight, {&dinp, &dout, &inp})) {
    detail::check_dtype(op, DType::F32, {{"dweight", dweight}}, " (bf16 matmuls accumulate dweight in f32)");
    const std::array<NamedDType, 4> dtypes{{{"dinp", dinp.defined() ? dinp.dtype : DType::F32},
                                            {"dout", dout.dtype},
                                            {"inp", inp.dtype},
                                            {"weight", weight.dtype}}};
    return detail::dispatch(op, tensors, [&](auto be) {
      with_storages(op, dtypes, [&]<typename TDin, typename TDout, typename TIn, typename TW>(TDin, TDout, TIn, TW) {
        PRORES_KERNEL(be, linear_backward_bf16)(dinp.as_or_null<TDin>(), dweight.as_or_null<float>(),
                                                dout.as<TDout>(), inp.as<TIn>(), weight.as<TW>(), d.N, d.IC, d.OC,
                                                beta);
      });
    });
  }
  detail::check_same_dtype(op, {{"dout", dout}, {"inp", inp}, {"weight", weight}, {"dinp", dinp}});
  // An f32 dweight may accumulate the gradient of bf16 tensors on CUDA (fp32 gradient accumulation).
  if (!(dout.dtype == DType::BF16 && dweight.dtype == DType::F32 && on_cuda))
    detail::check_same_dtype(op, {{"dout", dout}, {"dweight", dweight}});
  detail::dispatch(op, tensors, [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      if (dout.dtype == DType::F32)
        return cuda::linear_backward<float, float>(dinp.as_or_null<float>(), dweight.as_or_null<float>(),
                                                   dout.as<float>(), inp.as<float>(), weight.as<float>(), d.N, d.IC,
                                                   d.OC, beta);
      PRORES_CHECK(dout.dtype == DType::BF16, op, ": unsupported dtype ", dtype_name(dout.dtype),
                   " on CUDA (f32 or bf16)");
      if (dweight.defined() && dweight.dtype == DType::F32)
        return cuda::linear_backward<uint16_t, float>(dinp.as_or_null<uint16_t>(), dweight.as<float>(),
                                                      dout.as_or_null<uint16_t>(), inp.as_or_null<uint16_t>(),
                                                      weight.as_or_null<uint16_t>(), d.N, d.IC, d.OC, beta);
      cuda::linear_backward<uint16_t, uint16_t>(dinp.as_or_null<uint16_t>(), dweight.as_or_null<uint16_t>(),
                                                dout.as_or_null<uint16_t>(), inp.as_or_null<uint16_t>(),
                                                weight.as_or_null<uint16_t>(), d.N, d.IC, d.OC, beta);
    } else {
      detail::with_float_type(op, dout.dtype, [&]<typename E>(E) {
        cpu::linear_backward(dinp.as_or_null<E>(), dweight.as_or_null<E>(), dout.as<E>(), inp.as<E>(),
                             weight.as<E>(), d.N, d.IC, d.OC, beta);
      });
    }
  });
}

}  // namespace prores::ops
