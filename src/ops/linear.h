// Linear layer without bias, PyTorch weight convention (out_features, in_features).
#pragma once
#include "core/tensor.h"
#include "ops/gemm.h"
#include "ops/input_grad.h"

namespace prores::ops {

// Dtypes: one throughout (f32 or f64; on CUDA also bf16, with an optional f32 dweight, under Fp32
// precision), multiplied exactly; or bf16 matmuls with an f32 dweight, taken with MatmulPrecision::Bf16 (the
// weight f32, or bf16: a copy its owner rounded once) or when an activation is bf16 next to an f32 weight,
// each activation (out, inp, dinp, dout) then f32 or bf16: bf16-rounded operands, fp32 accumulation, bf16
// results rounded from the fp32 sums. f64 takes Fp32 only.

// out (N, OC) (=) inp (N, IC) · weight^T, weight (OC, IC).
void linear_forward(const Tensor& out, const Tensor& inp, const Tensor& weight,
                    MatmulPrecision precision = MatmulPrecision::Fp32);

// out (N, OC) (=) beta · residual (N, OC) + alpha · inp (N, IC) · weight^T: a linear layer whose product is
// added to the residual stream as it is written (ProRes' h = c·x + α·F). out and residual have one shape and
// dtype (f32, or f64 on the CPU) and do not overlap; inp and weight are linear_forward's, multiplied as it
// does by precision. The CPU writes the product and then forms the sum (axpby's numbers); CUDA forms it in
// the GEMM's epilogue, one pass over out instead of the product's write and the axpby's three.
void linear_forward_residual(const Tensor& out, const Tensor& inp, const Tensor& weight, double alpha,
                             const Tensor& residual, double beta, MatmulPrecision precision = MatmulPrecision::Fp32);

// dinp (N, IC) (+=) or (=), by dinp_write, dout (N, OC) · weight;  dweight (OC, IC) (+=) dout^T · inp.
// Either output may be an undefined Tensor to skip it.
void linear_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dout, const Tensor& inp,
                     const Tensor& weight, MatmulPrecision precision = MatmulPrecision::Fp32,
                     InputGrad dinp_write = InputGrad::Accumulate);

}  // namespace prores::ops
