// CUDA causal grouped-query attention (ops/cuda/attention.h): permute kernels between token-major rows and
// head-major storage (rotating q and k by RoPE on the way when given its tables), one warp per row for the
// causal softmax and its backward, and strided batched GEMMs (ops/cuda/gemm.h) over the (batch, group) pairs
// for the four products of the forward and backward.
#include "ops/cuda/attention.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "ops/cuda/device.h"
#include "ops/cuda/gemm.h"
#include "ops/cuda/kernel_util.cuh"
#include "ops/rope_rotation.h"

namespace prores::ops::cuda {
namespace {

using detail::kMaxBlocks;
using detail::kThreads;
constexpr int kWarpsPerBlock = kThreads / 32;

// Offsets of unit e of head h of token (b, t): in token rows (B, T, W) whose heads start at column col0,
// and in head-major storage (B, H, T, HS), all counted in units (elements, or 16-byte groups of them).
template <typename I>
struct HeadIndex {
  I tokens, heads;
};

// Index i runs over (b, t, h, e) in token order, so token-side accesses are contiguous and head-side ones
// contiguous within each head's HS units.
template <typename I>
__device__ HeadIndex<I> head_index(I i, I Tn, I H, I HS, I W, I col0) {
  const I e = i % HS, h = i / HS % H, bt = i / (HS * H), t = bt % Tn, b = bt / Tn;
  return {bt * W + col0 + h * HS + e, ((b * H + h) * Tn + t) * HS + e};
}

// heads (B, H, T, HS) (=) tokens[:, :, col0 : col0 + H HS] when kToHeads, else the reverse; U is the unit
// moved (an element type, or uint4 for 16 bytes), I the index type (32 bits when the sizes allow).
template <typename U, typename I, bool kToHeads>
__global__ void permute_kernel(U* dst, const U* src, I total, I Tn, I H, I HS, I W, I col0) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const HeadIndex<I> x = head_index(i, Tn, H, HS, W, col0);
    if (kToHeads)
      dst[x.heads] = src[x.tokens];
    else
      dst[x.tokens] = src[x.heads];
  }
}

template <typename U, typename I, bool kToHeads>
void launch_permute(void* dst, const void* src, int64_t total, int64_t Tn, int64_t H, int64_t HS, int64_t W,
                    int64_t col0) {
  const int64_t blocks = std::min((total + kThreads - 1) / kThreads, kMaxBlocks);
  permute_kernel<U, I, kToHeads><<<static_cast<int>(blocks), kThreads>>>(
      static_cast<U*>(dst), static_cast<const U*>(src), static_cast<I>(total), static_cast<I>(Tn),
      static_cast<I>(H), static_cast<I>(HS), static_cast<I>(W), static_cast<I>(col0));
  PRORES_CUDA_CHECK(cudaGetLastError());
}

// Launches permute_kernel over the B T H HS elements of the H heads at column col0 of rows of width W: in
// 16-byte units when the head size, row width, column and both pointers allow, with 32-bit indices when
// the offsets fit.
template <bool kToHeads, typename T>
void permute(T* dst, const T* src, int64_t B, int64_t Tn, int64_t H, int64_t HS, int64_t W, int64_t col0) {
  const int64_t total = B * Tn * H * HS;
  if (total == 0) return;
  constexpr int64_t kPerUnit = 16 / sizeof(T);
  const bool wide = HS % kPerUnit == 0 && W % kPerUnit == 0 && col0 % kPerUnit == 0 &&
                    reinterpret_cast<uintptr_t>(dst) % 16 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0;
  const bool narrow_index = B * Tn * W < (int64_t{1} << 31);
  if (wide && narrow_index)
    return launch_permute<uint4, uint32_t, kToHeads>(dst, src, total / kPerUnit, Tn, H, HS / kPerUnit,
                                                     W / kPerUnit, col0 / kPerUnit);
  if (narrow_index) return launch_permute<T, uint32_t, kToHeads>(dst, src, total, Tn, H, HS, W, col0);
  launch_permute<T, int64_t, kToHeads>(dst, src, total, Tn, H, HS, W, col0);
}

// kVec elements of T moved as one aligned load or store (16 bytes when kVec * sizeof(T) is 16).
template <typename T, int kVec>
struct alignas(sizeof(T) * kVec) Pack {
  T v[kVec];
};

