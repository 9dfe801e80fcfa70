// Dispatch of an op dispatcher (ops/*.cpp) on the element type of its tensors: f32 (float), f64 (double)
// and, for the ops that have bf16 kernels, bf16 (uint16_t holding the bits); each names one instantiation
// of the CPU and CUDA kernels.
#pragma once
#include <cstdint>

#include "core/check.h"
#include "core/tensor.h"

namespace prores::ops::detail {

// Calls fn(T{}) with T float for F32 or double for F64, and returns what it returns; throws
// "<op>: unsupported dtype <dtype><suffix>" for any other dtype (bf16 included): the dispatch of ops whose
// kernels exist in f32 and f64 only.
template <typename Fn>
auto with_float_type(const char* op, DType dtype, Fn&& fn, const char* suffix = "") -> decltype(fn(float{})) {
  switch (dtype) {
    case DType::F32:
      return fn(float{});
    case DType::F64:
      return fn(double{});
    default:
      PRORES_FAIL(op, ": unsupported dtype ", dtype_name(dtype), suffix);
  }
}

// The same with bf16 (uint16_t holding the bits) as a third element type.
template <typename Fn>
auto with_element_type(const char* op, DType dtype, Fn&& fn, const char* suffix = "") -> decltype(fn(float{})) {
  if (dtype == DType::BF16) return fn(uint16_t{});
  return with_float_type(op, dtype, fn, suffix);
}

}  // namespace prores::ops::detail
