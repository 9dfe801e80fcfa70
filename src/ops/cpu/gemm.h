// CPU GEMM kernels on raw row-major pointers with leading dimensions: oneDNN sgemm for float when built
// with PRORES_WITH_ONEDNN, a cache-blocked reference GEMM otherwise and always for double.
#pragma once
#include <cstdint>

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

// "onednn" when float GEMMs go through oneDNN, "reference" otherwise.
const char* gemm_backend();

}  // namespace prores::ops::cpu
