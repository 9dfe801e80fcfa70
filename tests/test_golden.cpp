// Golden test against PyTorch, as llm.c does: tests/golden/make_golden.py (a from-scratch PyTorch float64
// model) wrote tests/fixtures/golden_*.h5 with parameters, logits, loss, gradients and five AdamW steps
// for a tiny model in each norm placement (pre, post, sandwich, deepnorm, pre + LayerNorm Scaling).
// Here the C++ Model (f64 and f32) and optimizer must reproduce them. Also covers Hdf5Reader on the
// same files. Regenerate the fixtures with: python3 tests/golden/make_golden.py
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/config.h"
#include "hdf5_reader.h"
#include "model/model.h"
#include "model/param_table.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "test_util.h"

namespace prores {
namespace {

using test::expect_error;

std::string fixture_path(const std::string& stem) {
  return std::string(PRORES_SOURCE_DIR) + "/tests/fixtures/" + stem + ".h5";
}

ModelConfig config_from(const Hdf5Reader& f) {
  ModelConfig c;
  c.num_layers = f.attr_i64("num_layers");
  c.hidden_size = f.attr_i64("hidden_size");
  c.ffn_hidden_size = f.attr_i64("ffn_hidden_size");
  c.num_attention_heads = f.attr_i64("num_attention_heads");
  c.num_query_groups = f.attr_i64("num_query_groups");
  c.seq_length = f.attr_i64("seq_length");
  c.vocab_size = f.attr_i64("vocab_size");
  c.rotary_base = f.attr_f64("rotary_base");
  c.norm_eps = f.attr_f64("norm_eps");
  c.norm_placement = parse_norm_placement(f.attr_string("norm_placement"));
  c.layernorm_scaling = f.attr_i64("layernorm_scaling") != 0;
  c.validate();
  return c;
}

// The tensor's elements as doubles, whatever its floating dtype.
std::vector<double> to_f64(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::F64) {
    std::copy_n(t.as<double>(), out.size(), out.begin());
  } else {
    std::copy_n(t.as<float>(), out.size(), out.begin());
  }
  return out;
}

void copy_into(const Tensor& t, const std::vector<double>& values) {
  ASSERT_EQ(t.numel(), static_cast<int64_t>(values.size()));
  if (t.dtype == DType::F64) {
    std::copy(values.begin(), values.end(), t.as<double>());
  } else {
    std::transform(values.begin(), values.end(), t.as<float>(), [](double v) { return static_cast<float>(v); });
  }
}

// Loads every param/<name> of the fixture into the model, requiring the fixture and the model's
// ParamTable to hold exactly the same names and shapes.
void load_params(const Hdf5Reader& f, Model& model, const std::string& group = "param") {
  std::set<std::string> in_table;
  for (const ParamEntry& e : model.table().entries()) {
    in_table.insert(e.name);
    const std::string ds = group + "/" + e.name;
    ASSERT_TRUE(f.has(ds)) << f.path() << ": missing " << ds;
    std::vector<int64_t> shape;
    const std::vector<double> values = f.read_f64(ds, &shape);
    ASSERT_EQ(shape, e.shape) << ds;
    copy_into(model.param(e.name), values);
  }
  for (const std::string& name : f.list(group))
    EXPECT_TRUE(in_table.count(name)) << f.path() << ": " << group << "/" << name << " is not a model parameter";
}

// Largest |a - ref| over the tensor and the scale it is judged against.
struct Diff {
  double max_abs = 0, ref_max = 0;
  int64_t worst = -1;
};

Diff diff(const std::vector<double>& a, const std::vector<double>& ref) {
  Diff d;
  for (size_t i = 0; i < ref.size(); ++i) {
    d.ref_max = std::max(d.ref_max, std::abs(ref[i]));
    const double e = std::isnan(a[i]) ? INFINITY : std::abs(a[i] - ref[i]);
    if (d.worst < 0 || e > d.max_abs) {
      d.max_abs = e;
      d.worst = static_cast<int64_t>(i);
    }
  }
  return d;
}

// Elementwise |a - ref| <= rtol · scale, scale = max|ref| (with a floor of 1 when floor_one).
// Returns the observed max |a - ref| / scale.
double expect_close(const std::string& what, const std::vector<double>& a, const std::vector<double>& ref,
                    double rtol, bool floor_one) {
  EXPECT_EQ(a.size(), ref.size()) << what;
  EXPECT_FALSE(ref.empty()) << what;
  if (a.size() != ref.size() || ref.empty()) return INFINITY;
  const Diff d = diff(a, ref);
  const double scale = floor_one ? std::max(1.0, d.ref_max) : d.ref_max;
  const double rel = d.max_abs / scale;
  EXPECT_LE(d.max_abs, rtol * scale) << what << ": max |diff| " << d.max_abs << " (relative " << rel
                                      << ") at element " << d.worst << ", got " << a[d.worst] << " want "
                                      << ref[d.worst] << ", max |ref| " << d.ref_max;
  return rel;
}

class Golden : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { file_ = std::make_unique<Hdf5Reader>(fixture_path(GetParam())); }

