// LayoutShape (pure arithmetic, no MPI): rank ↔ (tp, dp, pp) coordinates in Megatron's order for many
// (world, TP, PP) combinations, the layer split across pipeline stages (and across the chunks of virtual
// stages, with the parameter table they give), --pipeline-layers parsing, and
// every validation message (which must be identical on every rank). ParallelLayout's axis communicators
// are checked with one thread per rank over an in-process world that implements only split().
#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "core/check.h"
#include "model/param_table.h"
#include "parallel/layout.h"

namespace prores {
namespace {

// 720720 = lcm(1..16): divisible by every TP, DP and micro-batch product these tests use.
constexpr int64_t kDivisibleByAll = 720720;

// A model whose TP-sharded sizes divide by every TP up to 16, with `layers` blocks (the layout only
// does arithmetic on the sizes, so they need not make a sensible model).
ModelConfig divisible_model(int64_t layers) {
  ModelConfig m;
  m.num_layers = layers;
  m.num_attention_heads = kDivisibleByAll;
  m.num_query_groups = kDivisibleByAll;
  m.ffn_hidden_size = kDivisibleByAll;
  m.vocab_size = kDivisibleByAll;
  return m;
}

ParallelConfig parallel(int64_t tp, int64_t pp, std::vector<int64_t> layers = {}) {
  ParallelConfig c;
  c.tensor = tp;
  c.pipeline = pp;
  c.pipeline_layers = std::move(layers);
  return c;
}

// The message LayoutShape::compute throws on `rank`, or "" when it succeeds.
std::string error_on(int64_t world, int64_t rank, const ParallelConfig& c, const ModelConfig& m, int64_t global_batch,
                     int64_t micro_batch) {
  try {
    LayoutShape::compute(world, rank, c, m, global_batch, micro_batch);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Expects compute to throw a message containing `expected`, the same one on every rank of the world.
void expect_error(int64_t world, const ParallelConfig& c, const ModelConfig& m, int64_t global_batch,
                  int64_t micro_batch, const std::string& expected) {
  const std::string first = error_on(world, 0, c, m, global_batch, micro_batch);
  EXPECT_NE(first.find(expected), std::string::npos) << "got: " << first << "\nexpected: " << expected;
  for (int64_t r = 1; r < world; ++r) EXPECT_EQ(error_on(world, r, c, m, global_batch, micro_batch), first);
}

TEST(LayoutShape, CoordinatesRoundTripForEveryDivisibleLayout) {
  const int64_t layers = 17;
  const ModelConfig model = divisible_model(layers);
  const int64_t global_batch = kDivisibleByAll;
  int combos = 0;
  for (int64_t world = 1; world <= 16; ++world) {
    for (int64_t tp = 1; tp <= world; ++tp) {
      for (int64_t pp = 1; pp <= world; ++pp) {
        if (world % (tp * pp) != 0) continue;
        ++combos;
        const int64_t dp = world / (tp * pp);
        std::set<std::tuple<int64_t, int64_t, int64_t>> seen;
        std::vector<int64_t> stage_first(static_cast<size_t>(pp), -1), stage_count(static_cast<size_t>(pp), -1);
        for (int64_t rank = 0; rank < world; ++rank) {
          const LayoutShape s = LayoutShape::compute(world, rank, parallel(tp, pp), model, global_batch, 1);
          SCOPED_TRACE(s.describe());
          EXPECT_EQ(s.world, world);
          EXPECT_EQ(s.rank, rank);
          EXPECT_EQ(s.tp, tp);
          EXPECT_EQ(s.dp, dp);
          EXPECT_EQ(s.pp, pp);
          EXPECT_EQ(s.tp_rank, rank % tp);  // TP fastest
          EXPECT_EQ(s.rank_of(s.tp_rank, s.dp_rank, s.pp_rank), rank);
          EXPECT_EQ(rank, s.tp_rank + tp * (s.dp_rank + dp * s.pp_rank));
          EXPECT_TRUE(seen.insert({s.tp_rank, s.dp_rank, s.pp_rank}).second);
          EXPECT_EQ(s.first_stage(), s.pp_rank == 0);
          EXPECT_EQ(s.last_stage(), s.pp_rank == pp - 1);
          auto& first = stage_first[static_cast<size_t>(s.pp_rank)];
          auto& count = stage_count[static_cast<size_t>(s.pp_rank)];
          if (first < 0) {
            first = s.first_layer;
            count = s.num_layers;
          }
          EXPECT_EQ(s.first_layer, first);  // every rank of a stage holds the same blocks
          EXPECT_EQ(s.num_layers, count);
        }
        // Stages tile 1..L contiguously; the first L mod PP stages hold one extra block.
        int64_t next = 1;
        for (int64_t st = 0; st < pp; ++st) {
          EXPECT_EQ(stage_first[static_cast<size_t>(st)], next);
          EXPECT_EQ(stage_count[static_cast<size_t>(st)], layers / pp + (st < layers % pp ? 1 : 0));
          next += stage_count[static_cast<size_t>(st)];
        }
        EXPECT_EQ(next, layers + 1);
      }
    }
  }
  EXPECT_GT(combos, 50);
}

TEST(LayoutShape, DescribesTheRank) {
  const LayoutShape s = LayoutShape::compute(8, 3, parallel(2, 2), divisible_model(12), 16, 1);
  EXPECT_EQ(s.tp_rank, 1);
  EXPECT_EQ(s.dp_rank, 1);
  EXPECT_EQ(s.pp_rank, 0);
  EXPECT_EQ(s.describe(), "rank 3/8: tp 1/2, dp 1/2, pp 0/2, layers 1-6");
  const LayoutShape last = LayoutShape::compute(8, 7, parallel(2, 2), divisible_model(12), 16, 1);
  EXPECT_EQ(last.describe(), "rank 7/8: tp 1/2, dp 1/2, pp 1/2, layers 7-12");
}

TEST(LayoutShape, VirtualStagesInterleaveTheChunks) {
  // 12 layers, PP 2, chunks of 2 blocks: v = 3 chunks per stage, virtual stage k = c·2 + s holds 2k+1..2k+2.
  ParallelConfig config = parallel(1, 2);
  config.virtual_stage_layers = 2;
  const LayoutShape first = LayoutShape::compute(2, 0, config, divisible_model(12), 8, 1);
  const LayoutShape second = LayoutShape::compute(2, 1, config, divisible_model(12), 8, 1);
  EXPECT_EQ(first.chunks, 3);
  EXPECT_EQ(first.num_layers, 6);
  EXPECT_EQ(first.chunk_stride, 4);
  EXPECT_EQ(first.describe(), "rank 0/2: tp 0/1, dp 0/1, pp 0/2, layers 1-2,5-6,9-10");
  EXPECT_EQ(second.describe(), "rank 1/2: tp 0/1, dp 0/1, pp 1/2, layers 3-4,7-8,11-12");
  const ModelShard shard = shard_of(second);
  std::vector<int64_t> layers;
  for (int64_t i = 0; i < shard.num_layers; ++i) layers.push_back(shard.layer(i));
  EXPECT_EQ(layers, (std::vector<int64_t>{3, 4, 7, 8, 11, 12}));
  // The parameters of exactly those blocks, in local order.
  const ParamTable table(divisible_model(12), shard);
  std::vector<int64_t> table_layers;
  for (const ParamEntry& e : table.entries())
    if (e.layer > 0 && (table_layers.empty() || table_layers.back() != e.layer)) table_layers.push_back(e.layer);
  EXPECT_EQ(table_layers, layers);
  // One block per chunk: describe names single layers.
  config.virtual_stage_layers = 1;
  EXPECT_EQ(LayoutShape::compute(2, 1, config, divisible_model(4), 8, 1).describe(),
            "rank 1/2: tp 0/1, dp 0/1, pp 1/2, layers 2,4");
  // A chunk size that leaves one chunk per stage is the plain pipeline.
  config.virtual_stage_layers = 6;
  const LayoutShape plain = LayoutShape::compute(2, 1, config, divisible_model(12), 8, 1);
  EXPECT_EQ(plain.chunks, 1);
  EXPECT_EQ(plain.first_layer, 7);
}

TEST(LayoutShape, SingleRankHoldsEverything) {
  const LayoutShape s = LayoutShape::compute(1, 0, ParallelConfig{}, divisible_model(5), 3, 1);
  EXPECT_EQ(s.dp, 1);
  EXPECT_EQ(s.first_layer, 1);
  EXPECT_EQ(s.num_layers, 5);
  EXPECT_TRUE(s.first_stage());
  EXPECT_TRUE(s.last_stage());
}

TEST(LayoutShape, EvenSplitGivesTheExtraLayersToTheFirstStages) {
  std::vector<int64_t> firsts, counts;
  for (int64_t pp = 0; pp < 4; ++pp) {
    const LayoutShape s = LayoutShape::compute(4, pp, parallel(1, 4), divisible_model(30), 4, 1);
    firsts.push_back(s.first_layer);
    counts.push_back(s.num_layers);
  }
  EXPECT_EQ(counts, (std::vector<int64_t>{8, 8, 7, 7}));
  EXPECT_EQ(firsts, (std::vector<int64_t>{1, 9, 17, 24}));
}

TEST(LayoutShape, ExplicitPipelineLayers) {
  std::vector<int64_t> firsts, counts;
  for (int64_t rank = 0; rank < 8; rank += 2) {  // TP 2: ranks 0, 2, 4, 6 are tp_rank 0 of stages 0..3
    const LayoutShape s = LayoutShape::compute(8, rank, parallel(2, 4, {2, 4, 4, 2}), divisible_model(12), 8, 1);
    firsts.push_back(s.first_layer);
    counts.push_back(s.num_layers);
  }
  EXPECT_EQ(counts, (std::vector<int64_t>{2, 4, 4, 2}));
  EXPECT_EQ(firsts, (std::vector<int64_t>{1, 3, 7, 11}));
}

TEST(LayoutShape, QueryGroupsDefaultToTheHeadCount) {
  ModelConfig m = divisible_model(4);
  m.num_attention_heads = 8;
  m.num_query_groups = 0;
  EXPECT_EQ(error_on(4, 0, parallel(4, 1), m, 4, 1), "");
}

TEST(LayoutShape, RejectsWorldNotDivisibleByModelParallelSize) {
  expect_error(6, parallel(2, 2), divisible_model(4), 6, 1,
               "--tensor-model-parallel-size 2 × --pipeline-model-parallel-size 2 = 4 "
               "does not divide the world size 6");
}

TEST(LayoutShape, RejectsTensorParallelIndivisibleSizes) {
  ModelConfig m = divisible_model(4);
  m.num_attention_heads = 6;
  m.num_query_groups = 0;
  expect_error(4, parallel(4, 1), m, 4, 1,
               "--num-attention-heads 6 is not divisible by --tensor-model-parallel-size 4");

  m = divisible_model(4);
  m.num_attention_heads = 8;
  m.num_query_groups = 2;
  expect_error(4, parallel(4, 1), m, 4, 1, "--num-query-groups 2 is not divisible by --tensor-model-parallel-size 4");

  m = divisible_model(4);
  m.ffn_hidden_size = 100;
  expect_error(8, parallel(8, 1), m, 4, 1, "--ffn-hidden-size 100 is not divisible by --tensor-model-parallel-size 8");

  m = divisible_model(4);
  m.vocab_size = 250;
  expect_error(4, parallel(4, 1), m, 4, 1, "--vocab-size 250 is not divisible by --tensor-model-parallel-size 4");
}

TEST(LayoutShape, RejectsMoreStagesThanLayers) {
  expect_error(5, parallel(1, 5), divisible_model(4), 5, 1,
               "--pipeline-model-parallel-size 5 exceeds --num-layers 4 (every stage needs at least one layer)");
}

TEST(LayoutShape, RejectsBadPipelineLayers) {
  const ModelConfig m = divisible_model(16);
  expect_error(4, parallel(1, 4, {8, 8}), m, 4, 1,
               "--pipeline-layers has 2 entries but --pipeline-model-parallel-size is 4");
  expect_error(4, parallel(1, 4, {4, 0, 6, 6}), m, 4, 1,
               "--pipeline-layers entry 1 is 0 (every stage needs at least one layer)");
  expect_error(4, parallel(1, 4, {4, 4, 4, 5}), m, 4, 1, "--pipeline-layers sums to 17 but --num-layers is 16");
}

TEST(LayoutShape, RejectsGlobalBatchNotDivisibleByMicroBatchTimesDataParallel) {
  expect_error(4, parallel(2, 1), divisible_model(4), 12, 4,
               "--global-batch-size 12 is not divisible by --micro-batch-size 4 × data-parallel size 2");
  EXPECT_EQ(error_on(4, 0, parallel(2, 1), divisible_model(4), 16, 4), "");
}

TEST(LayoutShape, RejectsNonPositiveSizes) {
  const ModelConfig m = divisible_model(4);
  expect_error(2, parallel(0, 1), m, 4, 1, "--tensor-model-parallel-size must be at least 1, got 0");
  expect_error(2, parallel(1, 0), m, 4, 1, "--pipeline-model-parallel-size must be at least 1, got 0");
  expect_error(2, parallel(1, 1), m, 4, 0, "--micro-batch-size must be at least 1, got 0");
  expect_error(2, parallel(1, 1), m, 0, 1, "--global-batch-size must be at least 1, got 0");
}

// The state the ranks of a ThreadWorld share for split(): each rank posts (color, key), then all read.
struct SplitBoard {
  explicit SplitBoard(int n) : posted(static_cast<size_t>(n)), sync(n) {}
  std::vector<std::pair<int, int>> posted;
  std::barrier<> sync;
};

// One rank of an in-process world (one thread per rank). split() groups ranks as MPI_Comm_split does;
// the communicators it returns know their members (world ranks in order) and cannot be split again.
// Data movement is not needed by ParallelLayout's constructor and throws.
class ThreadComm final : public Communicator {
 public:
  ThreadComm(int rank, std::vector<int> members, std::shared_ptr<SplitBoard> board)
      : rank_(rank), members_(std::move(members)), board_(std::move(board)) {}
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(members_.size()); }
  const char* backend() const override { return "thread"; }
  const std::vector<int>& members() const { return members_; }
  void all_reduce(const Tensor&, ReduceOp) override { unused(); }
  std::unique_ptr<CommRequest> all_reduce_async(const Tensor&, ReduceOp) override { unused(); }
  void reduce_scatter(const Tensor&, const Tensor&) override { unused(); }
  void all_gather(const Tensor&, const Tensor&) override { unused(); }
  void broadcast(const Tensor&, int) override { unused(); }
  void send(const Tensor&, int, int) override { unused(); }
  void recv(const Tensor&, int, int) override { unused(); }
  void barrier() override { unused(); }
  std::unique_ptr<Communicator> split(int color, int key) const override {
    PRORES_CHECK(board_ != nullptr, "ThreadComm: only the world can be split");
    board_->posted[static_cast<size_t>(rank_)] = {color, key};
    board_->sync.arrive_and_wait();
    std::vector<std::pair<int, int>> group;  // (key, world rank) of every rank with this color
    for (size_t r = 0; r < board_->posted.size(); ++r) {
      if (board_->posted[r].first == color) group.push_back({board_->posted[r].second, static_cast<int>(r)});
    }
    board_->sync.arrive_and_wait();  // everyone has read the board before the next split overwrites it
    std::sort(group.begin(), group.end());
    std::vector<int> members;
    for (const auto& [k, r] : group) members.push_back(r);
    const auto me = std::find(members.begin(), members.end(), rank_) - members.begin();
    return std::make_unique<ThreadComm>(static_cast<int>(me), std::move(members), nullptr);
  }

 private:
  [[noreturn]] static void unused() { PRORES_FAIL("ThreadComm: only split() is implemented"); }
  int rank_;
  std::vector<int> members_;
  std::shared_ptr<SplitBoard> board_;
};

const std::vector<int>& members(const Communicator& c) { return dynamic_cast<const ThreadComm&>(c).members(); }

TEST(ParallelLayout, AxisCommunicatorsGroupTheRightRanks) {
  const int tp = 2, pp = 3, dp = 2, world = tp * pp * dp;
  const ParallelConfig config = parallel(tp, pp);
  const ModelConfig model = divisible_model(7);
  auto board = std::make_shared<SplitBoard>(world);
  std::vector<std::string> failures(static_cast<size_t>(world));
  std::vector<int> everyone(static_cast<size_t>(world));
  std::iota(everyone.begin(), everyone.end(), 0);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      std::string& f = failures[static_cast<size_t>(rank)];
      ThreadComm comm(rank, everyone, board);
      std::unique_ptr<ParallelLayout> made;
      try {
        made = std::make_unique<ParallelLayout>(comm, config, model, 8, 2);
      } catch (const Error& e) {  // identical on every rank, before any split: no thread is left waiting
        f = e.what();
        return;
      }
      const ParallelLayout& layout = *made;
      const LayoutShape& s = layout.shape();
      std::vector<int> tp_group, dp_group, pp_group, mp_group;
      for (int64_t t = 0; t < tp; ++t) tp_group.push_back(static_cast<int>(s.rank_of(t, s.dp_rank, s.pp_rank)));
      for (int64_t d = 0; d < dp; ++d) dp_group.push_back(static_cast<int>(s.rank_of(s.tp_rank, d, s.pp_rank)));
      for (int64_t p = 0; p < pp; ++p) pp_group.push_back(static_cast<int>(s.rank_of(s.tp_rank, s.dp_rank, p)));
      for (int64_t p = 0; p < pp; ++p) {
        for (int64_t t = 0; t < tp; ++t) mp_group.push_back(static_cast<int>(s.rank_of(t, s.dp_rank, p)));
      }
      if (members(layout.tp()) != tp_group) f += " tp";
      if (members(layout.dp()) != dp_group) f += " dp";
      if (members(layout.pp()) != pp_group) f += " pp";
      if (members(layout.model_parallel()) != mp_group) f += " model-parallel";
      if (layout.tp().rank() != s.tp_rank || layout.dp().rank() != s.dp_rank || layout.pp().rank() != s.pp_rank) {
        f += " axis rank";
      }
      if (&layout.world() != &comm || layout.config().pipeline != pp) f += " world/config";
    });
  }
  for (auto& t : threads) t.join();
  for (int rank = 0; rank < world; ++rank) EXPECT_EQ(failures[static_cast<size_t>(rank)], "") << "rank " << rank;
}

