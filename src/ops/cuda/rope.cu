// CUDA rotary position embedding (ops/cuda/rope.h): a grid-stride loop over (row, i) pairs for the
// in-place rotation (of f32, f64 or bf16 storage), and one over (t, i) for the table.
#include "ops/cuda/rope.h"

#include "ops/cuda/kernel_util.cuh"
#include "ops/rope_rotation.h"

namespace prores::ops::cuda {

namespace {

template <typename T>
__global__ void rope_table_kernel(T* cos_out, T* sin_out, int64_t seq_len, int64_t HS, double base) {
  const int64_t half = HS / 2;
  const int64_t n = seq_len * half;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const int64_t t = k / half, i = k % half;
    const double inv_freq = pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(HS));
    const double angle = static_cast<double>(t) * inv_freq;
    cos_out[k] = static_cast<T>(cos(angle));
    sin_out[k] = static_cast<T>(sin(angle));
  }
}

// Rotates every row of x (rows, HS) by the angle of its position (row % seq_len); sign = +1 is the
// forward rotation, -1 its inverse.
template <typename T, typename TX>
__global__ void rope_rotate_kernel(TX* x, const T* cos, const T* sin, int64_t rows, int64_t seq_len,
                                   int64_t HS, T sign) {
  const int64_t half = HS / 2;
  const int64_t n = rows * half;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const int64_t r = k / half, i = k % half;
    TX* lo = x + r * HS + i;
    TX* hi = lo + half;
    const int64_t table = (r % seq_len) * half + i;
    const RopePair<T> rotated = rope_rotate(detail::load_element(*lo), detail::load_element(*hi), cos[table],
                                            sign * sin[table]);
    *lo = detail::store_element<TX>(rotated.lo);
    *hi = detail::store_element<TX>(rotated.hi);
  }
}

template <typename T, typename TX>
void rotate(TX* x, const T* cos, const T* sin, int64_t rows, int64_t seq_len, int64_t HS, T sign) {
  const int64_t n = rows * (HS / 2);
  if (n == 0) return;
  rope_rotate_kernel<<<detail::grid_for(n), detail::kThreads>>>(x, cos, sin, rows, seq_len, HS, sign);
  detail::check_launch();
}

}  // namespace

template <typename T>
void rope_table(T* cos, T* sin, int64_t seq_len, int64_t HS, double base) {
  const int64_t n = seq_len * (HS / 2);
  if (n == 0) return;
  rope_table_kernel<<<detail::grid_for(n), detail::kThreads>>>(cos, sin, seq_len, HS, base);
  detail::check_launch();
}

template <typename T, typename TX>
void rope_forward(TX* x, const T* cos, const T* sin, int64_t B, int64_t H, int64_t seq_len, int64_t HS) {
  rotate(x, cos, sin, B * H * seq_len, seq_len, HS, T(1));
}

template <typename T, typename TX>
void rope_backward(TX* dx, const T* cos, const T* sin, int64_t B, int64_t H, int64_t seq_len, int64_t HS) {
  rotate(dx, cos, sin, B * H * seq_len, seq_len, HS, T(-1));
}

template void rope_table<float>(float*, float*, int64_t, int64_t, double);
template void rope_table<double>(double*, double*, int64_t, int64_t, double);
template void rope_forward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t);
template void rope_forward<double>(double*, const double*, const double*, int64_t, int64_t, int64_t, int64_t);
template void rope_backward<float>(float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t);
template void rope_backward<double>(double*, const double*, const double*, int64_t, int64_t, int64_t,
                                    int64_t);
template void rope_forward<float, uint16_t>(uint16_t*, const float*, const float*, int64_t, int64_t, int64_t,
                                            int64_t);
template void rope_backward<float, uint16_t>(uint16_t*, const float*, const float*, int64_t, int64_t, int64_t,
                                             int64_t);

}  // namespace prores::ops::cuda
