// Helpers shared by the CUDA op kernels (ops/cuda/*.cu, and the unsharded references of the tests in
// tests/unsharded_ops/cuda/; CUDA sources only, never included by host-compiled files): launch sizing and
// launch checks, deterministic block reductions, element loads and stores of kernels templated on their
// storage type (float, double, or uint16_t for bf16 bits) and stream-ordered scratch memory. Everything runs
// on the current device and the legacy default stream.
#pragma once
#include <cuda/functional>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/bf16.h"
#include "ops/cuda/device.h"

namespace prores::ops::cuda::detail {

// Threads per block of every op kernel (a multiple of the warp size, at most 1024).
constexpr int kThreads = 256;
// Upper bound on the blocks of a launch; larger problems loop (grid-stride over items or rows).
constexpr int64_t kMaxBlocks = int64_t{1} << 16;

// Blocks for `items` work items of which one block takes `per_block`, at most kMaxBlocks; items > 0.
inline int grid_for(int64_t items, int64_t per_block = kThreads) {
  return static_cast<int>(std::min((items + per_block - 1) / per_block, kMaxBlocks));
}

// Throws prores::Error when the last kernel launch failed (bad configuration, missing sm_90 image, ...).
inline void check_launch() { PRORES_CUDA_CHECK(cudaGetLastError()); }

// The operator of a sum reduction.
struct Plus {
  template <typename V>
  __device__ V operator()(V a, V b) const {
    return a + b;
  }
};

// v reduced over the block with op (commutative), returned in every thread. Every thread of the block must
// call it (it synchronizes, also on return, so that a following call may reuse the shared slots);
// blockDim.x must be a multiple of 32. Butterfly shuffles give every lane of a warp the same value, then
// each thread folds the per-warp values in warp order: the result is identical in all threads and from
// launch to launch.
template <typename V, typename Op>
__device__ V block_allreduce(V v, Op op) {
  __shared__ V warp_values[32];
  for (int offset = 16; offset > 0; offset /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int warps = static_cast<int>(blockDim.x) / 32;
  if (threadIdx.x % 32 == 0) warp_values[warp] = v;
  __syncthreads();
  V result = warp_values[0];
  for (int w = 1; w < warps; ++w) result = op(result, warp_values[w]);
  __syncthreads();
  return result;
}

// exp in the precision of the argument (expf for float: within 2 ulp).
__device__ inline float exp_of(float x) { return expf(x); }
__device__ inline double exp_of(double x) { return exp(x); }

// -infinity of T, the identity of a max reduction.
template <typename T>
__device__ T minus_infinity() {
  return static_cast<T>(-INFINITY);
}

using prores::compute_type;

// A stored element as its arithmetic type.
template <typename T>
__device__ compute_type<T> load_element(T x) {
  if constexpr (std::is_same_v<T, uint16_t>) return __bfloat162float(__ushort_as_bfloat16(x));
  else return x;
}

// v stored as T (bf16 bits: rounded to nearest even, as the host's float_to_bf16).
template <typename T, typename V>
__device__ T store_element(V v) {
  if constexpr (std::is_same_v<T, uint16_t>) return __bfloat16_as_ushort(__float2bfloat16_rn(static_cast<float>(v)));
  else return static_cast<T>(v);
}

// Row of the vocabulary shard [vocab_start, vocab_start + Vs) that holds the global id `id`, or -1 when the
// id lies outside the shard.
__host__ __device__ inline int64_t shard_row(int32_t id, int64_t Vs, int64_t vocab_start) {
  const int64_t local = static_cast<int64_t>(id) - vocab_start;
  return local >= 0 && local < Vs ? local : -1;
}

// `count` elements of V in stream-ordered device memory (default stream), freed on scope exit: work queued
// on the default stream before the destructor runs may still use it.
template <typename V>
class Scratch {
 public:
  explicit Scratch(size_t count) {
    if (count == 0) return;
    PRORES_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&data_), count * sizeof(V), 0));
  }
  ~Scratch() {
    if (data_ != nullptr) cudaFreeAsync(data_, 0);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  V* data() const { return data_; }

 private:
  V* data_ = nullptr;
};

}  // namespace prores::ops::cuda::detail
