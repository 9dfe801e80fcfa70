// CUDA flash attention (ops/cuda/flash_attention.h) on the bf16 tensor cores: mma.sync m16n8k16 with f32
// accumulators, operands loaded from shared memory by ldmatrix. Blocks of 4 warps; each warp owns 16 rows of
// its block's tile and keeps scores, probabilities and accumulators in registers, in the mma fragment layout:
//   forward      block (batch, head, 64 queries): 64-key tiles up to the diagonal, online softmax; out, lse.
//   delta        one warp per (batch, head, query): rowsum(dout * out).
//   dK, dV       block (batch, group, 64 keys): loops over the group's heads and the query tiles at or after
//                the key tile, dK and dV summed in registers (so the group's heads need no atomics).
//   dQ           block (batch, head, 64 queries): key tiles up to the diagonal, dQ summed in registers.
// q, k, v, out and their gradients are f32 or bf16 in global memory (TIO: float, or uint16_t holding bf16
// bits); tiles are staged into shared memory as bf16 (f32 rounded on the way; rows padded by 8 elements, so
// that the 8 rows of every ldmatrix phase fall in distinct banks), and results are stored as TIO (bf16:
// rounded to nearest even). Rows at or past T are staged as zeros, never stored. bf16 tiles are copied by
// cp.async, each issued as soon as its buffer is free, so that it lands while the block computes on others.
//
// Fragment layout of mma.m16n8k16 (PTX ISA), lane = 4 g + t: the f32 accumulator of a 16x8 tile holds
// c[0], c[1] = (row g, cols 2t, 2t + 1) and c[2], c[3] = (row g + 8, same cols); so acc[n / 8][4] of a 16 x n
// tile holds element (g + 8 (c / 2), 8 nt + 2t + c % 2) in acc[nt][c]. The bf16 A operand (16x16) holds
// (g, 2t..2t+1), (g + 8, 2t..), (g, 2t + 8..), (g + 8, 2t + 8..) in a[0..3], which are exactly accumulator
// tiles 2kk and 2kk + 1 of the same rows: probabilities feed the next product without leaving registers.
#include "ops/cuda/flash_attention.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "core/check.h"
#include "ops/cuda/device.h"

namespace prores::ops::cuda {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kWarpRows = 16;              // rows of a tile one warp owns
constexpr int kTile = kWarps * kWarpRows;  // queries of a forward / dQ block, keys of every key tile
constexpr int kDefaultSmemBytes = 48 * 1024;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Row pitch (bf16 elements) of a staged tile of head size D: the 16 padding bytes move each row 4 banks on.
template <int D>
constexpr int kPitch = D + 8;

// Queries per tile of the dK/dV kernel: 32 at D = 128 keeps its dK and dV accumulators out of local memory.
template <int D>
constexpr int kDkdvQueryRows = D == 128 ? 32 : 64;

// Resident blocks per SM the kernels are compiled for (__launch_bounds__): the most whose register budget
// (65536 / (kThreads * blocks) per thread) still holds each kernel's accumulators without spilling.
template <int D>
constexpr int kForwardMinBlocks = D == 64 ? 4 : 3;
constexpr int kDqMinBlocks = 3;
template <int D>
constexpr int kDkdvMinBlocks = D == 64 ? 3 : 2;

// Bytes of a staged tile of `rows` rows.
template <int D>
constexpr size_t tile_bytes(int rows) {
  return static_cast<size_t>(rows) * kPitch<D> * sizeof(bf16);
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // lo in the low half
  uint32_t bits;
  memcpy(&bits, &v, sizeof(bits));
  return bits;
}

// r[m] (=) this lane's share of 8x8 matrix m, whose row lane % 8 lane 8 m + lane % 8 addresses: elements
// 2 (lane % 4) and 2 (lane % 4) + 1 of row lane / 4, or with kTrans the same of the transposed matrix.
template <bool kTrans>
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16* row) {
  const uint32_t address = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  if constexpr (kTrans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address)
                 : "memory");
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address)
                 : "memory");
}

// A fragment of A[m][k] = tile[r0 + m][k0 + k]: matrices (r0, k0), (r0 + 8, k0), (r0, k0 + 8), (r0 + 8, k0 + 8).
template <int kRowPitch>
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const bf16* tile, int r0, int k0, int lane) {
  ldmatrix_x4<false>(a, tile + (r0 + (lane & 8) + (lane & 7)) * kRowPitch + k0 + (lane & 16) / 2);
}