TEST(ParallelLayout, SingleProcessWorld) {
  const auto world = make_single_process_communicator();
  const ParallelLayout layout(*world, ParallelConfig{}, divisible_model(3), 4, 2);
  EXPECT_EQ(layout.shape().describe(), "rank 0/1: tp 0/1, dp 0/1, pp 0/1, layers 1-3");
  for (Communicator* c : {&layout.tp(), &layout.dp(), &layout.pp(), &layout.model_parallel()}) {
    EXPECT_EQ(c->size(), 1);
    EXPECT_EQ(c->rank(), 0);
  }
  EXPECT_THROW(ParallelLayout(*world, parallel(2, 1), divisible_model(3), 4, 2), Error);
}

TEST(ParsePipelineLayers, ParsesCommaSeparatedCounts) {
  EXPECT_EQ(parse_pipeline_layers("8,8,7,7"), (std::vector<int64_t>{8, 8, 7, 7}));
  EXPECT_EQ(parse_pipeline_layers(" 12 , 4 "), (std::vector<int64_t>{12, 4}));
  EXPECT_EQ(parse_pipeline_layers("5"), (std::vector<int64_t>{5}));
  EXPECT_TRUE(parse_pipeline_layers("").empty());
  EXPECT_TRUE(parse_pipeline_layers("  ").empty());
}

TEST(ParsePipelineLayers, RejectsMalformedLists) {
  for (const char* bad : {"8,,7", "8,x", "8,8,", ",8", "8;8", "8.5,7", "8 8"}) {
    try {
      parse_pipeline_layers(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("--pipeline-layers"), std::string::npos) << msg;
      EXPECT_NE(msg.find(bad), std::string::npos) << msg;
    }
  }
}

}  // namespace
}  // namespace prores
