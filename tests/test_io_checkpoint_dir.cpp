// The checkpoint directory protocol (src/io/checkpoint.h): iteration names, prepare / commit with the
// `latest` marker, re-saving an iteration, keep_last pruning, resolve_load_dir for --load, and a save
// killed half-way (a stale .tmp) leaving `latest` on the previous checkpoint.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/check.h"
#include "io/checkpoint.h"
#include "test_util.h"

namespace prores::io {
namespace {

using test::expect_error;

namespace fs = std::filesystem;

class CheckpointDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("prores_ckptdir_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A checkpoint of `iteration` whose one file carries `tag` as an attribute, committed.
  void save(int64_t iteration, int64_t tag, int64_t keep_last, const std::vector<int64_t>& kept = {}) {
    const std::string tmp = prepare_checkpoint_dir(dir_.string(), iteration);
    EXPECT_EQ(tmp, (dir_ / (iteration_dir_name(iteration) + ".tmp")).string());
    CheckpointWriter w(tmp + "/model_tp00_pp000.h5");
    const float x = static_cast<float>(tag);
    w.add("x", PiecePlacement{{1}, -1, 0, {1}, 0, 1}, &x);
    w.set_attribute("tag", tag);
    w.close();
    commit_checkpoint(dir_.string(), iteration, keep_last, kept);
  }

  int64_t tag_of(const std::string& iteration_dir) const {
    return std::get<int64_t>(CheckpointReader(iteration_dir).attributes().at("tag"));
  }

  std::set<std::string> entries() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.insert(e.path().filename().string());
    return names;
  }

  std::string latest_text() const {
    std::ifstream is(dir_ / "latest");
    return std::string(std::istreambuf_iterator<char>(is), {});
  }

  fs::path dir_;
};

TEST(CheckpointDirNames, SevenDigitsMegatronStyle) {
  EXPECT_EQ(iteration_dir_name(0), "iter_0000000");
  EXPECT_EQ(iteration_dir_name(100), "iter_0000100");
  EXPECT_EQ(iteration_dir_name(1234567), "iter_1234567");
  EXPECT_EQ(iteration_dir_name(12345678), "iter_12345678");
  EXPECT_THROW(iteration_dir_name(-1), Error);
}

TEST_F(CheckpointDirTest, CommitWritesLatestAndResolvesBothWays) {
  save(100, 1, 0);
  EXPECT_EQ(entries(), (std::set<std::string>{"iter_0000100", "latest"}));
  EXPECT_EQ(latest_text(), "100\n");
  const std::string iter = (dir_ / "iter_0000100").string();
  EXPECT_EQ(resolve_load_dir(dir_.string()), iter);
  EXPECT_EQ(resolve_load_dir(dir_.string() + "/"), iter);
  EXPECT_EQ(resolve_load_dir(iter), iter);
  EXPECT_EQ(resolve_load_dir(iter + "/"), iter);
  EXPECT_EQ(tag_of(resolve_load_dir(dir_.string())), 1);
}

TEST_F(CheckpointDirTest, ResolveRejectsWhatHoldsNoCheckpoint) {
  fs::create_directories(dir_ / "plain");
  expect_error([&] { resolve_load_dir((dir_ / "plain").string()); },
               {"--load: '" + (dir_ / "plain").string() +
                "' holds no checkpoint (no 'latest' file and not an iteration directory)"});
  expect_error([&] { resolve_load_dir((dir_ / "missing").string()); }, {"does not exist"});
  fs::create_directories(dir_ / "bad");
  std::ofstream(dir_ / "bad" / "latest") << "12x\n";
  expect_error([&] { resolve_load_dir((dir_ / "bad").string()); }, {"does not hold an iteration number"});
  std::ofstream(dir_ / "bad" / "latest") << "12\n";
  expect_error([&] { resolve_load_dir((dir_ / "bad").string()); }, {"iter_0000012' does not exist"});
}

TEST_F(CheckpointDirTest, KeepLastPrunesOldestButNeverTheNewOne) {
  for (int64_t it = 100; it <= 500; it += 100) save(it, it, 2);
  EXPECT_EQ(entries(), (std::set<std::string>{"iter_0000400", "iter_0000500", "latest"}));
  EXPECT_EQ(tag_of(resolve_load_dir(dir_.string())), 500);

  save(300, 300, 2);  // resumed from an older checkpoint: the one just written survives
  EXPECT_EQ(entries(), (std::set<std::string>{"iter_0000300", "iter_0000500", "latest"}));
  EXPECT_EQ(latest_text(), "300\n");
  save(600, 600, 1);
  EXPECT_EQ(entries(), (std::set<std::string>{"iter_0000600", "latest"}));
  save(700, 700, 0);  // keep_last 0: keep all
  EXPECT_EQ(entries(), (std::set<std::string>{"iter_0000600", "iter_0000700", "latest"}));
}

// --save-iters: the listed iterations survive --keep-last and do not count towards it.
TEST_F(CheckpointDirTest, KeptIterationsSurvivePruningAndAreListed) {
  const std::vector<int64_t> kept = {10, 20};
  for (int64_t it : {10, 20, 30, 40, 50}) save(it, it, 2, kept);
  EXPECT_EQ(entries(), (std::set<std::string>{"iter_0000010", "iter_0000020", "iter_0000040", "iter_0000050", "latest"}));
  fs::create_directory(dir_ / "iter_0000060.tmp");  // a save in progress is not a checkpoint
  EXPECT_EQ(list_checkpoint_iterations(dir_.string()), (std::vector<int64_t>{10, 20, 40, 50}));
  expect_error([&] { list_checkpoint_iterations((dir_ / "missing").string()); }, {"missing", "not a checkpoint directory"});
}

TEST_F(CheckpointDirTest, ResavingAnIterationReplacesIt) {
  save(100, 1, 0);
  save(200, 2, 0);
  save(200, 3, 0);
  EXPECT_EQ(entries(), (std::set<std::string>{"iter_0000100", "iter_0000200", "latest"}));
  EXPECT_EQ(tag_of(resolve_load_dir(dir_.string())), 3);
}

TEST_F(CheckpointDirTest, KilledSaveLeavesLatestOnThePreviousCheckpoint) {
  save(100, 1, 0);
  save(200, 2, 0);
  {  // kill -9 while writing iteration 300: a .tmp with a half-written file, never committed
    const std::string tmp = prepare_checkpoint_dir(dir_.string(), 300);
    std::ofstream(tmp + "/model_tp00_pp000.h5") << "partial";
  }
  EXPECT_EQ(latest_text(), "200\n");
  EXPECT_EQ(tag_of(resolve_load_dir(dir_.string())), 2);

  const std::string tmp = prepare_checkpoint_dir(dir_.string(), 300);  // the retry starts clean
  EXPECT_TRUE(fs::is_empty(tmp));
  fs::remove_all(tmp);
  save(300, 3, 0);
  EXPECT_EQ(tag_of(resolve_load_dir(dir_.string())), 3);
  EXPECT_FALSE(fs::exists(dir_ / "iter_0000300.tmp"));
}

TEST_F(CheckpointDirTest, KillBetweenTheTwoRenamesStillLoads) {
  save(100, 1, 0);
  fs::rename(dir_ / "iter_0000100", dir_ / "iter_0000100.old");  // old moved aside, new not yet in place
  EXPECT_EQ(tag_of(resolve_load_dir(dir_.string())), 1);
  expect_error([&] { commit_checkpoint(dir_.string(), 200, 0); }, {"iter_0000200.tmp"});
}

}  // namespace
}  // namespace prores::io
