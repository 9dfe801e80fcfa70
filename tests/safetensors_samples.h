// The safetensors tests' sample tensors (odd names, a scalar, an empty tensor, and signed zeros, inf, a
// denormal and NaN in model.norm.weight) and a bitwise comparison of float vectors.
#pragma once
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace prores::io {

inline std::vector<SafeTensor> sample_tensors() {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<SafeTensor> ts = {{"model.layers.0.mlp.up_proj.weight", {3, 4}, {}},
                                {"model.norm.weight", {5}, {}},
                                {"scalar", {}, {}},
                                {"empty", {0, 3}, {}},
                                {"odd \"name\"\n\xc3\xa9", {2, 1, 2}, {}}};
  for (auto& t : ts) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    for (int64_t i = 0; i < n; ++i) t.data.push_back(normal(rng));
  }
  ts[1].data = {0.f, -0.f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min(),
                std::numeric_limits<float>::quiet_NaN()};
  return ts;
}

inline void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b, const std::string& name) {
  ASSERT_EQ(a.size(), b.size()) << name;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i])) << name << "[" << i << "]";
  }
}

}  // namespace prores::io
