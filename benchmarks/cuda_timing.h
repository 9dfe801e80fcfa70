// The GPU benchmarks' clock: seconds per call of an asynchronous GPU operation, the median over 9 timed batches
// of 5 calls after 3 warm-up calls, by the host clock around a device synchronize.
#pragma once
#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "ops/cuda/device.h"

namespace prores::bench {

inline double median_seconds_per_call(const std::function<void()>& call) {
  for (int i = 0; i < 3; ++i) call();
  ops::cuda::synchronize();
  std::vector<double> seconds;
  for (int r = 0; r < 9; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) call();
    ops::cuda::synchronize();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 5);
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

}  // namespace prores::bench
