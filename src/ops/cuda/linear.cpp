// CUDA linear layer (ops/cuda/linear.h): forward and backward are one GEMM each, the same calls as the CPU
// kernels make (ops/cpu/linear.cpp), on cuBLASLt.
#include "ops/cuda/linear.h"

#include "ops/cuda/gemm.h"

namespace prores::ops::cuda {

template <typename T>
void linear_forward(T* out, const T* inp, const T* weight, int64_t N, int64_t IC, int64_t OC) {
  gemm<T, T>(false, true, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
}

template <typename T, typename TW>
void linear_backward(T* dinp, TW* dweight, const T* dout, const T* inp, const T* weight, int64_t N, int64_t IC,
                     int64_t OC) {
  if (dinp) gemm<T, T>(false, false, N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
  if (dweight) gemm<T, TW>(true, false, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
}

template void linear_forward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t);
template void linear_forward<uint16_t>(uint16_t*, const uint16_t*, const uint16_t*, int64_t, int64_t, int64_t);
template void linear_backward<float, float>(float*, float*, const float*, const float*, const float*, int64_t,
                                            int64_t, int64_t);
template void linear_backward<uint16_t, uint16_t>(uint16_t*, uint16_t*, const uint16_t*, const uint16_t*,
                                                  const uint16_t*, int64_t, int64_t, int64_t);
template void linear_backward<uint16_t, float>(uint16_t*, float*, const uint16_t*, const uint16_t*,
                                               const uint16_t*, int64_t, int64_t, int64_t);

}  // namespace prores::ops::cuda
