// Arena implementation: 256-byte aligned slots (cuBLASLt's preferred operand alignment) in one
// allocation, from the host heap or the arena's DeviceMemory.
#include "core/arena.h"

#include <cstdlib>
#include <cstring>

namespace prores {

namespace {
constexpr size_t kAlign = 256;
size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

Arena::Arena(Device device, DeviceMemory memory) : device_(device), memory_(memory) {
  PRORES_CHECK(device == Device::CPU || (memory.allocate_zeroed && memory.release),
               "arena: a device arena needs allocation functions");
}

Arena::~Arena() {
  if (device_ == Device::CPU) std::free(base_);
  else if (base_) memory_.release(base_);
}

void Arena::reserve(Tensor* target, DType dtype, std::initializer_list<int64_t> dims) {
  PRORES_CHECK(base_ == nullptr, "arena: reserve() after allocate()");
  *target = Tensor(nullptr, dtype, device_, dims);
  pending_.push_back({target, size_});
  size_ += round_up(target->nbytes());
}

void Arena::allocate() {
  PRORES_CHECK(base_ == nullptr, "arena: allocate() called twice");
  const size_t bytes = size_ == 0 ? kAlign : size_;
  if (device_ == Device::CPU) {
    base_ = std::aligned_alloc(kAlign, bytes);
    PRORES_CHECK(base_ != nullptr, "arena: out of memory allocating ", bytes, " bytes");
    std::memset(base_, 0, bytes);
  } else {
    base_ = memory_.allocate_zeroed(bytes);
  }
  for (const Pending& p : pending_) p.target->data = static_cast<char*>(base_) + p.offset;
  pending_.clear();
}

}  // namespace prores
