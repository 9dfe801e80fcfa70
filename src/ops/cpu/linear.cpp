// CPU linear layer: forward and backward are one GEMM each (float through oneDNN when available).
#include "ops/cpu/linear.h"

#include "ops/cpu/gemm.h"

namespace prores::ops::cpu {

template <typename T>
void linear_forward(T* out, const T* inp, const T* weight, int64_t N, int64_t IC, int64_t OC) {
  gemm<T>(false, true, N, OC, IC, T(1), inp, IC, weight, IC, T(0), out, OC);
}

template <typename T>
void linear_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, int64_t N, int64_t IC,
                     int64_t OC) {
  if (dinp) gemm<T>(false, false, N, IC, OC, T(1), dout, OC, weight, IC, T(1), dinp, IC);
  if (dweight) gemm<T>(true, false, OC, IC, N, T(1), dout, OC, inp, IC, T(1), dweight, IC);
}

template void linear_forward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t);
template void linear_forward<double>(double*, const double*, const double*, int64_t, int64_t, int64_t);
template void linear_backward<float>(float*, float*, const float*, const float*, const float*, int64_t,
                                     int64_t, int64_t);
template void linear_backward<double>(double*, double*, const double*, const double*, const double*, int64_t,
                                      int64_t, int64_t);

}  // namespace prores::ops::cpu
