// General matrix multiply on row-major matrices, the one GEMM entry point of the project.
// CPU: oneDNN sgemm for f32 (when PRORES_WITH_ONEDNN), a blocked reference GEMM otherwise and for f64.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace prores::ops {

// C (M,N) = alpha * op(A) * op(B) + beta * C, all row-major and contiguous.
// A is (M,K), or (K,M) when trans_a; B is (K,N), or (N,K) when trans_b. beta = 0 overwrites C (=),
// beta = 1 accumulates (+=). Safe to call from inside a parallel region (then runs on one thread).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const Tensor& A,
          const Tensor& B, double beta, const Tensor& C);

// Name of the CPU GEMM backend in use ("onednn" or "reference"), for logs and benchmarks.
const char* cpu_gemm_backend();

}  // namespace prores::ops
