// Test-only reference: the unsharded token embedding lookup over the whole table, against which tests check
// the vocabulary-sharded ops (ops/vocab_shard.h, parallel/vocab_parallel.h): the whole table as the one shard
// starting at id 0, with every id checked against V, so tests compare several shards' sum with one shard.
#pragma once
#include "core/tensor.h"

namespace prores::unsharded {

// out (N, C) (=) wte[tokens[n]]; tokens (N) i32, every id in [0, V); wte (V, C).
void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte);

// dwte (V, C) (+=) scatter-add of dout (N, C) rows at tokens.
void embedding_backward(const Tensor& dwte, const Tensor& dout, const Tensor& tokens);

}  // namespace prores::unsharded
