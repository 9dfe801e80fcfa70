// ProRes residual schedules (docs/prores.md): the alpha formulas, schedule names, and the resolution
// of --prores-warmup-steps / --prores-steps-per-layer into W.
//
// Ratios such as t / T_l are evaluated as (t L) / (W l): both products are exact for any realistic t, L
// and integral W, so a block reaches exactly 1 at t = T_l even when T = W / L is not representable, and a
// comparison (not a rounded quotient) decides when the ramp is over.
#include "model/residual_schedule.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string_view>

#include "core/check.h"

namespace prores {

namespace {

struct KindName {
  ScheduleKind kind;
  const char* name;
};

constexpr KindName kKindNames[] = {
    {ScheduleKind::None, "none"},
    {ScheduleKind::Linear, "linear"},
    {ScheduleKind::Equal, "equal"},
    {ScheduleKind::Reverse, "reverse"},
    {ScheduleKind::LinearSquare, "linear-square"},
    {ScheduleKind::LinearSqrt, "linear-sqrt"},
    {ScheduleKind::Stagewise0, "stagewise-0"},
    {ScheduleKind::StagewiseL, "stagewise-L"},
    {ScheduleKind::StagewiseSqrtL, "stagewise-sqrt-L"},
    {ScheduleKind::StagewiseSqrtLayer, "stagewise-sqrt-l"},
    {ScheduleKind::FixL, "fix-L"},
    {ScheduleKind::FixSqrtL, "fix-sqrt-L"},
    {ScheduleKind::FixSqrtLayer, "fix-sqrt-l"},
};

// "none, linear, ... or fix-sqrt-l" for error messages.
std::string accepted_names() {
  std::string s;
  const size_t n = std::size(kKindNames);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) s += (i + 1 == n) ? " or " : ", ";
    s += kKindNames[i].name;
  }
  return s;
}

// Shortest decimal text that reads back as x (messages must tell 1000 from 1000.0001).
std::string shortest(double x) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), x);
  return std::string(buf, res.ptr);
}

// num / den capped at 1, decided by comparison so that num == den gives exactly 1 (den > 0).
double capped_ratio(double num, double den) { return num >= den ? 1.0 : num / den; }

// Throws unless a length option's value is finite and non-negative.
void check_length(const char* option, double value) {
  PRORES_CHECK(std::isfinite(value) && value >= 0, option, " must be a finite number >= 0, got ",
               shortest(value));
}

}  // namespace

ScheduleKind parse_schedule_kind(const std::string& name) {
  for (const KindName& k : kKindNames) {
    if (name == k.name) return k.kind;
  }
  PRORES_FAIL("--prores-schedule: unknown value '", name, "' (expected ", accepted_names(), ")");
}

const char* schedule_kind_name(ScheduleKind kind) {
  for (const KindName& k : kKindNames) {
    if (kind == k.kind) return k.name;
  }
  return "?";
}

ResidualSchedule::ResidualSchedule(ScheduleKind kind, int64_t num_layers, double warmup_steps)
    : kind_(kind), num_layers_(num_layers), warmup_steps_(warmup_steps) {
  PRORES_CHECK(num_layers >= 1, "residual schedule: --num-layers must be at least 1, got ", num_layers);
  check_length("--prores-warmup-steps", warmup_steps);
}

double ResidualSchedule::steps_per_layer() const {
  return warmup_steps_ / static_cast<double>(num_layers_);
}

