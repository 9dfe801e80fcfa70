// CPU GEMM throughput: GFLOP/s of ops::gemm (oneDNN or the reference GEMM) on a square problem and on
// the linear-layer shapes of the 71M-width model at 2048 tokens, median of repeated calls after warm-up, in
// fp32 and with bf16 matmul precision (the operands' rounding to bf16 included in the time).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "ops/gemm.h"

using namespace prores;

namespace {

double median_gflops(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int reps, ops::MatmulPrecision precision) {
  std::vector<float> a(M * K), b(K * N), c(M * N);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  for (auto* v : {&a, &b})
    for (auto& x : *v) x = dist(rng);
  const Tensor A(a.data(), DType::F32, Device::CPU, {static_cast<int64_t>(a.size())});
  const Tensor B(b.data(), DType::F32, Device::CPU, {static_cast<int64_t>(b.size())});
  const Tensor C(c.data(), DType::F32, Device::CPU, {static_cast<int64_t>(c.size())});
  std::vector<double> seconds;
  for (int r = 0; r < reps + 2; ++r) {
    const auto start = std::chrono::steady_clock::now();
    ops::gemm(ta, tb, M, N, K, 1.0, A, B, 0.0, C, precision);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r >= 2) seconds.push_back(dt);
  }
  std::sort(seconds.begin(), seconds.end());
  return 2.0 * M * N * K / seconds[seconds.size() / 2] / 1e9;
}

}  // namespace

int main() {
  std::printf("backend %s\n%-32s %9s %9s   GFLOP/s\n", ops::cpu_gemm_backend(), "", "fp32", "bf16");
  struct Case { const char* name; bool ta, tb; int64_t M, N, K; };
  const Case cases[] = {
      {"square 2048^3 (NN)", false, false, 2048, 2048, 2048},
      {"qkv fwd   2048x1536x512 (NT)", false, true, 2048, 1536, 512},
      {"mlp fwd   2048x2736x512 (NT)", false, true, 2048, 2736, 512},
      {"down fwd  2048x512x1368 (NT)", false, true, 2048, 512, 1368},
      {"down dW   512x1368x2048 (TN)", true, false, 512, 1368, 2048},
      {"mlp dX    2048x512x2736 (NN)", false, false, 2048, 512, 2736},
  };
  for (const Case& c : cases)
    std::printf("%-32s %9.1f %9.1f\n", c.name, median_gflops(c.ta, c.tb, c.M, c.N, c.K, 7, ops::MatmulPrecision::Fp32),
                median_gflops(c.ta, c.tb, c.M, c.N, c.K, 7, ops::MatmulPrecision::Bf16));
  return 0;
}
