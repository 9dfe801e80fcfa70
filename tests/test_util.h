// Shared test helpers: owned host buffers wrapped as Tensors, scratch directories, seeded random fills and
// buffers, f32-vs-f64 comparisons, values stored as bf16 bits and back, and a central finite-difference
// gradient check in double precision, and the Python interpreters of the interop tests.
#pragma once
#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <ostream>
#include <string>
#include <random>
#include <vector>

#include "core/bf16.h"
#include "core/check.h"
#include "core/tensor.h"
#include "ops/rope.h"

namespace prores::test {

// The Python interpreter the interop tests run their reference scripts with: $PRORES_PYTHON when set, else
// the set-up's virtual environment build/python (numpy and safetensors, launch/setup.sh) when it exists,
// else python3.
inline std::string python() {
  const char* env = std::getenv("PRORES_PYTHON");
  if (env && *env) return env;
  const std::filesystem::path venv = std::filesystem::path(PRORES_BUILD_DIR) / "python" / "bin" / "python3";
  return std::filesystem::exists(venv) ? venv.string() : "python3";
}

// The interpreter with the heavy references (torch, transformers, lm_eval) of the agreement tests:
// $PRORES_REFERENCE_PYTHON when set, else the venv of launch/install_references.sh
// (${PRORES_REFERENCE_VENV:-$HOME/.cache/prores/reference-venv}/bin/python) when it exists, else empty.
inline std::string reference_python() {
  const char* env = std::getenv("PRORES_REFERENCE_PYTHON");
  if (env && *env) return env;
  const char* venv = std::getenv("PRORES_REFERENCE_VENV");
  const char* home = std::getenv("HOME");
  std::filesystem::path dir;
  if (venv && *venv) dir = venv;
  else if (home && *home) dir = std::filesystem::path(home) / ".cache" / "prores" / "reference-venv";
  else return "";
  const std::filesystem::path python = dir / "bin" / "python";
  return std::filesystem::exists(python) ? python.string() : "";
}

// One attention problem: batch B, sequence T, NH query heads sharing KV key/value groups, head size HS.
struct AttnShape {
  int64_t B, T, NH, KV, HS;
  int64_t qkv_width() const { return (NH + 2 * KV) * HS; }  // W: a token's fused q|k|v row
  int64_t q_numel() const { return B * NH * T * HS; }        // q, dq (B, NH, T, HS)
  int64_t kv_numel() const { return B * KV * T * HS; }       // k, v (B, KV, T, HS)
};

inline std::ostream& operator<<(std::ostream& out, const AttnShape& s) {
  return out << "B " << s.B << " T " << s.T << " NH " << s.NH << " KV " << s.KV << " HS " << s.HS;
}

// A host buffer of T that hands out Tensor views of itself.
template <typename T>
struct Buffer {
  std::vector<T> data;
  explicit Buffer(int64_t n = 0) : data(static_cast<size_t>(n)) {}
  Tensor tensor(std::initializer_list<int64_t> dims) {
    Tensor t(data.data(), dtype_of<T>(), Device::CPU, dims);
    EXPECT_EQ(t.numel(), static_cast<int64_t>(data.size()));
    return t;
  }
};

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "prores_test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
    EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  // Writes content to file(name) and returns its path.
  std::string write(const std::string& name, const std::string& content) const {
    const std::string path = file(name);
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

 private:
  std::filesystem::path path_;
};

// Expects fn to throw prores::Error whose message contains every one of needles.
inline void expect_error(const std::function<void()>& fn, const std::vector<std::string>& needles = {}) {
  try {
    fn();
    ADD_FAILURE() << "expected prores::Error" << (needles.empty() ? "" : " containing '" + needles.front() + "'");
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& needle : needles)
      EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' not in: " << msg;
  }
}

// Fills v with N(mean, std) values from a fixed seed (tests never run on all-zero data).
template <typename T>
void fill_normal(std::vector<T>& v, uint64_t seed, double std = 1.0, double mean = 0.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(mean, std);
  for (auto& x : v) x = static_cast<T>(dist(rng));
}

// A buffer of n N(mean, std) values from seed (never all zero).
template <typename T = double>
Buffer<T> random_buffer(int64_t n, uint64_t seed, double std = 1.0, double mean = 0.0) {
  Buffer<T> b(n);
  fill_normal(b.data, seed, std, mean);
  return b;
}

// The f32 rounding of b.
inline Buffer<float> to_f32(const Buffer<double>& b) {
  Buffer<float> f(static_cast<int64_t>(b.data.size()));
  for (size_t i = 0; i < b.data.size(); ++i) f.data[i] = static_cast<float>(b.data[i]);
  return f;
}

// Largest |a - b| / (1 + |b|) over the elements.
inline double max_rel_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]) / (1 + std::abs(b[i])));
  return m;
}

