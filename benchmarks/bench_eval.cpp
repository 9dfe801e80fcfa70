// Inference throughput benchmark, single process: the training step's tokens/s against forward-only scoring
// (eval::Scorer, the path of `prores eval --tasks`) of the same model, on full-length and on short requests, and
// generation (eval::Generator) with the key/value cache against recomputing the prefix for every new token,
// continuing a --prompt-tokens prompt by --new-tokens tokens. Default: the paper's 71M width (12 layers, d = 512,
// 8 heads, ffn 1368) at T = 512, fp32 on the CPU, random weights and tokens. Medians over the timed repeats.
#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <vector>

#include "core/malloc_tuning.h"
#include "eval/generator.h"
#include "eval/scorer.h"
#include "ops/gemm.h"
#include "parallel/communicator.h"
#include "train/train_step.h"
#include "train/trainer.h"
#include "random_tokens.h"

namespace po = boost::program_options;
using namespace prores;

namespace {


std::vector<int32_t> random_ids(int64_t n, int64_t V, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint64_t>(V));
  return ids;
}

template <typename F>
double median_seconds(int64_t repeats, F&& work) {
  std::vector<double> seconds;
  for (int64_t r = 0; r < repeats + 1; ++r) {  // the first run warms up
    const auto start = std::chrono::steady_clock::now();
    work();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r > 0) seconds.push_back(dt);
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  keep_freed_memory_in_heap();
  ModelConfig c;
  c.num_layers = 12;
  c.hidden_size = 512;
  c.ffn_hidden_size = 1368;
  c.num_attention_heads = 8;
  c.seq_length = 512;
  c.vocab_size = 4096;
  train::TrainConfig t;
  t.micro_batch_size = 8;
  t.lr.decay_style = "constant";
  int64_t repeats = 3, short_length = 64, prompt_tokens = 448, new_tokens = 64;
  po::options_description desc("bench_eval options");
  desc.add_options()("help", "print this help")
      ("num-layers", po::value(&c.num_layers)->default_value(c.num_layers), "")
      ("hidden-size", po::value(&c.hidden_size)->default_value(c.hidden_size), "")
      ("ffn-hidden-size", po::value(&c.ffn_hidden_size)->default_value(c.ffn_hidden_size), "")
      ("num-attention-heads", po::value(&c.num_attention_heads)->default_value(c.num_attention_heads), "")
      ("seq-length", po::value(&c.seq_length)->default_value(c.seq_length), "")
      ("vocab-size", po::value(&c.vocab_size)->default_value(c.vocab_size), "")
      ("micro-batch-size", po::value(&t.micro_batch_size)->default_value(t.micro_batch_size), "training and scoring")
      ("bf16", po::bool_switch(&t.bf16), "bf16 matmuls")
      ("repeats", po::value(&repeats)->default_value(repeats), "timed repeats of each measurement")
      ("short-length", po::value(&short_length)->default_value(short_length), "tokens of the short requests")
      ("prompt-tokens", po::value(&prompt_tokens)->default_value(prompt_tokens), "generation prompt length")
      ("new-tokens", po::value(&new_tokens)->default_value(new_tokens), "tokens generated per prompt");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << desc;
      return 0;
    }
    PRORES_CHECK(prompt_tokens + new_tokens <= c.seq_length + 1, "--prompt-tokens + --new-tokens must be at most ",
                 c.seq_length + 1);
    t.global_batch_size = t.micro_batch_size;
    const std::unique_ptr<Communicator> world = make_single_process_communicator();
    const int64_t B = t.micro_batch_size, T = c.seq_length, V = c.vocab_size;
    std::vector<double> alphas(static_cast<size_t>(c.num_layers), 0.5);
    std::printf("model: %lld layers, d=%lld, heads %lld, ffn %lld, T=%lld, V=%lld, micro-batch %lld, cpu, gemm %s, %s\n",
                (long long)c.num_layers, (long long)c.hidden_size, (long long)c.num_attention_heads,
                (long long)c.ffn_hidden_size, (long long)T, (long long)V, (long long)B, ops::cpu_gemm_backend(),
                t.bf16 ? "bf16 matmuls" : "fp32 matmuls");

    double train_tps = 0;
    {
      const ParallelLayout layout(*world, ParallelConfig{}, c, B, B);
      train::TrainStep step(c, t, layout);
      step.model().init_weights(1);
      step.model().set_residual_scales(alphas);
      const bench::RandomTokens data(T, V);
      int64_t consumed = 0;
      const double s = median_seconds(repeats, [&] { step.step(data, consumed += B, 1e-4); });
      train_tps = static_cast<double>(B * T) / s;
      std::printf("train step:          %8.0f tokens/s (%lld x %lld tokens, median %.3f s)\n", train_tps,
                  (long long)B, (long long)T, s);
    }
    {
      const ParallelLayout layout(*world, ParallelConfig{}, c, B, B);
      train::TrainStep step(c, t, layout, train::StepUse::Evaluate);
      step.model().init_weights(1);
      step.model().set_residual_scales(alphas);
      step.model().round_matmul_weights();
      eval::Scorer scorer(step, layout, 1);
      for (const int64_t length : {T, short_length}) {
        std::vector<eval::TokenRequest> requests;
        for (int64_t r = 0; r < 2 * B; ++r) requests.push_back({random_ids(length + 1, V, 100 + r), length / 2, false});
        const double s = median_seconds(repeats, [&] { scorer.score(requests); });
        const double tps = static_cast<double>(2 * B * length) / s;
        std::printf("score, %4lld tokens:  %8.0f tokens/s (%.2fx the training step; %lld requests, median %.3f s)\n",
                    (long long)length, tps, tps / train_tps, (long long)(2 * B), s);
      }
    }
    t.micro_batch_size = t.global_batch_size = 1;
    double cached_tps = 0;
    for (const bool kv_cache : {true, false}) {
      const ParallelLayout layout(*world, ParallelConfig{}, c, 1, 1);
      train::TrainStep step(c, t, layout, kv_cache ? train::StepUse::Generate : train::StepUse::Evaluate);
      step.model().init_weights(1);
      step.model().set_residual_scales(alphas);
      step.model().round_matmul_weights();
      eval::Generator generator(step, V);
      eval::GenerationRequest request;
      request.prompt = random_ids(prompt_tokens, V, 7);
      request.max_new_tokens = new_tokens;
      request.stop_at_eos = false;
      const double s = median_seconds(kv_cache ? repeats : 1, [&] { generator.generate(request); });
      const double tps = static_cast<double>(new_tokens) / s;
      if (kv_cache) cached_tps = tps;
      std::printf("generate, %s: %8.1f new tokens/s (%lld-token prompt + %lld new, median %.3f s)%s\n",
                  kv_cache ? "kv cache " : "recompute", tps, (long long)prompt_tokens, (long long)new_tokens, s,
                  kv_cache ? "" : (" | cache speed-up " + std::to_string(cached_tps / tps) + "x").c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_eval: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
