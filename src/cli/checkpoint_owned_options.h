// The options a checkpoint owns (docs/checkpoints.md): `prores train --load` and `prores eval` take the
// model-defining options, the ProRes schedule and the tokenizer from the checkpoint they load.
#pragma once
#include <boost/program_options/variables_map.hpp>
#include <string>

#include "core/config.h"
#include "model/residual_schedule.h"

namespace prores {

// What a run that loads a checkpoint takes from it.
struct CheckpointOwnedOptions {
  ModelConfig& model;
  ScheduleArgs& schedule;
  std::string& tokenizer_model;
};

// For every model option: one not given in vm (neither on the command line nor in the config file) takes the
// value of the checkpoint at `load` (a directory with `latest`, or an iteration directory). For every option
// the checkpoint owns, a given one that disagrees throws prores::Error naming the option, both values and the checkpoint's directory. The
// owned options: every ModelField with owned_by_checkpoint (the padded --vocab-size among them), and
// --prores-schedule with its length (--prores-warmup-steps, or --prores-steps-per-layer T as W = T L).
// --tokenizer-model, when not given, becomes the checkpoint's (so that --data-path means what it meant
// to the run). Returns the checkpoint's iteration directory.
std::string adopt_checkpoint_options(const std::string& load, const boost::program_options::variables_map& vm,
                                     const CheckpointOwnedOptions& options);

}  // namespace prores
