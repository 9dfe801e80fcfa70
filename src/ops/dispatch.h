// The one dispatch point of the op dispatchers (ops/*.cpp) and the argument checks they share.
//
// An op checks its arguments with check_shapes / check_dtype / check_same_dtype (one message format for
// every op: the op, the argument, what was expected and what came), then hands its tensors and one generic
// lambda to dispatch(). dispatch() checks that the tensors share a device and calls the lambda with Cpu{} or,
// for CUDA tensors, with Cuda{} once their memory is checked to be CUDA device memory; inside, the lambda names
// the kernel of that backend with PRORES_KERNEL(backend, name), or branches with
// `if constexpr (decltype(backend)::is_cuda)` where the two kernels differ. Only builds with the CUDA path
// (kWithCuda) instantiate the lambda with Cuda{}: elsewhere dispatch() throws for CUDA tensors and no CUDA
// kernel is referenced, so the CPU-only build links. The ops/cuda/*.h headers are plain C++ declarations, so
// the dispatchers include them in every build.
#pragma once
#include <array>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "core/tensor.h"

namespace prores::ops::detail {

#if defined(PRORES_WITH_CUDA)
inline constexpr bool kWithCuda = true;
#else
inline constexpr bool kWithCuda = false;
#endif

// A tensor and its argument name, for error messages.
struct NamedTensor {
  const char* name;
  const Tensor& tensor;
};

// Whether t is an optional argument left out: no memory for its elements (Tensor(), or a shape without data).
// An empty tensor (no elements) is not left out. The checks below skip tensors left out.
inline bool absent(const Tensor& t) { return !t.defined() && t.numel() != 0; }

// ------------------------------------------------------------------------------------------ dispatch

// The backend a dispatched lambda runs on; `where` ends its messages (with_float_type's suffix).
struct Cpu {
  static constexpr bool is_cuda = false;
  static constexpr const char* where = "";
};
struct Cuda {
  static constexpr bool is_cuda = true;
  static constexpr const char* where = " on CUDA";
};

// The device of tensors (those not left out); throws "<op>: <a> is on cuda but <b> is on cpu: all tensors
// must be on the same device" unless they share one.
Device common_device(const char* op, std::initializer_list<NamedTensor> tensors);

// Throws "<op>: <name> is a CUDA tensor but its memory is not CUDA device memory" unless every defined,
// non-empty tensor points into CUDA device (or managed) memory; in a build without the CUDA path, throws
// fail_no_cuda's message.
void check_device_memory(const char* op, std::initializer_list<NamedTensor> tensors);

// Throws "<op>: this build has no CUDA support (configure with nvcc available)".
[[noreturn]] void fail_no_cuda(const char* op);

// Runs fn(Cuda{}) for CUDA tensors (in builds with the CUDA path, after check_device_memory; other builds
// throw) and fn(Cpu{}) for host tensors, and returns what it returns. Throws unless the tensors share a
// device; list every tensor the kernel touches, optional ones included.
template <typename Fn>
decltype(auto) dispatch(const char* op, std::initializer_list<NamedTensor> tensors, Fn&& fn) {
  if (common_device(op, tensors) == Device::CUDA) {
    if constexpr (kWithCuda) {
      check_device_memory(op, tensors);
      return fn(Cuda{});
    } else {
      fail_no_cuda(op);
    }
  }
  return fn(Cpu{});
}

// The kernel `name` of `backend` (the Cpu or Cuda argument of a dispatched lambda) as a callable:
// ops::cuda::name for Cuda, ops::cpu::name for Cpu. For the kernels whose CPU and CUDA twins take the same
// arguments: PRORES_KERNEL(backend, swiglu_forward)(out.as<T>(), inp.as<T>(), N, F).
#define PRORES_KERNEL(backend, name)                                                           \
  [](auto&&... prores_args) -> decltype(auto) {                                                \
    if constexpr (std::remove_cvref_t<decltype(backend)>::is_cuda)                             \
      return ::prores::ops::cuda::name(static_cast<decltype(prores_args)&&>(prores_args)...);  \
    else                                                                                       \
      return ::prores::ops::cpu::name(static_cast<decltype(prores_args)&&>(prores_args)...);   \
  }

// -------------------------------------------------------------------------------------------- checks

// The sizes a tensor must have: exactly {d0, d1, ...}; rows(n, last): any rank >= 1 ending in `last` whose
// leading dimensions flatten to n rows (linear's (..., C) activations); matrix(rows, cols): rows * cols
// elements whose last dimension, for rank >= 2, is cols (gemm's operands, which may also come flat).
class Dims {
 public:
  Dims(std::initializer_list<int64_t> dims);
  static Dims rows(int64_t n, int64_t last);
  static Dims matrix(int64_t rows, int64_t cols);

  bool matches(const Tensor& t) const;
  std::string str() const;  // "(2, 3)", or "(..., 3) with 2 rows"

 private:
  enum class Kind { Exact, Rows, Matrix };
  Dims(Kind kind, int64_t rows, int64_t cols);
  Kind kind_ = Kind::Exact;
  int ndim_ = 0;
  std::array<int64_t, kMaxDims> sizes_{};
};

// Whether a shape check may find the tensor left out.
enum class Presence { Required, Optional };
inline constexpr Presence kOptional = Presence::Optional;

// One argument of check_shapes: its name, the tensor, the sizes it must have (from the sizes the op derived)
// and how the op's contract writes them, e.g. {"inp", inp, {N, 2 * F}, "(N, 2F)"}.
struct ShapeSpec {
  const char* name;
  const Tensor& tensor;
  Dims dims;
  const char* pattern;
  Presence presence = Presence::Required;
};

// Throws "<op>: <name> has shape <got>, expected <dims>; <name> <pattern> is <shape>, ..." (every argument
// listed) unless every tensor matches its dims; an optional tensor may be left out.
void check_shapes(const char* op, std::initializer_list<ShapeSpec> specs);

// Throws "<op>: <name> must be <dtype>, got <dtype><why>" unless every tensor (not left out) has dtype.
void check_dtype(const char* op, DType dtype, std::initializer_list<NamedTensor> tensors, const char* why = "");

// Throws "<op>: dtype mismatch: <name> <dtype>, ...<note>" unless the tensors (not left out) share one dtype.
void check_same_dtype(const char* op, std::initializer_list<NamedTensor> tensors, const char* note = "");

}  // namespace prores::ops::detail
