// CPU bf16 matmul (ops/cpu/gemm.h: gemm_bf16): operands in bf16 (f32 ones rounded to nearest even into
// thread-local copies, bf16 ones used as they are), products accumulated in fp32, the result stored as f32
// or rounded to bf16. oneDNN's bf16 matmul primitive when PRORES_WITH_ONEDNN (AVX512-BF16 kernels where the
// CPU has them; oneDNN's primitive cache keeps one per shape), otherwise the reference GEMM on the rounded
// values as f32.
#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/bf16.h"
#include "core/check.h"
#include "ops/cpu/gemm.h"
#include "ops/storage_combinations.h"

#ifdef PRORES_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace prores::ops::cpu {
namespace {

// Conversions below this many elements stay on one thread.
constexpr int64_t kParallelMinElements = int64_t{1} << 15;

// x (f32, or bf16 bits as uint16_t) as an E: bf16 bits (uint16_t) or the bf16 value as a float.
template <typename E, typename T>
E bf16_as(T x) {
  constexpr bool from_bits = std::is_same_v<T, uint16_t>, to_bits = std::is_same_v<E, uint16_t>;
  if constexpr (from_bits && to_bits) return x;
  else if constexpr (from_bits) return bf16_to_float(x);
  else if constexpr (to_bits) return float_to_bf16(x);
  else return round_to_bf16(x);
}

// A matrix in the element type E the backend multiplies: its data and leading dimension.
template <typename E>
struct Operand {
  const E* data;
  int64_t ld;
};

// The stored matrix src (rows, cols; leading dimension ld) as bf16 in E: in place when it already is bf16
// bits and E is too, else converted into `buf` (contiguous; sized and reused per thread).
template <typename E, typename T>
Operand<E> bf16_operand(std::vector<E>& buf, const T* src, int64_t rows, int64_t cols, int64_t ld) {
  if constexpr (std::is_same_v<T, E> && std::is_same_v<T, uint16_t>) {
    return {src, ld};
  } else {
    buf.resize(static_cast<size_t>(rows * cols));
    E* out = buf.data();
    const bool parallel = !omp_in_parallel() && rows * cols >= kParallelMinElements;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t r = 0; r < rows; ++r) {
      const T* s = src + r * ld;
      E* d = out + r * cols;
      for (int64_t c = 0; c < cols; ++c) d[c] = bf16_as<E>(s[c]);
    }
    return {out, cols};
  }
}

// C (M,N; leading dimension ldc) (=) beta C, stored as TC; beta = 0 writes zeros without reading C.
template <typename TC>
void scale_c(TC* C, int64_t M, int64_t N, int64_t ldc, float beta) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      TC& c = C[i * ldc + j];
      if constexpr (std::is_same_v<TC, uint16_t>)
        c = beta == 0.0f ? uint16_t{0} : float_to_bf16(beta * bf16_to_float(c));
      else
        c = beta == 0.0f ? 0.0f : beta * c;
    }
  }
}

#ifdef PRORES_WITH_ONEDNN
// C (M,N) = alpha op(A) op(B) + beta C on bf16 A and B (transposed through the memory strides), fp32
// accumulation, C in f32 or bf16 (TC). The primitive's scratch memory (its packed copies of B) comes from a
// per-thread buffer that keeps its pages from call to call.
template <typename TC>
void onednn_matmul_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, Operand<uint16_t> A,
                        Operand<uint16_t> B, float beta, TC* C, int64_t ldc) {
  using dnnl::memory;
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const auto c_type = std::is_same_v<TC, uint16_t> ? memory::data_type::bf16 : memory::data_type::f32;
  const memory::desc a_md({M, K}, memory::data_type::bf16, ta ? memory::dims{1, A.ld} : memory::dims{A.ld, 1});
  const memory::desc b_md({K, N}, memory::data_type::bf16, tb ? memory::dims{1, B.ld} : memory::dims{B.ld, 1});
  const memory::desc c_md({M, N}, c_type, memory::dims{ldc, 1});
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
  memory a(a_md, engine, const_cast<uint16_t*>(A.data)), b(b_md, engine, const_cast<uint16_t*>(B.data)),
      c(c_md, engine, C), s(pd.scratchpad_desc(), engine, scratch.data());
  dnnl::matmul(pd).execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c},
                                    {DNNL_ARG_SCRATCHPAD, s}});
  stream.wait();
}
#else
// The same with the reference GEMM on bf16 values held as floats; a bf16 C goes through an f32 copy.
template <typename TC>
void reference_matmul_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, Operand<float> A,
                           Operand<float> B, float beta, TC* C, int64_t ldc) {
  if constexpr (std::is_same_v<TC, float>) {
    gemm_reference<float>(ta, tb, M, N, K, alpha, A.data, A.ld, B.data, B.ld, beta, C, ldc);
  } else {
    thread_local std::vector<float> c32;
    c32.resize(static_cast<size_t>(M * N));
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) c32[i * N + j] = beta == 0.0f ? 0.0f : bf16_to_float(C[i * ldc + j]);
    gemm_reference<float>(ta, tb, M, N, K, alpha, A.data, A.ld, B.data, B.ld, beta, c32.data(), N);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = float_to_bf16(c32[i * N + j]);
  }
}
#endif

}  // namespace

void throw_bf16_needs_f32() { PRORES_FAIL("bf16 matmuls take f32 operands, not f64"); }

template <typename TA, typename TB, typename TC>
void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const TA* A, int64_t lda,
               const TB* B, int64_t ldb, float beta, TC* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) return scale_c(C, M, N, ldc, beta);  // no products
  const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
#ifdef PRORES_WITH_ONEDNN
  using E = uint16_t;
#else
  using E = float;
#endif
  thread_local std::vector<E> a_buf, b_buf;
  const Operand<E> a = bf16_operand(a_buf, A, a_rows, a_cols, lda);
  const Operand<E> b = bf16_operand(b_buf, B, b_rows, b_cols, ldb);
#ifdef PRORES_WITH_ONEDNN
  try {
    onednn_matmul_bf16(ta, tb, M, N, K, alpha, a, b, beta, C, ldc);
  } catch (const dnnl::error& e) {
    PRORES_FAIL("oneDNN bf16 matmul failed (", e.what(), ") for M=", M, " N=", N, " K=", K, " ldc=", ldc);
  }
#else
  reference_matmul_bf16(ta, tb, M, N, K, alpha, a, b, beta, C, ldc);
#endif
}

#define PRORES_INSTANTIATE_GEMM_BF16(TA, TB, TC)                                                                  \
  template void gemm_bf16<TA, TB, TC>(bool, bool, int64_t, int64_t, int64_t, float, const TA*, int64_t, const TB*, \
                                      int64_t, float, TC*, int64_t);
PRORES_FOR_EACH_STORAGE_TRIPLE(PRORES_INSTANTIATE_GEMM_BF16)
#undef PRORES_INSTANTIATE_GEMM_BF16

}  // namespace prores::ops::cpu
