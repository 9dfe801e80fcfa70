// CPU kernels for the elementwise helpers (ops/elementwise.h): fill, copy, bf16 rounding, axpby, accumulate
// and deterministic double-accumulated reductions. n is the element count.
#pragma once
#include <cstddef>
#include <cstdint>

namespace prores::ops::cpu {

// Kernels with less work than this many elements run on the calling thread: waking the OpenMP team
// costs more than it saves (and much more when the cores are oversubscribed).
constexpr int64_t kParallelMinElements = int64_t{1} << 15;

// dst[0, nbytes) (=) 0, threaded for large buffers.
void zero_bytes(void* dst, size_t nbytes);

// dst[0, nbytes) (=) src[0, nbytes), threaded for large buffers; the ranges must not overlap.
void copy_bytes(void* dst, const void* src, size_t nbytes);

// dst (n) (=) scale * src (n), the product in f32, rounded to bf16 (nearest even; bits in uint16_t).
void round_to_bf16(uint16_t* dst, const float* src, int64_t n, float scale);

// out (n) (=) a * x + b * y; out may alias x or y.
template <typename T>
void axpby(T* out, double a, const T* x, double b, const T* y, int64_t n);

// dst (n) (+=) a * src.
template <typename T>
void accumulate(T* dst, double a, const T* src, int64_t n);

// Sum of squares / sum of x (n), accumulated in double over fixed-size blocks whose partial sums are
// added in order: the result does not depend on the thread count.
template <typename T>
double sum_squares(const T* x, int64_t n);
template <typename T>
double sum(const T* x, int64_t n);

}  // namespace prores::ops::cpu
