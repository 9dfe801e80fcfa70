// SwiGLU activation on a fused [gate | up] projection.
#pragma once
#include "core/tensor.h"

namespace prores::ops {

// out (N, F) (=) silu(gate) * up, where inp (N, 2F) holds gate in columns [0, F) and up in [F, 2F).
void swiglu_forward(const Tensor& out, const Tensor& inp);

// dinp (N, 2F) (=) from dout (N, F) and the forward's inp.
void swiglu_backward(const Tensor& dinp, const Tensor& dout, const Tensor& inp);

}  // namespace prores::ops
