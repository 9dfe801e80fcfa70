// Token embedding lookup.
#pragma once
#include "core/tensor.h"

namespace prores::ops {

// out (N, C) (=) wte[tokens[n]]; tokens (N) i32, every id in [0, V); wte (V, C).
void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte);

// dwte (V, C) (+=) scatter-add of dout (N, C) rows at tokens.
void embedding_backward(const Tensor& dwte, const Tensor& dout, const Tensor& tokens);

}  // namespace prores::ops
