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

// How CUDA f32 GEMMs (linear layers, attention) multiply: Fp32 exactly (the default), or Bf16 on the
// tensor cores with each operand rounded to bf16 and fp32 accumulation (Megatron's --bf16 matmuls; the
// tensors, master weights and optimizer state stay fp32). Process-wide; CPU GEMMs are always exact.
// Bf16 needs a build with the CUDA path (throws otherwise).
enum class MatmulPrecision { Fp32, Bf16 };
void set_matmul_precision(MatmulPrecision precision);

// Name of the CPU GEMM backend in use ("onednn" or "reference"), for logs and benchmarks.
const char* cpu_gemm_backend();

}  // namespace prores::ops
