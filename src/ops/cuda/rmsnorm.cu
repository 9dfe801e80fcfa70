// CUDA RMSNorm (ops/cuda/rmsnorm.h): one block per row with double block reductions (the forward may store
// its output in bf16); the weight gradient through per-block double partials added in a fixed order by a
// second pass.
#include "ops/cuda/rmsnorm.h"

#include "ops/cuda/kernel_util.cuh"

namespace prores::ops::cuda {

namespace {

using detail::block_allreduce;
using detail::kThreads;
using detail::Plus;

// Upper bound on the blocks (= dweight partial rows) of the backward pass.
constexpr int64_t kMaxPartials = 512;
// A block keeps its dweight partial row in shared memory up to this size, else in its global scratch row.
constexpr size_t kMaxSharedPartialBytes = 40 * 1024;

template <typename T, typename TOut>
__global__ void rmsnorm_forward_kernel(TOut* out, T* rstd, const T* inp, const T* weight, int64_t N, int64_t C,
                                       double eps, double scale) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* x = inp + n * C;
    TOut* y = out + n * C;
    double ss = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      ss += static_cast<double>(x[c]) * static_cast<double>(x[c]);
    }
    // Every thread has read its x before the reduction's barrier, so writing y afterwards is alias-safe.
    ss = block_allreduce(ss, Plus{});
    const double r = 1.0 / sqrt(ss / static_cast<double>(C) + eps);
    if (threadIdx.x == 0) rstd[n] = static_cast<T>(r);
    const T sr = static_cast<T>(scale * r);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) y[c] = detail::store_element<TOut>(sr * weight[c] * x[c]);
  }
}

// Block b takes rows [b * rows_per_block, min(N, (b + 1) * rows_per_block)): dinp (=) dres + its gradient
// (the gradient alone when dres is null) for each, and partial[b] (C) (=) sum over its rows of dout * inp * rstd, accumulated in shared memory when
// shared_partial (dynamic shared memory of C doubles), else in place in partial[b].
//   dx_j = s * r * w_j * dy_j - x_j * (s * r^3 / C) * sum_k dy_k * w_k * x_k.
template <typename T>
__global__ void rmsnorm_backward_kernel(T* dinp, double* partial, const T* dout, const T* inp,
                                        const T* weight, const T* rstd, int64_t N, int64_t C,
                                        int64_t rows_per_block, double scale, bool shared_partial, const T* dres) {
  extern __shared__ double shared_dw[];
  double* dw = shared_partial ? shared_dw : partial + static_cast<int64_t>(blockIdx.x) * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dw[c] = 0;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * rows_per_block;
  const int64_t row1 = row0 + rows_per_block < N ? row0 + rows_per_block : N;
  for (int64_t n = row0; n < row1; ++n) {
    const T* x = inp + n * C;
    const T* dy = dout + n * C;
    T* dx = dinp + n * C;
    const double r = static_cast<double>(rstd[n]);
    double dot = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      dot += static_cast<double>(dy[c]) * static_cast<double>(weight[c]) * static_cast<double>(x[c]);
      dw[c] += static_cast<double>(dy[c]) * static_cast<double>(x[c]) * r;
    }
    dot = block_allreduce(dot, Plus{});
    const T a = static_cast<T>(scale * r);
    const T b = static_cast<T>(scale * r * r * r * dot / static_cast<double>(C));
    if (dres != nullptr) {
      const T* res = dres + n * C;
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dx[c] = res[c] + (a * weight[c] * dy[c] - b * x[c]);
    } else {
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dx[c] = a * weight[c] * dy[c] - b * x[c];
    }
  }
  if (shared_partial) {
    double* own = partial + static_cast<int64_t>(blockIdx.x) * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) own[c] = dw[c];
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
  rmsnorm_forward_kernel<<<detail::grid_for(N, 1), kThreads>>>(out, rstd, inp, weight, N, C, eps, scale);
  detail::check_launch();
}

template <typename T>
void rmsnorm_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, const T* rstd,
                      int64_t N, int64_t C, double scale, const T* dres) {
  if (N == 0 || C == 0) return;
  const int64_t rows_per_block = (N + kMaxPartials - 1) / kMaxPartials;
  const int64_t blocks = (N + rows_per_block - 1) / rows_per_block;
  const size_t partial_bytes = static_cast<size_t>(C) * sizeof(double);
  const bool shared_partial = partial_bytes <= kMaxSharedPartialBytes;
  detail::Scratch<double> partial(static_cast<size_t>(blocks * C));
  rmsnorm_backward_kernel<<<static_cast<int>(blocks), kThreads, shared_partial ? partial_bytes : 0>>>(
      dinp, partial.data(), dout, inp, weight, rstd, N, C, rows_per_block, scale, shared_partial, dres);
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
