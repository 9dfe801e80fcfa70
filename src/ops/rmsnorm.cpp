// RMSNorm dispatch: validates shapes, dtypes and devices, then runs the kernel for the dtype (the forward's
// output may be bf16 next to an f32 input). CUDA tensors go to ops/cuda/rmsnorm.h in builds with
// PRORES_WITH_CUDA and fail with a clear message otherwise.
#include "ops/rmsnorm.h"

#include "ops/cpu/rmsnorm.h"
#include "ops/device_check.h"
#include "ops/element_type.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/rmsnorm.h"
#endif

namespace prores::ops {

namespace {

bool same_shape(const Tensor& a, const Tensor& b) {
  if (a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i) {
    if (a.shape[i] != b.shape[i]) return false;
  }
  return true;
}

}  // namespace

void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& inp, const Tensor& weight,
                     double eps, double scale) {
  PRORES_CHECK(inp.ndim == 2 && out.ndim == 2 && rstd.ndim == 1 && weight.ndim == 1 && same_shape(out, inp) &&
                   rstd.shape[0] == inp.shape[0] && weight.shape[0] == inp.shape[1],
               "rmsnorm_forward: expected inp (N, C), out (N, C), rstd (N), weight (C); got inp ",
               inp.shape_string(), ", out ", out.shape_string(), ", rstd ", rstd.shape_string(), ", weight ",
               weight.shape_string());
  const bool bf16_out = out.dtype == DType::BF16 && inp.dtype == DType::F32;
  PRORES_CHECK((out.dtype == inp.dtype || bf16_out) && rstd.dtype == inp.dtype && weight.dtype == inp.dtype,
               "rmsnorm_forward: dtypes differ: inp ", dtype_name(inp.dtype), ", out ", dtype_name(out.dtype),
               ", rstd ", dtype_name(rstd.dtype), ", weight ", dtype_name(weight.dtype),
               " (out may be bf16 next to f32 inp)");
  PRORES_CHECK(out.device == inp.device && rstd.device == inp.device && weight.device == inp.device,
               "rmsnorm_forward: out, rstd, inp and weight must be on the same device");
  PRORES_CHECK(eps > 0, "rmsnorm_forward: eps must be positive, got ", eps);
  const int64_t N = inp.shape[0], C = inp.shape[1];
  if (inp.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("rmsnorm_forward",
                                {{"out", out}, {"rstd", rstd}, {"inp", inp}, {"weight", weight}});
    if (bf16_out)
      return cuda::rmsnorm_forward(out.as<uint16_t>(), rstd.as<float>(), inp.as<float>(),
                                   weight.as<float>(), N, C, eps, scale);
    return detail::with_float_type("rmsnorm_forward", inp.dtype, [&]<typename E>(E) {
      return cuda::rmsnorm_forward(out.as<E>(), rstd.as<E>(), inp.as<E>(), weight.as<E>(), N, C, eps, scale);
    });
#else
    detail::fail_no_cuda("rmsnorm_forward");
#endif
  }
  if (bf16_out)
    return cpu::rmsnorm_forward(out.as<uint16_t>(), rstd.as<float>(), inp.as<float>(),
                                weight.as<float>(), N, C, eps, scale);
  return detail::with_float_type("rmsnorm_forward", inp.dtype, [&]<typename E>(E) {
    return cpu::rmsnorm_forward(out.as<E>(), rstd.as<E>(), inp.as<E>(), weight.as<E>(), N, C, eps, scale);
  });
}

void rmsnorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                      const Tensor& weight, const Tensor& rstd, double scale, InputGrad dinp_write,
                      const Tensor& dres) {
  PRORES_CHECK(inp.ndim == 2 && dinp.ndim == 2 && dout.ndim == 2 && dweight.ndim == 1 && weight.ndim == 1 &&
                   rstd.ndim == 1 && same_shape(dinp, inp) && same_shape(dout, inp) &&
                   dweight.shape[0] == inp.shape[1] && weight.shape[0] == inp.shape[1] &&
                   rstd.shape[0] == inp.shape[0],
               "rmsnorm_backward: expected dinp, dout, inp (N, C), dweight, weight (C), rstd (N); got dinp ",
               dinp.shape_string(), ", dout ", dout.shape_string(), ", inp ", inp.shape_string(),
               ", dweight ", dweight.shape_string(), ", weight ", weight.shape_string(), ", rstd ",
               rstd.shape_string());
  const DType dt = inp.dtype;
  PRORES_CHECK(
      dinp.dtype == dt && dweight.dtype == dt && dout.dtype == dt && weight.dtype == dt && rstd.dtype == dt,
      "rmsnorm_backward: dtypes differ: inp ", dtype_name(dt), ", dinp ", dtype_name(dinp.dtype),
      ", dweight ", dtype_name(dweight.dtype), ", dout ", dtype_name(dout.dtype), ", weight ",
      dtype_name(weight.dtype), ", rstd ", dtype_name(rstd.dtype));
  const Device dev = inp.device;
  PRORES_CHECK(dinp.device == dev && dweight.device == dev && dout.device == dev && weight.device == dev &&
                   rstd.device == dev,
               "rmsnorm_backward: all tensors must be on the same device");
  PRORES_CHECK(!dres.defined() || dinp_write == InputGrad::Overwrite,
               "rmsnorm_backward: dres is added to an overwritten dinp (InputGrad::Overwrite)");
  PRORES_CHECK(!dres.defined() || (same_shape(dres, inp) && dres.dtype == dt && dres.device == dev),
               "rmsnorm_backward: dres must be like inp (", dtype_name(dt), " ", inp.shape_string(), "), got ",
               dtype_name(dres.dtype), " ", dres.shape_string());
  // The kernels' residual: dres, dinp itself for (+=), none for a plain (=).
  const Tensor res = dres.defined() ? dres : dinp_write == InputGrad::Accumulate ? dinp : Tensor();
  const int64_t N = inp.shape[0], C = inp.shape[1];
  if (dev == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    detail::check_device_memory("rmsnorm_backward", {{"dinp", dinp}, {"dweight", dweight}, {"dout", dout},
                                                     {"inp", inp}, {"weight", weight}, {"rstd", rstd},
                                                     {"dres", dres}});
    return detail::with_float_type("rmsnorm_backward", dt, [&]<typename E>(E) {
      return cuda::rmsnorm_backward(dinp.as<E>(), dweight.as<E>(), dout.as<E>(), inp.as<E>(), weight.as<E>(),
                                    rstd.as<E>(), N, C, scale, res.as_or_null<E>());
    });
#else
    detail::fail_no_cuda("rmsnorm_backward");
#endif
  }
  return detail::with_float_type("rmsnorm_backward", dt, [&]<typename E>(E) {
    return cpu::rmsnorm_backward(dinp.as<E>(), dweight.as<E>(), dout.as<E>(), inp.as<E>(), weight.as<E>(),
                                 rstd.as<E>(), N, C, scale, res.as_or_null<E>());
  });
}

}  // namespace prores::ops
