// CPU bf16 matmul (ops/cpu/gemm.h: gemm_bf16): f32 operands rounded to bf16 (nearest even) into
// thread-local copies, then multiplied with fp32 accumulation, through oneDNN's bf16 matmul primitive when
// PRORES_WITH_ONEDNN (AVX512-BF16 kernels where the CPU has them; oneDNN's primitive cache keeps one per
// shape), otherwise through the reference GEMM on the rounded values as f32.
#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/bf16.h"
#include "core/check.h"
#include "ops/cpu/gemm.h"

#ifdef PRORES_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace prores::ops::cpu {
namespace {

// Conversions below this many elements stay on one thread.
constexpr int64_t kParallelMinElements = int64_t{1} << 15;

// dst (rows, cols) contiguous (=) src (rows, cols; leading dimension ld) rounded to bf16, as E: uint16_t
// (the bf16 bits) or float (the rounded value). Sized and reused per thread.
template <typename E>
const E* rounded_copy(std::vector<E>& dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
  dst.resize(static_cast<size_t>(rows * cols));
  E* out = dst.data();
  const bool parallel = !omp_in_parallel() && rows * cols >= kParallelMinElements;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = src + r * ld;
    E* d = out + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      if constexpr (std::is_same_v<E, uint16_t>) d[c] = float_to_bf16(s[c]);
      else d[c] = round_to_bf16(s[c]);
    }
  }
  return out;
}

#ifdef PRORES_WITH_ONEDNN
// C (M,N) = alpha op(A16) op(B16) + beta C on contiguous bf16 copies of the stored A and B (transposed
// through the memory strides), fp32 accumulation and output. The primitive's scratch memory (its packed
// copies of B) comes from a per-thread buffer that keeps its pages from call to call.
void onednn_matmul_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A16,
                        const uint16_t* B16, float beta, float* C, int64_t ldc) {
  using dnnl::memory;
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const memory::desc a_md({M, K}, memory::data_type::bf16, ta ? memory::dims{1, M} : memory::dims{K, 1});
  const memory::desc b_md({K, N}, memory::data_type::bf16, tb ? memory::dims{1, K} : memory::dims{N, 1});
  const memory::desc c_md({M, N}, memory::data_type::f32, memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops sum;
    sum.append_sum(beta);
    attr.set_post_ops(sum);
  }
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr, engine);
  thread_local std::vector<unsigned char> scratch;
  scratch.resize(std::max(scratch.size(), pd.scratchpad_desc().get_size()));
  dnnl::stream stream(engine);
  memory a(a_md, engine, const_cast<uint16_t*>(A16)), b(b_md, engine, const_cast<uint16_t*>(B16)),
      c(c_md, engine, C), s(pd.scratchpad_desc(), engine, scratch.data());
  dnnl::matmul(pd).execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c},
                                    {DNNL_ARG_SCRATCHPAD, s}});
  stream.wait();
}
#endif

}  // namespace

void throw_bf16_needs_f32() { PRORES_FAIL("bf16 matmuls take f32 operands, not f64"); }

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0 || K == 0 || alpha == 0.0f) {  // no products: C = beta C
    gemm_reference<float>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
#ifdef PRORES_WITH_ONEDNN
  thread_local std::vector<uint16_t> a16, b16;
  const uint16_t* a = rounded_copy(a16, A, a_rows, a_cols, lda);
  const uint16_t* b = rounded_copy(b16, B, b_rows, b_cols, ldb);
  try {
    onednn_matmul_bf16(ta, tb, M, N, K, alpha, a, b, beta, C, ldc);
  } catch (const dnnl::error& e) {
    PRORES_FAIL("oneDNN bf16 matmul failed (", e.what(), ") for M=", M, " N=", N, " K=", K, " ldc=", ldc);
  }
#else
  thread_local std::vector<float> a32, b32;
  const float* a = rounded_copy(a32, A, a_rows, a_cols, lda);
  const float* b = rounded_copy(b32, B, b_rows, b_cols, ldb);
  gemm_reference<float>(ta, tb, M, N, K, alpha, a, a_cols, b, b_cols, beta, C, ldc);
#endif
}

}  // namespace prores::ops::cpu
