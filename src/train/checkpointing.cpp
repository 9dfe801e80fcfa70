// Training-state checkpoints (see checkpointing.h).
#include "train/checkpointing.h"

#include <algorithm>
#include <cstdio>
#include <type_traits>
#include <vector>

#include "core/check.h"
#include "ops/memory.h"

namespace prores::train {

std::string exp_avg_name(const std::string& name) { return "optimizer/exp_avg/" + name; }

std::string model_file_name(int64_t tp_rank, int64_t pp_rank) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "model_tp%02lld_pp%03lld.h5", static_cast<long long>(tp_rank),
                static_cast<long long>(pp_rank));
  return buf;
}

std::string optimizer_file_name(int64_t tp_rank, int64_t pp_rank, int64_t dp_rank) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "optim_tp%02lld_pp%03lld_dp%03lld.h5", static_cast<long long>(tp_rank),
                static_cast<long long>(pp_rank), static_cast<long long>(dp_rank));
  return buf;
}

io::PiecePlacement placement_of(const ParamEntry& e, int64_t begin, int64_t end) {
  io::PiecePlacement p;
  p.global_shape = e.global_shape;
  p.shard_axis = e.shard_axis;
  p.shard_offset = e.shard_offset;
  p.shard_shape = e.shape;
  p.begin = begin;
  p.end = end;
  return p;
}
std::string exp_avg_sq_name(const std::string& name) { return "optimizer/exp_avg_sq/" + name; }

namespace {

// Writes the pieces of every parameter that intersect [range_begin, range_end) of the flat buffer `flat`
// (which starts at flat element flat_begin) under the dataset name given by `name_of`. Parameters
// replicated over TP (norms) are written by TP rank 0 only: each element of a tensor is stored once.
template <typename NameOf>
void write_range(io::CheckpointWriter& writer, const ParamTable& table, int64_t tp_rank, const float* flat,
                 int64_t flat_begin, int64_t range_begin, int64_t range_end, NameOf name_of) {
  for (const ParamEntry& e : table.entries()) {
    if (e.tp_replicated() && tp_rank != 0) continue;
    const int64_t begin = std::max(e.offset, range_begin), end = std::min(e.offset + e.numel, range_end);
    if (begin >= end) continue;
    writer.add(name_of(e.name), placement_of(e, begin - e.offset, end - e.offset), flat + (begin - flat_begin));
  }
}

// A moment tensor in host memory, as the checkpoint reads and writes it: the tensor's own memory on the CPU,
// a copy made from the device otherwise (publish() writes it back).
class HostMoment {
 public:
  explicit HostMoment(const Tensor& moment) : moment_(moment) {
    if (moment.device == Device::CPU) {
      data_ = moment.as<float>();
      return;
    }
    copy_.resize(static_cast<size_t>(moment.numel()));
    ops::copy_to_host(copy_.data(), moment);
    data_ = copy_.data();
  }
  float* data() const { return data_; }
  void publish() const {
    if (moment_.device != Device::CPU) ops::copy_from_host(moment_, data_);
  }

 private:
  Tensor moment_;
  std::vector<float> copy_;
  float* data_ = nullptr;
};

void set_run_attributes(io::CheckpointWriter& writer, const ResumeState& state, const TrainStep& step,
                        const ParallelLayout& layout, const std::map<std::string, io::AttributeValue>& run) {
  for (const auto& [key, value] : run) writer.set_attribute(key, value);
  const LayoutShape& ls = layout.shape();
  writer.set_attribute("iteration", state.iteration);
  writer.set_attribute("consumed_samples", state.consumed_samples);
  writer.set_attribute("optimizer_step", step.optimizer().step_count());
  writer.set_attribute("layout", std::vector<int64_t>{ls.tp, ls.pp, ls.dp});
  writer.set_attribute("distributed_optimizer", static_cast<int64_t>(layout.config().distributed_optimizer));
}

}  // namespace

