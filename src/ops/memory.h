// Moving tensors between host memory and their device: the allocation functions of a device arena
// (core/arena.h) and whole-tensor copies from and to host buffers. CPU tensors are plain memcpy; CUDA
// tensors need a build with the CUDA path (a clear error otherwise).
#pragma once
#include "core/arena.h"
#include "core/tensor.h"

namespace prores::ops {

// Allocation functions for an Arena on `device` (CUDA: cudaMalloc then zero-fill; out of memory throws one
// line naming the GPU, the request and the free memory). Throws for CPU (host arenas need none) and for
// CUDA in a build without it.
DeviceMemory device_memory(Device device);

// dst (=) the dst.nbytes() bytes at host pointer src. Synchronous: src may be reused on return.
void copy_from_host(const Tensor& dst, const void* src);

// The src.nbytes() bytes of src (=) into host pointer dst. Synchronous: waits for src's pending writes.
void copy_to_host(void* dst, const Tensor& src);

}  // namespace prores::ops