// The H heads at column col0 of token rows (B, T, W) to head-major storage (B, H, T, HS) when kToHeads,
// else the reverse, each rotated by RoPE on the way: by +sin towards the heads (rope_forward), by -sin back
// (rope_backward). Index i runs over (b, t, h, u) in token order; unit u of a head is the kVec pair
// positions [u kVec, (u + 1) kVec), moved as two packs, one from each half of the head.
template <typename T, int kVec, typename I, bool kToHeads>
__global__ void rope_permute_kernel(T* dst, const T* src, I units, I Tn, I H, I HS, I W, I col0,
                                    const compute_type<T>* cos, const compute_type<T>* sin) {
  using S = compute_type<T>;
  const I half = HS / 2, per_head = half / kVec;
  const S sign = kToHeads ? S(1) : S(-1);
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < units; i += step) {
    const I e = i % per_head * kVec, h = i / per_head % H, bt = i / (per_head * H), t = bt % Tn, b = bt / Tn;
    const I tokens = bt * W + col0 + h * HS + e, heads = ((b * H + h) * Tn + t) * HS + e;
    const I from = kToHeads ? tokens : heads, to = kToHeads ? heads : tokens;
    const Pack<T, kVec> lo = *reinterpret_cast<const Pack<T, kVec>*>(src + from);
    const Pack<T, kVec> hi = *reinterpret_cast<const Pack<T, kVec>*>(src + from + half);
    Pack<T, kVec> out_lo, out_hi;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      const I table = t * half + e + j;
      const RopePair<S> r = rope_rotate(detail::load_element(lo.v[j]), detail::load_element(hi.v[j]), cos[table],
                                        sign * sin[table]);
      out_lo.v[j] = detail::store_element<T>(r.lo);
      out_hi.v[j] = detail::store_element<T>(r.hi);
    }
    *reinterpret_cast<Pack<T, kVec>*>(dst + to) = out_lo;
    *reinterpret_cast<Pack<T, kVec>*>(dst + to + half) = out_hi;
  }
}

template <typename T, int kVec, typename I, bool kToHeads>
void launch_rope_permute(T* dst, const T* src, int64_t units, int64_t Tn, int64_t H, int64_t HS, int64_t W,
                         int64_t col0, const compute_type<T>* cos, const compute_type<T>* sin) {
  const int64_t blocks = std::min((units + kThreads - 1) / kThreads, kMaxBlocks);
  rope_permute_kernel<T, kVec, I, kToHeads><<<static_cast<int>(blocks), kThreads>>>(
      dst, src, static_cast<I>(units), static_cast<I>(Tn), static_cast<I>(H), static_cast<I>(HS),
      static_cast<I>(W), static_cast<I>(col0), cos, sin);
  PRORES_CUDA_CHECK(cudaGetLastError());
}

// permute() with the RoPE rotation of rope_permute_kernel: 16-byte packs when the half head size, row
// width, column and both pointers allow, with 32-bit indices when the offsets fit.
template <bool kToHeads, typename T>
void rope_permute(T* dst, const T* src, int64_t B, int64_t Tn, int64_t H, int64_t HS, int64_t W, int64_t col0,
                  const compute_type<T>* cos, const compute_type<T>* sin) {
  const int64_t pairs = B * Tn * H * (HS / 2);
  if (pairs == 0) return;
  constexpr int kPerPack = static_cast<int>(16 / sizeof(T));
  const bool wide = (HS / 2) % kPerPack == 0 && W % kPerPack == 0 && col0 % kPerPack == 0 &&
                    reinterpret_cast<uintptr_t>(dst) % 16 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0;
  const bool narrow_index = B * Tn * W < (int64_t{1} << 31);
  if (wide && narrow_index)
    return launch_rope_permute<T, kPerPack, uint32_t, kToHeads>(dst, src, pairs / kPerPack, Tn, H, HS, W, col0,
                                                                cos, sin);
  if (narrow_index)
    return launch_rope_permute<T, 1, uint32_t, kToHeads>(dst, src, pairs, Tn, H, HS, W, col0, cos, sin);
  launch_rope_permute<T, 1, int64_t, kToHeads>(dst, src, pairs, Tn, H, HS, W, col0, cos, sin);
}

