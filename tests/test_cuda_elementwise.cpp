// CPU<->CUDA parity tests for the elementwise ops (ops/elementwise.h) through the public dispatch, plus the
// device helpers (ops/cuda/device.h). Random inputs, outputs poisoned with NaN before each GPU run, odd
// sizes; f32 within ~1e-6 and f64 within ~1e-12 relative; the bf16 rounding bitwise. Every test skips with
// "no CUDA device" when the machine has no GPU, and when the build has no CUDA path (the bodies are then not
// compiled).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ops/elementwise.h"
#include "cuda_test_util.h"
#include "test_util.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/device.h"
#endif

namespace prores {
namespace {

using test::expect_error;

#if defined(PRORES_WITH_CUDA)

using test::Buffer;
using test::DeviceBuffer;
using test::expect_close;
using test::fill_normal;
using test::random_buffer;

// Odd sizes: one element, less than a warp, a few blocks plus a tail, more than the grids cover in one pass.
constexpr int64_t kSizes[] = {1, 7, 4099, 1000003};

// Relative tolerance of a CPU<->CUDA comparison for T.
template <typename T>
constexpr double kRtol = sizeof(T) == 4 ? 1e-6 : 1e-12;

// Label "f32 n=1000003" for failure messages.
template <typename T>
std::string label(int64_t n) {
  return std::string(dtype_name(dtype_of<T>())) + " n=" + std::to_string(n);
}

template <typename T>
void check_zero(int64_t n) {
  DeviceBuffer<T> x(n);
  x.poison();
  ops::zero(x.tensor());
  const std::vector<T> got = x.download();
  const auto nonzero = std::find_if(got.begin(), got.end(), [](T v) { return !(v == T(0)); });
  EXPECT_EQ(nonzero, got.end()) << label<T>(n) << ": element " << (nonzero - got.begin()) << " is "
                                << (nonzero == got.end() ? T(0) : *nonzero);
}

template <typename T>
void check_copy(int64_t n) {
  auto src = random_buffer<T>(n, 11);
  DeviceBuffer<T> d_src(n), d_dst(n);
  d_src.upload(src.data);
  d_dst.poison();
  ops::copy(d_dst.tensor(), d_src.tensor());
  EXPECT_EQ(d_dst.download(), src.data) << label<T>(n);
}

// round_to_bf16 from an aligned source (16-byte loads) and from one element on (the scalar path), unscaled
// and scaled, bitwise against the CPU's, a tie included; a NaN stays a NaN (the GPU's arithmetic gives its
// one canonical NaN, the CPU keeps the payload, so NaN bits are compared as a class).
void check_round_to_bf16(int64_t n) {
  auto src = random_buffer<float>(n + 1, 12);
  src.data[0] = std::numeric_limits<float>::quiet_NaN();
  src.data[n / 2] = 1.0f + 1.0f / 256;
  DeviceBuffer<float> d_src(src.data);
  for (int64_t offset : {0, 1}) {
    for (double scale : {1.0, -0.37}) {
      Buffer<uint16_t> want(n);
      ops::round_to_bf16(want.tensor({n}), Tensor(src.data.data() + offset, DType::F32, Device::CPU, {n}), scale);
      DeviceBuffer<uint16_t> d_dst(n);
      d_dst.poison();
      ops::round_to_bf16(d_dst.tensor(), Tensor(d_src.tensor().as<float>() + offset, DType::F32, Device::CUDA, {n}),
                         scale);
      std::vector<uint16_t> got = d_dst.download();
      const auto is_nan = [](uint16_t bits) { return (bits & 0x7FFF) > 0x7F80; };
      for (size_t i = 0; i < got.size(); ++i) {
        if (is_nan(want.data[i]) && is_nan(got[i])) got[i] = want.data[i];
      }
      EXPECT_EQ(got, want.data) << "round_to_bf16 n=" << n << " offset " << offset << " scale " << scale;
    }
  }
}

template <typename T>
void check_axpby(int64_t n) {
  const double a = 0.75, b = -1.25;
  auto x = random_buffer<T>(n, 21), y = random_buffer<T>(n, 22);
  std::vector<double> scale(static_cast<size_t>(n));
  for (size_t i = 0; i < scale.size(); ++i) scale[i] = std::abs(a * x.data[i]) + std::abs(b * y.data[i]);
  DeviceBuffer<T> d_x(n), d_y(n), d_out(n);
  d_x.upload(x.data);
  d_y.upload(y.data);

  Buffer<T> out(n);
  ops::axpby(out.tensor({n}), a, x.tensor({n}), b, y.tensor({n}));
  d_out.poison();
  ops::axpby(d_out.tensor(), a, d_x.tensor(), b, d_y.tensor());
  expect_close(d_out.download(), out.data, scale, kRtol<T>, "axpby " + label<T>(n));

  // In place: x (=) a * x + b * y.
  ops::axpby(x.tensor({n}), a, x.tensor({n}), b, y.tensor({n}));
  ops::axpby(d_x.tensor(), a, d_x.tensor(), b, d_y.tensor());
  expect_close(d_x.download(), x.data, scale, kRtol<T>, "axpby in place " + label<T>(n));
}

template <typename T>
void check_accumulate(int64_t n) {
  const double a = -0.6;
  auto dst = random_buffer<T>(n, 31), src = random_buffer<T>(n, 32);
  std::vector<double> scale(static_cast<size_t>(n));
  for (size_t i = 0; i < scale.size(); ++i) scale[i] = std::abs(dst.data[i]) + std::abs(a * src.data[i]);
  // dst holds random values (not NaN): accumulate adds to them.
  DeviceBuffer<T> d_dst(n), d_src(n);
  d_dst.upload(dst.data);
  d_src.upload(src.data);
  ops::accumulate(dst.tensor({n}), a, src.tensor({n}));
  ops::accumulate(d_dst.tensor(), a, d_src.tensor());
  expect_close(d_dst.download(), dst.data, scale, kRtol<T>, "accumulate " + label<T>(n));
}

// Both reductions accumulate in double on both devices: the error scale is sum |x| (resp. sum x^2),
// so 1e-12 holds for f32 inputs too. Repeated calls must agree bit for bit.
template <typename T>
void check_reductions(int64_t n) {
  auto x = random_buffer<T>(n, 41);
  double abs_sum = 0, square_sum = 0;
  for (T v : x.data) {
    abs_sum += std::abs(static_cast<double>(v));
    square_sum += static_cast<double>(v) * static_cast<double>(v);
  }
  DeviceBuffer<T> d_x(n);
  d_x.upload(x.data);

  const double sum = ops::sum(d_x.tensor());
  EXPECT_NEAR(sum, ops::sum(x.tensor({n})), 1e-12 * abs_sum) << "sum " << label<T>(n);
  EXPECT_EQ(sum, ops::sum(d_x.tensor())) << "sum not reproducible, " << label<T>(n);

  const double sum_squares = ops::sum_squares(d_x.tensor());
  EXPECT_NEAR(sum_squares, ops::sum_squares(x.tensor({n})), 1e-12 * square_sum)
      << "sum_squares " << label<T>(n);
  EXPECT_EQ(sum_squares, ops::sum_squares(d_x.tensor())) << "sum_squares not reproducible, " << label<T>(n);
}

#endif  // PRORES_WITH_CUDA

TEST(CudaDevice, AllocCopyAndErrors) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  auto host = random_buffer<float>(1000003, 1);
  DeviceBuffer<float> d(1000003);
  d.upload(host.data);
  EXPECT_EQ(d.download(), host.data);
  EXPECT_EQ(ops::cuda::device_alloc(0), nullptr);
  ops::cuda::device_free(nullptr);
  // An impossible allocation throws one line naming the request and the free memory, with file and line.
  expect_error([] { ops::cuda::device_alloc(size_t{1} << 62); },
               {"out of GPU memory: cannot allocate", "GiB on GPU", "device.cu:"});
#endif
}

TEST(CudaElementwise, ZeroMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  for (int64_t n : kSizes) {
    check_zero<float>(n);
    check_zero<double>(n);
  }
#endif
}

TEST(CudaElementwise, CopyMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  for (int64_t n : kSizes) {
    check_copy<float>(n);
    check_copy<double>(n);
  }
#endif
}

TEST(CudaElementwise, RoundToBf16MatchesCpuBitwise) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  for (int64_t n : kSizes) check_round_to_bf16(n);
#endif
}

