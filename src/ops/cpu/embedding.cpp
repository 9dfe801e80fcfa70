// CPU token embedding: row gather forward, column-partitioned scatter-add backward.
#include "ops/cpu/embedding.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "ops/cpu/elementwise.h"

namespace prores::ops::cpu {

namespace {

void check_ids(const char* op, const int32_t* tokens, int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    PRORES_CHECK(tokens[n] >= 0 && tokens[n] < V, op, ": token id ", tokens[n], " at position ", n,
                 " is outside [0, V) with V = ", V);
  }
}

}  // namespace

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, int64_t N, int64_t C, int64_t V) {
  check_ids("embedding_forward", tokens, N, V);
#pragma omp parallel for schedule(static) if (N * C >= kParallelMinElements)
  for (int64_t n = 0; n < N; ++n) {
    std::memcpy(out + n * C, wte + static_cast<int64_t>(tokens[n]) * C, static_cast<size_t>(C) * sizeof(T));
  }
}

template <typename T>
void embedding_backward(T* dwte, const T* dout, const int32_t* tokens, int64_t N, int64_t C, int64_t V) {
  check_ids("embedding_backward", tokens, N, V);
  // Each thread owns a column range a multiple of 64 bytes wide, so threads seldom share a cache line.
  constexpr int64_t kAlign = 64 / sizeof(T);
#pragma omp parallel if (N * C >= kParallelMinElements)
  {
    const int64_t nthreads = omp_get_num_threads();
    const int64_t per = (C + nthreads - 1) / nthreads;
    const int64_t chunk = (per + kAlign - 1) / kAlign * kAlign;
    const int64_t c0 = std::min(C, omp_get_thread_num() * chunk);
    const int64_t c1 = std::min(C, c0 + chunk);
    for (int64_t n = 0; n < N; ++n) {
      const T* src = dout + n * C;
      T* dst = dwte + static_cast<int64_t>(tokens[n]) * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  }
}

template void embedding_forward<float>(float*, const int32_t*, const float*, int64_t, int64_t, int64_t);
template void embedding_forward<double>(double*, const int32_t*, const double*, int64_t, int64_t, int64_t);
template void embedding_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t, int64_t);
template void embedding_backward<double>(double*, const double*, const int32_t*, int64_t, int64_t, int64_t);

}  // namespace prores::ops::cpu
