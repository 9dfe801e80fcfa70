// CUDA SwiGLU (ops/cuda/swiglu.h): grid-stride loops over the (N, F) output elements; bf16 storage computes
// in float.
#include "ops/cuda/swiglu.h"

#include "ops/cuda/kernel_util.cuh"

namespace prores::ops::cuda {

namespace {

using detail::exp_of;
using detail::load_element;
using detail::store_element;

template <typename T, typename I>
__global__ void swiglu_forward_kernel(T* out, const T* inp, I N, I F) {
  using V = detail::compute_type<T>;
  const I n_items = N * F;
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I k = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; k < n_items; k += stride) {
    const I n = k / F, i = k % F;
    const T* gate = inp + n * 2 * F;
    const V g = load_element(gate[i]);
    out[k] = store_element<T>(g / (V(1) + exp_of(-g)) * load_element(gate[F + i]));
  }
}

template <typename T, typename I>
__global__ void swiglu_backward_kernel(T* dinp, const T* dout, const T* inp, I N, I F) {
  using V = detail::compute_type<T>;
  const I n_items = N * F;
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I k = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; k < n_items; k += stride) {
    const I n = k / F, i = k % F;
    const T* gate = inp + n * 2 * F;
    T* dgate = dinp + n * 2 * F;
    const V g = load_element(gate[i]), u = load_element(gate[F + i]), dy = load_element(dout[k]);
    const V sig = V(1) / (V(1) + exp_of(-g));
    dgate[i] = store_element<T>(dy * u * sig * (V(1) + g * (V(1) - sig)));
    dgate[F + i] = store_element<T>(dy * g * sig);
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

#define PRORES_INSTANTIATE_SWIGLU(T)                                            \
  template void swiglu_forward<T>(T*, const T*, int64_t, int64_t);             \
  template void swiglu_backward<T>(T*, const T*, const T*, int64_t, int64_t);
PRORES_INSTANTIATE_SWIGLU(float)
PRORES_INSTANTIATE_SWIGLU(double)
PRORES_INSTANTIATE_SWIGLU(uint16_t)
#undef PRORES_INSTANTIATE_SWIGLU

}  // namespace prores::ops::cuda
