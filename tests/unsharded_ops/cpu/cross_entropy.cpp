// CPU kernels of the test-only unsharded softmax cross-entropy (unsharded_ops/cpu/cross_entropy.h): one row
// per iteration, threaded over rows; max-subtracted exponentials, with the row helpers of the CPU softmax
// kernels (ops/cpu/softmax_row.h, ops/cpu/fast_exp.h).
#include "unsharded_ops/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/fast_exp.h"
#include "ops/cpu/softmax_row.h"
#include "ops/cpu/vocab_shard.h"

namespace prores::unsharded::cpu {

using ops::cpu::exp_vec;
using ops::cpu::kParallelMinElements;
using ops::cpu::row_max;
using ops::cpu::sum_exp;

template <typename T>
void cross_entropy_forward(T* losses, const T* logits, const int32_t* targets, int64_t N, int64_t V) {
  ops::cpu::check_ids("cross_entropy_forward", "target", targets, N, V);
#pragma omp parallel for schedule(static) if (N * V >= kParallelMinElements)
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits + n * V;
    const T m = row_max(x, V);
    const double lse = std::log(sum_exp(x, V, m)) + static_cast<double>(m);
    losses[n] = static_cast<T>(lse - static_cast<double>(x[targets[n]]));
  }
}

template <typename T>
void cross_entropy_backward(T* dlogits, const T* logits, const int32_t* targets, int64_t N, int64_t V,
                            double dloss) {
  ops::cpu::check_ids("cross_entropy_backward", "target", targets, N, V);
#pragma omp parallel for schedule(static) if (N * V >= kParallelMinElements)
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits + n * V;
    T* dx = dlogits + n * V;
    const T m = row_max(x, V);
    // dx holds the exponentials first (each x[v] is read before dx[v] is written, so aliasing is fine),
    // then is scaled by dloss / sum.
#pragma omp simd
    for (int64_t v = 0; v < V; ++v) dx[v] = exp_vec(x[v] - m);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t v = 0; v < V; ++v) s += static_cast<double>(dx[v]);
    const T scale = static_cast<T>(dloss / s);
#pragma omp simd
    for (int64_t v = 0; v < V; ++v) dx[v] *= scale;
    const int64_t target = targets[n];
    dx[target] -= static_cast<T>(dloss);
  }
}

template void cross_entropy_forward<float>(float*, const float*, const int32_t*, int64_t, int64_t);
template void cross_entropy_forward<double>(double*, const double*, const int32_t*, int64_t, int64_t);
template void cross_entropy_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t, double);
template void cross_entropy_backward<double>(double*, const double*, const int32_t*, int64_t, int64_t,
                                             double);

}  // namespace prores::unsharded::cpu
