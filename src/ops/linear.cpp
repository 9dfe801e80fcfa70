// Linear-layer dispatch: validates shapes (leading dimensions flatten into N, so (B, T, C) tensors work
// as (B * T, C)), dtypes and devices, then picks one of two families of kernels:
//  - one dtype throughout, exact products: f32 or f64 on the CPU; on CUDA (ops/cuda/linear.h) f32, or bf16
//    with an optional f32 dweight (fp32 gradient accumulation);
//  - bf16 matmuls, taken for MatmulPrecision::Bf16 (with an f32 weight or its bf16 copy) or any bf16
//    activation next to an f32 weight: dweight f32, the weight and each activation (out, inp; dinp, dout) f32
//    or bf16 (cpu/cuda linear_*_bf16).
// The forward also has a residual form (linear_forward_residual): on the CPU the product, then axpby; on CUDA
// one GEMM whose epilogue adds the residual. CUDA tensors need a build with PRORES_WITH_CUDA; other builds
// fail with a clear message.
#include "ops/linear.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "ops/device_check.h"
#include "ops/element_type.h"
#include "ops/elementwise.h"
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

void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Device device = (*tensors.begin())->device;
  for (const Tensor* t : tensors)
    PRORES_CHECK(!t->defined() || t->device == device, op, ": tensors on different devices");
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

void forward_bf16_family(const char* op, const Tensor& out, const Tensor& inp, const Tensor& weight,
                         const LinearDims& d, const ResidualAdd& add) {
  const std::array<NamedDType, 3> dtypes{{{"out", out.dtype}, {"inp", inp.dtype}, {"weight", weight.dtype}}};
  with_storages(op, dtypes, [&]<typename TOut, typename TIn, typename TW>(TOut, TIn, TW) {
    if (out.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
      detail::check_device_memory(op, {{"out", out}, {"inp", inp}, {"weight", weight}, {"residual", add.residual}});
      return cuda::linear_forward_bf16(out.as_or_null<TOut>(), inp.as<TIn>(), weight.as<TW>(), d.N, d.IC, d.OC,
                                       static_cast<float>(add.alpha), add.residual.as_or_null<TOut>(),
                                       static_cast<float>(add.beta));
#else
      detail::fail_no_cuda(op);
#endif
    }
    cpu::linear_forward_bf16(out.as_or_null<TOut>(), inp.as<TIn>(), weight.as<TW>(), d.N, d.IC, d.OC);
    add_residual_on_cpu(out, add);
  });
}

void backward_bf16_family(const char* op, const Tensor& dinp, const Tensor& dweight, const Tensor& dout,
                          const Tensor& inp, const Tensor& weight, const LinearDims& d, float dinp_beta) {
  PRORES_CHECK(!dweight.defined() || dweight.dtype == DType::F32, op,
               ": dweight must be f32 for bf16 matmuls, got ", dtype_name(dweight.dtype));
  const std::array<NamedDType, 4> dtypes{{{"dinp", dinp.defined() ? dinp.dtype : DType::F32},
                                          {"dout", dout.dtype},
                                          {"inp", inp.dtype},
                                          {"weight", weight.dtype}}};
  with_storages(op, dtypes, [&]<typename TDin, typename TDout, typename TIn, typename TW>(TDin, TDout, TIn, TW) {
    if (dout.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
      detail::check_device_memory(
          op, {{"dinp", dinp}, {"dweight", dweight}, {"dout", dout}, {"inp", inp}, {"weight", weight}});
      return cuda::linear_backward_bf16(dinp.as_or_null<TDin>(), dweight.as_or_null<float>(), dout.as<TDout>(),
                                        inp.as<TIn>(), weight.as<TW>(), d.N, d.IC, d.OC, dinp_beta);
#else
      detail::fail_no_cuda(op);
#endif
    }
    cpu::linear_backward_bf16(dinp.as_or_null<TDin>(), dweight.as_or_null<float>(), dout.as<TDout>(),
                              inp.as<TIn>(), weight.as<TW>(), d.N, d.IC, d.OC, dinp_beta);
  });
}

