// ProRes residual schedules: the scalar alpha(l, t) that multiplies block l's residual branch after t
// optimizer steps (docs/prores.md), plus the resolution of the command-line knobs into one schedule.
// Pure arithmetic on the global layer index; a pipeline stage asks for its own slice with alphas().
#pragma once
#include <cstdint>
#include <string>

namespace prores {

// The schedules of docs/prores.md. Command-line names in parse_schedule_kind / schedule_kind_name.
enum class ScheduleKind {
  None,                // 1
  Linear,              // min(t / T_l, 1)                      (the default)
  Equal,               // min(t / W, 1)
  Reverse,             // min(t / (T (L - l + 1)), 1)
  LinearSquare,        // min((t / T_l)^2, 1)
  LinearSqrt,          // min(sqrt(t / T_l), 1)
  Stagewise0,          // clip(s + (1 - s)(t - T (l - 1)) / T, s, 1), s = 0
  StagewiseL,          //   ... s = 1 / L
  StagewiseSqrtL,      //   ... s = 1 / sqrt(L)
  StagewiseSqrtLayer,  //   ... s = 1 / sqrt(l)
  FixL,                // 1 / L for the whole run
  FixSqrtL,            // 1 / sqrt(L)
  FixSqrtLayer,        // 1 / sqrt(l)
};

// Parses a --prores-schedule value: none, linear, equal, reverse, linear-square, linear-sqrt, stagewise-0,
// stagewise-L, stagewise-sqrt-L, stagewise-sqrt-l, fix-L, fix-sqrt-L, fix-sqrt-l (case-sensitive: -L is the depth L,
// -l the layer index l). Throws prores::Error naming the value and listing the accepted ones.
ScheduleKind parse_schedule_kind(const std::string& name);

// The command-line name of kind (the inverse of parse_schedule_kind).
const char* schedule_kind_name(ScheduleKind kind);

// alpha(l, t) for one model: the kind, the depth L and the total residual-warmup length W (T = W / L).
class ResidualSchedule {
 public:
  // num_layers = L >= 1; warmup_steps = W, finite and >= 0. With W = 0 every warming schedule is 1 from
  // t = 0 on (no warm-up); the fix-* schedules ignore W. Throws prores::Error on invalid arguments.
  ResidualSchedule(ScheduleKind kind, int64_t num_layers, double warmup_steps);

  // alpha for block `layer` (1-based global index in [1, L]) after t >= 0 optimizer steps; in [0, 1].
  double alpha(int64_t layer, int64_t t) const;

  // out[i] = alpha(first_layer + i, t) for 0 <= i < count (=, overwritten): a pipeline stage's slice.
  // The slice must lie inside [1, L]; count = 0 writes nothing.
  void alphas(int64_t t, int64_t first_layer, int64_t count, double* out) const;

  ScheduleKind kind() const { return kind_; }
  int64_t num_layers() const { return num_layers_; }        // L
  double warmup_steps() const { return warmup_steps_; }     // W
  double steps_per_layer() const;                           // T = W / L

 private:
  ScheduleKind kind_;
  int64_t num_layers_;
  double warmup_steps_;
};

// The ProRes options as given on the command line or in a config file (cli/schedule_options.h registers
// them). A length equal to ScheduleArgs::kUnset means "not given".
struct ScheduleArgs {
  static constexpr double kUnset = -1;
  std::string schedule = "linear";   // --prores-schedule
  double warmup_steps = kUnset;      // --prores-warmup-steps W
  double steps_per_layer = kUnset;   // --prores-steps-per-layer T (means W = T L)
};

// Per-layer length used when neither W nor T is given: the reference recipe's T = 1000.
inline constexpr double kDefaultStepsPerLayer = 1000;

// Resolves args for a model of num_layers blocks: W from --prores-warmup-steps, or W = T L from
// --prores-steps-per-layer, or W = 1000 L when neither is given. Both given must agree (W = T L up to
// rounding). Throws prores::Error naming the option and value for an unknown schedule, a negative,
// infinite or NaN length, disagreeing lengths, or num_layers < 1.
ResidualSchedule make_residual_schedule(const ScheduleArgs& args, int64_t num_layers);

}  // namespace prores
