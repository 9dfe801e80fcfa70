// Row helpers of the CPU softmax kernels (the vocabulary-parallel shard cross-entropy, and the unsharded
// reference of the tests in tests/unsharded_ops/): the row maximum and the sum of max-subtracted
// exponentials, accumulated in double. Rows are stored as T (float, double, or uint16_t for bf16 bits) and
// computed in compute_type<T>.
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/bf16.h"
#include "ops/cpu/fast_exp.h"

namespace prores::ops::cpu {

// max_v x[v] over a row of V >= 1 elements.
template <typename T>
compute_type<T> row_max(const T* x, int64_t V) {
  compute_type<T> m = load_element(x[0]);
#pragma omp simd reduction(max : m)
  for (int64_t v = 1; v < V; ++v) {
    const compute_type<T> xv = load_element(x[v]);
    m = xv > m ? xv : m;
  }
  return m;
}

// sum_v exp(x[v] - m), accumulated in double. The exponentials go through a small buffer first: GCC does
// not vectorize exp_vec inside a reduction whose accumulator is wider than the element.
template <typename T>
double sum_exp(const T* x, int64_t V, compute_type<T> m) {
  constexpr int64_t kChunk = 512;
  compute_type<T> e[kChunk];
  double s = 0;
  for (int64_t v0 = 0; v0 < V; v0 += kChunk) {
    const int64_t len = std::min(kChunk, V - v0);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) e[i] = exp_vec(load_element(x[v0 + i]) - m);
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < len; ++i) s += static_cast<double>(e[i]);
  }
  return s;
}

}  // namespace prores::ops::cpu
