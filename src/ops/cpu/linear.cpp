// CPU linear layer: forward and backward are one GEMM each (float through oneDNN when available), in bf16
// when asked.
#include "ops/cpu/linear.h"

#include "ops/cpu/gemm.h"

namespace prores::ops::cpu {

template <typename T>
void linear_forward(T* out, const T* inp, const T* weight, int64_t N, int64_t IC, int64_t OC, bool bf16) {
  gemm_bf16_if<T>(bf16, false, true, N, OC, IC, T(1), inp, IC, weight, IC, T(0), out, OC);
}

template <typename T>
void linear_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, int64_t N, int64_t IC,
                     int64_t OC, bool bf16) {
  if (dinp) gemm_bf16_if<T>(bf16, false, false, N, IC, OC, T(1), dout, OC, weight, IC, T(1), dinp, IC);
  if (dweight) gemm_bf16_if<T>(bf16, true, false, OC, IC, N, T(1), dout, OC, inp, IC, T(1), dweight, IC);
}

template void linear_forward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t, bool);
template void linear_forward<double>(double*, const double*, const double*, int64_t, int64_t, int64_t, bool);
template void linear_backward<float>(float*, float*, const float*, const float*, const float*, int64_t,
                                     int64_t, int64_t, bool);
template void linear_backward<double>(double*, double*, const double*, const double*, const double*, int64_t,
                                      int64_t, int64_t, bool);

}  // namespace prores::ops::cpu
