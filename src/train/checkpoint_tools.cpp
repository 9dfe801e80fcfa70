// Offline checkpoint tools (see checkpoint_tools.h).
#include "train/checkpoint_tools.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <vector>

#include "core/check.h"
#include "core/progress.h"
#include "io/checkpoint.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/param_table.h"
#include "model/residual_schedule.h"
#include "train/checkpointing.h"

namespace prores::train {

namespace fs = std::filesystem;

namespace {

// One model file of the target layout and the parameter shards it holds (a TP-replicated parameter only on
// TP rank 0).
struct TargetFile {
  LayoutShape shape;
  std::vector<ParamEntry> entries;
};

std::vector<TargetFile> target_files(const ParallelConfig& parallel, const ModelConfig& model) {
  const int64_t world = parallel.tensor * parallel.pipeline;
  std::vector<TargetFile> files;
  for (int64_t rank = 0; rank < world; ++rank) {
    TargetFile file{LayoutShape::compute(world, rank, parallel, model, 1, 1), {}};
    const ParamTable table(model, shard_of(file.shape));
    for (const ParamEntry& e : table.entries())
      if (!e.tp_replicated() || file.shape.tp_rank == 0) file.entries.push_back(e);
    files.push_back(std::move(file));
  }
  return files;
}

int64_t tensor_bytes(const std::vector<float>& data) { return static_cast<int64_t>(data.size() * sizeof(float)); }

}  // namespace

void convert_checkpoint(const std::string& load, const std::string& save_dir, const ParallelConfig& parallel,
                        const ProgressOptions& progress_options) {
  const io::CheckpointReader reader(io::resolve_load_dir(load));
  auto attrs = reader.attributes();
  const ModelConfig model = model_config_from(attrs, reader.directory());
  const int64_t iteration = int_attribute(attrs, "iteration", reader.directory());
  const bool with_optimizer = reader.has_tensor(exp_avg_name("model.norm.weight"));
  attrs["layout"] = std::vector<int64_t>{parallel.tensor, parallel.pipeline, 1};
  attrs["distributed_optimizer"] = int64_t{0};
  const std::vector<TargetFile> files = target_files(parallel, model);
  const int64_t tensors_per_param = with_optimizer ? 3 : 1;  // the parameter and AdamW's two moments
  int64_t tensors = 0;
  for (const TargetFile& file : files) tensors += tensors_per_param * static_cast<int64_t>(file.entries.size());
  Progress progress("convert", tensors, "tensors", progress_options);
  const std::string dir = io::prepare_checkpoint_dir(save_dir, iteration);
  std::vector<float> shard;
  for (const TargetFile& file : files) {
    io::CheckpointWriter writer(dir + "/" + model_file_name(file.shape.tp_rank, file.shape.pp_rank));
    for (const ParamEntry& e : file.entries) {
      shard.resize(static_cast<size_t>(e.numel));
      std::vector<std::string> names = {e.name};
      if (with_optimizer) names.insert(names.end(), {exp_avg_name(e.name), exp_avg_sq_name(e.name)});
      for (const std::string& name : names) {
        reader.read_shard(name, e.shard_axis, e.shard_offset, e.shape, shard.data());
        writer.add(name, placement_of(e, 0, e.numel), shard.data());
        progress.advance(1, tensor_bytes(shard));
      }
    }
    for (const auto& [key, value] : attrs) writer.set_attribute(key, value);
    writer.close();
  }
  io::commit_checkpoint(save_dir, iteration, 0);
  progress.finish();
}

void export_hf(const std::string& load, const std::string& hf_dir, const ProgressOptions& progress_options) {
  const io::CheckpointReader reader(io::resolve_load_dir(load));
  const auto attrs = reader.attributes();
  const ModelConfig model = model_config_from(attrs, reader.directory());
  PRORES_CHECK(model.norm_placement == NormPlacement::Pre, "export-hf: checkpoint ", reader.directory(),
               " has --norm-placement ", norm_placement_name(model.norm_placement),
               "; only pre (Pre-LN) maps onto LlamaForCausalLM");
  const int64_t iteration = int_attribute(attrs, "iteration", reader.directory());
  const ResidualSchedule schedule = make_residual_schedule(schedule_from(attrs, reader.directory()), model.num_layers);

  std::vector<io::SafeTensor> tensors;
  const ParamTable table(model);
  Progress progress("export-hf", static_cast<int64_t>(table.entries().size()), "tensors read", progress_options);
  for (const ParamEntry& e : table.entries()) {
    io::SafeTensor t{e.name, e.global_shape, reader.read_full(e.name)};
    double scale = 1.0;
    if (e.role == ParamRole::ResidualOut)
      scale = schedule.alpha(e.layer, iteration);  // x + α·W·y = x + (α·W)·y
    else if (e.role == ParamRole::Norm && e.layer > 0 && model.layernorm_scaling)
      scale = 1.0 / std::sqrt(static_cast<double>(e.layer));  // s·(w ⊙ n) = (s·w) ⊙ n
    if (scale != 1.0)
      for (float& x : t.data) x = static_cast<float>(x * scale);
    progress.advance(1, tensor_bytes(t.data));
    tensors.push_back(std::move(t));
  }
  fs::create_directories(hf_dir);
  io::HfLlamaConfig hf;
  hf.hidden_size = model.hidden_size;
  hf.intermediate_size = model.ffn_hidden_size;
  hf.num_hidden_layers = model.num_layers;
  hf.num_attention_heads = model.num_attention_heads;
  hf.num_key_value_heads = model.kv_groups();
  hf.vocab_size = model.vocab_size;
  hf.max_position_embeddings = model.seq_length;
  hf.rms_norm_eps = model.norm_eps;
  hf.rope_theta = model.rotary_base;
  hf.initializer_range = model.init_method_std;
  progress.note("writing " + hf_dir + "/model.safetensors");
  io::write_safetensors(hf_dir + "/model.safetensors", tensors, {{"format", "pt"}});
  io::write_hf_config(hf_dir + "/config.json", hf);
  const auto tokenizer = attrs.find("tokenizer_model");
  if (tokenizer != attrs.end() && std::holds_alternative<std::string>(tokenizer->second)) {
    const std::string& path = std::get<std::string>(tokenizer->second);
    if (!path.empty() && fs::exists(path))
      fs::copy_file(path, hf_dir + "/tokenizer.model", fs::copy_options::overwrite_existing);
  }
  progress.finish();
}

void import_hf(const std::string& hf_dir, const std::string& save_dir, const ProgressOptions& progress_options) {
  const io::HfLlamaConfig hf = io::read_hf_config(hf_dir + "/config.json");
  ModelConfig model;
  model.num_layers = hf.num_hidden_layers;
  model.hidden_size = hf.hidden_size;
  model.ffn_hidden_size = hf.intermediate_size;
  model.num_attention_heads = hf.num_attention_heads;
  model.num_query_groups = hf.num_key_value_heads;
  model.seq_length = hf.max_position_embeddings;
  model.vocab_size = hf.vocab_size;
  model.norm_eps = hf.rms_norm_eps;
  model.rotary_base = hf.rope_theta;
  model.init_method_std = hf.initializer_range;
  model.validate();
  const std::string weights = hf_dir + "/model.safetensors";
  const ParamTable table(model);
  Progress progress("import-hf", static_cast<int64_t>(table.entries().size()), "tensors written", progress_options);
  progress.note("reading " + weights);
  const std::map<std::string, io::SafeTensor> tensors = io::read_safetensors(weights);
  PRORES_CHECK(tensors.size() == table.entries().size(), "import-hf: ", weights, " holds ", tensors.size(),
               " tensors; a LlamaForCausalLM of this config has ", table.entries().size());
  const std::string dir = io::prepare_checkpoint_dir(save_dir, 0);
  io::CheckpointWriter writer(dir + "/" + model_file_name(0, 0));
  for (const ParamEntry& e : table.entries()) {
    const auto it = tensors.find(e.name);
    PRORES_CHECK(it != tensors.end(), "import-hf: ", weights, " has no tensor '", e.name, "'");
    PRORES_CHECK(it->second.shape == e.global_shape, "import-hf: ", weights, ": tensor '", e.name,
                 "' has the wrong shape for config.json");
    writer.add(e.name, placement_of(e, 0, e.numel), it->second.data.data());
    progress.advance(1, tensor_bytes(it->second.data));
  }
  TrainConfig imported;
  imported.train_iters = 0;
  imported.global_batch_size = 0;
  imported.seed = 0;
  for (const auto& [key, value] : checkpoint_attributes(model, ScheduleArgs{"none", 0, ScheduleArgs::kUnset}, imported))
    writer.set_attribute(key, value);
  writer.set_attribute("iteration", int64_t{0});
  writer.set_attribute("consumed_samples", int64_t{0});
  writer.set_attribute("layout", std::vector<int64_t>{1, 1, 1});
  writer.set_attribute("imported_from", hf_dir);
  writer.close();
  io::commit_checkpoint(save_dir, 0, 0);
  progress.finish();
}

}  // namespace prores::train
