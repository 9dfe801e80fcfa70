// CUDA kernels for the elementwise helpers (ops/elementwise.h), mirroring ops/cpu/elementwise.h: fill,
// copy, bf16 rounding, axpby, accumulate and deterministic double-accumulated reductions. Pointers are
// device memory, n is the element count. Plain C++ declarations (no CUDA headers). Everything runs on the
// current device and the legacy default stream: the fills and updates are asynchronous, the reductions
// return to the host and so wait for the stream. Launch errors throw prores::Error.
#pragma once
#include <cstddef>
#include <cstdint>

namespace prores::ops::cuda {

// dst[0, nbytes) (=) 0.
void zero_bytes(void* dst, size_t nbytes);

// dst[0, nbytes) (=) src[0, nbytes), device -> device; the ranges must not overlap.
void copy_bytes(void* dst, const void* src, size_t nbytes);

// dst (n) (=) scale * src (n), the product in f32, rounded to bf16 (nearest even, as the host's
// float_to_bf16; bits in uint16_t), four elements per thread (16-byte loads) when src is 16-byte aligned.
void round_to_bf16(uint16_t* dst, const float* src, int64_t n, float scale = 1.0f);

// out (n) (=) a * x + b * y, computed in T; out may alias x or y.
template <typename T>
void axpby(T* out, double a, const T* x, double b, const T* y, int64_t n);

// dst (n) (+=) a * src, computed in T.
template <typename T>
void accumulate(T* dst, double a, const T* src, int64_t n);

// Sum of squares / sum of x (n), accumulated in double: a grid that depends only on n writes one partial
// sum per block (each from a fixed per-thread stride and a fixed tree), and one block adds the partials
// in a fixed tree: the result is bit-for-bit reproducible from call to call. 0 for n = 0.
template <typename T>
double sum_squares(const T* x, int64_t n);
template <typename T>
double sum(const T* x, int64_t n);

}  // namespace prores::ops::cuda