// B fragments of the n-tiles n0 (b[0], b[1]) and n0 + 8 (b[2], b[3]) of B[k][n] = tile[n0 + n][k0 + k], a
// row-major tile used transposed (K in Q K^T): matrices (n0, k0), (n0, k0 + 8), (n0 + 8, k0), (n0 + 8, k0 + 8).
template <int kRowPitch>
__device__ __forceinline__ void load_b_rows(uint32_t (&b)[4], const bf16* tile, int n0, int k0, int lane) {
  ldmatrix_x4<false>(b, tile + (n0 + (lane & 16) / 2 + (lane & 7)) * kRowPitch + k0 + (lane & 8));
}

// B fragments of the n-tiles n0 (b[0], b[1]) and n0 + 8 (b[2], b[3]) of B[k][n] = tile[k0 + k][n0 + n], a
// row-major tile used as is (V in P V): transposed matrices (k0, n0), (k0 + 8, n0), (k0, n0 + 8), (k0 + 8, n0 + 8).
template <int kRowPitch>
__device__ __forceinline__ void load_b_cols(uint32_t (&b)[4], const bf16* tile, int k0, int n0, int lane) {
  ldmatrix_x4<true>(b, tile + (k0 + (lane & 8) + (lane & 7)) * kRowPitch + n0 + (lane & 16) / 2);
}

// c (16x8) (+=) a (16x16) b (16x8) in bf16 with f32 accumulation.
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// acc (16, N) (+=) A B^T for A = a_tile rows [r0, r0 + 16) and B = b_tile rows [0, N), both (rows, D)
// row-major: a warp's 16 rows against N rows of the other operand (scores, or dP).
template <int D, int N>
__device__ __forceinline__ void mma_abt(float (&acc)[N / 8][4], const bf16* a_tile, int r0, const bf16* b_tile,
                                        int lane) {
#pragma unroll
  for (int k0 = 0; k0 < D; k0 += 16) {
    uint32_t a[4];
    load_a<kPitch<D>>(a, a_tile, r0, k0, lane);
#pragma unroll
    for (int n0 = 0; n0 < N; n0 += 16) {
      uint32_t b[4];
      load_b_rows<kPitch<D>>(b, b_tile, n0, k0, lane);
      mma(acc[n0 / 8], a, b[0], b[1]);
      mma(acc[n0 / 8 + 1], a, b[2], b[3]);
    }
  }
}

// acc (16, D) (+=) bf16(p) B for the warp's p (16, N) in accumulator layout and B = b_tile rows [0, N),
// (N, D) row-major.
template <int D, int N>
__device__ __forceinline__ void mma_pb(float (&acc)[D / 8][4], const float (&p)[N / 8][4], const bf16* b_tile,
                                       int lane) {
#pragma unroll
  for (int k0 = 0; k0 < N; k0 += 16) {
    const float(&lo)[4] = p[k0 / 8];
    const float(&hi)[4] = p[k0 / 8 + 1];
    const uint32_t a[4] = {pack_bf16(lo[0], lo[1]), pack_bf16(lo[2], lo[3]), pack_bf16(hi[0], hi[1]),
                           pack_bf16(hi[2], hi[3])};
#pragma unroll
    for (int n0 = 0; n0 < D; n0 += 16) {
      uint32_t b[4];
      load_b_cols<kPitch<D>>(b, b_tile, k0, n0, lane);
      mma(acc[n0 / 8], a, b[0], b[1]);
      mma(acc[n0 / 8 + 1], a, b[2], b[3]);
    }
  }
}

// One tile to stage: tile[r][0, D) (=) bf16(src[r stride, r stride + D)).
template <typename TIn>
struct Staging {
  bf16* tile;
  const TIn* src;
  int64_t stride;
};

// dst[0], dst[1] (=) a, b stored as f32, or as bf16 (rounded to nearest even).
__device__ __forceinline__ void store_pair(float* dst, float a, float b) {
  *reinterpret_cast<float2*>(dst) = make_float2(a, b);
}
__device__ __forceinline__ void store_pair(uint16_t* dst, float a, float b) {
  *reinterpret_cast<uint32_t*>(dst) = pack_bf16(a, b);
}

// An element of TIn as a float, rounded to bf16 (as staged tiles see it; exact for bf16 storage).
__device__ __forceinline__ float staged_value(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }
__device__ __forceinline__ float staged_value(uint16_t x) { return __bfloat162float(__ushort_as_bfloat16(x)); }

// An element of TIn as a float.
__device__ __forceinline__ float value_of(float x) { return x; }
__device__ __forceinline__ float value_of(uint16_t x) { return __bfloat162float(__ushort_as_bfloat16(x)); }

