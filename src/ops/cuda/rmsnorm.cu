// CUDA RMSNorm (ops/cuda/rmsnorm.h): a block holds one row at a time in registers, thread i owning columns
// i, i + blockDim.x, ... (kColumnsPerThread at most), so every load of a row is issued before the one block
// reduction (in double) that the row needs; the forward may store its output in bf16. The weight gradient
// goes through per-block double partials, kept in the owning threads' registers and added in a fixed order
// by a second pass.
#include "ops/cuda/rmsnorm.h"

#include "core/check.h"
#include "ops/cuda/kernel_util.cuh"

namespace prores::ops::cuda {

namespace {

using detail::block_allreduce;
using detail::kThreads;
using detail::Plus;

// Upper bound on the blocks (= dweight partial rows) of the backward pass.
constexpr int64_t kMaxPartials = 512;
// Columns one thread holds; a block of up to kMaxThreads threads holds rows of up to kMaxColumns. The
// kernels' register budget (__launch_bounds__(kMaxThreads): 128 per thread) holds a thread's f32 columns of
// x, dy and weight and its double dweight sums without spilling (ptxas -v, sm_90; f64 spills a little).
constexpr int kColumnsPerThread = 16;
constexpr int kMaxThreads = 512;
constexpr int64_t kMaxColumns = int64_t{kColumnsPerThread} * kMaxThreads;

// Threads of a block for rows of C columns: C / kColumnsPerThread rounded up to whole warps.
int threads_for(int64_t C) {
  PRORES_CHECK(C <= kMaxColumns, "rmsnorm on CUDA: rows of ", C, " columns exceed the ", kMaxColumns,
               " a block holds");
  const int64_t warps = (C + 32 * kColumnsPerThread - 1) / (32 * kColumnsPerThread);
  return static_cast<int>(32 * std::max<int64_t>(warps, 1));
}

// Loads this thread's columns of a row (C elements) into v; absent columns read as 0.
template <typename T>
__device__ void load_columns(T (&v)[kColumnsPerThread], const T* row, int64_t C) {
#pragma unroll
  for (int j = 0; j < kColumnsPerThread; ++j) {
    const int c = static_cast<int>(threadIdx.x + j * blockDim.x);  // < kMaxColumns
    v[j] = c < C ? row[c] : T(0);
  }
}

template <typename T, typename TOut>
__global__ void __launch_bounds__(kMaxThreads)
    rmsnorm_forward_kernel(TOut* out, T* rstd, const T* inp, const T* weight, int64_t N, int64_t C, double eps,
                           double scale) {
  T w[kColumnsPerThread];
  load_columns(w, weight, C);
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    T x[kColumnsPerThread];
    load_columns(x, inp + n * C, C);
    double ss = 0;
#pragma unroll
    for (int j = 0; j < kColumnsPerThread; ++j) ss += static_cast<double>(x[j]) * static_cast<double>(x[j]);
    // Every thread holds its x before the reduction's barrier, so writing y afterwards is alias-safe.
    ss = block_allreduce(ss, Plus{});
    const double r = 1.0 / sqrt(ss / static_cast<double>(C) + eps);
    if (threadIdx.x == 0) rstd[n] = static_cast<T>(r);
    const T sr = static_cast<T>(scale * r);
    TOut* y = out + n * C;
#pragma unroll
    for (int j = 0; j < kColumnsPerThread; ++j) {
      const int c = static_cast<int>(threadIdx.x + j * blockDim.x);  // < kMaxColumns
      if (c < C) y[c] = detail::store_element<TOut>(sr * w[j] * x[j]);
    }
  }
}

// Block b takes rows [b * rows_per_block, min(N, (b + 1) * rows_per_block)): dinp (=) dres + its gradient
// (the gradient alone when dres is null) for each, and partial[b] (C) (=) sum over its rows of
// dout * inp * rstd, each thread summing its own columns in registers.
//   dx_j = s * r * w_j * dy_j - x_j * (s * r^3 / C) * sum_k dy_k * w_k * x_k.
template <typename T>
__global__ void __launch_bounds__(kMaxThreads)
    rmsnorm_backward_kernel(T* dinp, double* partial, const T* dout, const T* inp, const T* weight, const T* rstd,
                            int64_t N, int64_t C, int64_t rows_per_block, double scale, const T* dres) {
  double dw[kColumnsPerThread] = {};
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * rows_per_block;
  const int64_t row1 = row0 + rows_per_block < N ? row0 + rows_per_block : N;
  for (int64_t n = row0; n < row1; ++n) {
    T w[kColumnsPerThread], x[kColumnsPerThread], dy[kColumnsPerThread];
    load_columns(w, weight, C);  // for each row, from cache: kept across rows it would spill
    load_columns(x, inp + n * C, C);
    load_columns(dy, dout + n * C, C);
    const double r = static_cast<double>(rstd[n]);
    double dot = 0;
#pragma unroll
    for (int j = 0; j < kColumnsPerThread; ++j) {
      dot += static_cast<double>(dy[j]) * static_cast<double>(w[j]) * static_cast<double>(x[j]);
      dw[j] += static_cast<double>(dy[j]) * static_cast<double>(x[j]) * r;
    }
    dot = block_allreduce(dot, Plus{});
    const T a = static_cast<T>(scale * r);
    const T b = static_cast<T>(scale * r * r * r * dot / static_cast<double>(C));
    T* dx = dinp + n * C;
    const T* res = dres == nullptr ? nullptr : dres + n * C;
#pragma unroll
    for (int j = 0; j < kColumnsPerThread; ++j) {
      const int c = static_cast<int>(threadIdx.x + j * blockDim.x);  // < kMaxColumns
      if (c >= C) continue;
      const T grad = a * w[j] * dy[j] - b * x[j];
      dx[c] = res == nullptr ? grad : res[c] + grad;
    }
  }
  double* own = partial + static_cast<int64_t>(blockIdx.x) * C;
#pragma unroll
  for (int j = 0; j < kColumnsPerThread; ++j) {
    const int c = static_cast<int>(threadIdx.x + j * blockDim.x);  // < kMaxColumns
    if (c < C) own[c] = dw[j];
  }
}

// dweight (C) (+=) scale * sum over b in [0, blocks) of partial[b] (C). A block of kThreads takes 32
// columns: its kRowLanes warps sum the partial rows b = lane, lane + kRowLanes, ... (coalesced across the
// columns), then warp 0 adds the kRowLanes sums in lane order, so the result is the same on every run.
constexpr int kRowLanes = kThreads / 32;

template <typename T>
__global__ void rmsnorm_dweight_kernel(T* dweight, const double* partial, int64_t blocks, int64_t C,
                                       double scale) {
  __shared__ double sums[kRowLanes][32];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x % 32;
  const int lane = static_cast<int>(threadIdx.x / 32);
  double total = 0;
  if (c < C)
    for (int64_t b = lane; b < blocks; b += kRowLanes) total += partial[b * C + c];
  sums[lane][threadIdx.x % 32] = total;
  __syncthreads();
  if (lane == 0 && c < C) {
    double all = 0;
    for (int r = 0; r < kRowLanes; ++r) all += sums[r][threadIdx.x];
    dweight[c] += static_cast<T>(scale * all);
  }
}

}  // namespace

