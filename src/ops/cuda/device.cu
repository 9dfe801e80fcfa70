// CUDA device helpers (ops/cuda/device.h): error reporting, device queries, allocation and copies,
// all on the current device and the legacy default stream.
#include "ops/cuda/device.h"

#include <cuda_runtime.h>

#include "core/check.h"

namespace prores::ops::cuda {

void throw_cuda_error(int error, const char* expr, const char* file, int line) {
  cudaGetLastError();
  const auto e = static_cast<cudaError_t>(error);
  ::prores::detail::throw_error(file, line, "CUDA error ", error, " (", cudaGetErrorName(e),
                                "): ", cudaGetErrorString(e), " in ", expr);
}

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

bool is_device_pointer(const void* p) noexcept {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
}

void* device_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  PRORES_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void device_free(void* p) {
  if (p != nullptr) PRORES_CUDA_CHECK(cudaFree(p));
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes != 0) PRORES_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void synchronize() { PRORES_CUDA_CHECK(cudaDeviceSynchronize()); }

void copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes != 0) PRORES_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

}  // namespace prores::ops::cuda
