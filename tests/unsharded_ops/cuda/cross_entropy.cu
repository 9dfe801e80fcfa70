// CUDA kernels of the test-only unsharded softmax cross-entropy (unsharded_ops/cuda/cross_entropy.h): one
// block per row computes the row max and the sum of max-subtracted exponentials with the deterministic block
// reductions of ops/cuda/kernel_util.cuh, then the loss (thread 0) or the gradient (every thread over its own
// columns).
#include "unsharded_ops/cuda/cross_entropy.h"

#include "ops/cuda/kernel_util.cuh"
#include "ops/cuda/vocab_shard.h"

namespace prores::unsharded::cuda {

namespace {

namespace detail = ops::cuda::detail;
using detail::exp_of;

// max_v x[v] over a row of V >= 1 elements, by the whole block, in every thread (block_allreduce rules).
template <typename T>
__device__ T block_row_max(const T* x, int64_t V) {
  T m = detail::minus_infinity<T>();
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) m = ::cuda::maximum<>{}(m, x[v]);
  return detail::block_allreduce(m, ::cuda::maximum<>{});
}

// sum_v exp(x[v] - m) over a row of V elements, each exponential in T and the sum in double, by the whole
// block, in every thread (block_allreduce rules).
template <typename T>
__device__ double block_row_sumexp(const T* x, int64_t V, T m) {
  double s = 0;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) s += static_cast<double>(exp_of(x[v] - m));
  return detail::block_allreduce(s, detail::Plus{});
}

template <typename T>
__global__ void cross_entropy_forward_kernel(T* losses, const T* logits, const int32_t* targets, int64_t N,
                                             int64_t V) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* x = logits + n * V;
    const T m = block_row_max(x, V);
    const double s = block_row_sumexp(x, V, m);
    if (threadIdx.x == 0) {
      const double lse = log(s) + static_cast<double>(m);
      losses[n] = static_cast<T>(lse - static_cast<double>(x[targets[n]]));
    }
  }
}

// The reductions' barriers order every read of the row before the first write, and each element is then
// read and written by the same thread, so dlogits may alias logits.
template <typename T>
__global__ void cross_entropy_backward_kernel(T* dlogits, const T* logits, const int32_t* targets, int64_t N,
                                              int64_t V, double dloss) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* x = logits + n * V;
    T* dx = dlogits + n * V;
    const T m = block_row_max(x, V);
    const double s = block_row_sumexp(x, V, m);
    const T scale = static_cast<T>(dloss / s);
    const int64_t target = targets[n];
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
      T d = exp_of(x[v] - m) * scale;
      if (v == target) d -= static_cast<T>(dloss);
      dx[v] = d;
    }
  }
}

}  // namespace

template <typename T>
void cross_entropy_forward(T* losses, const T* logits, const int32_t* targets, int64_t N, int64_t V) {
  ops::cuda::check_ids("cross_entropy_forward", "target", targets, N, V);
  if (N == 0) return;
  cross_entropy_forward_kernel<<<detail::grid_for(N, 1), detail::kThreads>>>(losses, logits, targets, N, V);
  detail::check_launch();
}

template <typename T>
void cross_entropy_backward(T* dlogits, const T* logits, const int32_t* targets, int64_t N, int64_t V,
                            double dloss) {
  ops::cuda::check_ids("cross_entropy_backward", "target", targets, N, V);
  if (N == 0) return;
  cross_entropy_backward_kernel<<<detail::grid_for(N, 1), detail::kThreads>>>(dlogits, logits, targets, N, V,
                                                                              dloss);
  detail::check_launch();
}

template void cross_entropy_forward<float>(float*, const float*, const int32_t*, int64_t, int64_t);
template void cross_entropy_forward<double>(double*, const double*, const int32_t*, int64_t, int64_t);
template void cross_entropy_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t, double);
template void cross_entropy_backward<double>(double*, const double*, const int32_t*, int64_t, int64_t,
                                             double);

}  // namespace prores::unsharded::cuda
