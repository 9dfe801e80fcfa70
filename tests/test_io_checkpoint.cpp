// Sharded HDF5 checkpoints (src/io/checkpoint.h): attribute and piece round trips, reassembly of one
// tensor across TP layouts and ZeRO-style element ranges, the metadata checks (missing, overlapping and
// inconsistent pieces), and corruption: a flipped bit in a dataset's data and a truncated file must give
// a prores::Error naming the file, never a crash or silently wrong numbers.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "hdf5_reader.h"
#include "io/checkpoint.h"
#include "test_util.h"

namespace prores::io {
namespace {

using test::expect_error;

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("prores_ckpt_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::vector<float> random_values(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// The row-major shard (axis, offset, extent along the axis) of a 2-D rows × cols tensor.
std::vector<float> shard_of(const std::vector<float>& full, int64_t rows, int64_t cols, int axis, int64_t offset,
                            int64_t extent) {
  std::vector<float> out;
  const int64_t r0 = axis == 0 ? offset : 0, r1 = axis == 0 ? offset + extent : rows;
  const int64_t c0 = axis == 1 ? offset : 0, c1 = axis == 1 ? offset + extent : cols;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) out.push_back(full[static_cast<size_t>(r * cols + c)]);
  return out;
}

PiecePlacement placement_2d(int64_t rows, int64_t cols, int axis, int64_t offset, int64_t extent, int64_t begin,
                            int64_t end) {
  PiecePlacement p;
  p.global_shape = {rows, cols};
  p.shard_axis = axis;
  p.shard_offset = axis < 0 ? 0 : offset;
  p.shard_shape = {axis == 0 ? extent : rows, axis == 1 ? extent : cols};
  p.begin = begin;
  p.end = end;
  return p;
}

// Writes `full` (rows × cols) as `parts` equal shards along axis, one file per shard: file_tpXX.h5.
void write_tp_shards(const fs::path& dir, const std::string& name, const std::vector<float>& full, int64_t rows,
                     int64_t cols, int axis, int64_t parts) {
  const int64_t extent = (axis == 0 ? rows : cols) / parts;
  for (int64_t r = 0; r < parts; ++r) {
    const std::vector<float> shard = shard_of(full, rows, cols, axis, r * extent, extent);
    CheckpointWriter w((dir / ("model_tp0" + std::to_string(r) + ".h5")).string());
    w.add(name, placement_2d(rows, cols, axis, r * extent, extent, 0, static_cast<int64_t>(shard.size())),
          shard.data());
    w.close();
  }
}

TEST_F(CheckpointTest, RootAttributesRoundTripEveryKind) {
  {
    CheckpointWriter w(path("model_tp00_pp000.h5"));
    w.set_attribute("iteration", int64_t{1234567890123});
    w.set_attribute("lr", 3.0e-4);
    w.set_attribute("config", std::string("[model]\nnum-layers = 12\nname = \xce\xb1-run\n"));
    w.set_attribute("empty", std::string());
    w.set_attribute("rng", std::vector<int64_t>{-1, 0, 42, INT64_MAX});
    w.set_attribute("alphas", std::vector<double>{0.0, 0.25, 1.0});
    w.set_attribute("no_ints", std::vector<int64_t>{});
    w.set_attribute("no_doubles", std::vector<double>{});
    w.set_attribute("lr", 1.5e-4);  // replaced, not duplicated
    const float x = 1.0f;
    w.add("model.norm.weight", PiecePlacement{{1}, -1, 0, {1}, 0, 1}, &x);
    w.close();
  }
  const CheckpointReader r(dir_.string());
  for (const auto& attrs : {r.attributes(), r.attributes("model_tp00_pp000.h5")}) {
    ASSERT_EQ(attrs.size(), 8u);
    EXPECT_EQ(std::get<int64_t>(attrs.at("iteration")), 1234567890123);
    EXPECT_EQ(std::get<double>(attrs.at("lr")), 1.5e-4);
    EXPECT_EQ(std::get<std::string>(attrs.at("config")), "[model]\nnum-layers = 12\nname = \xce\xb1-run\n");
    EXPECT_EQ(std::get<std::string>(attrs.at("empty")), "");
    EXPECT_EQ(std::get<std::vector<int64_t>>(attrs.at("rng")), (std::vector<int64_t>{-1, 0, 42, INT64_MAX}));
    EXPECT_EQ(std::get<std::vector<double>>(attrs.at("alphas")), (std::vector<double>{0.0, 0.25, 1.0}));
    EXPECT_TRUE(std::get<std::vector<int64_t>>(attrs.at("no_ints")).empty());
    EXPECT_TRUE(std::get<std::vector<double>>(attrs.at("no_doubles")).empty());
  }
  const Hdf5Reader plain(path("model_tp00_pp000.h5"));  // the generic reader sees the same values
  EXPECT_EQ(plain.attr_i64("iteration"), 1234567890123);
  EXPECT_EQ(plain.attr_string("config"), "[model]\nnum-layers = 12\nname = \xce\xb1-run\n");
  expect_error([&] { r.attributes("model_tp01_pp000.h5"); }, {"model_tp01_pp000.h5"});
}

TEST_F(CheckpointTest, PiecesRoundTripWithNestedNamesAndPlacement) {
  const std::vector<float> w = random_values(6 * 4, 1), m = random_values(6 * 4, 2);
  {
    CheckpointWriter out(path("a.h5"));
    out.add("model.layers.0.self_attn.q_proj.weight", placement_2d(6, 4, -1, 0, 6, 0, 24), w.data());
    out.add("optimizer/exp_avg/model.layers.0.self_attn.q_proj.weight", placement_2d(6, 4, -1, 0, 6, 0, 24),
            m.data());
    out.close();
  }
  const CheckpointReader r(dir_.string());
  EXPECT_EQ(r.directory(), dir_.string());
  EXPECT_EQ(r.tensor_names(), (std::vector<std::string>{"model.layers.0.self_attn.q_proj.weight",
                                                        "optimizer/exp_avg/model.layers.0.self_attn.q_proj.weight"}));
  EXPECT_TRUE(r.has_tensor("optimizer/exp_avg/model.layers.0.self_attn.q_proj.weight"));
  EXPECT_FALSE(r.has_tensor("optimizer/exp_avg"));
  EXPECT_EQ(r.global_shape("model.layers.0.self_attn.q_proj.weight"), (std::vector<int64_t>{6, 4}));
  EXPECT_EQ(r.read_full("model.layers.0.self_attn.q_proj.weight"), w);
  EXPECT_EQ(r.read_full("optimizer/exp_avg/model.layers.0.self_attn.q_proj.weight"), m);
  expect_error([&] { r.read_full("lm_head.weight"); }, {"lm_head.weight"});

  const Hdf5Reader plain(path("a.h5"));  // placement attributes as the issue specifies them
  EXPECT_TRUE(plain.has("optimizer/exp_avg/model.layers.0.self_attn.q_proj.weight"));
  std::vector<int64_t> shape;
  EXPECT_EQ(plain.read_f64("model.layers.0.self_attn.q_proj.weight", &shape).size(), 24u);
  EXPECT_EQ(shape, (std::vector<int64_t>{24}));
}

TEST_F(CheckpointTest, RowShardsReassembleIntoAnyLayout) {
  const int64_t rows = 12, cols = 10;
  const std::vector<float> full = random_values(rows * cols, 3);
  write_tp_shards(dir_, "w", full, rows, cols, 0, 2);
  const CheckpointReader r(dir_.string());
  EXPECT_EQ(r.read_full("w"), full);
  for (int64_t k = 0; k < 4; ++k) {  // TP = 4 row shards
    std::vector<float> out(3 * cols);
    r.read_shard("w", 0, 3 * k, {3, cols}, out.data());
    EXPECT_EQ(out, shard_of(full, rows, cols, 0, 3 * k, 3)) << "row shard " << k;
  }
  for (int64_t k = 0; k < 2; ++k) {  // TP = 2 column shards
    std::vector<float> out(rows * 5);
    r.read_shard("w", 1, 5 * k, {rows, 5}, out.data());
    EXPECT_EQ(out, shard_of(full, rows, cols, 1, 5 * k, 5)) << "column shard " << k;
  }
  std::vector<float> odd(rows * 3);  // an uneven column window straddling nothing in particular
  r.read_shard("w", 1, 6, {rows, 3}, odd.data());
  EXPECT_EQ(odd, shard_of(full, rows, cols, 1, 6, 3));
}

TEST_F(CheckpointTest, ColumnShardsReassembleIntoRowShards) {
  const int64_t rows = 12, cols = 10;
  const std::vector<float> full = random_values(rows * cols, 4);
  write_tp_shards(dir_, "w", full, rows, cols, 1, 2);
  const CheckpointReader r(dir_.string());
  EXPECT_EQ(r.read_full("w"), full);
  std::vector<float> out(4 * cols);
  r.read_shard("w", 0, 8, {4, cols}, out.data());
  EXPECT_EQ(out, shard_of(full, rows, cols, 0, 8, 4));
}

TEST_F(CheckpointTest, ZeroStylePiecesAcrossFilesReassemble) {
  const int64_t rows = 12, cols = 10;
  const std::vector<float> full = random_values(rows * cols, 5);
  const std::vector<float> shard0 = shard_of(full, rows, cols, 0, 0, 6), shard1 = shard_of(full, rows, cols, 0, 6, 6);
  const std::vector<std::pair<int64_t, int64_t>> ranges = {{0, 7}, {7, 7}, {7, 41}, {41, 60}};  // one empty
  for (size_t k = 0; k < ranges.size(); ++k) {  // TP rank 0's shard, cut by the DP ranks' ZeRO-1 slices
    CheckpointWriter w(path("optim_tp00_dp0" + std::to_string(k) + ".h5"));
    const auto [b, e] = ranges[k];
    w.add("optimizer/exp_avg/w", placement_2d(rows, cols, 0, 0, 6, b, e), shard0.data() + b);
    w.close();
  }
  CheckpointWriter w(path("optim_tp01_dp00.h5"));
  w.add("optimizer/exp_avg/w", placement_2d(rows, cols, 0, 6, 6, 0, 60), shard1.data());
  w.close();

  const CheckpointReader r(dir_.string());
  EXPECT_EQ(r.read_full("optimizer/exp_avg/w"), full);
  std::vector<float> out(rows * 4);
  r.read_shard("optimizer/exp_avg/w", 1, 3, {rows, 4}, out.data());
  EXPECT_EQ(out, shard_of(full, rows, cols, 1, 3, 4));
  std::vector<float> mid(4 * cols);
  r.read_shard("optimizer/exp_avg/w", 0, 4, {4, cols}, mid.data());  // straddles both TP shards
  EXPECT_EQ(mid, shard_of(full, rows, cols, 0, 4, 4));
}

TEST_F(CheckpointTest, ManyFilesBeyondTheOpenHandleCache) {
  const int64_t files = 70, per = 3;  // more files than the reader keeps open at once
  const std::vector<float> v = random_values(files * per, 15);
  for (int64_t k = 0; k < files; ++k) {
    CheckpointWriter w(path("optim_dp" + std::to_string(100 + k) + ".h5"));
    w.add("v", PiecePlacement{{files * per}, -1, 0, {files * per}, k * per, (k + 1) * per}, v.data() + k * per);
    w.set_attribute("dp_rank", k);
    w.close();
  }
  const CheckpointReader r(dir_.string());
  EXPECT_EQ(r.read_full("v"), v);
  EXPECT_EQ(r.read_full("v"), v);
  EXPECT_EQ(std::get<int64_t>(r.attributes("optim_dp100.h5").at("dp_rank")), 0);
  EXPECT_EQ(std::get<int64_t>(r.attributes("optim_dp169.h5").at("dp_rank")), 69);
}

TEST_F(CheckpointTest, OneDimensionalTensors) {
  const std::vector<float> norm = random_values(10, 6), bias = random_values(9, 7);
  {
    CheckpointWriter w(path("a.h5"));
    w.add("model.norm.weight", PiecePlacement{{10}, -1, 0, {10}, 0, 10}, norm.data());
    w.add("b", PiecePlacement{{9}, 0, 0, {4}, 0, 4}, bias.data());
    w.close();
    CheckpointWriter v(path("b.h5"));
    v.add("b", PiecePlacement{{9}, 0, 4, {5}, 2, 5}, bias.data() + 6);
    v.close();
    CheckpointWriter u(path("c.h5"));
    u.add("b", PiecePlacement{{9}, 0, 4, {5}, 0, 2}, bias.data() + 4);
    u.close();
  }
  const CheckpointReader r(dir_.string());
  EXPECT_EQ(r.read_full("model.norm.weight"), norm);
  EXPECT_EQ(r.read_full("b"), bias);
  std::vector<float> out(5);
  r.read_shard("model.norm.weight", 0, 5, {5}, out.data());
  EXPECT_EQ(out, std::vector<float>(norm.begin() + 5, norm.end()));
  r.read_shard("b", 0, 2, {5}, out.data());
  EXPECT_EQ(out, std::vector<float>(bias.begin() + 2, bias.begin() + 7));
}

TEST_F(CheckpointTest, MissingPieceNamesTheTensorAndTheRange) {
  const int64_t rows = 12, cols = 10;
  const std::vector<float> full = random_values(rows * cols, 8);
  write_tp_shards(dir_, "model.layers.3.mlp.down_proj.weight", full, rows, cols, 0, 2);
  fs::remove(dir_ / "model_tp01.h5");
  const CheckpointReader r(dir_.string());
  std::vector<float> out(rows * cols);
  r.read_shard("model.layers.3.mlp.down_proj.weight", 0, 0, {6, cols}, out.data());  // covered: fine
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 60), shard_of(full, rows, cols, 0, 0, 6));
  expect_error([&] { r.read_full("model.layers.3.mlp.down_proj.weight"); },
               {"model.layers.3.mlp.down_proj.weight", "elements [60, 120)", "[6, 0] to [11, 9]", "no piece"});
}

