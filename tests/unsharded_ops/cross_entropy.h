// Test-only reference: the unsharded softmax cross-entropy over the whole vocabulary, against which tests
// check the vocabulary-sharded ops (ops/vocab_shard.h, parallel/vocab_parallel.h). Not part of the trainer:
// the model runs the sharded ops, which with one shard starting at id 0 reproduce these.
#pragma once
#include "core/tensor.h"

namespace prores::unsharded {

// losses (N) (=) -log softmax(logits[n])[targets[n]]; logits (N, V), targets (N) i32 in [0, V).
void cross_entropy_forward(const Tensor& losses, const Tensor& logits, const Tensor& targets);

// dlogits (N, V) (=) dloss * (softmax(logits) - onehot(targets)); dlogits may alias logits.
void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                            double dloss);

}  // namespace prores::unsharded
