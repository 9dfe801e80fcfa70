// glibc malloc settings for a trainer (docs/parallel.md): keep freed memory in the heap instead of returning
// it to the kernel, so that large per-call scratch buffers (oneDNN's GEMM packing, Open MPI's collective
// buffers) do not page-fault again on every step. Call once, before MPI_Init and the first large
// allocation.
#pragma once
#include <malloc.h>

namespace prores {

inline void keep_freed_memory_in_heap() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace prores