// Largest |a - b| / max(|a|, |b|) over the elements (0 where both are 0).
template <typename T>
double max_symmetric_rel_diff(const std::vector<T>& a, const std::vector<T>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], y = b[i], scale = std::max(std::abs(x), std::abs(y));
    if (scale > 0) m = std::max(m, std::abs(x - y) / scale);
  }
  return m;
}

// x stored as T: converted, or for T = uint16_t as bf16 bits (rounded to nearest even).
template <typename T>
std::vector<T> stored_as(const std::vector<float>& x) {
  std::vector<T> out(x.size());
  std::transform(x.begin(), x.end(), out.begin(), [](float v) { return store_element<T>(v); });
  return out;
}

// Stored values as floats (bf16 bits widened exactly).
template <typename T>
std::vector<float> widened(const std::vector<T>& x) {
  std::vector<float> out(x.size());
  std::transform(x.begin(), x.end(), out.begin(), [](T v) { return static_cast<float>(load_element(v)); });
  return out;
}

// A host tensor view of v: f32 for float, bf16 for uint16_t (bf16 bits).
template <typename T>
Tensor host_tensor(std::vector<T>& v, std::initializer_list<int64_t> dims) {
  Tensor t(v.data(), dtype_of<T>(), Device::CPU, dims);
  EXPECT_EQ(t.numel(), static_cast<int64_t>(v.size()));
  return t;
}

// The RoPE table of an attention shape on the host: cos, sin (T, HS / 2) (=) ops::rope_table of `base`, in S.
template <typename S>
struct HostRopeTable {
  std::vector<S> cos_values, sin_values;
  Tensor cos, sin;  // views of the two vectors
  HostRopeTable(const AttnShape& s, double base)
      : cos_values(static_cast<size_t>(s.T * (s.HS / 2))),
        sin_values(cos_values.size()),
        cos(host_tensor(cos_values, {s.T, s.HS / 2})),
        sin(host_tensor(sin_values, {s.T, s.HS / 2})) {
    ops::rope_table(cos, sin, base);
  }
  HostRopeTable(const HostRopeTable&) = delete;
  HostRopeTable& operator=(const HostRopeTable&) = delete;
};

// got (bf16 bits) is want (f32) rounded to bf16: every element within one bf16 unit of want (an unwritten NaN
// or an overflow fails; two computations of want may contract a multiply-add differently), and at most 1% of
// them off want's rounding to nearest even.
inline void expect_bf16_rounding_of(const std::vector<uint16_t>& got, const std::vector<float>& want,
                                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t apart = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = bf16_to_float(got[i]), w = want[i];
    ASSERT_LE(std::abs(g - w), std::ldexp(std::abs(w), -7) + 1e-30) << what << "[" << i << "]: " << g << " vs " << w;
    apart += got[i] != float_to_bf16(want[i]);
  }
  EXPECT_LE(apart, want.size() / 100) << what << ": too many results off the rounding of the f32 value";
}

// n ids drawn uniformly from [0, V) with a fixed seed.
inline Buffer<int32_t> random_ids(int64_t n, int64_t V, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(V - 1));
  Buffer<int32_t> b(n);
  for (auto& id : b.data) id = dist(rng);
  return b;
}

// Columns [v0, v0 + Vs) of the row-major (N, V) matrix x.
template <typename T>
Buffer<T> columns(const std::vector<T>& x, int64_t N, int64_t V, int64_t v0, int64_t Vs) {
  Buffer<T> out(N * Vs);
  for (int64_t n = 0; n < N; ++n) std::copy_n(x.begin() + n * V + v0, Vs, out.data.begin() + n * Vs);
  return out;
}

// Sum of a[i] b[i].
inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks analytic[i] against (f(x + h e_i) - f(x - h e_i)) / 2h for every i of x (f64).
// Tolerance: |a - n| <= atol + rtol * max(|a|, |n|).
inline void expect_gradient_matches(const std::function<double()>& f, std::vector<double>& x,
                                    const std::vector<double>& analytic, const char* what,
                                    double h = 1e-6, double rtol = 1e-5, double atol = 1e-8) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  double max_abs = 0;
  for (double a : analytic) max_abs = std::max(max_abs, std::abs(a));
  ASSERT_GT(max_abs, 0.0) << what << ": analytic gradient is all zero";
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double fp = f();
    x[i] = saved - h;
    const double fm = f();
    x[i] = saved;
    const double numeric = (fp - fm) / (2 * h);
    const double a = analytic[i];
    ASSERT_LE(std::abs(a - numeric), atol + rtol * std::max(std::abs(a), std::abs(numeric)))
        << what << "[" << i << "]: analytic " << a << " numeric " << numeric;
  }
}

}  // namespace prores::test
