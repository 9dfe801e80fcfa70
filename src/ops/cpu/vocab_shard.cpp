// CPU vocabulary-shard kernels: embedding gather / column-partitioned scatter-add restricted to the shard's
// ids, and the row-wise passes of the sharded cross-entropy (statistics, gradient).
// With one shard starting at id 0 these kernels reproduce the unsharded embedding and cross-entropy that
// the tests keep as references (tests/unsharded_ops/).
#include "ops/cpu/vocab_shard.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/fast_exp.h"
#include "ops/cpu/softmax_row.h"

namespace prores::ops::cpu {

void check_ids(const char* op, const char* what, const int32_t* ids, int64_t n_ids, int64_t V) {
  for (int64_t n = 0; n < n_ids; ++n)
    PRORES_CHECK(ids[n] >= 0 && ids[n] < V, op, ": ", what, " id ", ids[n], " at position ", n,
                 " is outside [0, V) with V = ", V);
}

namespace {

// Row of the shard that holds global id `id`, or -1 when the id is outside [vocab_start, vocab_start + Vs).
inline int64_t shard_row(int32_t id, int64_t Vs, int64_t vocab_start) {
  const int64_t local = static_cast<int64_t>(id) - vocab_start;
  return local >= 0 && local < Vs ? local : -1;
}

}  // namespace

template <typename T>
void embedding_shard_forward(T* out, const int32_t* tokens, const T* wte_shard, int64_t N, int64_t C,
                             int64_t Vs, int64_t vocab_start) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMinElements)
  for (int64_t n = 0; n < N; ++n) {
    const int64_t row = shard_row(tokens[n], Vs, vocab_start);
    if (row >= 0) {
      std::memcpy(out + n * C, wte_shard + row * C, static_cast<size_t>(C) * sizeof(T));
    } else {
      std::fill(out + n * C, out + (n + 1) * C, T(0));
    }
  }
}

template <typename T>
void embedding_shard_backward(T* dwte_shard, const T* dout, const int32_t* tokens, int64_t N, int64_t C,
                              int64_t Vs, int64_t vocab_start) {
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
      const int64_t row = shard_row(tokens[n], Vs, vocab_start);
      if (row < 0) continue;
      const T* src = dout + n * C;
      T* dst = dwte_shard + row * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  }
}

template <typename T>
void cross_entropy_shard_stats(compute_type<T>* row_max, compute_type<T>* row_sumexp,
                               compute_type<T>* target_logit, const T* logits, const int32_t* targets, int64_t N,
                               int64_t Vs, int64_t vocab_start) {
#pragma omp parallel for schedule(static) if (N * Vs >= kParallelMinElements)
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits + n * Vs;
    row_max[n] = cpu::row_max(x, Vs);
    row_sumexp[n] = static_cast<compute_type<T>>(sum_exp(x, Vs, row_max[n]));
    const int64_t t = shard_row(targets[n], Vs, vocab_start);
    target_logit[n] = t >= 0 ? load_element(x[t]) : compute_type<T>(0);
  }
}

template <typename S>
void cross_entropy_shard_rebase(S* row_sumexp, const S* shard_max, const S* row_max, int64_t N) {
  for (int64_t n = 0; n < N; ++n) {
    const double scale = std::exp(static_cast<double>(shard_max[n]) - static_cast<double>(row_max[n]));
    row_sumexp[n] = static_cast<S>(static_cast<double>(row_sumexp[n]) * scale);
  }
}

template <typename S>
void cross_entropy_shard_loss(S* losses, const S* row_max, const S* row_sumexp, const S* target_logit,
                              int64_t N) {
  for (int64_t n = 0; n < N; ++n) {
    const double lse = std::log(static_cast<double>(row_sumexp[n])) + static_cast<double>(row_max[n]);
    losses[n] = static_cast<S>(lse - static_cast<double>(target_logit[n]));
  }
}

template <typename T>
void cross_entropy_shard_backward(T* dlogits, const T* logits, const int32_t* targets,
                                  const compute_type<T>* row_max, const compute_type<T>* row_sumexp, int64_t N,
                                  int64_t Vs, int64_t vocab_start, double dloss) {
  using S = compute_type<T>;
#pragma omp parallel for schedule(static) if (N * Vs >= kParallelMinElements)
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits + n * Vs;
    T* dx = dlogits + n * Vs;
    const S m = row_max[n];
    const S scale = static_cast<S>(dloss / static_cast<double>(row_sumexp[n]));
    const int64_t t = shard_row(targets[n], Vs, vocab_start);
    const S x_target = t >= 0 ? load_element(x[t]) : S(0);  // read before the row is overwritten (aliasing)
    // Each x[v] is read before dx[v] is written, so dlogits may alias logits.
#pragma omp simd
    for (int64_t v = 0; v < Vs; ++v) dx[v] = store_element<T>(exp_vec(load_element(x[v]) - m) * scale);
    if (t >= 0) dx[t] = store_element<T>(exp_vec(x_target - m) * scale - static_cast<S>(dloss));
  }
}

#define PRORES_INSTANTIATE_SAME_TYPE(T)                                                                      \
  template void embedding_shard_forward<T>(T*, const int32_t*, const T*, int64_t, int64_t, int64_t, int64_t); \
  template void embedding_shard_backward<T>(T*, const T*, const int32_t*, int64_t, int64_t, int64_t,         \
                                            int64_t);                                                         \
  template void cross_entropy_shard_rebase<T>(T*, const T*, const T*, int64_t);                              \
  template void cross_entropy_shard_loss<T>(T*, const T*, const T*, const T*, int64_t);
#define PRORES_INSTANTIATE_LOGITS(T)                                                                         \
  template void cross_entropy_shard_stats<T>(compute_type<T>*, compute_type<T>*, compute_type<T>*, const T*,  \
                                             const int32_t*, int64_t, int64_t, int64_t);                      \
  template void cross_entropy_shard_backward<T>(T*, const T*, const int32_t*, const compute_type<T>*,        \
                                                const compute_type<T>*, int64_t, int64_t, int64_t, double);
PRORES_INSTANTIATE_SAME_TYPE(float)
PRORES_INSTANTIATE_SAME_TYPE(double)
PRORES_INSTANTIATE_LOGITS(float)
PRORES_INSTANTIATE_LOGITS(double)
PRORES_INSTANTIATE_LOGITS(uint16_t)
#undef PRORES_INSTANTIATE_SAME_TYPE
#undef PRORES_INSTANTIATE_LOGITS

}  // namespace prores::ops::cpu