  // Forward + backward from the fixture's parameters; compares logits, loss and every gradient.
  void check_forward_backward(DType dtype, double rtol, bool floor_one) {
    const Hdf5Reader& f = *file_;
    const ModelConfig config = config_from(f);
    const int64_t B = f.attr_i64("batch_size");
    Model model(config, B, dtype);
    load_params(f, model);
    if (HasFatalFailure()) return;
    model.set_residual_scales(f.read_f64("alpha"));
    const std::vector<int32_t> tokens = f.read_i32("tokens"), targets = f.read_i32("targets");
    ASSERT_EQ(static_cast<int64_t>(tokens.size()), B * config.seq_length);

    const double loss = model.forward(0, tokens.data(), targets.data());
    const double ref_loss = f.read_f64("loss").at(0);
    EXPECT_LE(std::abs(loss - ref_loss), rtol * std::abs(ref_loss)) << "loss " << loss << " want " << ref_loss;
    double worst = expect_close("logits", to_f64(model.logits()), f.read_f64("logits"), rtol, floor_one);
    std::string worst_name = "logits";

    model.zero_grads();
    model.backward(0, 1.0);
    for (const ParamEntry& e : model.table().entries()) {
      const double rel = expect_close("grad/" + e.name, to_f64(model.grad(e.name)), f.read_f64("grad/" + e.name),
                                      rtol, floor_one);
      if (rel > worst) worst = rel, worst_name = "grad/" + e.name;
    }
    std::printf("[golden] %s %s: loss %.12f (ref %.12f), worst relative error %.3e in %s\n", GetParam(),
                dtype_name(dtype), loss, ref_loss, worst, worst_name.c_str());
  }

  std::unique_ptr<Hdf5Reader> file_;
};

TEST_P(Golden, ForwardBackwardF64) { check_forward_backward(DType::F64, 1e-10, true); }

TEST_P(Golden, ForwardBackwardF32) { check_forward_backward(DType::F32, 1e-5, false); }

