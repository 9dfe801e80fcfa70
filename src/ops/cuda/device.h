// CUDA device helpers shared by the CUDA kernels, the op dispatch and the tests: error checking, device
// count, allocation and synchronous host<->device copies. Plain C++ (no CUDA headers), so that .cpp files
// compiled by the host compiler can include it; only builds with PRORES_WITH_CUDA define these functions.
#pragma once
#include <cstddef>
#include <memory>
#include <unordered_map>

namespace prores::ops::cuda {

// Throws prores::Error "CUDA error <code> (<name>): <description> in <expr>" at file:line. The error is
// a cudaError_t passed as int. Clears the runtime's last-error slot first (so that a later launch check
// does not see this error again). Called by PRORES_CUDA_CHECK.
[[noreturn]] void throw_cuda_error(int error, const char* expr, const char* file, int line);

// Number of CUDA devices visible to this process; 0 when there is no driver or no GPU (never throws).
int device_count() noexcept;

// The calling thread's current device (cudaGetDevice); throws on failure.
int current_device();

// The calling thread's Context for its current device, default-constructed on first use and kept for the
// thread's lifetime: the library handles, workspaces and plan caches of cuBLASLt and cuDNN.
template <typename Context>
Context& thread_device_context() {
  thread_local std::unordered_map<int, std::unique_ptr<Context>> contexts;
  std::unique_ptr<Context>& c = contexts[current_device()];
  if (!c) c = std::make_unique<Context>();
  return *c;
}

// True when p points into CUDA device or managed memory (false for host memory, or without a driver).
bool is_device_pointer(const void* p) noexcept;

// Device memory of `bytes` bytes on the current device (nullptr for 0 bytes); throws on failure, out of
// memory as one line: "out of GPU memory: cannot allocate X GiB on GPU d (Y GiB free of Z GiB)".
void* device_alloc(size_t bytes);

// device_alloc, then zero-filled (ordered before later work on the default stream).
void* device_alloc_zeroed(size_t bytes);

// Frees memory from device_alloc (nullptr is a no-op); throws on failure.
void device_free(void* p);

// dst[0, bytes) (=) src[0, bytes), host -> device; synchronous: src may be reused on return, and the
// copy is ordered before later work on the default stream.
void copy_to_device(void* dst, const void* src, size_t bytes);

// Waits until all work queued on the current device has finished; throws on a pending error.
void synchronize();

// dst[0, bytes) (=) src[0, bytes), device -> host; synchronous (waits for earlier work on the
// default stream).
void copy_to_host(void* dst, const void* src, size_t bytes);

}  // namespace prores::ops::cuda

// PRORES_CUDA_CHECK(cudaMemcpy(...)): throws prores::Error with the CUDA error string, the call's text,
// file and line unless the call returns cudaSuccess.
#define PRORES_CUDA_CHECK(call)                                                         \
  do {                                                                                  \
    const int prores_cuda_error_ = static_cast<int>(call);                              \
    if (prores_cuda_error_ != 0)                                                        \
      ::prores::ops::cuda::throw_cuda_error(prores_cuda_error_, #call, __FILE__, __LINE__); \
  } while (0)
