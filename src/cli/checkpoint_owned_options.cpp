// Taking the owned options from a loaded checkpoint (see checkpoint_owned_options.h).
#include "cli/checkpoint_owned_options.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/check.h"
#include "io/checkpoint.h"
#include "train/checkpointing.h"

namespace prores {

namespace {

std::string number_text(double x) {
  std::ostringstream text;
  text << x;
  return text.str();
}

bool given(const boost::program_options::variables_map& vm, const std::string& option) {
  const auto it = vm.find(option);
  return it != vm.end() && !it->second.defaulted();
}

// --prores-schedule, --prores-warmup-steps and --prores-steps-per-layer against the recorded schedule of a
// model of num_layers blocks (the lengths only where the schedule has one: not none or fix-*).
void adopt_schedule(const boost::program_options::variables_map& vm, const ScheduleArgs& recorded, int64_t num_layers,
                    const std::string& dir, ScheduleArgs& schedule) {
  PRORES_CHECK(!given(vm, "prores-schedule") || schedule.schedule == recorded.schedule, "--prores-schedule ",
               schedule.schedule, " disagrees with checkpoint ", dir, ", which records --prores-schedule ",
               recorded.schedule, " (leave the option out to take the checkpoint's value)");
  const ScheduleKind kind = parse_schedule_kind(recorded.schedule);
  const bool uses_length = kind != ScheduleKind::None && kind != ScheduleKind::FixL &&
                           kind != ScheduleKind::FixSqrtL && kind != ScheduleKind::FixSqrtLayer;
  const double warmup = make_residual_schedule(schedule, num_layers).warmup_steps();
  const bool same = !uses_length || std::fabs(warmup - recorded.warmup_steps) <=
                                        1e-9 * std::max(1.0, recorded.warmup_steps);
  std::string given_length;
  if (given(vm, "prores-warmup-steps"))
    given_length = "--prores-warmup-steps " + number_text(warmup);
  else if (given(vm, "prores-steps-per-layer"))
    given_length = "--prores-steps-per-layer " + number_text(schedule.steps_per_layer) + " (W = " +
                   number_text(warmup) + " for " + std::to_string(num_layers) + " layers)";
  PRORES_CHECK(same || given_length.empty(), given_length, " disagrees with checkpoint ", dir,
               ", which records --prores-warmup-steps ", recorded.warmup_steps,
               " (leave the option out to take the checkpoint's value)");
  schedule = recorded;
}

}  // namespace

std::string adopt_checkpoint_options(const std::string& load, const boost::program_options::variables_map& vm,
                                     const CheckpointOwnedOptions& options) {
  const io::CheckpointReader reader(io::resolve_load_dir(load));
  const std::string& dir = reader.directory();
  const auto attributes = reader.attributes();
  const ModelConfig recorded = train::model_config_from(attributes, dir);
  for_each_model_field([&](const ModelField& field, auto member) {
    // An option the checkpoint does not own (the sequence length) still defaults to the checkpoint's value.
    if (!given(vm, field.option)) options.model.*member = recorded.*member;
  });
  train::check_model_matches_checkpoint(options.model, recorded, dir);
  adopt_schedule(vm, train::schedule_from(attributes, dir), recorded.num_layers, dir, options.schedule);
  const auto tokenizer = attributes.find("tokenizer_model");
  if (!given(vm, "tokenizer-model") && tokenizer != attributes.end() &&
      std::holds_alternative<std::string>(tokenizer->second))
    options.tokenizer_model = std::get<std::string>(tokenizer->second);
  return dir;
}

}  // namespace prores
