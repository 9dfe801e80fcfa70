// Seed mixing shared by everything that derives independent random streams from the run's --seed
// (parameter init, data shuffles): stable across platforms and standard libraries.
#pragma once
#include <cstdint>

namespace prores {

// SplitMix64's finalizer: a bijection on 64-bit values that scatters nearby inputs.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace prores