void save_checkpoint(const std::string& save_dir, int64_t keep_last, const std::vector<int64_t>& kept,
                     const ResumeState& state, TrainStep& step, const ParallelLayout& layout,
                     const std::map<std::string, io::AttributeValue>& run_attributes) {
  const LayoutShape& ls = layout.shape();
  Communicator& world = layout.world();
  const std::string dir = save_dir + "/" + io::iteration_dir_name(state.iteration) + ".tmp";
  if (ls.rank == 0) io::prepare_checkpoint_dir(save_dir, state.iteration);
  world.barrier();
  step.state_to_host();
  const Model& model = step.model();
  const ParamTable& table = model.table();
  const AdamW& adam = step.optimizer();
  const int64_t opt_begin = step.optimizer_begin(), opt_end = opt_begin + adam.num_params();
  const bool zero = layout.config().distributed_optimizer;
  auto write_moments = [&](io::CheckpointWriter& writer) {  // called once, by the ranks that write moments
    const HostMoment exp_avg(adam.exp_avg()), exp_avg_sq(adam.exp_avg_sq());
    write_range(writer, table, ls.tp_rank, exp_avg.data(), opt_begin, opt_begin, opt_end, exp_avg_name);
    write_range(writer, table, ls.tp_rank, exp_avg_sq.data(), opt_begin, opt_begin, opt_end, exp_avg_sq_name);
  };
  if (ls.dp_rank == 0) {
    io::CheckpointWriter writer(dir + "/" + model_file_name(ls.tp_rank, ls.pp_rank));
    write_range(writer, table, ls.tp_rank, step.host_params(), 0, 0, table.total_numel(),
                [](const std::string& n) { return n; });
    if (!zero) write_moments(writer);
    set_run_attributes(writer, state, step, layout, run_attributes);
    writer.close();
  }
  if (zero) {
    io::CheckpointWriter writer(dir + "/" + optimizer_file_name(ls.tp_rank, ls.pp_rank, ls.dp_rank));
    write_moments(writer);
    set_run_attributes(writer, state, step, layout, run_attributes);
    writer.close();
  }
  world.barrier();
  if (ls.rank == 0) io::commit_checkpoint(save_dir, state.iteration, keep_last, kept);
  world.barrier();
}

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + ")";
}

// The checkpoint's shard of every parameter of `table` into the flat buffer, checking global shapes.
void read_params(const io::CheckpointReader& reader, const ParamTable& table, float* flat) {
  for (const ParamEntry& e : table.entries()) {
    PRORES_CHECK(reader.has_tensor(e.name), "checkpoint ", reader.directory(), " has no dataset '", e.name, "'");
    const std::vector<int64_t> shape = reader.global_shape(e.name);
    PRORES_CHECK(shape == e.global_shape, "checkpoint ", reader.directory(), ": dataset '", e.name, "' has global shape ",
                 shape_text(shape), " but the configured model needs ", shape_text(e.global_shape));
    reader.read_shard(e.name, e.shard_axis, e.shard_offset, e.shape, flat + e.offset);
  }
}

// The AdamW moments of this rank's optimizer range into the optimizer's moment tensors.
void read_moments(const io::CheckpointReader& reader, const ParamTable& table, AdamW& adam, int64_t opt_begin) {
  const int64_t opt_end = opt_begin + adam.num_params();
  const HostMoment exp_avg(adam.exp_avg()), exp_avg_sq(adam.exp_avg_sq());
  std::vector<float> shard;
  for (const ParamEntry& e : table.entries()) {
    const int64_t begin = std::max(e.offset, opt_begin), end = std::min(e.offset + e.numel, opt_end);
    if (begin >= end) continue;
    shard.resize(static_cast<size_t>(e.numel));
    for (auto [name, dst] : {std::pair{exp_avg_name(e.name), exp_avg.data()},
                             std::pair{exp_avg_sq_name(e.name), exp_avg_sq.data()}}) {
      PRORES_CHECK(reader.has_tensor(name), "checkpoint ", reader.directory(), " has no dataset '", name, "'");
      reader.read_shard(name, e.shard_axis, e.shard_offset, e.shape, shard.data());
      std::copy(shard.begin() + (begin - e.offset), shard.begin() + (end - e.offset), dst + (begin - opt_begin));
    }
  }
  exp_avg.publish();
  exp_avg_sq.publish();
}

}  // namespace

int64_t int_attribute(const std::map<std::string, io::AttributeValue>& attrs, const std::string& key,
                      const std::string& dir) {
  const auto it = attrs.find(key);
  PRORES_CHECK(it != attrs.end() && std::holds_alternative<int64_t>(it->second), "checkpoint ", dir,
               ": missing integer attribute '", key, "'");
  return std::get<int64_t>(it->second);
}