// Vector loads each thread keeps in flight per staged f32 tile: enough to cover the load latency with several
// blocks per SM, few enough to leave the registers to the accumulators.
constexpr int kStageBatch = 4;

// shared[0, 16) (=) global[0, 16), or zeros when !valid (global is then not read, but must be an address of
// global memory: a generic pointer, converted); asynchronous: complete once a later cp_async_wait covers the
// group it was committed in.
__device__ __forceinline__ void cp_async_16(void* shared, const void* global, bool valid) {
  const uint32_t address = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  const size_t source = __cvta_generic_to_global(global);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(address), "l"(source), "r"(valid ? 16 : 0)
               : "memory");
}

// shared[0, 4) (=) global[0, 4), or zeros when !valid; asynchronous, as cp_async_16.
__device__ __forceinline__ void cp_async_4(void* shared, const void* global, bool valid) {
  const uint32_t address = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  const size_t source = __cvta_generic_to_global(global);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(address), "l"(source), "r"(valid ? 4 : 0)
               : "memory");
}

// Closes this thread's group of the cp.asyncs issued since the last commit (an empty group is allowed).
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most kPending of this thread's committed groups, the newest ones, are still in flight. Other
// threads' copies are visible after a __syncthreads() that follows every thread's wait.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Stages every tile of `tiles` for its rows r < valid, zeros for valid <= r < kRows; by the whole block.
// bf16 sources go by cp.async, 16 bytes at a time, into the group the caller commits next; f32 sources are
// loaded (4-element vector loads coalesced along each row, the loads of all the tiles in flight together),
// rounded and stored at once. Either way the tiles are readable after cp_async_wait and __syncthreads().
template <int D, int kRows, typename TIn, int kCount>
__device__ __forceinline__ void stage(const Staging<TIn> (&tiles)[kCount], int valid) {
  if constexpr (std::is_same_v<TIn, uint16_t>) {
    constexpr int kChunks = D / 8, kPasses = kRows * kChunks / kThreads;
    static_assert(kPasses * kThreads == kRows * kChunks, "whole passes of the block");
#pragma unroll 1  // the copies need no registers while in flight; unrolled, their addresses would hold many
    for (int pass = 0; pass < kPasses; ++pass) {
      const int i = pass * kThreads + static_cast<int>(threadIdx.x);
      const int r = i / kChunks, c = i % kChunks * 8;
#pragma unroll
      for (int n = 0; n < kCount; ++n)  // rows past `valid` read nothing; row 0 stands in as their address
        cp_async_16(tiles[n].tile + r * kPitch<D> + c, tiles[n].src + (r < valid ? r : 0) * tiles[n].stride + c,
                    r < valid);
    }
  } else {
    constexpr int kVectors = D / 4, kPasses = kRows * kVectors / kThreads;
    static_assert(kPasses % kStageBatch == 0, "whole batches of whole passes of the block");
#pragma unroll 1
    for (int pass0 = 0; pass0 < kPasses; pass0 += kStageBatch) {
      float4 x[kCount][kStageBatch];
#pragma unroll
      for (int j = 0; j < kStageBatch; ++j) {
        const int i = (pass0 + j) * kThreads + static_cast<int>(threadIdx.x);
        const int r = i / kVectors, c = i % kVectors * 4;
#pragma unroll
        for (int n = 0; n < kCount; ++n)
          x[n][j] = r < valid ? __ldg(reinterpret_cast<const float4*>(tiles[n].src + r * tiles[n].stride + c))
                              : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      }
#pragma unroll
      for (int j = 0; j < kStageBatch; ++j) {
        const int i = (pass0 + j) * kThreads + static_cast<int>(threadIdx.x);
        const int offset = i / kVectors * kPitch<D> + i % kVectors * 4;
#pragma unroll
        for (int n = 0; n < kCount; ++n)
          *reinterpret_cast<uint2*>(tiles[n].tile + offset) =
              make_uint2(pack_bf16(x[n][j].x, x[n][j].y), pack_bf16(x[n][j].z, x[n][j].w));
      }
    }
  }
}

