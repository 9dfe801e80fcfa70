// Attention kernel throughput on one GPU: our flash kernels (ops/cuda/flash_attention.h) against cuDNN's fused
// attention (ops/cuda/cudnn_attention.h), forward and backward, bf16 q, k, v, on the attention shapes of the 350M
// and 1B configs at sequence 1024 and micro-batch 8 (one layer's attention) and at head size 128. Milliseconds
// per call and TFLOP/s by FlashAttention-2's count: causal forward 2·B·NH·T²·HS (half of the full 4·B·NH·T²·HS),
// backward 2.5 times that. Random inputs; each figure is the median over 9 timed batches of 5 calls after
// warm-up (host clock around a device synchronize). Without cuDNN attention in the build its columns say so.
// Needs a GPU.
#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include "core/bf16.h"
#include "core/check.h"
#include "cuda_timing.h"
#include "ops/cuda/cudnn_attention.h"
#include "ops/cuda/device.h"
#include "ops/cuda/flash_attention.h"

using namespace prores;
namespace cu = prores::ops::cuda;

namespace {

struct Case {
  const char* name;
  cu::AttentionDims dims;
};

// n bf16 N(0, 1) values in device memory.
uint16_t* random_bf16(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<uint16_t> host(static_cast<size_t>(n));
  for (auto& x : host) x = float_to_bf16(dist(rng));
  auto* p = static_cast<uint16_t*>(cu::device_alloc(n * sizeof(uint16_t)));
  cu::copy_to_device(p, host.data(), n * sizeof(uint16_t));
  return p;
}

void run(const Case& c) {
  const cu::AttentionDims& d = c.dims;
  const int64_t nq = d.B * d.NH * d.T * d.HS, nkv = d.B * d.KV * d.T * d.HS, rows = d.B * d.NH * d.T;
  uint16_t *q = random_bf16(nq, 1), *k = random_bf16(nkv, 2), *v = random_bf16(nkv, 3), *dout = random_bf16(nq, 4);
  auto* out = static_cast<uint16_t*>(cu::device_alloc(nq * 2));
  auto* dq = static_cast<uint16_t*>(cu::device_alloc(nq * 2));
  auto* dk = static_cast<uint16_t*>(cu::device_alloc(nkv * 2));
  auto* dv = static_cast<uint16_t*>(cu::device_alloc(nkv * 2));
  auto* lse = static_cast<float*>(cu::device_alloc(rows * 4));
  auto* delta = static_cast<float*>(cu::device_alloc(rows * 4));
  const double forward_flop = 2.0 * d.B * d.NH * d.T * d.T * d.HS, backward_flop = 2.5 * forward_flop;
  const auto report = [&](const char* kernel, double fwd, double bwd) {
    std::printf("%-30s %-6s %9.3f %9.1f %9.3f %9.1f\n", c.name, kernel, fwd * 1e3, forward_flop / fwd / 1e12,
                bwd * 1e3, backward_flop / bwd / 1e12);
  };
  report("flash", bench::median_seconds_per_call([&] { cu::flash_attention_forward(out, lse, q, k, v, d); }),
         bench::median_seconds_per_call([&] { cu::flash_attention_backward(dq, dk, dv, delta, dout, out, lse, q, k, v, d); }));
  if (cu::cudnn_attention_built()) {
    try {
      const int64_t bytes = cu::cudnn_attention_workspace_bytes(d);
      void* workspace = cu::device_alloc(static_cast<size_t>(std::max<int64_t>(bytes, 1)));
      report("cudnn", bench::median_seconds_per_call([&] { cu::cudnn_attention_forward(out, lse, q, k, v, workspace, bytes, d); }),
             bench::median_seconds_per_call([&] {
               cu::cudnn_attention_backward(dq, dk, dv, dout, out, lse, q, k, v, workspace, bytes, d);
             }));
      cu::device_free(workspace);
    } catch (const Error& e) {
      std::printf("%-30s %-6s %s\n", c.name, "cudnn", e.what());
    }
  } else {
    std::printf("%-30s %-6s not in this build\n", c.name, "cudnn");
  }
  for (void* p : {static_cast<void*>(q), static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(dout),
                  static_cast<void*>(out), static_cast<void*>(dq), static_cast<void*>(dk), static_cast<void*>(dv),
                  static_cast<void*>(lse), static_cast<void*>(delta)})
    cu::device_free(p);
}

}  // namespace

int main() {
  if (cu::device_count() == 0) {
    std::fprintf(stderr, "bench_attention_cuda: no CUDA device\n");
    return 1;
  }
  const Case cases[] = {
      {"350M: 8 x 1024, 16 heads of 64", {.B = 8, .T = 1024, .NH = 16, .KV = 16, .HS = 64}},
      {"1B: 8 x 1024, 32 heads of 64", {.B = 8, .T = 1024, .NH = 32, .KV = 32, .HS = 64}},
      {"8 x 1024, 16 heads of 128", {.B = 8, .T = 1024, .NH = 16, .KV = 16, .HS = 128}},
      {"GQA 8 x 1024, 32 heads, 8 groups", {.B = 8, .T = 1024, .NH = 32, .KV = 8, .HS = 64}},
  };
  std::printf("%-30s %-6s %9s %9s %9s %9s\n", "bf16 causal attention", "kernel", "fwd ms", "TFLOP/s", "bwd ms",
              "TFLOP/s");
  for (const Case& c : cases) run(c);
  return 0;
}
