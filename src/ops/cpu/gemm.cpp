// CPU GEMM: oneDNN sgemm for float (PRORES_WITH_ONEDNN), and a cache-blocked reference GEMM that packs
// (KC x NC) panels of op(B) and accumulates 8-row x 2-vector tiles of C in registers.
#include "ops/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/check.h"

#ifdef PRORES_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

namespace prores::ops::cpu {
namespace {

constexpr int64_t kKc = 256;  // depth of a packed B panel
constexpr int64_t kNc = 512;  // width of a packed B panel
constexpr int64_t kMr = 8;    // rows of a register tile of C

// Reference work below this many multiply-adds stays on one thread.
constexpr int64_t kParallelMinWork = int64_t{1} << 16;

// C (M,N) (=) beta * C; beta = 0 writes zeros without reading C.
template <typename T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  if (beta == T(1)) return;
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) {
      std::fill(c, c + N, T(0));
    } else {
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
    }
  }
}

// Bp (kc, nc) (=) op(B)[k0 : k0+kc, n0 : n0+nc], contiguous.
template <typename T>
void pack_b(bool tb, const T* B, int64_t ldb, int64_t k0, int64_t kc, int64_t n0, int64_t nc, T* Bp) {
  if (tb) {
    for (int64_t j = 0; j < nc; ++j) {
      const T* src = B + (n0 + j) * ldb + k0;
      for (int64_t kk = 0; kk < kc; ++kk) Bp[kk * nc + j] = src[kk];
    }
  } else {
    for (int64_t kk = 0; kk < kc; ++kk) std::copy_n(B + (k0 + kk) * ldb + n0, nc, Bp + kk * nc);
  }
}

// op(A) as strides: element (i, k) sits at A[i * si + k * sk].
struct Strides {
  int64_t si, sk;
};

// Columns of a register tile: two 512-bit vectors.
template <typename T>
constexpr int64_t kNr = 128 / sizeof(T);

// C[i0 : i0+kMr, j0 : j0+kNr] (+=) alpha * op(A)[i0 : i0+kMr, k0 : k0+kc] · Bp[:, j0 : j0+kNr], with the
// products accumulated in a kMr x kNr tile that the compiler keeps in vector registers.
template <typename T>
void tile(const T* A, Strides sa, int64_t i0, int64_t k0, int64_t kc, const T* __restrict Bp, int64_t nc,
          int64_t j0, T alpha, T* __restrict C, int64_t ldc) {
  T acc[kMr][kNr<T>] = {};
  for (int64_t kk = 0; kk < kc; ++kk) {
    const T* __restrict b = Bp + kk * nc + j0;
    for (int64_t r = 0; r < kMr; ++r) {
      const T a = A[(i0 + r) * sa.si + (k0 + kk) * sa.sk];
      for (int64_t j = 0; j < kNr<T>; ++j) acc[r][j] += a * b[j];
    }
  }
  for (int64_t r = 0; r < kMr; ++r) {
    for (int64_t j = 0; j < kNr<T>; ++j) C[r * ldc + j0 + j] += alpha * acc[r][j];
  }
}

// C[i0 : i0+rows, j0 : nc) (+=) alpha * op(A)[i0 : i0+rows, k0 : k0+kc] · Bp[:, j0 : nc), row by row.
template <typename T>
void edge(const T* A, Strides sa, int64_t i0, int64_t rows, int64_t k0, int64_t kc, const T* __restrict Bp,
          int64_t nc, int64_t j0, T alpha, T* C, int64_t ldc) {
  for (int64_t r = 0; r < rows; ++r) {
    T* __restrict c = C + r * ldc;
    for (int64_t kk = 0; kk < kc; ++kk) {
      const T a = alpha * A[(i0 + r) * sa.si + (k0 + kk) * sa.sk];
      const T* __restrict b = Bp + kk * nc;
      for (int64_t j = j0; j < nc; ++j) c[j] += a * b[j];
    }
  }
}

// C[i0 : i0+rows, n0 : n0+nc] (+=) alpha * op(A)[i0 : i0+rows, k0 : k0+kc] · Bp, rows <= kMr.
template <typename T>
void update_rows(const T* A, Strides sa, int64_t i0, int64_t rows, int64_t k0, int64_t kc, const T* Bp,
                 int64_t nc, T alpha, T* C, int64_t ldc, int64_t n0) {
  T* c = C + i0 * ldc + n0;
  int64_t j0 = 0;
  if (rows == kMr) {
    for (; j0 + kNr<T> <= nc; j0 += kNr<T>) tile(A, sa, i0, k0, kc, Bp, nc, j0, alpha, c, ldc);
  }
  if (j0 < nc) edge(A, sa, i0, rows, k0, kc, Bp, nc, j0, alpha, c, ldc);
}

}  // namespace

template <typename T>
void gemm_reference(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                    const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  scale_c(M, N, beta, C, ldc);
  if (K == 0 || alpha == T(0)) return;
  const bool parallel = !omp_in_parallel() && M * N * K >= kParallelMinWork;
  thread_local std::vector<T> packed;
  packed.resize(static_cast<size_t>(std::min(K, kKc) * std::min(N, kNc)));
  T* Bp = packed.data();
  const int64_t row_blocks = (M + kMr - 1) / kMr;
  const Strides sa = ta ? Strides{1, lda} : Strides{lda, 1};
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    for (int64_t n0 = 0; n0 < N; n0 += kNc) {
      const int64_t nc = std::min(kNc, N - n0);
      pack_b(tb, B, ldb, k0, kc, n0, nc, Bp);
#pragma omp parallel for schedule(static) if (parallel)
      for (int64_t ib = 0; ib < row_blocks; ++ib) {
        const int64_t i0 = ib * kMr;
        update_rows(A, sa, i0, std::min(kMr, M - i0), k0, kc, Bp, nc, alpha, C, ldc, n0);
      }
    }
  }
}

#ifdef PRORES_WITH_ONEDNN
namespace {
// C (M,N) = alpha * op(A) · op(B) + beta * C through oneDNN's sgemm (single-threaded inside a parallel
// region, since oneDNN's OpenMP runtime does not nest).
void onednn_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const dnnl_status_t status =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  PRORES_CHECK(status == dnnl_success, "dnnl_sgemm failed (status ", static_cast<int>(status), ") for M=", M,
               " N=", N, " K=", K, " lda=", lda, " ldb=", ldb, " ldc=", ldc);
}
}  // namespace
#endif

template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
#ifdef PRORES_WITH_ONEDNN
  if constexpr (std::is_same_v<T, float>) {
    if (M > 0 && N > 0 && K > 0) {
      onednn_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    }
  }
#endif
  gemm_reference(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

const char* gemm_backend() {
#ifdef PRORES_WITH_ONEDNN
  return "onednn";
#else
  return "reference";
#endif
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                          int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);
template void gemm_reference<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                                    const float*, int64_t, float, float*, int64_t);
template void gemm_reference<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                     const double*, int64_t, double, double*, int64_t);

}  // namespace prores::ops::cpu