// permute() of q or k: rotated by RoPE on the way (rope_permute) when cos is given, else moved as they are.
template <bool kToHeads, typename T>
void rotated_permute(T* dst, const T* src, int64_t B, int64_t Tn, int64_t H, int64_t HS, int64_t W, int64_t col0,
                     const compute_type<T>* cos, const compute_type<T>* sin) {
  if (cos == nullptr) return permute<kToHeads>(dst, src, B, Tn, H, HS, W, col0);
  rope_permute<kToHeads>(dst, src, B, Tn, H, HS, W, col0, cos, sin);
}

__device__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// One warp per row r of att (rows, Tn), query position i = r % Tn:
// att[r, 0 : i] (=) softmax(att[r, 0 : i]), att[r, i + 1 : Tn) (=) 0.
__global__ void causal_softmax_kernel(float* att, int64_t rows, int64_t Tn) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;  // row is the same for the whole warp
  const int lane = threadIdx.x % 32;
  float* p = att + row * Tn;
  const int64_t n = row % Tn + 1;
  float m = -INFINITY;
  for (int64_t j = lane; j < n; j += 32) m = fmaxf(m, p[j]);
  m = warp_max(m);
  float s = 0.0f;
  for (int64_t j = lane; j < n; j += 32) {
    const float e = expf(p[j] - m);
    p[j] = e;
    s += e;
  }
  const float inv = 1.0f / warp_sum(s);
  for (int64_t j = lane; j < n; j += 32) p[j] *= inv;
  for (int64_t j = n + lane; j < Tn; j += 32) p[j] = 0.0f;
}

// One warp per row r of ds and p (rows, Tn), query position i = r % Tn, with ds holding dP on entry:
// ds[r, 0 : i] (=) p * (dp - sum_j p_j dp_j) over the causal prefix, ds[r, i + 1 : Tn) (=) 0.
__global__ void causal_softmax_backward_kernel(float* ds, const float* p, int64_t rows, int64_t Tn) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;  // row is the same for the whole warp
  const int lane = threadIdx.x % 32;
  float* d = ds + row * Tn;
  const float* pr = p + row * Tn;
  const int64_t n = row % Tn + 1;
  float dot = 0.0f;
  for (int64_t j = lane; j < n; j += 32) dot += pr[j] * d[j];
  dot = warp_sum(dot);
  for (int64_t j = lane; j < n; j += 32) d[j] = pr[j] * (d[j] - dot);
  for (int64_t j = n + lane; j < Tn; j += 32) d[j] = 0.0f;
}

// Blocks of kWarpsPerBlock warps covering `rows` rows, one warp each.
int row_blocks(int64_t rows) { return static_cast<int>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock); }

}  // namespace

template <typename T>
void split_heads_forward(T* q, T* k, T* v, const T* qkv, const AttentionDims& d, const compute_type<T>* cos,
                         const compute_type<T>* sin) {
  const int64_t W = (d.NH + 2 * d.KV) * d.HS;
  rotated_permute<true>(q, qkv, d.B, d.T, d.NH, d.HS, W, 0, cos, sin);
  rotated_permute<true>(k, qkv, d.B, d.T, d.KV, d.HS, W, d.NH * d.HS, cos, sin);
  permute<true>(v, qkv, d.B, d.T, d.KV, d.HS, W, (d.NH + d.KV) * d.HS);
}

template <typename T>
void split_heads_backward(T* dqkv, const T* dq, const T* dk, const T* dv, const AttentionDims& d,
                          const compute_type<T>* cos, const compute_type<T>* sin) {
  const int64_t W = (d.NH + 2 * d.KV) * d.HS;
  rotated_permute<false>(dqkv, dq, d.B, d.T, d.NH, d.HS, W, 0, cos, sin);
  rotated_permute<false>(dqkv, dk, d.B, d.T, d.KV, d.HS, W, d.NH * d.HS, cos, sin);
  permute<false>(dqkv, dv, d.B, d.T, d.KV, d.HS, W, (d.NH + d.KV) * d.HS);
}

