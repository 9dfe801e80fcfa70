// CPU linear layer: forward and backward are one GEMM each (float through oneDNN when available), exact or
// on bf16 matmuls (gemm_bf16).
#include "ops/cpu/linear.h"

#include "ops/cpu/gemm.h"
#include "ops/storage_combinations.h"

namespace prores::ops::cpu {

template <typename T>
void linear_forward(T* out, const T* inp, const T* weight, int64_t N, int64_t IC, int64_t OC) {
  gemm<T>(false, true, N, OC, IC, T(1), inp, IC, weight, IC, T(0), out, OC);
}

template <typename T>
void linear_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, int64_t N, int64_t IC,
                     int64_t OC, float dinp_beta) {
  if (dinp) gemm<T>(false, false, N, IC, OC, T(1), dout, OC, weight, IC, T(dinp_beta), dinp, IC);
  if (dweight) gemm<T>(true, false, OC, IC, N, T(1), dout, OC, inp, IC, T(1), dweight, IC);
}

template <typename TOut, typename TIn, typename TW>
void linear_forward_bf16(TOut* out, const TIn* inp, const TW* weight, int64_t N, int64_t IC, int64_t OC) {
  gemm_bf16(false, true, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
}

template <typename TDin, typename TDout, typename TIn, typename TW>
void linear_backward_bf16(TDin* dinp, float* dweight, const TDout* dout, const TIn* inp, const TW* weight,
                          int64_t N, int64_t IC, int64_t OC, float dinp_beta) {
  if (dinp) gemm_bf16(false, false, N, IC, OC, 1.0f, dout, OC, weight, IC, dinp_beta, dinp, IC);
  if (dweight) gemm_bf16(true, false, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
}

#define PRORES_INSTANTIATE_LINEAR(T)                                                                   \
  template void linear_forward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t);                \
  template void linear_backward<T>(T*, T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, float);
PRORES_INSTANTIATE_LINEAR(float)
PRORES_INSTANTIATE_LINEAR(double)
#undef PRORES_INSTANTIATE_LINEAR

#define PRORES_INSTANTIATE_LINEAR_FORWARD_BF16(TOut, TIn, TW) \
  template void linear_forward_bf16<TOut, TIn, TW>(TOut*, const TIn*, const TW*, int64_t, int64_t, int64_t);
PRORES_FOR_EACH_STORAGE_TRIPLE(PRORES_INSTANTIATE_LINEAR_FORWARD_BF16)
#undef PRORES_INSTANTIATE_LINEAR_FORWARD_BF16

#define PRORES_INSTANTIATE_LINEAR_BACKWARD_BF16(TDin, TDout, TIn, TW)                                            \
  template void linear_backward_bf16<TDin, TDout, TIn, TW>(TDin*, float*, const TDout*, const TIn*, const TW*, \
                                                           int64_t, int64_t, int64_t, float);
PRORES_FOR_EACH_STORAGE_QUAD(PRORES_INSTANTIATE_LINEAR_BACKWARD_BF16)
#undef PRORES_INSTANTIATE_LINEAR_BACKWARD_BF16

}  // namespace prores::ops::cpu
