// CUDA kernels of the test-only unsharded token embedding (unsharded_ops/embedding.h), mirroring
// unsharded_ops/cpu/embedding.h, templated on the float type (float, double). Pointers are device memory;
// plain C++ declarations (no CUDA headers). Both run on the current device and the legacy default stream;
// they first check the ids on the device and wait for that check's result (so a bad id throws before
// anything is written), then queue the vocabulary-shard kernels (ops/cuda/vocab_shard.h) over the whole
// table asynchronously.
#pragma once
#include <cstdint>

namespace prores::unsharded::cuda {

// out (N, C) (=) wte[tokens[n]]; tokens (N), every id in [0, V) (throws otherwise, before writing);
// wte (V, C).
template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, int64_t N, int64_t C, int64_t V);

// dwte (V, C) (+=) scatter-add of dout (N, C) rows at tokens (N); ids checked as in the forward.
// Deterministic and bitwise equal to the CPU kernel (see ops::cuda::embedding_shard_backward).
template <typename T>
void embedding_backward(T* dwte, const T* dout, const int32_t* tokens, int64_t N, int64_t C, int64_t V);

}  // namespace prores::unsharded::cuda
