// Helpers of the CPU<->CUDA parity tests: the skip without a device, device buffers that upload,
// download and poison themselves (NaN everywhere, so that an element an op forgets to write fails the
// comparison), the bf16 conventions (uint16_t elements stand for bf16) and an element-wise comparison.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "core/tensor.h"
#include "test_util.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/device.h"
#endif

#if defined(PRORES_WITH_CUDA)
#define PRORES_SKIP_WITHOUT_CUDA_DEVICE() \
  if (prores::ops::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"
#else
#define PRORES_SKIP_WITHOUT_CUDA_DEVICE() GTEST_SKIP() << "no CUDA device"
#endif

namespace prores::test {

// Expects |got[i] - want[i]| <= rtol * scale[i] for every i (NaN fails); reports the first mismatch only.
template <typename T>
void expect_close(const std::vector<T>& got, const std::vector<T>& want, const std::vector<double>& scale,
                  double rtol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    if (!(diff <= rtol * scale[i])) {
      ADD_FAILURE() << what << "[" << i << "]: cuda " << got[i] << ", cpu " << want[i] << ", allowed "
                    << rtol * scale[i];
      return;
    }
  }
}

// A NaN of T (bf16's quiet NaN for uint16_t).
template <typename T>
T nan_of() {
  if constexpr (std::is_same_v<T, uint16_t>)
    return 0x7FC0;
  else
    return std::numeric_limits<T>::quiet_NaN();
}

#if defined(PRORES_WITH_CUDA)

// n elements of T in CUDA device memory, freed on destruction.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(int64_t n) : n_(n), data_(static_cast<T*>(ops::cuda::device_alloc(bytes()))) {}
  // A device copy of host.
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(static_cast<int64_t>(host.size())) {
    upload(host);
  }
  ~DeviceBuffer() { ops::cuda::device_free(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // Device (=) host (n elements).
  void upload(const std::vector<T>& host) {
    ASSERT_EQ(static_cast<int64_t>(host.size()), n_);
    ops::cuda::copy_to_device(data_, host.data(), bytes());
  }
  // Device contents, copied to the host (waits for the queued kernels).
  std::vector<T> download() const {
    std::vector<T> host(static_cast<size_t>(n_));
    ops::cuda::copy_to_host(host.data(), data_, bytes());
    return host;
  }
  // Device (=) NaN everywhere.
  void poison() { upload(std::vector<T>(static_cast<size_t>(n_), nan_of<T>())); }
  // A CUDA tensor view with the given shape (its numel must be n), or 1-D.
  Tensor tensor(std::initializer_list<int64_t> dims) const {
    Tensor t(data_, dtype_of<T>(), Device::CUDA, dims);
    EXPECT_EQ(t.numel(), n_);
    return t;
  }
  Tensor tensor() const { return Tensor(data_, dtype_of<T>(), Device::CUDA, {n_}); }
  T* data() const { return data_; }

 private:
  size_t bytes() const { return static_cast<size_t>(n_) * sizeof(T); }
  int64_t n_;
  T* data_;
};

#endif

}  // namespace prores::test
