// Dispatch of an op dispatcher (ops/*.cpp) on the element type of its tensors: f32 (float), f64 (double)
// or bf16 (uint16_t holding the bits), each of which names one instantiation of the CPU and CUDA kernels.
#pragma once
#include <cstdint>

#include "core/check.h"
#include "core/tensor.h"

namespace prores::ops::detail {

// Calls fn(T{}) with T the element type of dtype: float for F32, double for F64, uint16_t for BF16; throws
// "<op>: unsupported dtype <dtype><suffix>" for any other dtype.
template <typename Fn>
void with_element_type(const char* op, DType dtype, Fn&& fn, const char* suffix = "") {
  switch (dtype) {
    case DType::F32:
      return fn(float{});
    case DType::F64:
      return fn(double{});
    case DType::BF16:
      return fn(uint16_t{});
    default:
      PRORES_FAIL(op, ": unsupported dtype ", dtype_name(dtype), suffix);
  }
}

}  // namespace prores::ops::detail