TEST_F(CheckpointTest, OverlappingPiecesAreRejected) {
  const std::vector<float> full = random_values(120, 9);
  for (const auto& [file, b, e] : {std::tuple{"a.h5", 0, 70}, std::tuple{"b.h5", 60, 120}}) {
    CheckpointWriter w(path(file));
    w.add("w", placement_2d(12, 10, -1, 0, 12, b, e), full.data() + b);
    w.close();
  }
  expect_error([&] { CheckpointReader r(dir_.string()); }, {"'w'", "elements [60, 70)", "a.h5", "b.h5"});
}

TEST_F(CheckpointTest, InconsistentMetadataIsRejected) {
  const std::vector<float> v = random_values(120, 10);
  CheckpointWriter a(path("a.h5"));
  a.add("w", placement_2d(12, 10, 0, 0, 6, 0, 60), v.data());
  a.close();
  CheckpointWriter b(path("b.h5"));
  b.add("w", placement_2d(10, 12, 0, 5, 5, 0, 60), v.data());
  b.close();
  expect_error([&] { CheckpointReader r(dir_.string()); }, {"'w'", "global shape", "a.h5", "b.h5"});

  CheckpointWriter c(path("c.h5"));
  expect_error([&] { c.add("x", placement_2d(12, 10, 0, 8, 6, 0, 60), v.data()); }, {"c.h5", "'x'", "outside"});
  expect_error([&] { c.add("x", placement_2d(12, 10, 0, 0, 6, 10, 61), v.data()); }, {"c.h5", "'x'", "[10, 61)"});
  expect_error([&] { c.add("x", placement_2d(12, 10, 2, 0, 6, 0, 6), v.data()); }, {"c.h5", "shard axis 2"});
  c.add("x", placement_2d(12, 10, -1, 0, 12, 0, 120), v.data());
  expect_error([&] { c.add("x", placement_2d(12, 10, -1, 0, 12, 0, 120), v.data()); }, {"c.h5", "'x'"});

  expect_error([] { CheckpointReader r("/nonexistent/iter_0000001"); }, {"/nonexistent/iter_0000001"});
  const fs::path empty = dir_ / "empty";
  fs::create_directories(empty);
  expect_error([&] { CheckpointReader r(empty.string()); }, {empty.string(), "no *.h5"});
}

