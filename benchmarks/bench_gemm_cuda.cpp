// CUDA GEMM throughput (cuBLASLt, ops/cuda/gemm.h): TFLOP/s on a square problem and on the linear-layer
// shapes of the 350M and 1B configs at 8192 tokens, for exact fp32, f32 operands multiplied in bf16 by
// cuBLASLt (CUBLAS_COMPUTE_32F_FAST_16BF), f32 operands rounded to bf16 copies first (what linear layers do
// under --bf16; the copies are timed) and native bf16 operands. Random inputs; each figure is the median over 9 timed
// batches of 5 calls after warm-up (host clock around a device synchronize). Needs a GPU.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <type_traits>
#include <vector>

#include "core/bf16.h"
#include "cuda_timing.h"
#include "ops/cuda/device.h"
#include "ops/cuda/gemm.h"

using namespace prores;
namespace cu = prores::ops::cuda;

namespace {

struct Case {
  const char* name;
  bool ta, tb;
  int64_t M, N, K;
};

enum class Mode { F32, F32ViaBf16, F32RoundedToBf16, Bf16 };

template <typename TA, typename TC>
double median_tflops(const Case& c, Mode mode) {
  const int64_t na = c.M * c.K, nb = c.K * c.N, nc = c.M * c.N;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist;
  std::vector<TA> host(static_cast<size_t>(std::max(na, nb)));
  for (auto& x : host) {
    if constexpr (sizeof(TA) == 2) x = float_to_bf16(dist(rng));
    else x = dist(rng);
  }
  auto* A = static_cast<TA*>(cu::device_alloc(na * sizeof(TA)));
  auto* B = static_cast<TA*>(cu::device_alloc(nb * sizeof(TA)));
  auto* C = static_cast<TC*>(cu::device_alloc(nc * sizeof(TC)));
  cu::copy_to_device(A, host.data(), na * sizeof(TA));
  cu::copy_to_device(B, host.data(), nb * sizeof(TA));
  const int64_t lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
  auto call = [&] {
    if constexpr (std::is_same_v<TA, float>) {
      if (mode == Mode::F32RoundedToBf16)
        return cu::gemm_f32_rounded_to_bf16(c.ta, c.tb, c.M, c.N, c.K, 1.0f, A, B, 0.0f, C);
    }
    cu::gemm<TA, TC>(c.ta, c.tb, c.M, c.N, c.K, 1.0f, A, lda, B, ldb, 0.0f, C, c.N, mode == Mode::F32ViaBf16);
  };
  const double seconds = bench::median_seconds_per_call(call);
  cu::device_free(A);
  cu::device_free(B);
  cu::device_free(C);
  return 2.0 * c.M * c.N * c.K / seconds / 1e12;
}

}  // namespace

int main() {
  if (cu::device_count() == 0) {
    std::fprintf(stderr, "bench_gemm_cuda: no CUDA device\n");
    return 1;
  }
  const Case cases[] = {
      {"square 8192^3 (NN)", false, false, 8192, 8192, 8192},
      {"350M qkv fwd 8192x3072x1024 (NT)", false, true, 8192, 3072, 1024},
      {"350M mlp fwd 8192x5472x1024 (NT)", false, true, 8192, 5472, 1024},
      {"350M down dW 1024x2736x8192 (TN)", true, false, 1024, 2736, 8192},
      {"1B mlp fwd 8192x11264x2048 (NT)", false, true, 8192, 11264, 2048},
      {"1B down dX 8192x5632x2048 (NN)", false, false, 8192, 5632, 2048},
      {"head fwd 8192x32000x2048 (NT)", false, true, 8192, 32000, 2048},
  };
  std::printf("%-36s %10s %10s %10s %10s\n", "TFLOP/s", "f32", "f32 (bf16)", "f32 (cast)", "bf16");
  for (const Case& c : cases)
    std::printf("%-36s %10.1f %10.1f %10.1f %10.1f\n", c.name, median_tflops<float, float>(c, Mode::F32),
                median_tflops<float, float>(c, Mode::F32ViaBf16),
                median_tflops<float, float>(c, Mode::F32RoundedToBf16),
                median_tflops<uint16_t, uint16_t>(c, Mode::Bf16));
  return 0;
}
