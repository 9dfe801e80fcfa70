// The rotation of one rotate-half RoPE pair, shared by the CPU and CUDA kernels (the in-place rotation and
// the rotation fused into split_heads), so that every path computes the same expression.
#pragma once

#if defined(__CUDACC__)
#define PRORES_ROPE_INLINE __host__ __device__ inline
#else
#define PRORES_ROPE_INLINE inline
#endif

namespace prores::ops {

template <typename T>
struct RopePair {
  T lo, hi;
};

// (a, b) = (x[i], x[i + HS/2]) rotated by c = cos[t, i] and s = sin[t, i] (the forward) or s = -sin[t, i]
// (its inverse): (a c - b s, b c + a s).
template <typename T>
PRORES_ROPE_INLINE RopePair<T> rope_rotate(T a, T b, T c, T s) {
  return {a * c - b * s, b * c + a * s};
}

}  // namespace prores::ops

#undef PRORES_ROPE_INLINE
