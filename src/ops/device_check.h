// Device checks shared by the op dispatchers (ops/*.cpp): in builds with the CUDA path, a CUDA tensor's
// memory must be CUDA device (or managed) memory; builds without it fail on any CUDA tensor with a clear
// message. Each dispatcher calls one or the other under `#if defined(PRORES_WITH_CUDA)`.
#pragma once
#include <initializer_list>

#include "core/tensor.h"
#if defined(PRORES_WITH_CUDA)
#include "ops/cuda/device.h"
#endif

namespace prores::ops::detail {

// A tensor and its argument name, for error messages.
struct NamedTensor {
  const char* name;
  const Tensor& tensor;
};

#if defined(PRORES_WITH_CUDA)
// Throws unless every defined, non-empty tensor of `tensors` points into CUDA device (or managed) memory.
inline void check_device_memory(const char* op, std::initializer_list<NamedTensor> tensors) {
  for (const NamedTensor& t : tensors) {
    PRORES_CHECK(!t.tensor.defined() || t.tensor.numel() == 0 || cuda::is_device_pointer(t.tensor.data), op, ": ",
                 t.name, " is a CUDA tensor but its memory is not CUDA device memory");
  }
}
#else
// Throws for a CUDA tensor in a build without the CUDA path.
[[noreturn]] inline void fail_no_cuda(const char* op) {
  PRORES_FAIL(op, ": this build has no CUDA support (configure with nvcc available)");
}
#endif

}  // namespace prores::ops::detail