// x reduced over the 4 lanes of a quad (the lanes that share an accumulator row).
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Block (batch b, head h, query tile qt), the last tiles (which see the most keys) first; warp w owns
// queries [16 w, 16 w + 16) of the tile, the lane rows g and g + 8 of them. Online softmax in the log2
// domain: scores times scale_log2 = log2(e) / sqrt(HS).
template <int D, typename TIO>
__global__ void __launch_bounds__(kThreads, kForwardMinBlocks<D>)
    flash_forward_kernel(TIO* __restrict__ out, float* __restrict__ lse, const TIO* __restrict__ q,
                         const TIO* __restrict__ k, const TIO* __restrict__ v, int T, int NH, int group, int heads,
                         float scale_log2) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem);
  bf16* ks = qs + kTile * kPitch<D>;
  bf16* vs = ks + kTile * kPitch<D>;
  const int tiles = (T + kTile - 1) / kTile;
  const int qt = tiles - 1 - static_cast<int>(blockIdx.x) / heads, bh = static_cast<int>(blockIdx.x) % heads;
  const int b = bh / NH, h = bh % NH, q0 = qt * kTile;
  const int lane = static_cast<int>(threadIdx.x) % 32, r0 = static_cast<int>(threadIdx.x) / 32 * kWarpRows;
  const int g = lane / 4, t = lane % 4;
  const int64_t kv_base = (static_cast<int64_t>(b) * (NH / group) + h / group) * T * D;

  // Groups of copies in flight, oldest first: (q, keys 0), (values 0); then per key tile, the next tile's keys
  // (staged while this tile's P V runs) and its values (staged while the next tile's Q K^T runs).
  stage<D, kTile, TIO>({{qs, q + (static_cast<int64_t>(bh) * T + q0) * D, D}}, T - q0);
  stage<D, kTile, TIO>({{ks, k + kv_base, D}}, T);
  cp_async_commit();
  stage<D, kTile, TIO>({{vs, v + kv_base, D}}, T);
  cp_async_commit();
  float o[D / 8][4] = {};
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};  // per lane: partial sums
  for (int kt = 0; kt <= qt; ++kt) {
    const int next_k0 = (kt + 1) * kTile;
    const int64_t next_offset = kv_base + static_cast<int64_t>(next_k0) * D;
    cp_async_wait<1>();
    __syncthreads();  // this tile's keys (the first time: and q) are staged
    float s[kTile / 8][4] = {};
    mma_abt<D, kTile>(s, qs, r0, ks, lane);
    // On the diagonal tile (kt = qt) keys after the query are masked. Each tile's first key precedes every
    // query of the block and is never masked, so each row's maximum is finite and alpha is 0 on the first tile.
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const bool masked = kt == qt && nt * 8 + 2 * t + c % 2 > r0 + g + 8 * (c / 2);
        s[nt][c] = masked ? -INFINITY : s[nt][c] * scale_log2;
      }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float m = row_max[half];
#pragma unroll
      for (int nt = 0; nt < kTile / 8; ++nt) m = fmaxf(m, fmaxf(s[nt][2 * half], s[nt][2 * half + 1]));
      m = quad_max(m);
      const float alpha = exp2f(row_max[half] - m);
      row_max[half] = m;
      float sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < kTile / 8; ++nt)
#pragma unroll
        for (int c = 2 * half; c < 2 * half + 2; ++c) {
          s[nt][c] = exp2f(s[nt][c] - m);
          sum += s[nt][c];
        }
      row_sum[half] = row_sum[half] * alpha + sum;
#pragma unroll
      for (int nt = 0; nt < D / 8; ++nt) {
        o[nt][2 * half] *= alpha;
        o[nt][2 * half + 1] *= alpha;
      }
    }
    cp_async_wait<0>();
    __syncthreads();  // this tile's values are staged, and every warp is done with its keys
    if (kt < qt) stage<D, kTile, TIO>({{ks, k + next_offset, D}}, T - next_k0);
    cp_async_commit();
    mma_pb<D, kTile>(o, s, vs, lane);
    if (kt == qt) break;
    __syncthreads();  // every warp is done with this tile's values
    stage<D, kTile, TIO>({{vs, v + next_offset, D}}, T - next_k0);
    cp_async_commit();
  }
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const float l = quad_sum(row_sum[half]);
    const int i = q0 + r0 + g + 8 * half;
    if (i >= T) continue;
    const float inv = 1.0f / l;
    TIO* dst = out + ((static_cast<int64_t>(b) * T + i) * NH + h) * D + 2 * t;
#pragma unroll
    for (int nt = 0; nt < D / 8; ++nt) store_pair(dst + nt * 8, o[nt][2 * half] * inv, o[nt][2 * half + 1] * inv);
    if (t == 0) lse[static_cast<int64_t>(bh) * T + i] = (row_max[half] + log2f(l)) * kLn2;
  }
}

