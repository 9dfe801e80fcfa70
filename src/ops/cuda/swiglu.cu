// CUDA SwiGLU (ops/cuda/swiglu.h): grid-stride loops over the (N, F) output elements.
#include "ops/cuda/swiglu.h"

#include "ops/cuda/kernel_util.cuh"

namespace prores::ops::cuda {

namespace {

using detail::exp_of;

template <typename T>
__global__ void swiglu_forward_kernel(T* out, const T* inp, int64_t N, int64_t F) {
  const int64_t n_items = N * F;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n_items; k += stride) {
    const int64_t n = k / F, i = k % F;
    const T* gate = inp + n * 2 * F;
    const T g = gate[i];
    out[k] = g / (T(1) + exp_of(-g)) * gate[F + i];
  }
}

template <typename T>
__global__ void swiglu_backward_kernel(T* dinp, const T* dout, const T* inp, int64_t N, int64_t F) {
  const int64_t n_items = N * F;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n_items; k += stride) {
    const int64_t n = k / F, i = k % F;
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

}  // namespace

template <typename T>
void swiglu_forward(T* out, const T* inp, int64_t N, int64_t F) {
  if (N * F == 0) return;
  swiglu_forward_kernel<<<detail::grid_for(N * F), detail::kThreads>>>(out, inp, N, F);
  detail::check_launch();
}

template <typename T>
void swiglu_backward(T* dinp, const T* dout, const T* inp, int64_t N, int64_t F) {
  if (N * F == 0) return;
  swiglu_backward_kernel<<<detail::grid_for(N * F), detail::kThreads>>>(dinp, dout, inp, N, F);
  detail::check_launch();
}

template void swiglu_forward<float>(float*, const float*, int64_t, int64_t);
template void swiglu_forward<double>(double*, const double*, int64_t, int64_t);
template void swiglu_backward<float>(float*, const float*, const float*, int64_t, int64_t);
template void swiglu_backward<double>(double*, const double*, const double*, int64_t, int64_t);

}  // namespace prores::ops::cuda
