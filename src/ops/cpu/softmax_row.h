// Row helpers of the CPU softmax kernels (cross-entropy, its vocabulary-parallel shard version): the row
// maximum and the sum of max-subtracted exponentials, accumulated in double.
#pragma once
#include <algorithm>
#include <cstdint>

#include "ops/cpu/fast_exp.h"

namespace prores::ops::cpu {

// max_v x[v] over a row of V >= 1 elements.
template <typename T>
T row_max(const T* x, int64_t V) {
  T m = x[0];
#pragma omp simd reduction(max : m)
  for (int64_t v = 1; v < V; ++v) m = x[v] > m ? x[v] : m;
  return m;
}

// sum_v exp(x[v] - m), accumulated in double. The exponentials go through a small buffer first: GCC does
// not vectorize exp_vec inside a reduction whose accumulator is wider than the element.
template <typename T>
double sum_exp(const T* x, int64_t V, T m) {
  constexpr int64_t kChunk = 512;
  T e[kChunk];
  double s = 0;
  for (int64_t v0 = 0; v0 < V; v0 += kChunk) {
    const int64_t len = std::min(kChunk, V - v0);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) e[i] = exp_vec(x[v0 + i] - m);
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < len; ++i) s += static_cast<double>(e[i]);
  }
  return s;
}

}  // namespace prores::ops::cpu
