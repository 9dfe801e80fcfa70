// A checkpoint loaded into this one process for generation and serving (`prores generate`, `prores serve`):
// its model on the CPU with TP = PP = 1 whatever layout wrote it, the ProRes α of its iteration, its text codec
// and a Generator over them.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "core/config.h"
#include "eval/generator.h"
#include "eval/text_codec.h"
#include "model/residual_schedule.h"
#include "parallel/communicator.h"
#include "parallel/layout.h"
#include "train/train_config.h"
#include "train/train_step.h"

namespace prores::eval {

struct LoadedModelOptions {
  std::string load;             // checkpoint directory (its latest) or iteration directory
  std::string tokenizer_model;  // the checkpoint's (empty: a byte-level run)
  bool bf16 = false;            // bf16 matmuls (fp32 accumulation)
  bool kv_cache = true;         // false: every new token recomputes the prefix (reference, benchmark)
};

class LoadedModel {
 public:
  // model and schedule: the checkpoint's (cli's adopt_checkpoint_options); model.seq_length is the context.
  LoadedModel(const ModelConfig& model, const ScheduleArgs& schedule, const LoadedModelOptions& options);
  ~LoadedModel();

  Generator& generator() { return *generator_; }
  const TextCodec& codec() const { return codec_; }
  const ModelConfig& model_config() const { return model_; }
  const std::string& checkpoint() const { return checkpoint_; }  // the iteration directory loaded
  int64_t iteration() const { return iteration_; }

 private:
  ModelConfig model_;
  train::TrainConfig config_;
  TextCodec codec_;
  std::unique_ptr<Communicator> world_;
  std::unique_ptr<ParallelLayout> layout_;
  std::unique_ptr<train::TrainStep> step_;
  std::unique_ptr<Generator> generator_;
  std::string checkpoint_;
  int64_t iteration_ = 0;
};

}  // namespace prores::eval
