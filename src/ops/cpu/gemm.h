// CPU GEMM kernels on raw row-major pointers with leading dimensions: oneDNN sgemm for float when built
// with PRORES_WITH_ONEDNN, a cache-blocked reference GEMM otherwise and always for double; and the bf16
// matmul of f32 operands (gemm_bf16.cpp).
#pragma once
#include <cstdint>
#include <type_traits>

namespace prores::ops::cpu {

// C (M,N) = alpha * op(A) * op(B) + beta * C, row-major. A is (M,K) with leading dimension lda, or (K,M)
// when ta; B is (K,N) with ldb, or (N,K) when tb; C has ldc. beta = 0 overwrites C without reading it.
// Inside an OpenMP parallel region it runs on the calling thread only; outside it uses all threads.
template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);

// The blocked reference GEMM (same contract), exposed for tests and benchmarks of the oneDNN path.
template <typename T>
void gemm_reference(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                    const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// The gemm contract (threads included) on bf16 operands with fp32 accumulation: the numbers of a bf16
// tensor-core GEMM. A (TA) and B (TB) are float, rounded to bf16 (nearest even) first, or uint16_t, bf16
// bits taken as they are; C (TC) is float, or uint16_t with the result rounded to bf16. oneDNN's bf16 matmul
// with PRORES_WITH_ONEDNN (about twice the rate of sgemm on CPUs with AVX512-BF16), the reference GEMM on
// the rounded values otherwise.
template <typename TA, typename TB, typename TC>
void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const TA* A, int64_t lda,
               const TB* B, int64_t ldb, float beta, TC* C, int64_t ldc);

// Throws prores::Error: bf16 matmuls take f32 operands.
[[noreturn]] void throw_bf16_needs_f32();

// gemm<T>, or gemm_bf16 when bf16 (T = float; a double GEMM in bf16 throws).
template <typename T>
void gemm_bf16_if(bool bf16, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                  const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (!bf16) return gemm<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if constexpr (std::is_same_v<T, float>)
    return gemm_bf16<float, float, float>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    throw_bf16_needs_f32();
}

// "onednn" when float GEMMs go through oneDNN, "reference" otherwise.
const char* gemm_backend();

}  // namespace prores::ops::cpu
