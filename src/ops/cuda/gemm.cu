// CUDA GEMMs (ops/cuda/gemm.h): typed front ends of the cuBLASLt matmul, plus the degenerate K = 0 case
// (C = beta * C, which cuBLASLt does not take) as a small scaling kernel.
#include "ops/cuda/gemm.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <type_traits>

#include "ops/cuda/blas.h"
#include "ops/cuda/device.h"
#include "ops/cuda/elementwise.h"

namespace prores::ops::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;

template <typename T>
constexpr BlasType blas_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, uint16_t>, "f32 (float) or bf16 (uint16_t)");
  return std::is_same_v<T, float> ? BlasType::F32 : BlasType::BF16;
}

__device__ float load(const float* p) { return *p; }
__device__ float load(const uint16_t* p) { return __bfloat162float(__ushort_as_bfloat16(*p)); }
__device__ void store(float* p, float v) { *p = v; }
__device__ void store(uint16_t* p, float v) { *p = __bfloat16_as_ushort(__float2bfloat16(v)); }

// C_p (M, N; leading dimension ldc) (=) beta * C_in_p for each of `batch` matrices C + p * stride_c (C_in
// alike; C_in may be C); beta = 0 writes zeros without reading C_in.
template <typename TC>
__global__ void scale_kernel(TC* C, const TC* C_in, int64_t M, int64_t N, int64_t ldc, int64_t stride_c,
                             int64_t batch, float beta) {
  const int64_t total = batch * M * N;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t p = i / (M * N), r = i / N % M, c = i % N;
    const int64_t at = p * stride_c + r * ldc + c;
    store(C + at, beta == 0.0f ? 0.0f : beta * load(C_in + at));
  }
}

}  // namespace

Bf16Copy::Bf16Copy(const float* src, int64_t n) {
  if (n == 0) return;
  PRORES_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&data_), static_cast<size_t>(n) * 2, 0));
  round_to_bf16(data_, src, n);
}

Bf16Copy::~Bf16Copy() {
  if (data_ != nullptr) cudaFreeAsync(data_, 0);
}

template <typename TA, typename TC>
void gemm_strided_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const TA* A,
                          int64_t lda, int64_t stride_a, const TA* B, int64_t ldb, int64_t stride_b, float beta,
                          TC* C, int64_t ldc, int64_t stride_c, int64_t batch, bool f32_via_bf16,
                          const TC* C_in) {
  if (M == 0 || N == 0 || batch == 0) return;
  if (C_in == nullptr) C_in = C;
  if (K == 0) {
    if (beta == 1.0f && C_in == C) return;
    const int64_t blocks = std::min((batch * M * N + kThreads - 1) / kThreads, kMaxBlocks);
    scale_kernel<<<static_cast<int>(blocks), kThreads>>>(C, C_in, M, N, ldc, stride_c, batch, beta);
    PRORES_CUDA_CHECK(cudaGetLastError());
    return;
  }
  const MatmulShape s{ta, tb, M, N, K, lda, ldb, ldc, batch, stride_a, stride_b, stride_c,
                      blas_type<TA>(), blas_type<TC>(), std::is_same_v<TA, float> && f32_via_bf16};
  matmul(s, alpha, A, B, beta, C_in, C);
}

template <typename TA, typename TC>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const TA* A, int64_t lda, const TA* B,
          int64_t ldb, float beta, TC* C, int64_t ldc, bool f32_via_bf16, const TC* C_in) {
  gemm_strided_batched(ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1, f32_via_bf16, C_in);
}

void gemm_f32_rounded_to_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                              const float* B, float beta, float* C) {
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  if (M == 0 || N == 0 || K == 0) return gemm<float, float>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
  const Bf16Copy a(A, M * K), b(B, K * N);
  gemm<uint16_t, float>(ta, tb, M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, C, N);
}

#define PRORES_INSTANTIATE_GEMM(TA, TC)                                                                       \
  template void gemm<TA, TC>(bool, bool, int64_t, int64_t, int64_t, float, const TA*, int64_t, const TA*,     \
                             int64_t, float, TC*, int64_t, bool, const TC*);                                  \
  template void gemm_strided_batched<TA, TC>(bool, bool, int64_t, int64_t, int64_t, float, const TA*, int64_t, \
                                             int64_t, const TA*, int64_t, int64_t, float, TC*, int64_t,       \
                                             int64_t, int64_t, bool, const TC*);
PRORES_INSTANTIATE_GEMM(float, float)
PRORES_INSTANTIATE_GEMM(uint16_t, float)
PRORES_INSTANTIATE_GEMM(uint16_t, uint16_t)
#undef PRORES_INSTANTIATE_GEMM

}  // namespace prores::ops::cuda
