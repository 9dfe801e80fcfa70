// CUDA GEMMs on row-major device matrices, mirroring ops/cpu/gemm.h, through cuBLASLt (ops/cuda/blas.h).
// Element types (TA for A and B, TC for C): float/float computes in exact fp32 (no TF32); uint16_t/float and
// uint16_t/uint16_t take bf16 inputs (raw 16 bits per element) with fp32 accumulation and an f32 or bf16
// output. Plain C++ declarations (no CUDA headers). Asynchronous on the legacy default stream of the
// current device; errors throw prores::Error.
#pragma once
#include <cstdint>

namespace prores::ops::cuda {

// C (M,N) = alpha * op(A) * op(B) + beta * C, row-major. A is (M,K) with leading dimension lda, or (K,M)
// when ta; B is (K,N) with ldb, or (N,K) when tb; C has ldc. beta = 0 overwrites C (=) without reading it,
// beta = 1 accumulates (+=). K = 0 gives C = beta * C; M = 0 or N = 0 does nothing. f32_via_bf16 (f32
// operands only): multiply on the bf16 tensor cores with fp32 accumulation (MatmulShape::f32_via_bf16)
// instead of exactly. C_in, when given, is what the beta term reads instead of C (same shape and ldc, not
// overlapping C): C (=) alpha * op(A) * op(B) + beta * C_in, the sum formed in the GEMM's epilogue.
template <typename TA, typename TC>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const TA* A, int64_t lda, const TA* B,
          int64_t ldb, float beta, TC* C, int64_t ldc, bool f32_via_bf16 = false, const TC* C_in = nullptr);

// `batch` independent GEMMs of the same shape in one cuBLASLt call: problem p uses A + p * stride_a,
// B + p * stride_b and C + p * stride_c (strides in elements; the C matrices must not overlap; C_in alike).
// Same contract as gemm for each problem; batch = 0 does nothing.
template <typename TA, typename TC>
void gemm_strided_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const TA* A,
                          int64_t lda, int64_t stride_a, const TA* B, int64_t ldb, int64_t stride_b, float beta,
                          TC* C, int64_t ldc, int64_t stride_c, int64_t batch, bool f32_via_bf16 = false,
                          const TC* C_in = nullptr);

// A bf16 copy (round to nearest even) of n device floats, in stream-ordered memory of the default stream
// (its pool keeps the memory for the next copy), released on destruction.
class Bf16Copy {
 public:
  Bf16Copy(const float* src, int64_t n);
  ~Bf16Copy();
  Bf16Copy(const Bf16Copy&) = delete;
  Bf16Copy& operator=(const Bf16Copy&) = delete;
  const uint16_t* data() const { return data_; }

 private:
  uint16_t* data_ = nullptr;
};

// gemm<float, float> with A and B first rounded to bf16 (round to nearest even) into stream-ordered scratch,
// then multiplied on the bf16 tensor cores with fp32 accumulation: the numbers of cpu::gemm_bf16, at about
// twice its rate on large products (bench_gemm_cuda) for one extra pass over each operand. A and B are
// contiguous: lda and ldb equal their row lengths.
void gemm_f32_rounded_to_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                              const float* B, float beta, float* C);

}  // namespace prores::ops::cuda
