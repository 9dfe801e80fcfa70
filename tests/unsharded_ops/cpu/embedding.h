// CPU kernels of the test-only unsharded token embedding (unsharded_ops/embedding.h), templated on the float
// type (float, double).
#pragma once
#include <cstdint>

namespace prores::unsharded::cpu {

// out (N, C) (=) wte[tokens[n]]; tokens (N), every id in [0, V) (throws otherwise, before writing); wte (V,
// C).
template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, int64_t N, int64_t C, int64_t V);

// dwte (V, C) (+=) scatter-add of dout (N, C) rows at tokens (N); ids checked as in the forward.
// Race-free and deterministic: threads split the columns, each walks the rows in order.
template <typename T>
void embedding_backward(T* dwte, const T* dout, const int32_t* tokens, int64_t N, int64_t C, int64_t V);

}  // namespace prores::unsharded::cpu
