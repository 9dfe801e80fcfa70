// CUDA SwiGLU (ops/cuda/swiglu.h): grid-stride loops over the (N, F) output elements.
#include "ops/cuda/swiglu.h"

#include "ops/cuda/kernel_util.cuh"

namespace prores::ops::cuda {

namespace {

using detail::exp_of;

template <typename T, typename I>
__global__ void swiglu_forward_kernel(T* out, const T* inp, I N, I F) {
  const I n_items = N * F;
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I k = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; k < n_items; k += stride) {
    const I n = k / F, i = k % F;
    const T* gate = inp + n * 2 * F;
    const T g = gate[i];
    out[k] = g / (T(1) + exp_of(-g)) * gate[F + i];
  }
}

template <typename T, typename I>
__global__ void swiglu_backward_kernel(T* dinp, const T* dout, const T* inp, I N, I F) {
  const I n_items = N * F;
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I k = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; k < n_items; k += stride) {
    const I n = k / F, i = k % F;
    const T* gate = inp + n * 2 * F;
    T* dgate = dinp + n * 2 * F;
    const T g = gate[i];
    const T u = gate[F + i];
    const T dy = dout[k];
    const T sig = T(1) / (T(1) + exp_of(-g));
    dgate[i] = dy * u * sig * (T(1) + g * (T(1) - sig));
    dgate[F + i] = dy * g * sig;
  }
}

// 32-bit indices (cheaper division) when every offset, up to N · 2F, fits.
bool narrow_index(int64_t N, int64_t F) { return N * 2 * F < (int64_t{1} << 31); }

}  // namespace

template <typename T>
void swiglu_forward(T* out, const T* inp, int64_t N, int64_t F) {
  if (N * F == 0) return;
  if (narrow_index(N, F))
    swiglu_forward_kernel<T, uint32_t><<<detail::grid_for(N * F), detail::kThreads>>>(
        out, inp, static_cast<uint32_t>(N), static_cast<uint32_t>(F));
  else
    swiglu_forward_kernel<T, int64_t><<<detail::grid_for(N * F), detail::kThreads>>>(out, inp, N, F);
  detail::check_launch();
}

template <typename T>
void swiglu_backward(T* dinp, const T* dout, const T* inp, int64_t N, int64_t F) {
  if (N * F == 0) return;
  if (narrow_index(N, F))
    swiglu_backward_kernel<T, uint32_t><<<detail::grid_for(N * F), detail::kThreads>>>(
        dinp, dout, inp, static_cast<uint32_t>(N), static_cast<uint32_t>(F));
  else
    swiglu_backward_kernel<T, int64_t><<<detail::grid_for(N * F), detail::kThreads>>>(dinp, dout, inp, N, F);
  detail::check_launch();
}

template void swiglu_forward<float>(float*, const float*, int64_t, int64_t);
template void swiglu_forward<double>(double*, const double*, int64_t, int64_t);
template void swiglu_backward<float>(float*, const float*, const float*, int64_t, int64_t);
template void swiglu_backward<double>(double*, const double*, const double*, int64_t, int64_t);

}  // namespace prores::ops::cuda
