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

void Arena::reserve(Tensor* target, DType dtype, std::initializer_list<int64_t> dims) {
  PRORES_CHECK(base_ == nullptr, "arena: reserve() after allocate()");
  *target = Tensor(nullptr, dtype, device_, dims);
  pending_.push_back({target, size_});
  size_ += round_up(target->nbytes());
}

void Arena::allocate() {
  PRORES_CHECK(device_ == Device::CPU, "arena: only host arenas are implemented");
  PRORES_CHECK(base_ == nullptr, "arena: allocate() called twice");
  const size_t bytes = size_ == 0 ? kAlign : size_;
  base_ = std::aligned_alloc(kAlign, bytes);
  PRORES_CHECK(base_ != nullptr, "arena: out of memory allocating ", bytes, " bytes");
  std::memset(base_, 0, bytes);
  for (const Pending& p : pending_) p.target->data = static_cast<char*>(base_) + p.offset;
  pending_.clear();
}

}  // namespace prores