// delta[(b, h, i)] (=) sum_e bf16(dout[b, i, h HS + e]) out[b, i, h HS + e]: one warp per row, rows in
// (b, h, i) order, grid-stride; the warp's sum in a fixed shuffle order. dout is rounded as the dP products
// see it, so that sum_j P_ij (dP_ij - delta_i) cancels (a visible error at very short rows otherwise).
template <int D, typename TIO>
__global__ void __launch_bounds__(kThreads)
    flash_delta_kernel(float* __restrict__ delta, const TIO* __restrict__ dout, const TIO* __restrict__ out,
                       int64_t rows, int T, int NH) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32; row < rows; row += step) {
    const int64_t i = row % T, bh = row / T;
    const int64_t base = ((bh / NH * T + i) * NH + bh % NH) * D;
    float sum = 0.0f;
#pragma unroll
    for (int e = lane; e < D; e += 32) sum += staged_value(dout[base + e]) * value_of(out[base + e]);
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (lane == 0) delta[row] = sum;
  }
}

// Block (batch b, group g, key tile kt), the first tiles (which see the most queries) first; warp w owns keys
// [16 w, 16 w + 16) of the tile and sums their dK and dV over the group's heads and the query tiles (kQ
// queries) at or after the key tile. Per query tile, in the key-major (transposed) orientation:
//   P^T (=) exp2(scale_log2 K Q^T - lse2), zero where query < key;  dV (+=) P^T dO;
//   dP^T (=) V dO^T;  dS^T (=) P^T (dP^T - delta);  dK (+=) dS^T Q, times 1 / sqrt(HS) when stored.
template <int D, typename TIO>
__global__ void __launch_bounds__(kThreads, kDkdvMinBlocks<D>)
    flash_backward_dkdv_kernel(TIO* __restrict__ dk, TIO* __restrict__ dv, const TIO* __restrict__ dout,
                               const float* __restrict__ lse, const float* __restrict__ delta,
                               const TIO* __restrict__ q, const TIO* __restrict__ k, const TIO* __restrict__ v,
                               int T, int NH, int group, int groups, float scale_log2, float scale) {
  constexpr int kQ = kDkdvQueryRows<D>;
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* ks = reinterpret_cast<bf16*>(smem);
  bf16* vs = ks + kTile * kPitch<D>;
  bf16* qs = vs + kTile * kPitch<D>;  // two buffers of kQ rows
  bf16* dos = qs + 2 * kQ * kPitch<D>;
  float* lse_s = reinterpret_cast<float*>(dos + kQ * kPitch<D>);  // two buffers of kQ
  float* delta_s = lse_s + 2 * kQ;
  const int kt = static_cast<int>(blockIdx.x) / groups, bg = static_cast<int>(blockIdx.x) % groups;
  const int b = bg / (NH / group), first_head = bg % (NH / group) * group, k0 = kt * kTile;
  const int lane = static_cast<int>(threadIdx.x) % 32, r0 = static_cast<int>(threadIdx.x) / 32 * kWarpRows;
  const int g = lane / 4, t = lane % 4;
  const int64_t kv_base = (static_cast<int64_t>(bg) * T + k0) * D;

  // Step i works on head first_head + i / head_tiles and the query tile from first_q0 + i % head_tiles * kQ,
  // with q and lse in buffer i % 2.
  const int first_q0 = k0 / kQ * kQ, head_tiles = (T - first_q0 + kQ - 1) / kQ, steps = group * head_tiles;
  const auto head_of = [&](int i) { return static_cast<int64_t>(b) * NH + first_head + i / head_tiles; };
  const auto q0_of = [&](int i) { return first_q0 + i % head_tiles * kQ; };
  // Stage step i's dout and delta, or its q and lse; rows past T are zeros (their P is masked to 0).
  const auto stage_dout = [&](int i) {
    const int64_t bh = head_of(i);
    const int q0 = q0_of(i);
    const int64_t row_stride = static_cast<int64_t>(NH) * D;  // dout is (B, T, NH, HS)
    stage<D, kQ, TIO>({{dos, dout + (static_cast<int64_t>(b) * T + q0) * row_stride + bh % NH * D, row_stride}},
                      T - q0);
    for (int r = static_cast<int>(threadIdx.x); r < kQ; r += kThreads)
      cp_async_4(delta_s + r, delta + bh * T + q0 + (q0 + r < T ? r : 0), q0 + r < T);
  };
  const auto stage_q = [&](int i) {
    const int64_t bh = head_of(i);
    const int q0 = q0_of(i);
    stage<D, kQ, TIO>({{qs + i % 2 * kQ * kPitch<D>, q + (bh * T + q0) * D, D}}, T - q0);
    for (int r = static_cast<int>(threadIdx.x); r < kQ; r += kThreads)
      cp_async_4(lse_s + i % 2 * kQ + r, lse + bh * T + q0 + (q0 + r < T ? r : 0), q0 + r < T);
  };
  // Copies in flight: step i + 1's q (staged while all of step i runs) and its dout (staged once step i's
  // dP^T has read this step's, while its dS^T Q runs).
  stage<D, kTile, TIO>({{ks, k + kv_base, D}, {vs, v + kv_base, D}}, T - k0);
  stage_dout(0);
  stage_q(0);
  cp_async_commit();
  float dk_acc[D / 8][4] = {}, dv_acc[D / 8][4] = {};
  for (int i = 0; i < steps; ++i) {
    const int q0 = q0_of(i);
    const bf16* q_tile = qs + i % 2 * kQ * kPitch<D>;
    const float* lse_tile = lse_s + i % 2 * kQ;
    cp_async_wait<0>();
    __syncthreads();  // step i's tiles are staged, and every warp is done with step i - 1's q buffer
    if (i + 1 < steps) stage_q(i + 1);
    cp_async_commit();
    float p[kQ / 8][4] = {};
    mma_abt<D, kQ>(p, ks, r0, q_tile, lane);
    const bool diagonal = q0 < k0 + kTile;  // the tile may hold a query before a key
#pragma unroll
    for (int nt = 0; nt < kQ / 8; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int col = nt * 8 + 2 * t + c % 2;
        const bool masked = (diagonal && q0 + col < k0 + r0 + g + 8 * (c / 2)) || q0 + col >= T;
        // lse in the log2 domain rounded on its own, as the dQ kernel's (no fused multiply-add across it)
        p[nt][c] = masked ? 0.0f : exp2f(p[nt][c] * scale_log2 - __fmul_rn(lse_tile[col], kLog2e));
      }
    mma_pb<D, kQ>(dv_acc, p, dos, lane);
    float ds[kQ / 8][4] = {};
    mma_abt<D, kQ>(ds, vs, r0, dos, lane);
#pragma unroll
    for (int nt = 0; nt < kQ / 8; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) ds[nt][c] = p[nt][c] * (ds[nt][c] - delta_s[nt * 8 + 2 * t + c % 2]);
    __syncthreads();  // every warp is done with step i's dout and delta
    if (i + 1 < steps) stage_dout(i + 1);
    cp_async_commit();
    mma_pb<D, kQ>(dk_acc, ds, q_tile, lane);
  }
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int j = r0 + g + 8 * half;
    if (k0 + j >= T) continue;
    const int64_t row = kv_base + static_cast<int64_t>(j) * D + 2 * t;
#pragma unroll
    for (int nt = 0; nt < D / 8; ++nt) {
      store_pair(dk + row + nt * 8, dk_acc[nt][2 * half] * scale, dk_acc[nt][2 * half + 1] * scale);
      store_pair(dv + row + nt * 8, dv_acc[nt][2 * half], dv_acc[nt][2 * half + 1]);
    }
  }
}

