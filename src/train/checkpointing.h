// Saving and loading training state as sharded HDF5 checkpoints (io/checkpoint.h, docs/checkpoints.md): the
// parameters (one file per TP × PP coordinate, written by DP rank 0), the AdamW moments (in the same
// files, or one file per DP rank under ZeRO-1), and the run state as attributes. Loading assembles each
// rank's shards from whatever layout wrote them, so a run may resume under another TP, PP or DP.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "parallel/layout.h"
#include "model/residual_schedule.h"
#include "train/train_step.h"
#include "train/trainer.h"

namespace prores::train {

// Where a run continues: the number of optimizer steps taken and samples consumed.
struct ResumeState {
  int64_t iteration = 0;
  int64_t consumed_samples = 0;
};

// Collective over layout.world(): writes DIR/iter_<iteration> (through a .tmp directory) and points
// DIR/latest at it, keeping the newest keep_last iteration directories (0: all) and those in `kept`. run_attributes describe
// the run (config, schedule, seed); the layout and position are added here.
void save_checkpoint(const std::string& save_dir, int64_t keep_last, const std::vector<int64_t>& kept,
                     const ResumeState& state, TrainStep& step, const ParallelLayout& layout,
                     const std::map<std::string, io::AttributeValue>& run_attributes);

// Collective over layout.world(): loads --load (DIR with `latest`, or an iteration directory) into step's
// model and optimizer (a checkpoint without optimizer state, e.g. imported from Hugging Face, leaves the
// optimizer fresh) and returns where to continue. Throws naming the file and dataset when the checkpoint
// is unreadable, records a model that differs from step's in an option it owns (check_model_matches_checkpoint),
// or its shapes disagree with the model.
ResumeState load_checkpoint(const std::string& load, TrainStep& step, const ParallelLayout& layout);

// The run description stored with every checkpoint: the model configuration, the ProRes schedule, the
// training length, seed and data. model_config_from / schedule_from read them back (convert, export).
std::map<std::string, io::AttributeValue> checkpoint_attributes(const ModelConfig& model, const ScheduleArgs& schedule,
                                                                const TrainConfig& config);
ModelConfig model_config_from(const std::map<std::string, io::AttributeValue>& attributes, const std::string& dir);
// Throws prores::Error naming the option, both values and dir at the first field the checkpoint owns
// (ModelField::owned_by_checkpoint) where model differs from recorded (the checkpoint's model_config_from);
// num-query-groups compares kv_groups().
void check_model_matches_checkpoint(const ModelConfig& model, const ModelConfig& recorded, const std::string& dir);
ScheduleArgs schedule_from(const std::map<std::string, io::AttributeValue>& attributes, const std::string& dir);
int64_t int_attribute(const std::map<std::string, io::AttributeValue>& attributes, const std::string& key,
                      const std::string& dir);

// File names inside an iteration directory: model_tpTT_ppPPP.h5 (parameters, and the moments without
// ZeRO-1) and optim_tpTT_ppPPP_dpDDD.h5 (a DP rank's ZeRO-1 moments).
std::string model_file_name(int64_t tp_rank, int64_t pp_rank);
std::string optimizer_file_name(int64_t tp_rank, int64_t pp_rank, int64_t dp_rank);

// Where elements [begin, end) of parameter e's shard sit in its global tensor.
io::PiecePlacement placement_of(const ParamEntry& e, int64_t begin, int64_t end);

// Dataset names of the AdamW moments of parameter `name`.
std::string exp_avg_name(const std::string& name);
std::string exp_avg_sq_name(const std::string& name);

}  // namespace prores::train