namespace {

double double_attribute(const std::map<std::string, io::AttributeValue>& attrs, const std::string& key,
                        const std::string& dir) {
  const auto it = attrs.find(key);
  PRORES_CHECK(it != attrs.end() && std::holds_alternative<double>(it->second), "checkpoint ", dir,
               ": missing floating-point attribute '", key, "'");
  return std::get<double>(it->second);
}

std::string string_attribute(const std::map<std::string, io::AttributeValue>& attrs, const std::string& key,
                             const std::string& dir) {
  const auto it = attrs.find(key);
  PRORES_CHECK(it != attrs.end() && std::holds_alternative<std::string>(it->second), "checkpoint ", dir,
               ": missing string attribute '", key, "'");
  return std::get<std::string>(it->second);
}

}  // namespace

std::map<std::string, io::AttributeValue> checkpoint_attributes(const ModelConfig& m, const ScheduleArgs& sched,
                                                                const TrainConfig& cfg) {
  ModelConfig recorded = m;
  recorded.num_query_groups = m.kv_groups();
  std::map<std::string, io::AttributeValue> attrs;
  for_each_model_field([&](const ModelField& field, auto member) {
    const auto& value = recorded.*member;
    using T = std::decay_t<decltype(value)>;
    io::AttributeValue& attr = attrs[attribute_key(field.option)];
    if constexpr (std::is_same_v<T, bool>)
      attr = static_cast<int64_t>(value);
    else if constexpr (std::is_enum_v<T>)
      attr = std::string(name_of(value));
    else
      attr = value;
  });
  attrs["prores_schedule"] = sched.schedule;
  attrs["prores_warmup_steps"] = make_residual_schedule(sched, m.num_layers).warmup_steps();
  attrs["train_iters"] = cfg.train_iters;
  attrs["global_batch_size"] = cfg.global_batch_size;
  attrs["seed"] = static_cast<int64_t>(cfg.seed);
  attrs["data_path"] = cfg.data_path;
  attrs["tokenizer_model"] = cfg.tokenizer_model;
  return attrs;
}

ModelConfig model_config_from(const std::map<std::string, io::AttributeValue>& a, const std::string& dir) {
  ModelConfig m;
  for_each_model_field([&](const ModelField& field, auto member) {
    auto& value = m.*member;
    using T = std::decay_t<decltype(value)>;
    const std::string key = attribute_key(field.option);
    if constexpr (std::is_same_v<T, bool>)
      value = int_attribute(a, key, dir) != 0;
    else if constexpr (std::is_enum_v<T>)
      parse_into(string_attribute(a, key, dir), value);
    else if constexpr (std::is_same_v<T, double>)
      value = double_attribute(a, key, dir);
    else
      value = int_attribute(a, key, dir);
  });
  m.validate();
  return m;
}

void check_model_matches_checkpoint(const ModelConfig& model, const ModelConfig& recorded, const std::string& dir) {
  ModelConfig mine = model, theirs = recorded;
  mine.num_query_groups = model.kv_groups();
  theirs.num_query_groups = recorded.kv_groups();
  for_each_model_field([&](const ModelField& field, auto member) {
    PRORES_CHECK(!field.owned_by_checkpoint || mine.*member == theirs.*member, "--", field.option, " ",
                 field_text(mine.*member), " disagrees with checkpoint ", dir, ", which records --", field.option, " ",
                 field_text(theirs.*member), " (leave the option out to take the checkpoint's value)");
  });
}

ScheduleArgs schedule_from(const std::map<std::string, io::AttributeValue>& a, const std::string& dir) {
  ScheduleArgs s;
  s.schedule = string_attribute(a, "prores_schedule", dir);
  s.warmup_steps = double_attribute(a, "prores_warmup_steps", dir);
  return s;
}

ResumeState load_checkpoint(const std::string& load, TrainStep& step, const ParallelLayout& layout) {
  const io::CheckpointReader reader(io::resolve_load_dir(load));
  Model& model = step.model();
  const auto attrs = reader.attributes();
  check_model_matches_checkpoint(model.config(), model_config_from(attrs, reader.directory()), reader.directory());
  step.state_to_host();
  read_params(reader, model.table(), step.host_params());
  ResumeState state;
  state.iteration = int_attribute(attrs, "iteration", reader.directory());
  state.consumed_samples = int_attribute(attrs, "consumed_samples", reader.directory());
  if (step.has_optimizer() && reader.has_tensor(exp_avg_name(model.table().entries().front().name))) {
    read_moments(reader, model.table(), step.optimizer(), step.optimizer_begin());
    step.optimizer().set_step_count(int_attribute(attrs, "optimizer_step", reader.directory()));
  }
  step.state_to_device();
  layout.world().barrier();
  return state;
}

}  // namespace prores::train
