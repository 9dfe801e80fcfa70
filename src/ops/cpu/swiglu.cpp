// CPU SwiGLU: elementwise over rows, threaded over rows.
#include "ops/cpu/swiglu.h"

#include "ops/cpu/elementwise.h"
#include "ops/cpu/fast_exp.h"

namespace prores::ops::cpu {

template <typename T>
void swiglu_forward(T* out, const T* inp, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static) if (N * F >= kParallelMinElements)
  for (int64_t n = 0; n < N; ++n) {
    const T* gate = inp + n * 2 * F;
    const T* up = gate + F;
    T* y = out + n * F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) {
      const T g = gate[i];
      y[i] = g / (T(1) + exp_vec(-g)) * up[i];
    }
  }
}

template <typename T>
void swiglu_backward(T* dinp, const T* dout, const T* inp, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static) if (N * F >= kParallelMinElements)
  for (int64_t n = 0; n < N; ++n) {
    const T* gate = inp + n * 2 * F;
    const T* up = gate + F;
    const T* dy = dout + n * F;
    T* dgate = dinp + n * 2 * F;
    T* dup = dgate + F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) {
      const T g = gate[i];
      const T sig = T(1) / (T(1) + exp_vec(-g));
      const T u = up[i];
      dgate[i] = dy[i] * u * sig * (T(1) + g * (T(1) - sig));
      dup[i] = dy[i] * g * sig;
    }
  }
}

template void swiglu_forward<float>(float*, const float*, int64_t, int64_t);
template void swiglu_forward<double>(double*, const double*, int64_t, int64_t);
template void swiglu_backward<float>(float*, const float*, const float*, int64_t, int64_t);
template void swiglu_backward<double>(double*, const double*, const double*, int64_t, int64_t);

}  // namespace prores::ops::cpu
