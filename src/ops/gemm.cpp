// GEMM dispatch: validates Tensor shapes, dtypes and devices, then calls the CPU kernel for f32 / f64
// (f32 in bf16 precision: cpu::gemm_bf16) or, for CUDA tensors, the cuBLASLt GEMM (ops/cuda/gemm.h): f32
// (exact or via bf16), or bf16 A and B with an f32 or bf16 C (fp32 accumulation). See ops/dispatch.h.
#include "ops/gemm.h"

#include <cstdint>

#include "ops/cpu/gemm.h"
#include "ops/cuda/gemm.h"
#include "ops/dispatch.h"

namespace prores::ops {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const Tensor& A,
          const Tensor& B, double beta, const Tensor& C, MatmulPrecision precision) {
  constexpr const char* op = "gemm";
  PRORES_CHECK(M >= 0 && N >= 0 && K >= 0, op, ": negative size M=", M, " N=", N, " K=", K);
  const int64_t lda = trans_a ? M : K;
  const int64_t ldb = trans_b ? K : N;
  detail::check_shapes(op, {{"A", A, detail::Dims::matrix(trans_a ? K : M, lda), trans_a ? "(K, M)" : "(M, K)"},
                            {"B", B, detail::Dims::matrix(trans_b ? N : K, ldb), trans_b ? "(N, K)" : "(K, N)"},
                            {"C", C, detail::Dims::matrix(M, N), "(M, N)"}});
  const std::initializer_list<detail::NamedTensor> tensors = {{"A", A}, {"B", B}, {"C", C}};
  // bf16 inputs with an f32 output are a CUDA combination; everything else computes in one dtype.
  const bool bf16_to_f32 = A.dtype == DType::BF16 && C.dtype == DType::F32 && C.device == Device::CUDA;
  if (bf16_to_f32)
    detail::check_same_dtype(op, {{"A", A}, {"B", B}}, " (bf16 A and B may give an f32 C on CUDA)");
  else
    detail::check_same_dtype(op, tensors);
  const bool bf16 = detail::bf16_matmuls(op, precision, A.dtype);
  detail::dispatch(op, tensors, [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      const auto a = static_cast<float>(alpha), b = static_cast<float>(beta);
      if (A.dtype == DType::F32)
        return cuda::gemm<float, float>(trans_a, trans_b, M, N, K, a, A.as<float>(), lda, B.as<float>(), ldb, b,
                                        C.as<float>(), N, bf16);
      if (A.dtype == DType::BF16 && C.dtype == DType::F32)
        return cuda::gemm<uint16_t, float>(trans_a, trans_b, M, N, K, a, A.as<uint16_t>(), lda, B.as<uint16_t>(),
                                           ldb, b, C.as<float>(), N);
      if (A.dtype == DType::BF16)
        return cuda::gemm<uint16_t, uint16_t>(trans_a, trans_b, M, N, K, a, A.as<uint16_t>(), lda,
                                              B.as<uint16_t>(), ldb, b, C.as<uint16_t>(), N);
      PRORES_FAIL(op, ": unsupported dtype ", dtype_name(C.dtype), " on CUDA (f32, or bf16 inputs)");
    } else {
      if (C.dtype == DType::F32)
        return cpu::gemm_bf16_if<float>(bf16, trans_a, trans_b, M, N, K, static_cast<float>(alpha), A.as<float>(),
                                        lda, B.as<float>(), ldb, static_cast<float>(beta), C.as<float>(), N);
      if (C.dtype == DType::F64)
        return cpu::gemm<double>(trans_a, trans_b, M, N, K, alpha, A.as<double>(), lda, B.as<double>(), ldb, beta,
                                 C.as<double>(), N);
      PRORES_FAIL(op, ": unsupported dtype ", dtype_name(C.dtype));
    }
  });
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
