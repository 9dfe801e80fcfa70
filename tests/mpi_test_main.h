// The main() of the multi-rank tests (tests/test_mpi_*.cpp, run alone and under mpiexec): creates the
// world communicator, runs the GoogleTest suite on every rank (ranks other than 0 print only failures,
// prefixed with their rank), and fails the whole job when any rank failed, without leaving a rank waiting.
#pragma once
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <memory>

#include "parallel/communicator.h"

namespace prores::test {

// On ranks other than 0, print only failed assertions, prefixed with the rank.
class RankFailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (result.failed())
      std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, result.file_name() ? result.file_name() : "?",
                   result.line_number(), result.summary());
  }

 private:
  int rank_;
};

// Runs the suite named `name` over the world; `set_up(world)` runs before the tests (e.g. to store the
// world in the suite's global or build further communicators) and `tear_down()` after them, before MPI
// is finalized. Returns the process exit status.
inline int run_mpi_tests(int argc, char** argv, const char* name, const std::function<void(Communicator&)>& set_up,
                         const std::function<void()>& tear_down = [] {}) {
  std::unique_ptr<Communicator> world;
  try {
    world = make_world_communicator(&argc, &argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
  testing::InitGoogleTest(&argc, argv);
  set_up(*world);
  if (world->rank() != 0) {
    auto& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(world->rank()));
  }
  const bool failed_here = RUN_ALL_TESTS() != 0;
  const bool failed_anywhere = world->all_reduce_scalar(failed_here ? 1.0 : 0.0, ReduceOp::Max) > 0;
  if (failed_anywhere && world->rank() == 0) std::fprintf(stderr, "%s: failed on some rank\n", name);
  tear_down();
  world.reset();
  finalize_world();
  return failed_anywhere ? 1 : 0;
}

}  // namespace prores::test