// Flips one bit at byte offset `at` of the file.
void flip_bit(const std::string& file, int64_t at) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(at);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  f.seekp(at);
  f.write(&c, 1);
  ASSERT_TRUE(f.good());
}

TEST_F(CheckpointTest, FlippedBitInDataFailsTheChecksum) {
  const int64_t n = 3 << 20;  // three 1M-element chunks
  const std::vector<float> v = random_values(n, 11);
  const std::string file = path("model_tp00.h5");
  CheckpointWriter w(file);
  w.add("model.embed_tokens.weight", PiecePlacement{{n}, -1, 0, {n}, 0, n}, v.data());
  w.close();

  haddr_t address = 0;
  hsize_t size = 0;
  {
    const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const hid_t ds = H5Dopen2(f, "model.embed_tokens.weight", H5P_DEFAULT);
    const hid_t space = H5Dget_space(ds);
    hsize_t offset[1];
    unsigned mask = 0;
    ASSERT_GE(H5Dget_chunk_info(ds, space, 1, offset, &mask, &address, &size), 0);
    H5Sclose(space);
    H5Dclose(ds);
    H5Fclose(f);
  }
  ASSERT_GT(size, 4u << 20);  // 4 MiB of data + the 4-byte checksum
  flip_bit(file, static_cast<int64_t>(address + size / 2));

  const CheckpointReader r(dir_.string());
  expect_error([&] { r.read_full("model.embed_tokens.weight"); },
               {"model_tp00.h5", "model.embed_tokens.weight", "Fletcher32"});
  std::vector<float> first(1 << 20);  // a shard inside an intact chunk still reads
  r.read_shard("model.embed_tokens.weight", 0, 0, {1 << 20}, first.data());
  EXPECT_EQ(first, std::vector<float>(v.begin(), v.begin() + (1 << 20)));
}

