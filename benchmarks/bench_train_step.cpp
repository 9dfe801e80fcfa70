// Training-step throughput benchmark: tokens/s and MFU of one full optimizer step (forward, backward,
// global-norm clip, AdamW) on random tokens, default the paper's 71M width (12 layers, d = 512, 8 heads,
// ffn 1368) at sequence length 256, fp32. Reports the median over timed steps after warm-up.
#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <vector>

#include "core/malloc_tuning.h"
#include "model/model.h"
#include "ops/gemm.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "train/trainer.h"

namespace po = boost::program_options;
using namespace prores;

int main(int argc, char** argv) {
  keep_freed_memory_in_heap();  // as the prores executable does
  ModelConfig c;
  c.num_layers = 12;
  c.hidden_size = 512;
  c.ffn_hidden_size = 1368;
  c.num_attention_heads = 8;
  c.seq_length = 256;
  c.vocab_size = 256;
  int64_t micro_batch = 8, warmup = 2, steps = 7;
  double peak_tflops = 0.442, alpha = 0.5;
  po::options_description desc("bench_train_step options");
  desc.add_options()("help", "print this help")
      ("num-layers", po::value(&c.num_layers)->default_value(c.num_layers), "")
      ("hidden-size", po::value(&c.hidden_size)->default_value(c.hidden_size), "")
      ("ffn-hidden-size", po::value(&c.ffn_hidden_size)->default_value(c.ffn_hidden_size), "")
      ("num-attention-heads", po::value(&c.num_attention_heads)->default_value(c.num_attention_heads), "")
      ("seq-length", po::value(&c.seq_length)->default_value(c.seq_length), "")
      ("vocab-size", po::value(&c.vocab_size)->default_value(c.vocab_size), "")
      ("micro-batch-size", po::value(&micro_batch)->default_value(micro_batch), "")
      ("alpha", po::value(&alpha)->default_value(alpha), "ProRes alpha of every block (0 skips the branches)")
      ("warmup", po::value(&warmup)->default_value(warmup), "untimed steps")
      ("steps", po::value(&steps)->default_value(steps), "timed steps (the median is reported)")
      ("peak-tflops", po::value(&peak_tflops)->default_value(peak_tflops), "peak for MFU");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << desc;
      return 0;
    }
    Model model(c, micro_batch);
    model.init_weights(1);
    model.set_alphas(std::vector<double>(static_cast<size_t>(c.num_layers), alpha));
    AdamW adamw(AdamWConfig{}, model.table().total_numel());
    const int64_t N = micro_batch * c.seq_length;
    std::vector<int32_t> tokens(N), targets(N);
    std::mt19937_64 rng(3);
    for (int64_t i = 0; i < N; ++i) {
      tokens[i] = static_cast<int32_t>(rng() % c.vocab_size);
      targets[i] = static_cast<int32_t>(rng() % c.vocab_size);
    }
    float* params = model.params().as<float>();
    const std::span<float> grads(model.grads().as<float>(), static_cast<size_t>(model.table().total_numel()));
    std::vector<double> seconds;
    for (int64_t s = 0; s < warmup + steps; ++s) {
      const auto start = std::chrono::steady_clock::now();
      model.zero_grads();
      model.forward(0, tokens.data(), targets.data());
      model.backward(0, 1.0);
      scale_grads(grads, clip_coefficient(global_grad_norm(grads), 1.0));
      adamw.step(params, grads.data(), 1e-4);
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (s >= warmup) seconds.push_back(dt);
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    const double tps = static_cast<double>(N) / median;
    const double flops = train::model_flops_per_token(c, model.table().matmul_numel());
    std::printf("model: %lld layers, d=%lld, heads %lld, ffn %lld, T=%lld, micro-batch %lld, %lld params, gemm %s\n",
                (long long)c.num_layers, (long long)c.hidden_size, (long long)c.num_attention_heads,
                (long long)c.ffn_hidden_size, (long long)c.seq_length, (long long)micro_batch,
                (long long)model.table().total_numel(), ops::cpu_gemm_backend());
    std::printf("step: median %.3f s (min %.3f, max %.3f) over %zu steps | %.0f tokens/s | %.1f GFLOP/s | "
                "MFU %.1f%% of %.0f GFLOP/s (6N + 12LCT per token)\n",
                median, seconds.front(), seconds.back(), seconds.size(), tps, tps * flops / 1e9,
                100 * tps * flops / (peak_tflops * 1e12), peak_tflops * 1e3);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
