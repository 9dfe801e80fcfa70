// Softmax cross-entropy over the vocabulary.
#pragma once
#include "core/tensor.h"

namespace prores::ops {

// losses (N) (=) -log softmax(logits[n])[targets[n]]; logits (N, V), targets (N) i32 in [0, V).
void cross_entropy_forward(const Tensor& losses, const Tensor& logits, const Tensor& targets);

// dlogits (N, V) (=) dloss * (softmax(logits) - onehot(targets)); dlogits may alias logits.
void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                            double dloss);

}  // namespace prores::ops