// Block (batch b, head h, query tile qt), the last tiles first; warp w owns queries [16 w, 16 w + 16) of the
// tile and sums their dQ over the key tiles up to the diagonal:
//   P (=) exp2(scale_log2 Q K^T - lse2), zero where key > query;  dP (=) dO V^T;  dS (=) P (dP - delta);
//   dQ (+=) dS K, times 1 / sqrt(HS) when stored.
template <int D, typename TIO>
__global__ void __launch_bounds__(kThreads, kDqMinBlocks)
    flash_backward_dq_kernel(TIO* __restrict__ dq, const TIO* __restrict__ dout, const float* __restrict__ lse,
                             const float* __restrict__ delta, const TIO* __restrict__ q, const TIO* __restrict__ k,
                             const TIO* __restrict__ v, int T, int NH, int group, int heads, float scale_log2,
                             float scale) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* qs = reinterpret_cast<bf16*>(smem);
  bf16* dos = qs + kTile * kPitch<D>;
  bf16* ks = dos + kTile * kPitch<D>;
  bf16* vs = ks + kTile * kPitch<D>;
  const int tiles = (T + kTile - 1) / kTile;
  const int qt = tiles - 1 - static_cast<int>(blockIdx.x) / heads, bh = static_cast<int>(blockIdx.x) % heads;
  const int b = bh / NH, h = bh % NH, q0 = qt * kTile;
  const int lane = static_cast<int>(threadIdx.x) % 32, r0 = static_cast<int>(threadIdx.x) / 32 * kWarpRows;
  const int g = lane / 4, t = lane % 4;
  const int64_t kv_base = (static_cast<int64_t>(b) * (NH / group) + h / group) * T * D;

  // Groups of copies in flight, oldest first: (q, dout, values 0), (keys 0); then per key tile, the next tile's
  // values (staged while this tile's P and dS K run) and its keys (staged while the next tile's dO V^T runs).
  stage<D, kTile, TIO>({{qs, q + (static_cast<int64_t>(bh) * T + q0) * D, D},
                        {dos, dout + ((static_cast<int64_t>(b) * T + q0) * NH + h) * D, static_cast<int64_t>(NH) * D}},
                       T - q0);
  stage<D, kTile, TIO>({{vs, v + kv_base, D}}, T);
  cp_async_commit();
  stage<D, kTile, TIO>({{ks, k + kv_base, D}}, T);
  cp_async_commit();
  float lse2[2], row_delta[2];  // of the lane's rows g and g + 8; rows past T get P = 0
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int i = q0 + r0 + g + 8 * half;
    lse2[half] = i < T ? lse[static_cast<int64_t>(bh) * T + i] * kLog2e : INFINITY;
    row_delta[half] = i < T ? delta[static_cast<int64_t>(bh) * T + i] : 0.0f;
  }
  float dq_acc[D / 8][4] = {};
  for (int kt = 0; kt <= qt; ++kt) {
    const int next_k0 = (kt + 1) * kTile;
    const int64_t next_offset = kv_base + static_cast<int64_t>(next_k0) * D;
    cp_async_wait<1>();
    __syncthreads();  // this tile's values (the first time: and q, dout) are staged
    float ds[kTile / 8][4] = {};
    mma_abt<D, kTile>(ds, dos, r0, vs, lane);
    cp_async_wait<0>();
    __syncthreads();  // this tile's keys are staged, and every warp is done with its values
    if (kt < qt) stage<D, kTile, TIO>({{vs, v + next_offset, D}}, T - next_k0);
    cp_async_commit();
    float p[kTile / 8][4] = {};
    mma_abt<D, kTile>(p, qs, r0, ks, lane);
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const bool masked = kt == qt && nt * 8 + 2 * t + c % 2 > r0 + g + 8 * (c / 2);
        p[nt][c] = masked ? 0.0f : exp2f(p[nt][c] * scale_log2 - lse2[c / 2]);
        ds[nt][c] = p[nt][c] * (ds[nt][c] - row_delta[c / 2]);
      }
    mma_pb<D, kTile>(dq_acc, ds, ks, lane);
    if (kt == qt) break;
    __syncthreads();  // every warp is done with this tile's keys
    stage<D, kTile, TIO>({{ks, k + next_offset, D}}, T - next_k0);
    cp_async_commit();
  }
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int i = q0 + r0 + g + 8 * half;
    if (i >= T) continue;
    TIO* dst = dq + (static_cast<int64_t>(bh) * T + i) * D + 2 * t;
