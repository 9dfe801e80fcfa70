// CUDA linear layer (ops/cuda/linear.h): forward and backward are one GEMM each, the same calls as the CPU
// kernels make (ops/cpu/linear.cpp), on cuBLASLt. With bf16 matmuls asked for, the f32 layers round their
// operands to bf16 explicitly and take the native bf16 GEMM, twice as fast as cuBLASLt's
// own f32-via-bf16 mode on these large products and with the same numbers.
#include "ops/cuda/linear.h"

#include <type_traits>

#include "ops/cuda/gemm.h"

namespace prores::ops::cuda {
namespace {

// C (M,N) = alpha op(A) op(B) + beta C on contiguous operands, through bf16 copies of f32 operands when bf16.
template <typename TA, typename TC>
void linear_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const TA* A, const TA* B, float beta, TC* C,
                 bool bf16) {
  if constexpr (std::is_same_v<TA, float> && std::is_same_v<TC, float>) {
    if (bf16) return gemm_f32_rounded_to_bf16(ta, tb, M, N, K, 1.0f, A, B, beta, C);
  }
  gemm<TA, TC>(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, beta, C, N);
}

}  // namespace

template <typename T>
void linear_forward(T* out, const T* inp, const T* weight, int64_t N, int64_t IC, int64_t OC, bool bf16) {
  linear_gemm<T, T>(false, true, N, OC, IC, inp, weight, 0.0f, out, bf16);
}

template <typename T, typename TW>
void linear_backward(T* dinp, TW* dweight, const T* dout, const T* inp, const T* weight, int64_t N, int64_t IC,
                     int64_t OC, bool bf16) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<TW, float>) {
    if (bf16) {  // one bf16 copy of dout serves both products
      const Bf16Copy dy(dout, N * OC);
      if (dinp) {
        const Bf16Copy w(weight, OC * IC);
        gemm<uint16_t, float>(false, false, N, IC, OC, 1.0f, dy.data(), OC, w.data(), IC, 1.0f, dinp, IC);
      }
      if (dweight) {
        const Bf16Copy x(inp, N * IC);
        gemm<uint16_t, float>(true, false, OC, IC, N, 1.0f, dy.data(), OC, x.data(), IC, 1.0f, dweight, IC);
      }
      return;
    }
  }
  if (dinp) linear_gemm<T, T>(false, false, N, IC, OC, dout, weight, 1.0f, dinp, false);
  if (dweight) linear_gemm<T, TW>(true, false, OC, IC, N, dout, inp, 1.0f, dweight, false);
}

template void linear_forward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t, bool);
template void linear_forward<uint16_t>(uint16_t*, const uint16_t*, const uint16_t*, int64_t, int64_t, int64_t,
                                       bool);
template void linear_backward<float, float>(float*, float*, const float*, const float*, const float*, int64_t,
                                            int64_t, int64_t, bool);
template void linear_backward<uint16_t, uint16_t>(uint16_t*, uint16_t*, const uint16_t*, const uint16_t*,
                                                  const uint16_t*, int64_t, int64_t, int64_t, bool);
template void linear_backward<uint16_t, float>(uint16_t*, float*, const uint16_t*, const uint16_t*,
                                               const uint16_t*, int64_t, int64_t, int64_t, bool);

}  // namespace prores::ops::cuda