TEST(CudaElementwise, AxpbyMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  for (int64_t n : kSizes) {
    check_axpby<float>(n);
    check_axpby<double>(n);
  }
#endif
}

TEST(CudaElementwise, AccumulateMatchesCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  for (int64_t n : kSizes) {
    check_accumulate<float>(n);
    check_accumulate<double>(n);
  }
#endif
}

TEST(CudaElementwise, SumAndSumSquaresMatchCpu) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  for (int64_t n : kSizes) {
    check_reductions<float>(n);
    check_reductions<double>(n);
  }
  const Tensor empty(nullptr, DType::F32, Device::CUDA, {0});
  EXPECT_EQ(ops::sum(empty), 0.0);
  EXPECT_EQ(ops::sum_squares(empty), 0.0);
#endif
}

TEST(CudaElementwise, BadArgumentsThrow) {
  PRORES_SKIP_WITHOUT_CUDA_DEVICE();
#if defined(PRORES_WITH_CUDA)
  Buffer<float> host(8);
  DeviceBuffer<float> d(8);
  DeviceBuffer<int32_t> ids(8);
  Tensor host_as_cuda = host.tensor({8});
  host_as_cuda.device = Device::CUDA;
  expect_error([&] { ops::sum(host_as_cuda); }, {"sum", "x", "not CUDA device memory"});
  expect_error([&] { ops::axpby(d.tensor(), 1, d.tensor(), 1, host_as_cuda); }, {"axpby", "y"});
  expect_error([&] { ops::copy(d.tensor(), host.tensor({8})); }, {"copy", "same device"});
  expect_error([&] { ops::sum_squares(ids.tensor()); }, {"sum_squares", "i32"});
#endif
}

}  // namespace
}  // namespace prores