#pragma unroll
    for (int nt = 0; nt < D / 8; ++nt)
      store_pair(dst + nt * 8, dq_acc[nt][2 * half] * scale, dq_acc[nt][2 * half + 1] * scale);
  }
}

// Why the kernels cannot take d, or "" when they can.
std::string unsupported_reason(const AttentionDims& d) {
  if (d.B < 1 || d.T < 1 || d.NH < 1 || d.KV < 1 || d.HS < 1)
    return detail::concat("all sizes must be >= 1, got B=", d.B, " T=", d.T, " NH=", d.NH, " KV=", d.KV, " HS=", d.HS);
  if (d.NH % d.KV != 0)
    return detail::concat("the query heads NH=", d.NH, " are not divisible by the key/value groups KV=", d.KV);
  if (d.HS != 64 && d.HS != 128)
    return detail::concat("flash attention supports head size 64 or 128 only, got head size HS=", d.HS);
  const int64_t tiles = (d.T + kTile - 1) / kTile;
  if (d.T > INT_MAX || d.B * d.NH > INT_MAX / tiles)
    return detail::concat("B=", d.B, " NH=", d.NH, " T=", d.T, " exceed the launch grid");
  return {};
}

// Throws prores::Error naming `op` unless the kernels take d and every one of `rows` (the tensors read or
// written in 4- and 2-element pieces of rows) is 16-byte aligned.
void check_args(const char* op, const AttentionDims& d, std::initializer_list<const void*> rows) {
  const std::string reason = unsupported_reason(d);
  PRORES_CHECK(reason.empty(), op, ": ", reason);
  for (const void* p : rows)
    PRORES_CHECK(reinterpret_cast<uintptr_t>(p) % 16 == 0, op, ": q, k, v, out and their gradients must be ",
                 "16-byte aligned, got ", static_cast<const void*>(p));
}

