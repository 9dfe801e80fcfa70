// CUDA kernels of the test-only unsharded softmax cross-entropy over the vocabulary
// (unsharded_ops/cross_entropy.h), mirroring unsharded_ops/cpu/cross_entropy.h, templated on float / double.
// Numerically stable: every row subtracts its max before exponentiating. One block per row does the whole
// row (max, sum of exponentials, then the loss or the gradient): no intermediate (N) buffers. Pointers are
// device memory; plain C++ declarations (no CUDA headers). Both first check the targets on the device and
// wait for that check's result (so a bad target throws before anything is written), then queue the kernel
// asynchronously on the current device and the legacy default stream.
#pragma once
#include <cstdint>

namespace prores::unsharded::cuda {

// losses (N) (=) -log softmax(logits[n])[targets[n]]; logits (N, V); targets (N), every id in [0, V)
// (throws otherwise, before writing). Each exponential in T, the softmax sum in double (a fixed-order
// block reduction).
template <typename T>
void cross_entropy_forward(T* losses, const T* logits, const int32_t* targets, int64_t N, int64_t V);

// dlogits (N, V) (=) dloss * (softmax(logits) - onehot(targets)); dlogits may alias logits.
template <typename T>
void cross_entropy_backward(T* dlogits, const T* logits, const int32_t* targets, int64_t N, int64_t V,
                            double dloss);

}  // namespace prores::unsharded::cuda
