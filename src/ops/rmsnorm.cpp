// RMSNorm dispatch: validates shapes, dtypes and devices, then runs the kernel for the dtype (the forward's
// output may be bf16 next to an f32 input) on the tensors' device (ops/dispatch.h).
#include "ops/rmsnorm.h"

#include "ops/cpu/rmsnorm.h"
#include "ops/cuda/rmsnorm.h"
#include "ops/dispatch.h"
#include "ops/element_type.h"

namespace prores::ops {

void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& inp, const Tensor& weight,
                     double eps, double scale) {
  constexpr const char* op = "rmsnorm_forward";
  const int64_t N = inp.shape[0], C = inp.shape[1];
  detail::check_shapes(op, {{"inp", inp, {N, C}, "(N, C)"}, {"out", out, {N, C}, "(N, C)"},
                            {"rstd", rstd, {N}, "(N)"}, {"weight", weight, {C}, "(C)"}});
  const bool bf16_out = out.dtype == DType::BF16 && inp.dtype == DType::F32;
  detail::check_same_dtype(op, {{"inp", inp}, {"rstd", rstd}, {"weight", weight}});
  if (!bf16_out) detail::check_same_dtype(op, {{"inp", inp}, {"out", out}}, " (out may be bf16 next to f32 inp)");
  PRORES_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  detail::dispatch(op, {{"out", out}, {"rstd", rstd}, {"inp", inp}, {"weight", weight}}, [&](auto be) {
    if (bf16_out) {
      return PRORES_KERNEL(be, rmsnorm_forward)(out.as<uint16_t>(), rstd.as<float>(), inp.as<float>(),
                                                weight.as<float>(), N, C, eps, scale);
    }
    detail::with_float_type(op, inp.dtype, [&]<typename E>(E) {
      PRORES_KERNEL(be, rmsnorm_forward)(out.as<E>(), rstd.as<E>(), inp.as<E>(), weight.as<E>(), N, C, eps, scale);
    });
  });
}

void rmsnorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                      const Tensor& weight, const Tensor& rstd, double scale, InputGrad dinp_write,
                      const Tensor& dres) {
  constexpr const char* op = "rmsnorm_backward";
  PRORES_CHECK(!dres.defined() || dinp_write == InputGrad::Overwrite, op,
               ": dres is added to an overwritten dinp (InputGrad::Overwrite)");
  const int64_t N = inp.shape[0], C = inp.shape[1];
  detail::check_shapes(op, {{"dinp", dinp, {N, C}, "(N, C)"}, {"dout", dout, {N, C}, "(N, C)"},
                            {"inp", inp, {N, C}, "(N, C)"}, {"dweight", dweight, {C}, "(C)"},
                            {"weight", weight, {C}, "(C)"}, {"rstd", rstd, {N}, "(N)"},
                            {"dres", dres, {N, C}, "(N, C)", detail::kOptional}});
  const std::initializer_list<detail::NamedTensor> tensors = {
      {"dinp", dinp}, {"dweight", dweight}, {"dout", dout}, {"inp", inp}, {"weight", weight}, {"rstd", rstd},
      {"dres", dres}};
  detail::check_same_dtype(op, tensors);
  // The kernels' residual: dres, dinp itself for (+=), none for a plain (=).
  const Tensor res = dres.defined() ? dres : dinp_write == InputGrad::Accumulate ? dinp : Tensor();
  detail::dispatch(op, tensors, [&](auto be) {
    detail::with_float_type(op, inp.dtype, [&]<typename E>(E) {
      PRORES_KERNEL(be, rmsnorm_backward)(dinp.as<E>(), dweight.as<E>(), dout.as<E>(), inp.as<E>(), weight.as<E>(),
                                          rstd.as<E>(), N, C, scale, res.as_or_null<E>());
    });
  });
}

}  // namespace prores::ops
