// LoadedModel (loaded_model.h): a one-rank layout over a single-process communicator, the checkpoint loaded
// through train::load_for_inference, and a Generator over it.
#include "eval/loaded_model.h"

#include "core/check.h"
#include "train/trainer.h"

namespace prores::eval {

LoadedModel::LoadedModel(const ModelConfig& model, const ScheduleArgs& schedule, const LoadedModelOptions& options)
    : model_(model), codec_(TextCodec::for_tokenizer(options.tokenizer_model)) {
  PRORES_CHECK(codec_.vocab_size() <= model_.vocab_size, "the tokenizer has ", codec_.vocab_size(),
               " tokens, more than the model's vocabulary of ", model_.vocab_size);
  config_.load = options.load;
  config_.bf16 = options.bf16;
  config_.micro_batch_size = 1;
  config_.global_batch_size = 1;
  config_.tokenizer_model = options.tokenizer_model;
  world_ = make_single_process_communicator();
  layout_ = std::make_unique<ParallelLayout>(*world_, ParallelConfig{}, model_, 1, 1);
  train::LoadedStep loaded = train::load_for_inference(
      model_, schedule, config_, *layout_, options.kv_cache ? train::StepUse::Generate : train::StepUse::Evaluate);
  step_ = std::move(loaded.step);
  checkpoint_ = loaded.checkpoint;
  iteration_ = loaded.iteration;
  generator_ = std::make_unique<Generator>(*step_, codec_.vocab_size());
}

LoadedModel::~LoadedModel() = default;

}  // namespace prores::eval
