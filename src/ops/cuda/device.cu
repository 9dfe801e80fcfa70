// CUDA device helpers (ops/cuda/device.h): error reporting, device queries, allocation and copies,
// all on the current device and the legacy default stream.
#include "ops/cuda/device.h"

#include <cuda_runtime.h>

#include <cstdio>

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

int current_device() {
  int device = 0;
  PRORES_CUDA_CHECK(cudaGetDevice(&device));
  return device;
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
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    int device = 0;
    size_t free_bytes = 0, total_bytes = 0;
    cudaGetDevice(&device);
    cudaMemGetInfo(&free_bytes, &total_bytes);
    constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
    char line[160];
    std::snprintf(line, sizeof line, "cannot allocate %.2f GiB on GPU %d (%.2f GiB free of %.2f GiB)",
                  static_cast<double>(bytes) / kGiB, device, static_cast<double>(free_bytes) / kGiB,
                  static_cast<double>(total_bytes) / kGiB);
    PRORES_FAIL("out of GPU memory: ", line);
  }
  PRORES_CUDA_CHECK(status);
  return p;
}

void* device_alloc_zeroed(size_t bytes) {
  void* p = device_alloc(bytes);
  if (p != nullptr) PRORES_CUDA_CHECK(cudaMemset(p, 0, bytes));
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
