// DistributedOptimizer: the ZeRO-1 shard ranges, a sharded step over an in-process DP group (one thread per
// rank) against the whole-buffer step on the DP-summed gradients, the gradient-norm ranges, and the checks
// on the parameter list.
#include <gtest/gtest.h>

#include <barrier>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "optim/distributed_optimizer.h"
#include "optim/grad_clip.h"
#include "parallel/communicator.h"
#include "test_util.h"

namespace prores {
namespace {

using test::expect_error;

// What the ranks of a ThreadGroup post for a collective.
struct GroupBoard {
  explicit GroupBoard(int n) : sync(n), posted(static_cast<size_t>(n)) {}
  std::barrier<> sync;
  std::vector<float*> posted;
};

// One rank of an in-process group (one thread per rank) with the f32 reduce-scatter and all-gather that
// ZeRO-1 uses; reduce-scatter sums in rank order. Everything else throws.
class ThreadGroup final : public Communicator {
 public:
  ThreadGroup(int rank, int size, std::shared_ptr<GroupBoard> board)
      : rank_(rank), size_(size), board_(std::move(board)) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "thread"; }
  void reduce_scatter(const Tensor& out, const Tensor& in) override {
    const int64_t n = out.numel();
    post(in);
    std::vector<float> sum(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      float s = board_->posted[0][rank_ * n + i];
      for (int r = 1; r < size_; ++r) s += board_->posted[static_cast<size_t>(r)][rank_ * n + i];
      sum[static_cast<size_t>(i)] = s;
    }
    board_->sync.arrive_and_wait();  // every rank has read every input before out (a chunk of in) changes
    std::memcpy(out.data, sum.data(), sum.size() * sizeof(float));
  }
  void all_gather(const Tensor& out, const Tensor& in) override {
    const int64_t n = in.numel();
    post(in);
    for (int r = 0; r < size_; ++r)
      if (r != rank_) std::memcpy(out.as<float>() + r * n, board_->posted[static_cast<size_t>(r)], n * sizeof(float));
    board_->sync.arrive_and_wait();
  }
  void all_reduce(const Tensor&, ReduceOp) override { unused(); }
  std::unique_ptr<CommRequest> all_reduce_async(const Tensor&, ReduceOp) override { unused(); }
  void broadcast(const Tensor&, int) override { unused(); }
  void send(const Tensor&, int, int) override { unused(); }
  void recv(const Tensor&, int, int) override { unused(); }
  void barrier() override { board_->sync.arrive_and_wait(); }
  std::unique_ptr<Communicator> split(int, int) const override { unused(); }

