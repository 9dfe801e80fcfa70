// CUDA linear layer (ops/cuda/linear.h): forward and backward are one GEMM each, the same calls as the CPU
// kernels make (ops/cpu/linear.cpp), on cuBLASLt. The bf16 family rounds its f32 operands into bf16 copies
// and takes the native bf16 GEMM, twice as fast as cuBLASLt's own f32-via-bf16 mode on these large products
// and with the numbers of cpu::gemm_bf16.
#include "ops/cuda/linear.h"

#include <optional>
#include <type_traits>

#include "ops/cuda/gemm.h"
#include "ops/storage_combinations.h"

namespace prores::ops::cuda {
namespace {

// n elements of a device operand as bf16: the data itself when T is uint16_t (bf16 bits), else a rounded copy.
template <typename T>
class Bf16Operand {
 public:
  Bf16Operand(const T* src, int64_t n) {
    if constexpr (std::is_same_v<T, uint16_t>) {
      data_ = src;
    } else {
      copy_.emplace(src, n);
      data_ = copy_->data();
    }
  }
  const uint16_t* data() const { return data_; }

 private:
  std::optional<Bf16Copy> copy_;
  const uint16_t* data_ = nullptr;
};

}  // namespace

template <typename T>
void linear_forward(T* out, const T* inp, const T* weight, int64_t N, int64_t IC, int64_t OC, float alpha,
                    const T* residual, float beta) {
  gemm<T, T>(false, true, N, OC, IC, alpha, inp, IC, weight, IC, residual ? beta : 0.0f, out, OC, false, residual);
}

template <typename T, typename TW>
void linear_backward(T* dinp, TW* dweight, const T* dout, const T* inp, const T* weight, int64_t N, int64_t IC,
                     int64_t OC, float dinp_beta) {
  if (dinp) gemm<T, T>(false, false, N, IC, OC, 1.0f, dout, OC, weight, IC, dinp_beta, dinp, IC);
  if (dweight) gemm<T, TW>(true, false, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
}

template <typename TOut, typename TIn, typename TW>
void linear_forward_bf16(TOut* out, const TIn* inp, const TW* weight, int64_t N, int64_t IC, int64_t OC,
                         float alpha, const TOut* residual, float beta) {
  if (N == 0 || OC == 0) return;
  const Bf16Operand<TIn> x(inp, N * IC);
  const Bf16Operand<TW> w(weight, OC * IC);
  gemm<uint16_t, TOut>(false, true, N, OC, IC, alpha, x.data(), IC, w.data(), IC, residual ? beta : 0.0f, out, OC,
                       false, residual);
}

template <typename TDin, typename TDout, typename TIn, typename TW>
void linear_backward_bf16(TDin* dinp, float* dweight, const TDout* dout, const TIn* inp, const TW* weight,
                          int64_t N, int64_t IC, int64_t OC, float dinp_beta) {
  if (N == 0 || IC == 0) return;  // OC = 0 still gives dinp (=) beta dinp: zeros under Overwrite
  const Bf16Operand<TDout> dy(dout, N * OC);
  if (dinp) {
    const Bf16Operand<TW> w(weight, OC * IC);
    gemm<uint16_t, TDin>(false, false, N, IC, OC, 1.0f, dy.data(), OC, w.data(), IC, dinp_beta, dinp, IC);
  }
  if (dweight) {
    const Bf16Operand<TIn> x(inp, N * IC);
    gemm<uint16_t, float>(true, false, OC, IC, N, 1.0f, dy.data(), OC, x.data(), IC, 1.0f, dweight, IC);
  }
}

template void linear_forward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t, float,
                                    const float*, float);
template void linear_forward<uint16_t>(uint16_t*, const uint16_t*, const uint16_t*, int64_t, int64_t, int64_t,
                                       float, const uint16_t*, float);
template void linear_backward<float, float>(float*, float*, const float*, const float*, const float*, int64_t,
                                            int64_t, int64_t, float);
template void linear_backward<uint16_t, uint16_t>(uint16_t*, uint16_t*, const uint16_t*, const uint16_t*,
                                                  const uint16_t*, int64_t, int64_t, int64_t, float);
template void linear_backward<uint16_t, float>(uint16_t*, float*, const uint16_t*, const uint16_t*,
                                               const uint16_t*, int64_t, int64_t, int64_t, float);

#define PRORES_INSTANTIATE_LINEAR_FORWARD_BF16(TOut, TIn, TW)                                                 \
  template void linear_forward_bf16<TOut, TIn, TW>(TOut*, const TIn*, const TW*, int64_t, int64_t, int64_t, float, \
                                                   const TOut*, float);
PRORES_FOR_EACH_STORAGE_TRIPLE(PRORES_INSTANTIATE_LINEAR_FORWARD_BF16)
#undef PRORES_INSTANTIATE_LINEAR_FORWARD_BF16

#define PRORES_INSTANTIATE_LINEAR_BACKWARD_BF16(TDin, TDout, TIn, TW)                                            \
  template void linear_backward_bf16<TDin, TDout, TIn, TW>(TDin*, float*, const TDout*, const TIn*, const TW*, \
                                                           int64_t, int64_t, int64_t, float);
PRORES_FOR_EACH_STORAGE_QUAD(PRORES_INSTANTIATE_LINEAR_BACKWARD_BF16)
#undef PRORES_INSTANTIATE_LINEAR_BACKWARD_BF16

}  // namespace prores::ops::cuda
