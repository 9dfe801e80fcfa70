// GEMM dispatch: validates Tensor shapes, dtypes and devices, then calls the CPU kernel for f32 / f64
// (f32 in bf16 precision: cpu::gemm_bf16). CUDA tensors go to the cuBLASLt GEMM (ops/cuda/gemm.h) in builds
// with PRORES_WITH_CUDA: f32 (exact or via bf16), or bf16 A and B with an f32 or bf16 C (fp32
// accumulation); other builds fail with a clear message.
#include "ops/gemm.h"

#include <cstdint>

#include "ops/device_check.h"
#include "ops/cpu/gemm.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/device.h"
#include "ops/cuda/gemm.h"
#endif

namespace prores::ops {
namespace {

// Checks that t holds a contiguous (rows, cols) matrix: numel matches and, for rank >= 2, the last
// dimension is cols (so a transposed or mis-shaped operand is caught).
void check_matrix(const Tensor& t, const char* name, int64_t rows, int64_t cols) {
  PRORES_CHECK(t.numel() == rows * cols && (t.ndim < 2 || t.size(-1) == cols || rows * cols == 0),
               "gemm: ", name, " has shape ", t.shape_string(), ", expected (", rows, ", ", cols, ")");
}

#if defined(PRORES_WITH_CUDA)
// The CUDA branch of gemm, after the shape checks: picks the cuBLASLt GEMM for the dtypes.
void gemm_cuda(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const Tensor& A,
               int64_t lda, const Tensor& B, int64_t ldb, float beta, const Tensor& C, bool bf16) {
  detail::check_device_memory("gemm", {{"A", A}, {"B", B}, {"C", C}});
  if (A.dtype == DType::F32)
    return cuda::gemm<float, float>(trans_a, trans_b, M, N, K, alpha, A.as<float>(), lda, B.as<float>(), ldb,
                                    beta, C.as<float>(), N, bf16);
  if (A.dtype == DType::BF16 && C.dtype == DType::F32)
    return cuda::gemm<uint16_t, float>(trans_a, trans_b, M, N, K, alpha, A.as<uint16_t>(), lda, B.as<uint16_t>(),
                                       ldb, beta, C.as<float>(), N);
  if (A.dtype == DType::BF16)
    return cuda::gemm<uint16_t, uint16_t>(trans_a, trans_b, M, N, K, alpha, A.as<uint16_t>(), lda,
                                          B.as<uint16_t>(), ldb, beta, C.as<uint16_t>(), N);
  PRORES_FAIL("gemm: unsupported dtype ", dtype_name(C.dtype), " on CUDA (f32, or bf16 inputs)");
}
#endif

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const Tensor& A,
          const Tensor& B, double beta, const Tensor& C, MatmulPrecision precision) {
  PRORES_CHECK(M >= 0 && N >= 0 && K >= 0, "gemm: negative size M=", M, " N=", N, " K=", K);
  const int64_t lda = trans_a ? M : K;
  const int64_t ldb = trans_b ? K : N;
  check_matrix(A, "A", trans_a ? K : M, lda);
  check_matrix(B, "B", trans_b ? N : K, ldb);
  check_matrix(C, "C", M, N);
  // bf16 inputs with an f32 output are a CUDA combination; everything else computes in one dtype.
  const bool bf16_to_f32 = A.dtype == DType::BF16 && C.dtype == DType::F32 && C.device == Device::CUDA;
  PRORES_CHECK(A.dtype == B.dtype && (A.dtype == C.dtype || bf16_to_f32), "gemm: dtype mismatch A ",
               dtype_name(A.dtype), ", B ", dtype_name(B.dtype), ", C ", dtype_name(C.dtype));
  PRORES_CHECK(A.device == C.device && B.device == C.device, "gemm: operands on different devices");
  const bool bf16 = detail::bf16_matmuls("gemm", precision, A.dtype);
  if (C.device == Device::CUDA) {
#if defined(PRORES_WITH_CUDA)
    return gemm_cuda(trans_a, trans_b, M, N, K, static_cast<float>(alpha), A, lda, B, ldb,
                     static_cast<float>(beta), C, bf16);
#else
    detail::fail_no_cuda("gemm");
#endif
  }
  switch (C.dtype) {
    case DType::F32:
      cpu::gemm_bf16_if<float>(bf16, trans_a, trans_b, M, N, K, static_cast<float>(alpha), A.as<float>(), lda,
                               B.as<float>(), ldb, static_cast<float>(beta), C.as<float>(), N);
      return;
    case DType::F64:
      cpu::gemm<double>(trans_a, trans_b, M, N, K, alpha, A.as<double>(), lda, B.as<double>(), ldb, beta,
                        C.as<double>(), N);
      return;
    default:
      PRORES_FAIL("gemm: unsupported dtype ", dtype_name(C.dtype));
  }
}

namespace detail {

bool bf16_matmuls(const char* op, MatmulPrecision precision, DType dtype) {
  const bool bf16 = precision == MatmulPrecision::Bf16;
  PRORES_CHECK(!bf16 || dtype != DType::F64, op, ": bf16 matmul precision takes f32 tensors, not f64");
  return bf16;
}

}  // namespace detail

const char* cpu_gemm_backend() { return cpu::gemm_backend(); }

}  // namespace prores::ops
