// AdamW's state and step (see adamw.h); the update itself is ops::adamw_step (ops/adamw.h).
#include "optim/adamw.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "ops/memory.h"

namespace prores {

namespace {

// Checks that a beta is a finite number in [0, 1).
void check_beta(double beta, const char* option) {
  PRORES_CHECK(std::isfinite(beta) && beta >= 0.0 && beta < 1.0, option, " must be in [0, 1), got ",
               beta);
}

}  // namespace

void validate(const AdamWConfig& config) {
  check_beta(config.beta1, "--adam-beta1");
  check_beta(config.beta2, "--adam-beta2");
  PRORES_CHECK(std::isfinite(config.eps) && config.eps > 0.0,
               "--adam-eps must be a positive finite number, got ", config.eps);
  PRORES_CHECK(std::isfinite(config.weight_decay) && config.weight_decay >= 0.0,
               "--weight-decay must be a finite number >= 0, got ", config.weight_decay);
}

AdamW::AdamW(AdamWConfig config, int64_t num_params, Device device)
    : config_(config),
      num_params_(num_params),
      device_(device),
      state_(device, device == Device::CPU ? DeviceMemory{} : ops::device_memory(device)) {
  validate(config_);
  PRORES_CHECK(num_params >= 0, "AdamW: num_params must be >= 0, got ", num_params);
  state_.reserve(&exp_avg_, DType::F32, {num_params});
  state_.reserve(&exp_avg_sq_, DType::F32, {num_params});
  state_.allocate();  // zero moments
  if (num_params > 0) segments_.push_back({0, num_params, true});
}

AdamW::~AdamW() = default;

void AdamW::set_segments(std::vector<Segment> segments) {
  for (const Segment& s : segments) {
    PRORES_CHECK(s.offset >= 0 && s.count >= 0, "AdamW segment [offset ", s.offset, ", count ",
                 s.count, "]: offset and count must be >= 0");
  }
  std::erase_if(segments, [](const Segment& s) { return s.count == 0; });
  std::sort(segments.begin(), segments.end(),
            [](const Segment& a, const Segment& b) { return a.offset < b.offset; });
  std::vector<Segment> merged;
  int64_t covered = 0;
  for (const Segment& s : segments) {
    PRORES_CHECK(s.offset <= covered, "AdamW segments leave a gap: elements [", covered, ", ",
                 s.offset, ") are not covered");
    PRORES_CHECK(s.offset == covered, "AdamW segments overlap at element ", s.offset,
                 " (already covered up to ", covered, ")");
    PRORES_CHECK(s.count <= num_params_ - s.offset, "AdamW segment [", s.offset, ", ",
                 s.offset + s.count, ") runs past num_params ", num_params_);
    if (!merged.empty() && merged.back().decay == s.decay) {
      merged.back().count += s.count;
    } else {
      merged.push_back(s);
    }
    covered = s.offset + s.count;
  }
  PRORES_CHECK(covered == num_params_, "AdamW segments cover [0, ", covered, ") but num_params is ",
               num_params_);
  segments_ = std::move(merged);
}

void AdamW::set_step_count(int64_t t) {
  PRORES_CHECK(t >= 0, "AdamW step count must be >= 0, got ", t);
  step_count_ = t;
}

void AdamW::step(std::span<float> params, std::span<const float> grads, double lr, double grad_scale) {
  PRORES_CHECK(static_cast<int64_t>(params.size()) == num_params_, "AdamW::step: params has ",
               params.size(), " elements, expected ", num_params_);
  PRORES_CHECK(static_cast<int64_t>(grads.size()) == num_params_, "AdamW::step: grads has ",
               grads.size(), " elements, expected ", num_params_);
  step(params.data(), grads.data(), lr, grad_scale);
}

void AdamW::step(float* params, const float* grads, double lr, double grad_scale) {
  PRORES_CHECK(device_ == Device::CPU, "AdamW::step: host buffers given to an optimizer whose moments are on ",
               device_ == Device::CUDA ? "cuda" : "another device", " (pass tensors)");
  PRORES_CHECK(num_params_ == 0 || (params != nullptr && grads != nullptr), "AdamW::step: null params or grads");
  step(Tensor(params, DType::F32, Device::CPU, {num_params_}),
       Tensor(const_cast<float*>(grads), DType::F32, Device::CPU, {num_params_}), lr, grad_scale);
}

void AdamW::step(const Tensor& params, const Tensor& grads, double lr, double grad_scale) {
  PRORES_CHECK(std::isfinite(lr) && lr >= 0.0, "AdamW::step: lr must be finite and >= 0, got ", lr);
  for (const Tensor* t : {&params, &grads})
    PRORES_CHECK(t->numel() == num_params_ && t->dtype == DType::F32 && t->device == device_, "AdamW::step: ",
                 t == &params ? "params" : "grads", " must be f32 of ", num_params_,
                 " elements on the moments' device, got ", t->shape_string(), " ", dtype_name(t->dtype));
  PRORES_CHECK(num_params_ == 0 || (params.defined() && grads.defined()), "AdamW::step: null params or grads");
  ++step_count_;
  ops::adamw_step(params, grads, exp_avg_, exp_avg_sq_, segments_,
                  {lr, config_.beta1, config_.beta2, config_.eps, config_.weight_decay, step_count_, grad_scale});
}

}  // namespace prores
