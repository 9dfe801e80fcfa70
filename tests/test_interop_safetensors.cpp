// Interoperability with the reference safetensors implementation (Hugging Face's `safetensors` package, with
// numpy; bash launch/setup.sh installs both into build/python, test::python() finds them): it reads the file
// our writer wrote, tensor for tensor, and our reader reads the file it wrote (f16 included) bit for bit.
// tests/safetensors_check.py does the Python side. Skipped when the interpreter lacks either package.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/json_input.h"
#include "io/safetensors.h"
#include "safetensors_samples.h"
#include "test_util.h"

namespace prores::io {
namespace {

bool python_safetensors_available() {
  return std::system((test::python() + " -c 'import numpy, safetensors.numpy' >/dev/null 2>&1").c_str()) == 0;
}

std::string run_script(const std::string& args) {
  const std::string cmd = test::python() + " '" PRORES_SOURCE_DIR "/tests/safetensors_check.py' " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  while (pipe && fgets(buf, sizeof buf, pipe)) out += buf;
  EXPECT_EQ(pipe ? pclose(pipe) : -1, 0) << out;
  return out;
}

TEST(SafetensorsInterop, ReferenceImplementationReadsOurFile) {
  const test::TempDir dir("prores_safetensors");
  if (!python_safetensors_available()) GTEST_SKIP() << test::python() << " has no numpy and safetensors (bash launch/setup.sh installs them)";
  std::vector<SafeTensor> ts = sample_tensors();
  ts.erase(ts.begin() + 1);  // the tensor holding inf and NaN: sums must be finite
  const std::string p = dir.file("ours.safetensors");
  write_safetensors(p, ts, {{"step", "3"}});
  const nlohmann::ordered_json report = parse_json(run_script("read '" + p + "'"), "safetensors_check.py output");
  ASSERT_TRUE(report.is_object());
  const nlohmann::ordered_json& meta = report.at("metadata");
  ASSERT_EQ(meta.size(), 2u);
  EXPECT_EQ(meta.at("format"), "pt");
  EXPECT_EQ(meta.at("step"), "3");
  const nlohmann::ordered_json& seen = report.at("tensors");
  ASSERT_EQ(seen.size(), ts.size());
  for (const SafeTensor& t : ts) {
    const nlohmann::ordered_json* r = json_member(seen, t.name);
    ASSERT_NE(r, nullptr) << t.name;
    EXPECT_EQ(r->at("dtype"), "float32") << t.name;
    EXPECT_EQ(r->at("shape").get<std::vector<int64_t>>(), t.shape) << t.name;
    double sum = 0;
    for (float x : t.data) sum += x;
    EXPECT_NEAR(r->at("sum").get<double>(), sum, 1e-9) << t.name;
  }
}

TEST(SafetensorsInterop, OurReaderReadsReferenceImplementationFile) {
  const test::TempDir dir("prores_safetensors");
  if (!python_safetensors_available()) GTEST_SKIP() << test::python() << " has no numpy and safetensors (bash launch/setup.sh installs them)";
  const std::string p = dir.file("theirs.safetensors");
  run_script("write '" + p + "'");
  std::map<std::string, std::string> meta;
  const auto t = read_safetensors(p, &meta);
  EXPECT_EQ(meta.at("origin"), "python");
  EXPECT_EQ(t.at("a.f32").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t.at("a.f32").data, (std::vector<float>{-0.5f, -0.25f, 0.f, 0.25f, 0.5f, 0.75f}));
  const std::vector<float> f16 = {1.f, -2.5f, 65504.f, std::ldexp(1.f, -24), -0.f,
                                  std::numeric_limits<float>::infinity()};
  expect_same_bits(t.at("b.f16").data, f16, "b.f16");
  EXPECT_TRUE(t.at("c.scalar").shape.empty());
  EXPECT_EQ(t.at("c.scalar").data, std::vector<float>{3.5f});
  EXPECT_EQ(t.at("d.empty").shape, (std::vector<int64_t>{0, 4}));
  EXPECT_TRUE(t.at("d.empty").data.empty());
}

}  // namespace
}  // namespace prores::io