double ResidualSchedule::alpha(int64_t layer, int64_t t) const {
  PRORES_CHECK(layer >= 1 && layer <= num_layers_, "residual schedule: layer ", layer, " outside [1, ",
               num_layers_, "]");
  PRORES_CHECK(t >= 0, "residual schedule: step t must be >= 0, got ", t);
  const double L = static_cast<double>(num_layers_);
  const double l = static_cast<double>(layer);
  switch (kind_) {
    case ScheduleKind::None: return 1.0;
    case ScheduleKind::FixL: return 1.0 / L;
    case ScheduleKind::FixSqrtL: return 1.0 / std::sqrt(L);
    case ScheduleKind::FixSqrtLayer: return 1.0 / std::sqrt(l);
    default: break;
  }
  const double W = warmup_steps_;
  if (W == 0) return 1.0;  // no warm-up: every warming schedule is done before the first step
  const double tL = static_cast<double>(t) * L;  // t / T = tL / W
  switch (kind_) {
    case ScheduleKind::Linear: return capped_ratio(tL, W * l);
    case ScheduleKind::Equal: return capped_ratio(static_cast<double>(t), W);
    case ScheduleKind::Reverse: return capped_ratio(tL, W * (L - l + 1));
    case ScheduleKind::LinearSquare: {
      const double r = capped_ratio(tL, W * l);
      return r * r;
    }
    case ScheduleKind::LinearSqrt: return std::sqrt(capped_ratio(tL, W * l));
    case ScheduleKind::Stagewise0:
    case ScheduleKind::StagewiseL:
    case ScheduleKind::StagewiseSqrtL:
    case ScheduleKind::StagewiseSqrtLayer: {
      const double s = kind_ == ScheduleKind::Stagewise0       ? 0.0
                       : kind_ == ScheduleKind::StagewiseL     ? 1.0 / L
                       : kind_ == ScheduleKind::StagewiseSqrtL ? 1.0 / std::sqrt(L)
                                                               : 1.0 / std::sqrt(l);
      const double start = W * (l - 1);  // t = T (l - 1), in units of tL
      if (tL <= start) return s;
      if (tL >= W * l) return 1.0;
      return std::clamp(s + (1.0 - s) * ((tL - start) / W), s, 1.0);
    }
    default: break;
  }
  PRORES_FAIL("residual schedule: unhandled kind ", static_cast<int>(kind_));
}

void ResidualSchedule::alphas(int64_t t, int64_t first_layer, int64_t count, double* out) const {
  PRORES_CHECK(count >= 0, "residual schedule: slice length must be >= 0, got ", count);
  if (count == 0) return;
  PRORES_CHECK(first_layer >= 1 && first_layer + count - 1 <= num_layers_, "residual schedule: layers ",
               first_layer, "..", first_layer + count - 1, " outside [1, ", num_layers_, "]");
  PRORES_CHECK(out != nullptr, "residual schedule: null output for ", count, " layers");
  for (int64_t i = 0; i < count; ++i) out[i] = alpha(first_layer + i, t);
}

ResidualSchedule make_residual_schedule(const ScheduleArgs& args, int64_t num_layers) {
  const ScheduleKind kind = parse_schedule_kind(args.schedule);
  PRORES_CHECK(num_layers >= 1, "--num-layers must be at least 1, got ", num_layers);
  const double L = static_cast<double>(num_layers);
  // NaN compares unequal to kUnset, so it counts as given and is rejected by check_length.
  const bool has_w = args.warmup_steps != ScheduleArgs::kUnset;
  const bool has_t = args.steps_per_layer != ScheduleArgs::kUnset;
  if (has_w) check_length("--prores-warmup-steps", args.warmup_steps);
  if (has_t) check_length("--prores-steps-per-layer", args.steps_per_layer);
  if (has_w && has_t) {
    const double w = args.warmup_steps;
    const double tl = args.steps_per_layer * L;
    PRORES_CHECK(std::abs(w - tl) <= 1e-9 * std::max(w, tl), "--prores-warmup-steps ", shortest(w),
                 " and --prores-steps-per-layer ", shortest(args.steps_per_layer),
                 " disagree: W must equal T * L = ", shortest(args.steps_per_layer), " * ", num_layers,
                 " = ", shortest(tl));
  }
  const double t = has_t ? args.steps_per_layer : kDefaultStepsPerLayer;
  const double w = has_w ? args.warmup_steps : t * L;
  PRORES_CHECK(std::isfinite(w), "--prores-steps-per-layer ", shortest(t), " times --num-layers ",
               num_layers, " overflows");
  return ResidualSchedule(kind, num_layers, w);
}

}  // namespace prores