// kernel<<<blocks, kThreads, smem_bytes>>>(args...), raising the kernel's dynamic shared memory limit first
// when it needs more than the default 48 KiB.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), int64_t blocks, size_t smem_bytes, Args... args) {
  if (smem_bytes > kDefaultSmemBytes)
    PRORES_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem_bytes)));
  kernel<<<static_cast<unsigned>(blocks), kThreads, smem_bytes>>>(args...);
  PRORES_CUDA_CHECK(cudaGetLastError());
}

int64_t query_tiles(const AttentionDims& d) { return (d.T + kTile - 1) / kTile; }

float scale_of(const AttentionDims& d) { return 1.0f / std::sqrt(static_cast<float>(d.HS)); }

template <int D, typename TIO>
void forward(TIO* out, float* lse, const TIO* q, const TIO* k, const TIO* v, const AttentionDims& d) {
  const int heads = static_cast<int>(d.B * d.NH);
  launch(flash_forward_kernel<D, TIO>, query_tiles(d) * heads, 3 * tile_bytes<D>(kTile), out, lse, q, k, v,
         static_cast<int>(d.T), static_cast<int>(d.NH), static_cast<int>(d.NH / d.KV), heads, scale_of(d) * kLog2e);
}

template <int D, typename TIO>
void backward(TIO* dq, TIO* dk, TIO* dv, float* delta, const TIO* dout, const TIO* out, const float* lse,
              const TIO* q, const TIO* k, const TIO* v, const AttentionDims& d) {
  const int T = static_cast<int>(d.T), NH = static_cast<int>(d.NH), group = static_cast<int>(d.NH / d.KV);
  const int heads = static_cast<int>(d.B * d.NH), groups = static_cast<int>(d.B * d.KV);
  const float scale = scale_of(d), scale_log2 = scale * kLog2e;
  const int64_t rows = d.B * d.NH * d.T;
  launch(flash_delta_kernel<D, TIO>, std::min<int64_t>((rows + kWarps - 1) / kWarps, int64_t{1} << 16), 0, delta,
         dout, out, rows, T, NH);
  constexpr int kQ = kDkdvQueryRows<D>;
  launch(flash_backward_dkdv_kernel<D, TIO>, query_tiles(d) * groups,
         2 * tile_bytes<D>(kTile) + 3 * tile_bytes<D>(kQ) + 3 * kQ * sizeof(float), dk, dv, dout, lse, delta, q, k, v,
         T, NH, group, groups, scale_log2, scale);
  launch(flash_backward_dq_kernel<D, TIO>, query_tiles(d) * heads, 4 * tile_bytes<D>(kTile), dq, dout, lse, delta, q,
         k, v, T, NH, group, heads, scale_log2, scale);
}

}  // namespace

bool flash_attention_supports(const AttentionDims& d) { return unsupported_reason(d).empty(); }

template <typename TIO>
void flash_attention_forward(TIO* out, float* lse, const TIO* q, const TIO* k, const TIO* v, const AttentionDims& d) {
  check_args("flash_attention_forward", d, {out, q, k, v});
  if (d.HS == 64)
    forward<64>(out, lse, q, k, v, d);
  else
    forward<128>(out, lse, q, k, v, d);
}

template <typename TIO>
void flash_attention_backward(TIO* dq, TIO* dk, TIO* dv, float* delta, const TIO* dout, const TIO* out,
                              const float* lse, const TIO* q, const TIO* k, const TIO* v, const AttentionDims& d) {
  check_args("flash_attention_backward", d, {dq, dk, dv, dout, out, q, k, v});
  if (d.HS == 64)
    backward<64>(dq, dk, dv, delta, dout, out, lse, q, k, v, d);
  else
    backward<128>(dq, dk, dv, delta, dout, out, lse, q, k, v, d);
}

#define PRORES_INSTANTIATE_FLASH(TIO)                                                                          \
  template void flash_attention_forward<TIO>(TIO*, float*, const TIO*, const TIO*, const TIO*,                  \
                                             const AttentionDims&);                                             \
  template void flash_attention_backward<TIO>(TIO*, TIO*, TIO*, float*, const TIO*, const TIO*, const float*,    \
                                              const TIO*, const TIO*, const TIO*, const AttentionDims&);
PRORES_INSTANTIATE_FLASH(float)
PRORES_INSTANTIATE_FLASH(uint16_t)
#undef PRORES_INSTANTIATE_FLASH

}  // namespace prores::ops::cuda