TEST_F(CheckpointTest, FlippedBitInTheMiddleOfTheFileIsDetected) {
  const std::vector<float> a = random_values(512 * 512, 12), b = random_values(512 * 512, 13);
  const std::string file = path("model_tp00.h5");
  CheckpointWriter w(file);
  w.add("a", placement_2d(512, 512, -1, 0, 512, 0, 512 * 512), a.data());
  w.add("b", placement_2d(512, 512, -1, 0, 512, 0, 512 * 512), b.data());
  w.close();
  flip_bit(file, static_cast<int64_t>(fs::file_size(file) / 2));
  expect_error(
      [&] {
        const CheckpointReader r(dir_.string());
        EXPECT_EQ(r.read_full("a"), a);
        EXPECT_EQ(r.read_full("b"), b);
      },
      {"model_tp00.h5"});
}

TEST_F(CheckpointTest, RandomBitFlipsGiveAnErrorOrTheRightNumbers) {
  const std::vector<float> a = random_values(30 * 100, 16), b = random_values(700, 17);
  const std::string file = path("m.h5"), pristine = (dir_ / "pristine").string();
  {
    CheckpointWriter w(file);
    w.add("layers/a", placement_2d(30, 100, 0, 0, 30, 0, 3000), a.data());
    w.add("b", PiecePlacement{{700}, -1, 0, {700}, 0, 700}, b.data());
    w.set_attribute("iteration", int64_t{7});
    w.set_attribute("config", std::string("hello"));
    w.close();
  }
  fs::copy_file(file, pristine);
  const auto size = static_cast<int64_t>(fs::file_size(file));
  std::mt19937_64 rng(18);
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {  // anywhere in the file: data, B-trees, headers, superblock
    fs::copy_file(pristine, file, fs::copy_options::overwrite_existing);
    const int64_t at = static_cast<int64_t>(rng() % static_cast<uint64_t>(size));
    flip_bit(file, at);
    try {
      const CheckpointReader r(dir_.string());
      const auto attrs = r.attributes();
      EXPECT_EQ(r.read_full("layers/a"), a) << "flip at " << at;
      EXPECT_EQ(r.read_full("b"), b) << "flip at " << at;
      EXPECT_EQ(std::get<int64_t>(attrs.at("iteration")), 7) << "flip at " << at;
      EXPECT_EQ(std::get<std::string>(attrs.at("config")), "hello") << "flip at " << at;
    } catch (const Error& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(errors, 150);  // most bytes matter; the rest (padding, free space) change nothing
}

TEST_F(CheckpointTest, TruncatedFileNamesTheFile) {
  const std::vector<float> v = random_values(100000, 14);
  const std::string file = path("model_tp00.h5");
  CheckpointWriter w(file);
  w.add("w", PiecePlacement{{100000}, -1, 0, {100000}, 0, 100000}, v.data());
  w.set_attribute("iteration", int64_t{5});
  w.close();
  fs::resize_file(file, fs::file_size(file) / 2);
  expect_error([&] { CheckpointReader r(dir_.string()); }, {"model_tp00.h5", "truncated"});
  fs::resize_file(file, 0);
  expect_error([&] { CheckpointReader r(dir_.string()); }, {"model_tp00.h5"});
}

}  // namespace
}  // namespace prores::io