// Five AdamW steps on the same batch (clip, then step), f32 model and optimizer, against PyTorch's f64 run.
TEST_P(Golden, AdamWStepsF32) {
  const Hdf5Reader& f = *file_;
  const ModelConfig config = config_from(f);
  Model model(config, f.attr_i64("batch_size"), DType::F32);
  load_params(f, model);
  if (HasFatalFailure()) return;
  model.set_residual_scales(f.read_f64("alpha"));
  const std::vector<int32_t> tokens = f.read_i32("tokens"), targets = f.read_i32("targets");

  AdamWConfig oc;
  oc.beta1 = f.attr_f64("beta1");
  oc.beta2 = f.attr_f64("beta2");
  oc.eps = f.attr_f64("eps");
  oc.weight_decay = f.attr_f64("weight_decay");
  const int64_t P = model.table().total_numel();
  AdamW opt(oc, P);
  std::vector<AdamW::Segment> segments;
  for (const ParamEntry& e : model.table().entries()) segments.push_back({e.offset, e.numel, e.weight_decay});
  opt.set_segments(segments);
  const double lr = f.attr_f64("lr"), clip = f.attr_f64("clip_grad");

  const std::vector<double> ref_losses = f.read_f64("adam_losses");
  std::span<float> params(model.params().as<float>(), static_cast<size_t>(P));
  std::span<float> grads(model.grads().as<float>(), static_cast<size_t>(P));
  double worst_loss = 0;
  for (size_t step = 0; step < ref_losses.size(); ++step) {
    model.zero_grads();
    const double loss = model.forward(0, tokens.data(), targets.data());
    const double rel = std::abs(loss - ref_losses[step]) / std::abs(ref_losses[step]);
    EXPECT_LE(rel, 1e-5) << "loss before step " << step + 1 << ": " << loss << " want " << ref_losses[step];
    worst_loss = std::max(worst_loss, rel);
    model.backward(0, 1.0);
    opt.step(params.data(), grads.data(), lr, clip_coefficient(global_grad_norm(grads), clip));
  }

  double worst = 0;
  std::string worst_name;
  for (const ParamEntry& e : model.table().entries()) {
    const double rel = expect_close("adam_final/" + e.name, to_f64(model.param(e.name)),
                                    f.read_f64("adam_final/" + e.name), 1e-4, false);
    if (rel > worst) worst = rel, worst_name = e.name;
  }
  std::printf("[golden] %s adamw f32: worst loss relative error %.3e, worst parameter relative error %.3e in %s\n",
              GetParam(), worst_loss, worst, worst_name.c_str());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Golden,
                         ::testing::Values("golden_pre", "golden_post", "golden_sandwich", "golden_deepnorm",
                                           "golden_pre_lns"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

TEST(Hdf5Reader, ReadsAttributesShapesAndConvertsTypes) {
  const Hdf5Reader f(fixture_path("golden_sandwich"));
  EXPECT_EQ(f.attr_string("norm_placement"), "sandwich");
  EXPECT_EQ(f.attr_i64("num_layers"), 2);
  EXPECT_EQ(f.attr_f64("num_layers"), 2.0);
  EXPECT_EQ(f.attr_f64("lr"), 1e-2);
  std::vector<int64_t> shape;
  EXPECT_EQ(f.read_f64("logits", &shape).size(), 2u * 8u * 32u);
  EXPECT_EQ(shape, (std::vector<int64_t>{2, 8, 32}));
  EXPECT_EQ(f.read_f64("loss", &shape).size(), 1u);
  EXPECT_TRUE(shape.empty());
  const std::vector<int32_t> tokens = f.read_i32("tokens", &shape);
  EXPECT_EQ(shape, (std::vector<int64_t>{2, 8}));
  const std::vector<double> tokens_f64 = f.read_f64("tokens");
  ASSERT_EQ(tokens.size(), tokens_f64.size());
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(static_cast<double>(tokens[i]), tokens_f64[i]);
  EXPECT_TRUE(f.has("param/model.layers.1.mlp_out_layernorm.weight"));
  EXPECT_FALSE(f.has("param"));
  EXPECT_FALSE(f.has("param/nope"));
  EXPECT_FALSE(f.has("nope/deeper"));
  EXPECT_EQ(f.list("/"), (std::vector<std::string>{"adam_final", "adam_losses", "alpha", "grad", "logits", "loss",
                                                   "param", "targets", "tokens"}));
}

TEST(Hdf5Reader, ErrorsNameFileAndItem) {
  const std::string path = fixture_path("golden_pre");
  const Hdf5Reader f(path);
  expect_error([&] { f.read_f64("grad/missing.weight"); }, {path, "grad/missing.weight"});
  expect_error([&] { f.read_i32("nope"); }, {path, "nope"});
  expect_error([&] { f.attr_f64("no_such_attr"); }, {path, "no_such_attr"});
  expect_error([&] { f.attr_string("lr"); }, {path, "lr"});
  expect_error([&] { f.attr_i64("norm_placement"); }, {path, "norm_placement"});
  expect_error([&] { f.list("nope"); }, {path, "nope"});
  expect_error([] { Hdf5Reader("/nonexistent/file.h5"); }, {"/nonexistent/file.h5"});
}

}  // namespace
}  // namespace prores
