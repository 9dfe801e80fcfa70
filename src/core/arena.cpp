// Arena implementation: 64-byte aligned slots in one host allocation (device arenas come with the CUDA path).
#include "core/arena.h"

#include <cstdlib>
#include <cstring>

namespace prores {

namespace {
constexpr size_t kAlign = 64;
size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

Arena::~Arena() { std::free(base_); }

Arena::Slot Arena::reserve(DType dtype, std::initializer_list<int64_t> dims) {
  PRORES_CHECK(base_ == nullptr, "arena: reserve() after allocate()");
  PRORES_CHECK(dims.size() >= 1 && dims.size() <= kMaxDims, "arena: bad rank ", dims.size());
  Slot slot;
  slot.offset = size_;
  slot.dtype = dtype;
  slot.ndim = static_cast<int>(dims.size());
  size_t n = 1;
  int i = 0;
  for (int64_t d : dims) {
    PRORES_CHECK(d >= 0, "arena: negative dimension ", d);
    slot.shape[i++] = d;
    n *= static_cast<size_t>(d);
  }
  size_ += round_up(n * dtype_size(dtype));
  return slot;
}

void Arena::allocate() {
  PRORES_CHECK(device_ == Device::CPU, "arena: only host arenas are implemented");
  PRORES_CHECK(base_ == nullptr, "arena: allocate() called twice");
  const size_t bytes = size_ == 0 ? kAlign : size_;
  base_ = std::aligned_alloc(kAlign, bytes);
  PRORES_CHECK(base_ != nullptr, "arena: out of memory allocating ", bytes, " bytes");
  std::memset(base_, 0, bytes);
}

Tensor Arena::tensor(const Slot& slot) const {
  PRORES_CHECK(base_ != nullptr, "arena: tensor() before allocate()");
  Tensor t;
  t.data = static_cast<char*>(base_) + slot.offset;
  t.dtype = slot.dtype;
  t.device = device_;
  t.ndim = slot.ndim;
  t.shape = slot.shape;
  return t;
}

}  // namespace prores
