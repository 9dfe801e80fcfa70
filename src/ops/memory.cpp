// Host <-> device tensor moves and device arena memory (ops/memory.h).
#include "ops/memory.h"

#include <cstring>

#include "ops/device_check.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/device.h"
#endif

namespace prores::ops {

DeviceMemory device_memory(Device device) {
  PRORES_CHECK(device == Device::CUDA, "device_memory: host arenas take no device allocation functions");
#if defined(PRORES_WITH_CUDA)
  return {cuda::device_alloc_zeroed, cuda::device_free};
#else
  detail::fail_no_cuda("device_memory");
#endif
}

void copy_from_host(const Tensor& dst, const void* src) {
  if (dst.device == Device::CPU) {
    if (dst.nbytes() != 0) std::memcpy(dst.data, src, dst.nbytes());
    return;
  }
#if defined(PRORES_WITH_CUDA)
  detail::check_device_memory("copy_from_host", {{"dst", dst}});
  cuda::copy_to_device(dst.data, src, dst.nbytes());
#else
  detail::fail_no_cuda("copy_from_host");
#endif
}

void copy_to_host(void* dst, const Tensor& src) {
  if (src.device == Device::CPU) {
    if (src.nbytes() != 0) std::memcpy(dst, src.data, src.nbytes());
    return;
  }
#if defined(PRORES_WITH_CUDA)
  detail::check_device_memory("copy_to_host", {{"src", src}});
  cuda::copy_to_host(dst, src.data, src.nbytes());
#else
  detail::fail_no_cuda("copy_to_host");
#endif
}

}  // namespace prores::ops
