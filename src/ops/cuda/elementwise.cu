// CUDA elementwise kernels (ops/cuda/elementwise.h): grid-stride loops for the updates and the bf16
// rounding, and a two-pass, fixed-order double reduction (per-block partials in stream-ordered scratch
// memory, then one block).
#include "ops/cuda/elementwise.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "ops/cuda/device.h"

namespace prores::ops::cuda {

namespace {

// Threads per block for every kernel here (a multiple of the warp size, at most 1024).
constexpr int kThreads = 256;
// Upper bound on the blocks of an elementwise launch; larger inputs loop (grid-stride).
constexpr int64_t kMaxBlocks = int64_t{1} << 16;
// Upper bound on the blocks (= partial sums) of a reduction's first pass.
constexpr int64_t kMaxReduceBlocks = 1024;

// Blocks for n elements: one element per thread, at most max_blocks.
int blocks_for(int64_t n, int64_t max_blocks) {
  return static_cast<int>(std::min((n + kThreads - 1) / kThreads, max_blocks));
}

// dst[i] (=) bf16(scale * src[i]) for i < n; four elements per thread (16-byte loads, 8-byte stores) when
// `quads`, which needs a 16-byte aligned src and an 8-byte aligned dst.
__global__ void round_to_bf16_kernel(uint16_t* dst, const float* src, int64_t n, float scale, bool quads) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t vectors = quads ? n / 4 : 0;
  for (int64_t i = first; i < vectors; i += step) {
    const float4 x = reinterpret_cast<const float4*>(src)[i];
    const __nv_bfloat162 lo = __floats2bfloat162_rn(scale * x.x, scale * x.y),
                         hi = __floats2bfloat162_rn(scale * x.z, scale * x.w);
    uint2 packed;
    packed.x = *reinterpret_cast<const uint32_t*>(&lo);
    packed.y = *reinterpret_cast<const uint32_t*>(&hi);
    reinterpret_cast<uint2*>(dst)[i] = packed;
  }
  for (int64_t i = vectors * 4 + first; i < n; i += step)
    dst[i] = __bfloat16_as_ushort(__float2bfloat16(scale * src[i]));
}

template <typename T>
__global__ void axpby_kernel(T* out, T a, const T* x, T b, const T* y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = a * x[i] + b * y[i];
}

template <typename T>
__global__ void accumulate_kernel(T* dst, T a, const T* src, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] += a * src[i];
}

// Sum of v over the block (kThreads threads), valid in thread 0: warp shuffles, then warp 0 adds the
// per-warp sums. The order of additions is fixed.
__device__ double block_sum(double v) {
  __shared__ double warp_sums[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? warp_sums[lane] : 0.0;
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  }
  return v;
}

// partial[blockIdx.x] (=) sum over this block's grid-stride elements of x (of x^2 when kSquares).
template <bool kSquares, typename T>
__global__ void partial_sums_kernel(double* partial, const T* x, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  double s = 0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const double v = static_cast<double>(x[i]);
    s += kSquares ? v * v : v;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// *total (=) sum of partial[0, count), by one block of kThreads threads.
__global__ void total_kernel(double* total, const double* partial, int count) {
  double s = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
  s = block_sum(s);
  if (threadIdx.x == 0) *total = s;
}

// Stream-ordered device scratch of `count` doubles on the default stream, freed on scope exit.
class Scratch {
 public:
  explicit Scratch(size_t count) { PRORES_CUDA_CHECK(cudaMallocAsync(&data_, count * sizeof(double), 0)); }
  ~Scratch() { cudaFreeAsync(data_, 0); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  double* data() const { return data_; }

 private:
  double* data_ = nullptr;
};

// Two-pass reduction: blocks_for(n) partial sums, then their sum, copied back to the host.
template <bool kSquares, typename T>
double reduce(const T* x, int64_t n) {
  if (n == 0) return 0.0;
  const int blocks = blocks_for(n, kMaxReduceBlocks);
  Scratch scratch(static_cast<size_t>(blocks) + 1);
  double* partial = scratch.data();
  double* total = partial + blocks;
  partial_sums_kernel<kSquares><<<blocks, kThreads>>>(partial, x, n);
  PRORES_CUDA_CHECK(cudaGetLastError());
  total_kernel<<<1, kThreads>>>(total, partial, blocks);
  PRORES_CUDA_CHECK(cudaGetLastError());
  double result = 0;
  PRORES_CUDA_CHECK(cudaMemcpy(&result, total, sizeof(double), cudaMemcpyDeviceToHost));
  return result;
}

}  // namespace

void zero_bytes(void* dst, size_t nbytes) {
  if (nbytes != 0) PRORES_CUDA_CHECK(cudaMemsetAsync(dst, 0, nbytes, 0));
}

void copy_bytes(void* dst, const void* src, size_t nbytes) {
  if (nbytes != 0) PRORES_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, 0));
}

void round_to_bf16(uint16_t* dst, const float* src, int64_t n, float scale) {
  if (n == 0) return;
  const bool quads = reinterpret_cast<uintptr_t>(src) % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 8 == 0;
  const int64_t blocks = std::min(((quads ? n / 4 : n) + kThreads) / kThreads, kMaxBlocks);
  round_to_bf16_kernel<<<static_cast<int>(blocks), kThreads>>>(dst, src, n, scale, quads);
  PRORES_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void axpby(T* out, double a, const T* x, double b, const T* y, int64_t n) {
  if (n == 0) return;
  axpby_kernel<<<blocks_for(n, kMaxBlocks), kThreads>>>(out, static_cast<T>(a), x, static_cast<T>(b), y, n);
  PRORES_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void accumulate(T* dst, double a, const T* src, int64_t n) {
  if (n == 0) return;
  accumulate_kernel<<<blocks_for(n, kMaxBlocks), kThreads>>>(dst, static_cast<T>(a), src, n);
  PRORES_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
double sum_squares(const T* x, int64_t n) {
  return reduce<true>(x, n);
}

template <typename T>
double sum(const T* x, int64_t n) {
  return reduce<false>(x, n);
}

template void axpby<float>(float*, double, const float*, double, const float*, int64_t);
template void axpby<double>(double*, double, const double*, double, const double*, int64_t);
template void accumulate<float>(float*, double, const float*, int64_t);
template void accumulate<double>(double*, double, const double*, int64_t);
template double sum_squares<float>(const float*, int64_t);
template double sum_squares<double>(const double*, int64_t);
template double sum<float>(const float*, int64_t);
template double sum<double>(const double*, int64_t);

}  // namespace prores::ops::cuda
