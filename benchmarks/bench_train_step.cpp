// Training-step throughput benchmark: tokens/s and MFU of TrainStep::step, the trainer's own optimizer step
// (forward, backward, global-norm clip, AdamW) on random tokens, single process. Default: the paper's 71M
// width (12 layers, d = 512, 8 heads, ffn 1368) at sequence length 256, fp32 on the CPU; --bf16 takes bf16
// matmuls, --device cuda runs it on the GPU, e.g. the 350M config at sequence length 1024. Reports the median over
// timed steps after warm-up (each step ends with the loss and the gradient norm back on the host), then what the
// diagnostics cost at --probe-interval K: the probe batch (one global batch, train/probe.h) and the per-log
// activation RMS, as a share of K steps' time.
#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <vector>

#include "core/malloc_tuning.h"
#include "ops/gemm.h"
#include "parallel/communicator.h"
#include "parallel/gpu_device.h"
#include "train/probe.h"
#include "train/train_step.h"
#include "train/trainer.h"
#include "random_tokens.h"

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
  train::TrainConfig t;
  t.micro_batch_size = 8;
  t.data_path = "(random tokens)";
  t.lr.lr = 1e-4;  // the schedule is not used: every step gets lr 1e-4
  t.lr.decay_style = "constant";
  int64_t warmup = 2, steps = 7;
  double peak_tflops = 0, alpha = 0.5;
  std::string device = "cpu";
  bool f32_activations = false;
  po::options_description desc("bench_train_step options");
  desc.add_options()("help", "print this help")
      ("num-layers", po::value(&c.num_layers)->default_value(c.num_layers), "")
      ("hidden-size", po::value(&c.hidden_size)->default_value(c.hidden_size), "")
      ("ffn-hidden-size", po::value(&c.ffn_hidden_size)->default_value(c.ffn_hidden_size), "")
      ("num-attention-heads", po::value(&c.num_attention_heads)->default_value(c.num_attention_heads), "")
      ("seq-length", po::value(&c.seq_length)->default_value(c.seq_length), "")
      ("vocab-size", po::value(&c.vocab_size)->default_value(c.vocab_size), "")
      ("micro-batch-size", po::value(&t.micro_batch_size)->default_value(t.micro_batch_size), "")
      ("global-batch-size", po::value(&t.global_batch_size)->default_value(0),
       "sequences per step, a multiple of the micro-batch (gradient accumulation; 0: one micro-batch)")
      ("alpha", po::value(&alpha)->default_value(alpha), "ProRes alpha of every block (0 skips the branches)")
      ("warmup", po::value(&warmup)->default_value(warmup), "untimed steps")
      ("steps", po::value(&steps)->default_value(steps), "timed steps (the median is reported)")
      ("device", po::value(&device)->default_value(device), "cpu or cuda")
      ("bf16", po::bool_switch(&t.bf16), "bf16 matmuls (bf16-rounded operands, fp32 accumulation)")
      ("f32-activations", po::bool_switch(&f32_activations),
       "with --bf16: keep the activations between matmuls in f32 (to time what their bf16 storage gains)")
      ("attention-backend", po::value(&t.attention_backend)->default_value(t.attention_backend),
       "auto, flash, cudnn or unfused")
      ("recompute-granularity", po::value(&t.recompute_granularity), "full: recompute the blocks' activations")
      ("recompute-method", po::value(&t.recompute_method)->default_value(t.recompute_method), "uniform or block")
      ("recompute-num-layers", po::value(&t.recompute_num_layers)->default_value(t.recompute_num_layers), "")
      ("probe-interval", po::value(&t.probe_interval)->default_value(t.probe_interval),
       "steps per probe, for the probe's share of training time (0: do not time the probe)")
      ("peak-tflops", po::value(&peak_tflops)->default_value(peak_tflops),
       "peak for MFU (0: 0.442 on the CPU, 0.9 with --bf16, 989 on a GPU)");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << desc;
      return 0;
    }
    PRORES_CHECK(device == "cpu" || device == "cuda", "--device must be cpu or cuda, got '", device, "'");
    t.device = device == "cuda" ? Device::CUDA : Device::CPU;
    if (peak_tflops == 0) peak_tflops = train::default_peak_tflops(t, 1);
    if (t.device == Device::CUDA) select_local_gpu();
    if (t.global_batch_size == 0) t.global_batch_size = t.micro_batch_size;
    t.bf16_activations = !f32_activations;
    t.validate();
    const std::unique_ptr<Communicator> world = make_single_process_communicator();
    const ParallelLayout layout(*world, ParallelConfig{}, c, t.global_batch_size, t.micro_batch_size);
    train::TrainStep step(c, t, layout);
    step.model().init_weights(1);
    step.model().set_residual_scales(std::vector<double>(static_cast<size_t>(c.num_layers), alpha));
    const bench::RandomTokens data(c.seq_length, c.vocab_size);
    std::vector<double> seconds;
    double loss = 0;
    for (int64_t s = 0; s < warmup + steps; ++s) {
      const auto start = std::chrono::steady_clock::now();
      loss = step.step(data, s * t.global_batch_size, 1e-4).loss;
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (s >= warmup) seconds.push_back(dt);
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    const int64_t N = t.global_batch_size * c.seq_length;
    const double tps = static_cast<double>(N) / median;
    const double flops = train::model_flops_per_token(c, step.model().table().matmul_numel());
    std::printf("model: %lld layers, d=%lld, heads %lld, ffn %lld, T=%lld, micro-batch %lld x %lld, %lld params, %s\n",
                (long long)c.num_layers, (long long)c.hidden_size, (long long)c.num_attention_heads,
                (long long)c.ffn_hidden_size, (long long)c.seq_length, (long long)t.micro_batch_size,
                (long long)(t.global_batch_size / t.micro_batch_size),
                (long long)step.model().table().total_numel(),
                ((t.device == Device::CPU ? std::string("cpu, gemm ") + ops::cpu_gemm_backend() + ", "
                                          : std::string("cuda, ")) +
                 (t.bf16 ? (f32_activations ? "bf16 matmuls, f32 activations" : "bf16 matmuls") : "fp32 matmuls") +
                 train::attention_kernel_note(train::attention_kernel(t, c)) +
                 (step.model().recompute_layers() > 0 ? ", blocks recomputed" : "") + ", " +
                 std::to_string(step.model().allocated_bytes() >> 20) + " MiB of model memory")
                    .c_str());
    std::printf("step: median %.4f s (min %.4f, max %.4f) over %zu steps, last loss %.4f | %.0f tokens/s | "
                "%.3g TFLOP/s | MFU %.1f%% of %.3g TFLOP/s (6N + 12LCT per token)\n",
                median, seconds.front(), seconds.back(), seconds.size(), loss, tps, tps * flops / 1e12,
                100 * tps * flops / (peak_tflops * 1e12), peak_tflops);
    if (t.probe_interval > 0) {
      const auto median_of = [](int repeats, auto&& work) {
        std::vector<double> times;
        for (int r = 0; r < repeats; ++r) {
          const auto start = std::chrono::steady_clock::now();
          work();
          times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
        std::sort(times.begin(), times.end());
        return times[times.size() / 2];
      };
      const double probe = median_of(3, [&] { train::probe_norms(step, layout, data, t.global_batch_size); });
      const double rms = median_of(3, [&] { step.activation_rms(); });
      std::printf("probe: median %.4f s per probe of %lld samples = %.2f%% of %lld steps; activation RMS %.2e s per "
                  "log line\n",
                  probe, (long long)t.global_batch_size, 100 * probe / (median * static_cast<double>(t.probe_interval)),
                  (long long)t.probe_interval, rms);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