 private:
  void post(const Tensor& in) {
    board_->posted[static_cast<size_t>(rank_)] = in.as<float>();
    board_->sync.arrive_and_wait();
  }
  [[noreturn]] static void unused() { PRORES_FAIL("ThreadGroup: not implemented"); }
  int rank_, size_;
  std::shared_ptr<GroupBoard> board_;
};

Tensor flat(std::vector<float>& v) {
  return Tensor(v.data(), DType::F32, Device::CPU, {static_cast<int64_t>(v.size())});
}

// Parameters of sizes 7, 5, 12, 3, 9 (P = 36): decay on the second and fourth, the third not in the norm.
std::vector<OptimizerParam> five_params() {
  return {{0, 7, false, true}, {7, 5, true, true}, {12, 12, false, false}, {24, 3, true, true}, {27, 9, false, true}};
}

TEST(DistributedOptimizer, ShardsArePaddedEqualRangesOfTheFlatBuffer) {
  std::vector<float> params(36, 1.0f), grads(36, 0.0f);
  const std::vector<OptimizerParam> layout = five_params();
  for (int dp : {1, 3, 5, 8}) {
    const int64_t S = (36 + dp - 1) / dp;
    auto board = std::make_shared<GroupBoard>(1);  // construction runs no collective
    for (int r = 0; r < dp; ++r) {
      ThreadGroup group(r, dp, board);
      const DistributedOptimizer opt(AdamWConfig{}, flat(params), flat(grads), layout, group, true);
      EXPECT_TRUE(opt.sharded());
      EXPECT_EQ(opt.begin(), std::min<int64_t>(36, r * S)) << dp << " ranks, rank " << r;
      EXPECT_EQ(opt.count(), std::max<int64_t>(0, std::min<int64_t>(S, 36 - r * S))) << dp << " ranks, rank " << r;
      EXPECT_EQ(opt.adamw().num_params(), opt.count());
    }
    ThreadGroup group(0, dp, board);
    const DistributedOptimizer whole(AdamWConfig{}, flat(params), flat(grads), layout, group, false);
    EXPECT_EQ(whole.begin(), 0);
    EXPECT_EQ(whole.count(), 36);
  }
}

// Three DP ranks with different gradients: ZeRO-1 gives every rank bitwise the parameters of the whole-buffer
// step on the summed gradients, and the ranks' sums of squares add up to the whole buffer's.
TEST(DistributedOptimizer, ShardedStepsEqualTheWholeBufferStepOnSummedGradients) {
  constexpr int kRanks = 3;
  const std::vector<OptimizerParam> layout = five_params();
  const int64_t P = 36;
  std::vector<float> init(P);
  test::fill_normal(init, 11);
  std::vector<std::vector<std::vector<float>>> grads(3);  // [step][rank]
  std::vector<std::vector<float>> summed(3, std::vector<float>(P));
  for (size_t s = 0; s < grads.size(); ++s) {
    for (int r = 0; r < kRanks; ++r) {
      grads[s].emplace_back(P);
      test::fill_normal(grads[s].back(), 20 + 3 * s + r, 0.1);
    }
    for (int64_t i = 0; i < P; ++i) {
      float sum = grads[s][0][i];
      for (int r = 1; r < kRanks; ++r) sum += grads[s][static_cast<size_t>(r)][i];
      summed[s][i] = sum;
    }
  }
  std::vector<float> want = init, want_grads(P);
  std::vector<double> want_sums;
  {
    const std::unique_ptr<Communicator> single = make_single_process_communicator();
    DistributedOptimizer whole(AdamWConfig{}, flat(want), flat(want_grads), layout, *single, false);
    for (size_t s = 0; s < grads.size(); ++s) {
      want_grads = summed[s];
      whole.reduce_gradients();  // nothing to do
      want_sums.push_back(whole.grad_sum_of_squares());
      whole.step(1e-2, s == 1 ? 0.5 : 1.0);
    }
    EXPECT_EQ(whole.adamw().step_count(), 3);
  }

  std::vector<std::vector<float>> got(kRanks, init);
  std::vector<std::vector<double>> sums(kRanks);
  auto board = std::make_shared<GroupBoard>(kRanks);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r) {
    threads.emplace_back([&, r] {
      ThreadGroup group(r, kRanks, board);
      std::vector<float> g(P);
      DistributedOptimizer opt(AdamWConfig{}, flat(got[static_cast<size_t>(r)]), flat(g), layout, group, true);
      for (size_t s = 0; s < grads.size(); ++s) {
        g = grads[s][static_cast<size_t>(r)];
        opt.reduce_gradients();
        EXPECT_EQ(g, grads[s][static_cast<size_t>(r)]) << "the model's gradients are left as they were";
        sums[static_cast<size_t>(r)].push_back(opt.grad_sum_of_squares());
        opt.step(1e-2, s == 1 ? 0.5 : 1.0);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < kRanks; ++r) EXPECT_EQ(got[static_cast<size_t>(r)], want) << "rank " << r;
  for (size_t s = 0; s < want_sums.size(); ++s) {
    double total = 0;
    for (int r = 0; r < kRanks; ++r) total += sums[static_cast<size_t>(r)][s];
    EXPECT_NEAR(total, want_sums[s], 1e-12 * want_sums[s]) << "step " << s + 1;
  }
}

TEST(DistributedOptimizer, NormCountsOnlyTheParametersInIt) {
  const std::vector<OptimizerParam> layout = five_params();
  std::vector<float> params(36, 1.0f), grads(36);
  test::fill_normal(grads, 5);
  const std::unique_ptr<Communicator> single = make_single_process_communicator();
  const DistributedOptimizer opt(AdamWConfig{}, flat(params), flat(grads), layout, *single, false);
  const std::span<const float> g(grads);
  EXPECT_EQ(opt.grad_sum_of_squares(), sum_of_squares(g.subspan(0, 12)) + sum_of_squares(g.subspan(24, 12)));
  // The decay segments follow the parameters, adjacent equal flags merged.
  ASSERT_EQ(opt.adamw().segments().size(), 5u);
  EXPECT_FALSE(opt.adamw().segments()[0].decay);
  EXPECT_TRUE(opt.adamw().segments()[1].decay);
}

TEST(DistributedOptimizer, ParametersMustTileTheBuffer) {
  std::vector<float> params(36, 1.0f), grads(36, 0.0f), short_grads(35, 0.0f);
  const std::unique_ptr<Communicator> single = make_single_process_communicator();
  std::vector<OptimizerParam> gap = five_params();
  gap.erase(gap.begin() + 2);
  expect_error([&] { DistributedOptimizer(AdamWConfig{}, flat(params), flat(grads), gap, *single, false); },
               {"DistributedOptimizer", "element 12"});
  std::vector<OptimizerParam> most = five_params();
  most.pop_back();
  expect_error([&] { DistributedOptimizer(AdamWConfig{}, flat(params), flat(grads), most, *single, true); },
               {"cover [0, 27) of 36"});
  expect_error(
      [&] { DistributedOptimizer(AdamWConfig{}, flat(params), flat(short_grads), five_params(), *single, false); },
      {"DistributedOptimizer", "one size"});
}

}  // namespace
}  // namespace prores
