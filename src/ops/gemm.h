// General matrix multiply on row-major matrices, the one GEMM entry point of the project, and the matmul
// precision that it, the linear layers and attention take.
// CPU: oneDNN sgemm for f32 (when PRORES_WITH_ONEDNN), a blocked reference GEMM otherwise and for f64;
// oneDNN's bf16 matmul (or the reference GEMM on rounded operands) for MatmulPrecision::Bf16.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace prores::ops {

// How the products of f32 tensors multiply: Fp32 exactly (the default), or Bf16 with each operand rounded
// to bf16 (nearest even) and fp32 accumulation (Megatron's --bf16 matmuls: the tensors, master weights and
// optimizer state stay f32). The same numbers on both devices up to summation order: the bf16 tensor cores
// on CUDA, AVX512-BF16 through oneDNN on the CPU. f64 tensors take Fp32 only.
enum class MatmulPrecision { Fp32, Bf16 };

// C (M,N) = alpha * op(A) * op(B) + beta * C, all row-major and contiguous.
// A is (M,K), or (K,M) when trans_a; B is (K,N), or (N,K) when trans_b. beta = 0 overwrites C (=),
// beta = 1 accumulates (+=). Safe to call from inside a parallel region (then runs on one thread).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const Tensor& A,
          const Tensor& B, double beta, const Tensor& C, MatmulPrecision precision = MatmulPrecision::Fp32);

namespace detail {
// For the dispatchers: whether precision asks for bf16 matmuls; throws (naming op) for Bf16 with f64 tensors
// (checked before the CPU kernels, whose GEMMs run inside parallel regions).
bool bf16_matmuls(const char* op, MatmulPrecision precision, DType dtype);
}  // namespace detail

// Name of the CPU GEMM backend in use ("onednn" or "reference"), for logs and benchmarks.
const char* cpu_gemm_backend();

}  // namespace prores::ops