template <typename T, typename TOut>
void rmsnorm_forward(TOut* out, T* rstd, const T* inp, const T* weight, int64_t N, int64_t C, double eps,
                     double scale) {
  if (N == 0) return;
  rmsnorm_forward_kernel<<<detail::grid_for(N, 1), threads_for(C)>>>(out, rstd, inp, weight, N, C, eps, scale);
  detail::check_launch();
}

template <typename T>
void rmsnorm_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, const T* rstd,
                      int64_t N, int64_t C, double scale, const T* dres) {
  if (N == 0 || C == 0) return;
  const int64_t rows_per_block = (N + kMaxPartials - 1) / kMaxPartials;
  const int64_t blocks = (N + rows_per_block - 1) / rows_per_block;
  detail::Scratch<double> partial(static_cast<size_t>(blocks * C));
  rmsnorm_backward_kernel<<<static_cast<int>(blocks), threads_for(C)>>>(dinp, partial.data(), dout, inp, weight,
                                                                        rstd, N, C, rows_per_block, scale, dres);
  detail::check_launch();
  rmsnorm_dweight_kernel<<<static_cast<int>((C + 31) / 32), kThreads>>>(dweight, partial.data(), blocks, C, scale);
  detail::check_launch();
}

template void rmsnorm_forward<float>(float*, float*, const float*, const float*, int64_t, int64_t, double,
                                     double);
template void rmsnorm_forward<double>(double*, double*, const double*, const double*, int64_t, int64_t,
                                      double, double);
template void rmsnorm_forward<float, uint16_t>(uint16_t*, float*, const float*, const float*, int64_t, int64_t,
                                               double, double);
template void rmsnorm_backward<float>(float*, float*, const float*, const float*, const float*, const float*,
                                      int64_t, int64_t, double, const float*);
template void rmsnorm_backward<double>(double*, double*, const double*, const double*, const double*,
                                       const double*, int64_t, int64_t, double, const double*);

}  // namespace prores::ops::cuda
