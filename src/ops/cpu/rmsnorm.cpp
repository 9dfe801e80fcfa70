// CPU RMSNorm: one row per iteration, threaded over rows; reductions in double; the forward may store its
// output in bf16.
#include "ops/cpu/rmsnorm.h"

#include <omp.h>

#include <cmath>
#include <vector>

#include "core/bf16.h"
#include "ops/cpu/elementwise.h"

namespace prores::ops::cpu {

template <typename T, typename TOut>
void rmsnorm_forward(TOut* out, T* rstd, const T* inp, const T* weight, int64_t N, int64_t C, double eps,
                     double scale) {
#pragma omp parallel for schedule(static) if (N * C >= kParallelMinElements)
  for (int64_t n = 0; n < N; ++n) {
    const T* x = inp + n * C;
    TOut* y = out + n * C;
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += static_cast<double>(x[c]) * static_cast<double>(x[c]);
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(C) + eps);
    rstd[n] = static_cast<T>(r);
    const T sr = static_cast<T>(scale * r);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) y[c] = store_element<TOut>(sr * weight[c] * x[c]);
  }
}

// With y = s * w * x * r and r = (mean(x^2) + eps)^(-1/2):
//   dx_j = s * r * w_j * dy_j - x_j * (s * r^3 / C) * sum_k dy_k * w_k * x_k;
//   dw_j = s * sum_n dy_nj * x_nj * r_n.
template <typename T>
void rmsnorm_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, const T* rstd,
                      int64_t N, int64_t C, double scale, const T* dres) {
  std::vector<double> partials;
  size_t nthreads = 1;
#pragma omp parallel if (N * C >= kParallelMinElements)
  {
#pragma omp single
    {
      nthreads = static_cast<size_t>(omp_get_num_threads());
      partials.assign(nthreads * static_cast<size_t>(C), 0.0);
    }
    double* dw = partials.data() + static_cast<size_t>(omp_get_thread_num()) * static_cast<size_t>(C);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const T* x = inp + n * C;
      const T* dy = dout + n * C;
      T* dx = dinp + n * C;
      const double r = static_cast<double>(rstd[n]);
      double dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < C; ++c) {
        dot += static_cast<double>(dy[c]) * static_cast<double>(weight[c]) * static_cast<double>(x[c]);
        dw[c] += static_cast<double>(dy[c]) * static_cast<double>(x[c]) * r;
      }
      const T a = static_cast<T>(scale * r);
      const T b = static_cast<T>(scale * r * r * r * dot / static_cast<double>(C));
      if (dres != nullptr) {
        const T* res = dres + n * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) dx[c] = res[c] + (a * weight[c] * dy[c] - b * x[c]);
      } else {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) dx[c] = a * weight[c] * dy[c] - b * x[c];
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    double total = 0;
    for (size_t t = 0; t < nthreads; ++t)
      total += partials[t * static_cast<size_t>(C) + static_cast<size_t>(c)];
    dweight[c] += static_cast<T>(scale * total);
  }
}

template void rmsnorm_forward<float>(float*, float*, const float*, const float*, int64_t, int64_t, double,
                                     double);
template void rmsnorm_forward<double>(double*, double*, const double*, const double*, int64_t, int64_t,
                                      double, double);
template void rmsnorm_forward<float, uint16_t>(uint16_t*, float*, const float*, const float*, int64_t, int64_t,
                                               double, double);
template void rmsnorm_backward<float>(float*, float*, const float*, const float*, const float*, const float*,
                                      int64_t, int64_t, double, const float*);
template void rmsnorm_backward<double>(double*, double*, const double*, const double*, const double*,
                                       const double*, int64_t, int64_t, double, const double*);

}  // namespace prores::ops::cpu
