// CPU SwiGLU: elementwise over rows, threaded over rows; bf16 storage computes in float.
#include "ops/cpu/swiglu.h"

#include "core/bf16.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/fast_exp.h"

namespace prores::ops::cpu {

template <typename T>
void swiglu_forward(T* out, const T* inp, int64_t N, int64_t F) {
  using V = compute_type<T>;
#pragma omp parallel for schedule(static) if (N * F >= kParallelMinElements)
  for (int64_t n = 0; n < N; ++n) {
    const T* gate = inp + n * 2 * F;
    const T* up = gate + F;
    T* y = out + n * F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) {
      const V g = load_element(gate[i]);
      y[i] = store_element<T>(g / (V(1) + exp_vec(-g)) * load_element(up[i]));
    }
  }
}

template <typename T>
void swiglu_backward(T* dinp, const T* dout, const T* inp, int64_t N, int64_t F) {
  using V = compute_type<T>;
#pragma omp parallel for schedule(static) if (N * F >= kParallelMinElements)
  for (int64_t n = 0; n < N; ++n) {
    const T* gate = inp + n * 2 * F;
    const T* up = gate + F;
    const T* dy = dout + n * F;
    T* dgate = dinp + n * 2 * F;
    T* dup = dgate + F;
#pragma omp simd
    for (int64_t i = 0; i < F; ++i) {
      const V g = load_element(gate[i]), u = load_element(up[i]), d = load_element(dy[i]);
      const V sig = V(1) / (V(1) + exp_vec(-g));
      dgate[i] = store_element<T>(d * u * sig * (V(1) + g * (V(1) - sig)));
      dup[i] = store_element<T>(d * g * sig);
    }
  }
}

#define PRORES_INSTANTIATE_SWIGLU(T)                                            \
  template void swiglu_forward<T>(T*, const T*, int64_t, int64_t);             \
  template void swiglu_backward<T>(T*, const T*, const T*, int64_t, int64_t);
PRORES_INSTANTIATE_SWIGLU(float)
PRORES_INSTANTIATE_SWIGLU(double)
PRORES_INSTANTIATE_SWIGLU(uint16_t)
#undef PRORES_INSTANTIATE_SWIGLU

}  // namespace prores::ops::cpu
