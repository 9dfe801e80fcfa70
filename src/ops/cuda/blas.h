// cuBLASLt layer under the CUDA GEMMs (ops/cuda/gemm.h): one untyped entry point for a row-major,
// optionally strided-batched matmul with fp32 accumulation. Each host thread gets, per device, one cuBLASLt
// handle and one 32 MiB workspace, created on first use and kept for the thread's lifetime, and a cache of
// matmul plans (descriptors plus the algorithm cublasLtMatmulAlgoGetHeuristic picked) keyed by the problem
// shape, so a call in steady state allocates nothing and queries no heuristic. Plain C++ (no CUDA headers).
#pragma once
#include <cstddef>
#include <cstdint>

namespace prores::ops::cuda {

// Element type of a matmul operand: f32, or bf16 passed as its raw 16 bits (uint16_t).
enum class BlasType { F32, BF16 };

// Workspace each (thread, device) cuBLASLt context owns and offers to the heuristic.
constexpr size_t kBlasWorkspaceBytes = size_t{32} << 20;

// One row-major matmul problem, repeated `batch` times at element strides stride_a/_b/_c (0 when batch = 1).
// A is (M, K) with leading dimension lda, or (K, M) when trans_a; B is (K, N) with ldb, or (N, K) when
// trans_b; C is (M, N) with ldc. A and B are of type ab (both), C of type c.
struct MatmulShape {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  BlasType ab = BlasType::F32, c = BlasType::F32;
  // f32 operands only: multiply on the bf16 tensor cores (CUBLAS_COMPUTE_32F_FAST_16BF: each operand
  // rounded to bf16, products accumulated in fp32) instead of exact fp32.
  bool f32_via_bf16 = false;
};

// For p in [0, batch): D_p (=) alpha * op(A_p) * op(B_p) + beta * C_p with X_p = X + p * stride_x elements,
// accumulated in fp32 (CUBLAS_COMPUTE_32F, or CUBLAS_COMPUTE_32F_FAST_16BF when s.f32_via_bf16). C and D share
// type, ldc and stride_c, and are the same matrices (then beta = 1 accumulates, +=) or do not overlap (the
// epilogue reads C and writes D: a residual add). beta = 0 writes D without reading C (NaN in C does not
// propagate). Requires M, N, K >= 1 and batch >= 1. Asynchronous on the legacy default stream of the current
// device; throws prores::Error with the cuBLASLt status on failure.
void matmul(const MatmulShape& s, float alpha, const void* A, const void* B, float beta, const void* C, void* D);

}  // namespace prores::ops::cuda
