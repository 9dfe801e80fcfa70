// CPU kernels of the test-only unsharded softmax cross-entropy over the vocabulary
// (unsharded_ops/cross_entropy.h), templated on float / double. Numerically stable: every row subtracts its
// max before exponentiating.
#pragma once
#include <cstdint>

namespace prores::unsharded::cpu {

// losses (N) (=) -log softmax(logits[n])[targets[n]]; logits (N, V); targets (N), every id in [0, V)
// (throws otherwise, before writing). The softmax sum is accumulated in double.
template <typename T>
void cross_entropy_forward(T* losses, const T* logits, const int32_t* targets, int64_t N, int64_t V);

// dlogits (N, V) (=) dloss * (softmax(logits) - onehot(targets)); dlogits may alias logits.
template <typename T>
void cross_entropy_backward(T* dlogits, const T* logits, const int32_t* targets, int64_t N, int64_t V,
                            double dloss);

}  // namespace prores::unsharded::cpu
