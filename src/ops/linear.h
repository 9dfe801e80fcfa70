// Linear layer without bias, PyTorch weight convention (out_features, in_features).
#pragma once
#include "core/tensor.h"
#include "ops/gemm.h"

namespace prores::ops {

// out (N, OC) (=) inp (N, IC) · weight^T, weight (OC, IC). precision: how the products of f32 tensors
// multiply (f64 takes Fp32 only).
void linear_forward(const Tensor& out, const Tensor& inp, const Tensor& weight,
                    MatmulPrecision precision = MatmulPrecision::Fp32);

// dinp (N, IC) (+=) dout (N, OC) · weight;  dweight (OC, IC) (+=) dout^T · inp.
// Either output may be an undefined Tensor to skip it.
void linear_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                     const Tensor& weight, MatmulPrecision precision = MatmulPrecision::Fp32);

}  // namespace prores::ops
