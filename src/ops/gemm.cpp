// GEMM dispatch: validates Tensor shapes, dtypes and devices, then calls the CPU kernel for f32 / f64.
#include "ops/gemm.h"

#include "ops/cpu/gemm.h"

namespace prores::ops {
namespace {

// Checks that t holds a contiguous (rows, cols) matrix: numel matches and, for rank >= 2, the last
// dimension is cols (so a transposed or mis-shaped operand is caught).
void check_matrix(const Tensor& t, const char* name, int64_t rows, int64_t cols) {
  PRORES_CHECK(t.numel() == rows * cols && (t.ndim < 2 || t.size(-1) == cols || rows * cols == 0),
               "gemm: ", name, " has shape ", t.shape_string(), ", expected (", rows, ", ", cols, ")");
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const Tensor& A,
          const Tensor& B, double beta, const Tensor& C) {
  PRORES_CHECK(M >= 0 && N >= 0 && K >= 0, "gemm: negative size M=", M, " N=", N, " K=", K);
  const int64_t lda = trans_a ? M : K;
  const int64_t ldb = trans_b ? K : N;
  check_matrix(A, "A", trans_a ? K : M, lda);
  check_matrix(B, "B", trans_b ? N : K, ldb);
  check_matrix(C, "C", M, N);
  PRORES_CHECK(A.dtype == C.dtype && B.dtype == C.dtype, "gemm: dtype mismatch A ", dtype_name(A.dtype),
               ", B ", dtype_name(B.dtype), ", C ", dtype_name(C.dtype));
  PRORES_CHECK(A.device == C.device && B.device == C.device, "gemm: operands on different devices");
  if (C.device == Device::CUDA) PRORES_FAIL("gemm: CUDA path not built yet");
  switch (C.dtype) {
    case DType::F32:
      cpu::gemm<float>(trans_a, trans_b, M, N, K, static_cast<float>(alpha), A.as<float>(), lda,
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

const char* cpu_gemm_backend() { return cpu::gemm_backend(); }

}  // namespace prores::ops