void forward(const char* op, const Tensor& out, const Tensor& inp, const Tensor& weight, MatmulPrecision precision,
             const ResidualAdd& add) {
  const LinearDims d = linear_dims(op, inp, weight);
  check_rows(op, "out", out, d.N, d.OC);
  check_same_device(op, {&out, &inp, &weight, &add.residual});
  if (bf16_family(op, precision, weight, {&out, &inp}))
    return forward_bf16_family(op, out, inp, weight, d, add);
  check_same_kind(op, out, inp);
  check_same_kind(op, out, weight);
  if (out.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory(op, {{"out", out}, {"inp", inp}, {"weight", weight}, {"residual", add.residual}});
    const auto alpha = static_cast<float>(add.alpha), beta = static_cast<float>(add.beta);
    switch (out.dtype) {
      case DType::F32:
        return cuda::linear_forward(out.as<float>(), inp.as<float>(), weight.as<float>(), d.N, d.IC, d.OC, alpha,
                                    add.residual.as_or_null<float>(), beta);
      case DType::BF16:
        return cuda::linear_forward<uint16_t>(out.as_or_null<uint16_t>(), inp.as_or_null<uint16_t>(),
                                              weight.as_or_null<uint16_t>(), d.N, d.IC, d.OC, alpha,
                                              add.residual.as_or_null<uint16_t>(), beta);
      default:
        PRORES_FAIL(op, ": unsupported dtype ", dtype_name(out.dtype), " on CUDA (f32 or bf16)");
    }
#else
    detail::fail_no_cuda(op);
#endif
  }
  detail::with_float_type(op, out.dtype, [&]<typename E>(E) {
    cpu::linear_forward(out.as<E>(), inp.as<E>(), weight.as<E>(), d.N, d.IC, d.OC);
  });
  add_residual_on_cpu(out, add);
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
  const char* op = "linear_forward_residual";
  PRORES_CHECK(residual.defined() && residual.shape == out.shape, op, ": residual has shape ",
               residual.shape_string(), ", out ", out.shape_string());
  check_same_kind(op, out, residual);
  PRORES_CHECK(out.dtype != DType::BF16, op, ": out and residual hold the residual stream: f32 or f64, got bf16");
  PRORES_CHECK(!overlap(out, residual), op, ": out and residual overlap");
  forward(op, out, inp, weight, precision, {alpha, residual, beta});
}

void linear_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                     const Tensor& weight, MatmulPrecision precision, InputGrad dinp_write) {
  const char* op = "linear_backward";
  const float beta = dinp_write == InputGrad::Accumulate ? 1.0f : 0.0f;
  const LinearDims d = linear_dims(op, inp, weight);
  check_rows(op, "dout", dout, d.N, d.OC);
  if (dinp.defined()) check_rows(op, "dinp", dinp, d.N, d.IC);
  if (dweight.defined()) {
    PRORES_CHECK(dweight.ndim == 2 && dweight.shape == weight.shape, op, ": dweight has shape ",
                 dweight.shape_string(), ", weight ", weight.shape_string());
  }
  check_same_device(op, {&dout, &dinp, &dweight, &inp, &weight});
  if (bf16_family(op, precision, weight, {&dinp, &dout, &inp}))
    return backward_bf16_family(op, dinp, dweight, dout, inp, weight, d, beta);
  check_same_kind(op, dout, inp);
  check_same_kind(op, dout, weight);
  if (dinp.defined()) check_same_kind(op, dout, dinp);
  // An f32 dweight may accumulate the gradient of bf16 tensors on CUDA (fp32 gradient accumulation).
  if (dweight.defined() && !(dout.dtype == DType::BF16 && dweight.dtype == DType::F32 && dout.device == Device::CUDA))
    check_same_kind(op, dout, dweight);
  if (dout.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory(
        op, {{"dinp", dinp}, {"dweight", dweight}, {"dout", dout}, {"inp", inp}, {"weight", weight}});
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
    return cuda::linear_backward<uint16_t, uint16_t>(dinp.as_or_null<uint16_t>(), dweight.as_or_null<uint16_t>(),
                                                     dout.as_or_null<uint16_t>(), inp.as_or_null<uint16_t>(),
                                                     weight.as_or_null<uint16_t>(), d.N, d.IC, d.OC, beta);
#else
    detail::fail_no_cuda(op);
#endif
  }
  detail::with_float_type(op, dout.dtype, [&]<typename E>(E) {
    cpu::linear_backward(dinp.as_or_null<E>(), dweight.as_or_null<E>(), dout.as<E>(), inp.as<E>(), weight.as<E>(),
                         d.N, d.IC, d.OC, beta);
  });
}

}  // namespace prores::ops
