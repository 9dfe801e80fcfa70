// Host <-> device tensor moves and device arena memory (ops/memory.h), dispatched on the tensor's device
// (ops/dispatch.h).
#include "ops/memory.h"

#include <cstring>

#include "ops/cuda/device.h"
#include "ops/dispatch.h"

namespace prores::ops {

DeviceMemory device_memory(Device device) {
  PRORES_CHECK(device == Device::CUDA, "device_memory: host arenas take no device allocation functions");
  if constexpr (detail::kWithCuda) {
    return {cuda::device_alloc_zeroed, cuda::device_free};
  } else {
    detail::fail_no_cuda("device_memory");
  }
}

void copy_from_host(const Tensor& dst, const void* src) {
  detail::dispatch("copy_from_host", {{"dst", dst}}, [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      cuda::copy_to_device(dst.data, src, dst.nbytes());
    } else if (dst.nbytes() != 0) {
      std::memcpy(dst.data, src, dst.nbytes());
    }
  });
}

void copy_to_host(void* dst, const Tensor& src) {
  detail::dispatch("copy_to_host", {{"src", src}}, [&](auto be) {
    if constexpr (decltype(be)::is_cuda) {
      cuda::copy_to_host(dst, src.data, src.nbytes());
    } else if (src.nbytes() != 0) {
      std::memcpy(dst, src.data, src.nbytes());
    }
  });
}

}  // namespace prores::ops
