// RMSNorm with an extra constant output scale (LayerNorm Scaling multiplies the norm by 1/sqrt(l)).
#pragma once
#include "core/tensor.h"
#include "ops/input_grad.h"

namespace prores::ops {

// out (N, C) (=) scale * weight * inp * rstd;  rstd (N) (=) 1 / sqrt(mean(inp^2) + eps).
// out may alias inp. out may be bf16 (rounded to nearest even) with f32 inp, rstd and weight.
void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& inp, const Tensor& weight,
                     double eps, double scale);

// dinp (N, C) (+=) or (=), by dinp_write, the input gradient; dweight (C) (+=); given dout (N, C) and the
// forward's inp and rstd. With dres (N, C), which needs Overwrite: dinp (=) dres + the input gradient (a
// residual stream's gradient passing the norm by, added in the same pass; dres may alias dinp).
void rmsnorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                      const Tensor& weight, const Tensor& rstd, double scale,
                      InputGrad dinp_write = InputGrad::Accumulate, const Tensor& dres = Tensor());

}  // namespace prores::ops
