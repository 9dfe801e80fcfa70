// AdamW over one flat fp32 parameter buffer, reproducing torch.optim.AdamW (foreach=False): decoupled
// weight decay, bias-corrected moments, per-segment decay flags (no decay on norms and embeddings).
// Parameters, gradients and the two moment tensors share one element order: the ParamTable's. The moments
// live on the parameters' device (an arena of their own); the arithmetic is ops::adamw_step (ops/adamw.h).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/arena.h"
#include "core/tensor.h"
#include "ops/adamw.h"

namespace prores {

// Hyper-parameters, named after Megatron-LM's --adam-beta1, --adam-beta2, --adam-eps, --weight-decay.
struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

// Throws prores::Error naming the offending option unless betas are in [0, 1), eps > 0 and
// weight_decay >= 0, all finite.
void validate(const AdamWConfig& config);

// Elements [offset, offset + count) of the flat buffer; weight decay applies to them iff decay.
using AdamWSegment = ops::AdamWSegment;

class AdamW {
 public:
  using Segment = AdamWSegment;

  // Zero moments on `device`, step count 0, and one decayed segment covering all num_params elements
  // until set_segments says otherwise. Validates config.
  AdamW(AdamWConfig config, int64_t num_params, Device device = Device::CPU);
  ~AdamW();
  AdamW(const AdamW&) = delete;
  AdamW& operator=(const AdamW&) = delete;

  // Replaces the decay mask. The segments may come in any order but must tile [0, num_params)
  // exactly (no gaps, no overlaps, no negative counts; empty segments are ignored).
  void set_segments(std::vector<Segment> segments);

  // One optimizer step at learning rate lr (finite, >= 0): increments step_count() first, then
  // ops::adamw_step over every segment (ops/adamw.h has the formula), computing in double and storing fp32.
  // grad_scale is the clip coefficient (optim/grad_clip.h): g is what torch's in-place clip would leave in
  // the gradient, which stays as it was here. params and grads are f32 tensors of num_params() elements on
  // device(). Deterministic for any thread count.
  void step(const Tensor& params, const Tensor& grads, double lr, double grad_scale = 1.0);
  // Same on host buffers of num_params() elements each (an optimizer on the CPU).
  void step(float* params, const float* grads, double lr, double grad_scale = 1.0);
  // Same, with sizes checked against num_params().
  void step(std::span<float> params, std::span<const float> grads, double lr, double grad_scale = 1.0);

  const AdamWConfig& config() const { return config_; }
  int64_t num_params() const { return num_params_; }
  Device device() const { return device_; }
  // Segments as normalized by set_segments: sorted, non-empty, adjacent equal flags merged.
  const std::vector<Segment>& segments() const { return segments_; }

  // Optimizer state, exposed for checkpoints: the step count and the moments m and v (f32 tensors of
  // num_params() elements on device(), written in place by a load).
  int64_t step_count() const { return step_count_; }
  void set_step_count(int64_t t);
  const Tensor& exp_avg() const { return exp_avg_; }
  const Tensor& exp_avg_sq() const { return exp_avg_sq_; }

 private:
  AdamWConfig config_;
  int64_t num_params_;
  Device device_;
  int64_t step_count_ = 0;
  std::vector<Segment> segments_;
  Arena state_;  // m and v
  Tensor exp_avg_, exp_avg_sq_;
};

}  // namespace prores
