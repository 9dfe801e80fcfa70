// CPU elementwise kernels, threaded with OpenMP (static schedules); reductions are blocked so that
// they are bit-for-bit reproducible whatever the thread count.
#include "ops/cpu/elementwise.h"

#include "core/bf16.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace prores::ops::cpu {

namespace {

// Buffers below this size are filled/copied on the calling thread.
constexpr size_t kParallelBytes = size_t{1} << 20;
// Elements per reduction block.
constexpr int64_t kBlock = int64_t{1} << 14;

// Splits [0, nbytes) into 64 KiB chunks handed out statically; calls fn(offset, length) for each.
template <typename Fn>
void for_byte_chunks(size_t nbytes, Fn fn) {
  if (nbytes < kParallelBytes) {
    fn(size_t{0}, nbytes);
    return;
  }
  constexpr size_t kChunk = size_t{1} << 16;
  const int64_t chunks = static_cast<int64_t>((nbytes + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < chunks; ++i) {
    const size_t begin = static_cast<size_t>(i) * kChunk;
    fn(begin, begin + kChunk < nbytes ? kChunk : nbytes - begin);
  }
}

// Sum of x[0, n) (of squares when kSquares) in double, on the calling thread.
template <bool kSquares, typename T>
double serial_sum(const T* x, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    s += kSquares ? v * v : v;
  }
  return s;
}

// serial_sum over blocks of kBlock elements, threaded over blocks; block sums are added in block order.
template <bool kSquares, typename T>
double blocked_sum(const T* x, int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  if (blocks <= 1) return serial_sum<kSquares>(x, n);
  std::vector<double> partial(static_cast<size_t>(blocks));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t begin = i * kBlock;
    partial[static_cast<size_t>(i)] = serial_sum<kSquares>(x + begin, std::min(kBlock, n - begin));
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace

void zero_bytes(void* dst, size_t nbytes) {
  char* d = static_cast<char*>(dst);
  for_byte_chunks(nbytes, [d](size_t off, size_t len) { std::memset(d + off, 0, len); });
}

void copy_bytes(void* dst, const void* src, size_t nbytes) {
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  for_byte_chunks(nbytes, [d, s](size_t off, size_t len) { std::memcpy(d + off, s + off, len); });
}

void round_to_bf16(uint16_t* dst, const float* src, int64_t n, float scale) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) dst[i] = float_to_bf16(scale * src[i]);
}

template <typename T>
void axpby(T* out, double a, const T* x, double b, const T* y, int64_t n) {
  const T ta = static_cast<T>(a);
  const T tb = static_cast<T>(b);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) out[i] = ta * x[i] + tb * y[i];
}

template <typename T>
void accumulate(T* dst, double a, const T* src, int64_t n) {
  const T ta = static_cast<T>(a);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) dst[i] += ta * src[i];
}

template <typename T>
double sum_squares(const T* x, int64_t n) {
  return blocked_sum<true>(x, n);
}

template <typename T>
double sum(const T* x, int64_t n) {
  return blocked_sum<false>(x, n);
}

template void axpby<float>(float*, double, const float*, double, const float*, int64_t);
template void axpby<double>(double*, double, const double*, double, const double*, int64_t);
template void accumulate<float>(float*, double, const float*, int64_t);
template void accumulate<double>(double*, double, const double*, int64_t);
template double sum_squares<float>(const float*, int64_t);
template double sum_squares<double>(const double*, int64_t);
template double sum<float>(const float*, int64_t);
template double sum<double>(const double*, int64_t);

}  // namespace prores::ops::cpu