// Per (batch b, group g), with G = NH / KV heads per group: Q_bg = q[b, gG : (g + 1)G] is (G T, HS) and
// P_bg = att[b, gG : (g + 1)G] is (G T, T), both contiguous, against K_bg = k[b, g], V_bg = v[b, g] (T, HS).
// The pair index b KV + g steps these by G T HS, G T T and T HS elements: one strided batched GEMM each.
void attention_forward(float* out, float* att, float* y_heads, const float* q, const float* k, const float* v,
                       const AttentionDims& d, bool bf16) {
  const int64_t Tn = d.T, HS = d.HS, G = d.NH / d.KV, pairs = d.B * d.KV, rows = d.B * d.NH * Tn;
  if (rows == 0) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  // S_bg (G T, T) (=) scale Q_bg K_bg^T.
  gemm_strided_batched<float, float>(false, true, G * Tn, Tn, HS, scale, q, HS, G * Tn * HS, k, HS, Tn * HS, 0.0f,
                                     att, Tn, G * Tn * Tn, pairs, bf16);
  causal_softmax_kernel<<<row_blocks(rows), kThreads>>>(att, rows, Tn);
  PRORES_CUDA_CHECK(cudaGetLastError());
  // Y_bg (G T, HS) (=) P_bg V_bg.
  gemm_strided_batched<float, float>(false, false, G * Tn, HS, Tn, 1.0f, att, Tn, G * Tn * Tn, v, HS, Tn * HS,
                                     0.0f, y_heads, HS, G * Tn * HS, pairs, bf16);
  permute<false>(out, y_heads, d.B, Tn, d.NH, HS, d.NH * HS, 0);
}

// The forward's products differentiated, batched over the (batch, group) pairs as there. dK_bg and dV_bg
// contract over all G T rows of the group, which sums the group's heads: dK_bg (=) scale dS_bg^T Q_bg,
// dV_bg (=) P_bg^T dY_bg.
void attention_backward(float* dq, float* dk, float* dv, float* datt, float* dy_heads, const float* dout,
                        const float* att, const float* q, const float* k, const float* v, const AttentionDims& d,
                        bool bf16) {
  const int64_t Tn = d.T, HS = d.HS, G = d.NH / d.KV, pairs = d.B * d.KV, rows = d.B * d.NH * Tn;
  if (rows == 0) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  permute<true>(dy_heads, dout, d.B, Tn, d.NH, HS, d.NH * HS, 0);
  // dP_bg (G T, T) (=) dY_bg V_bg^T, then dS (=) softmax backward of dP, in place.
  gemm_strided_batched<float, float>(false, true, G * Tn, Tn, HS, 1.0f, dy_heads, HS, G * Tn * HS, v, HS, Tn * HS,
                                     0.0f, datt, Tn, G * Tn * Tn, pairs, bf16);
  causal_softmax_backward_kernel<<<row_blocks(rows), kThreads>>>(datt, att, rows, Tn);
  PRORES_CUDA_CHECK(cudaGetLastError());
  // dQ_bg (G T, HS) (=) scale dS_bg K_bg.
  gemm_strided_batched<float, float>(false, false, G * Tn, HS, Tn, scale, datt, Tn, G * Tn * Tn, k, HS, Tn * HS,
                                     0.0f, dq, HS, G * Tn * HS, pairs, bf16);
  // dK_bg (T, HS) (=) scale dS_bg^T Q_bg;  dV_bg (T, HS) (=) P_bg^T dY_bg.
  gemm_strided_batched<float, float>(true, false, Tn, HS, G * Tn, scale, datt, Tn, G * Tn * Tn, q, HS,
                                     G * Tn * HS, 0.0f, dk, HS, Tn * HS, pairs, bf16);
  gemm_strided_batched<float, float>(true, false, Tn, HS, G * Tn, 1.0f, att, Tn, G * Tn * Tn, dy_heads, HS,
                                     G * Tn * HS, 0.0f, dv, HS, Tn * HS, pairs, bf16);
}

#define PRORES_INSTANTIATE_SPLIT_HEADS(T)                                                                  \
  template void split_heads_forward<T>(T*, T*, T*, const T*, const AttentionDims&, const compute_type<T>*, \
                                       const compute_type<T>*);                                            \
  template void split_heads_backward<T>(T*, const T*, const T*, const T*, const AttentionDims&,             \
                                        const compute_type<T>*, const compute_type<T>*);
PRORES_INSTANTIATE_SPLIT_HEADS(float)
PRORES_INSTANTIATE_SPLIT_HEADS(double)
PRORES_INSTANTIATE_SPLIT_HEADS(uint16_t)
#undef PRORES_INSTANTIATE_SPLIT_HEADS

}  // namespace prores::ops::cuda
