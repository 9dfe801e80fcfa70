// All-reduce bandwidth of the world communicator (MPI on host memory): f32 sums of 1..256 MiB, median of
// timed calls after warm-up, printed by rank 0 as algorithm bandwidth (bytes / time) and bus bandwidth
// (2(n-1)/n of it, as nccl-tests define it), and the page faults per call (slowest rank): freshly mapped
// scratch memory is what the malloc settings of docs/parallel.md avoid. Run under mpirun, e.g.
//   mpirun --allow-run-as-root --oversubscribe -np 2 ./build/bench_allreduce [--no-mallopt]
// --no-mallopt initialises MPI here, before make_world_communicator, so that the malloc settings of
// docs/parallel.md are not applied: the comparison the design note quotes.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#if defined(PRORES_WITH_MPI)
#include <mpi.h>
#endif

#include "parallel/communicator.h"

using namespace prores;

namespace {

struct Options {
  std::vector<int64_t> sizes_mib{1, 4, 16, 64, 256};
  int iters = 10;
  int warmup = 3;
  bool no_mallopt = false;
};

std::vector<int64_t> parse_list(const std::string& text) {
  std::vector<int64_t> values;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    values.push_back(std::stoll(text.substr(begin, end - begin)));
    begin = end + 1;
  }
  return values;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--no-mallopt") {
      o.no_mallopt = true;
    } else if (arg == "--sizes-mib" && has_value) {
      o.sizes_mib = parse_list(argv[++i]);
    } else if (arg == "--iters" && has_value) {
      o.iters = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--warmup" && has_value) {
      o.warmup = std::max(0, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: bench_allreduce [--sizes-mib 1,4,16,64,256] [--iters 10] [--warmup 3] [--no-mallopt]\n");
      std::exit(2);
    }
  }
  return o;
}

// Seconds of one all-reduce: every rank starts after a barrier; the slowest rank's time counts.
double time_all_reduce(Communicator& world, const Tensor& x) {
  world.barrier();
  const auto start = std::chrono::steady_clock::now();
  world.all_reduce(x, ReduceOp::Sum);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return world.all_reduce_scalar(seconds, ReduceOp::Max);
}

// Minor page faults of this process so far.
double minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_minflt);
}

// True on every rank when every rank's x holds size() after all-reducing ones (spot checks).
bool sums_are_right(Communicator& world, const Tensor& x, std::vector<float>& buffer) {
  const auto n = static_cast<size_t>(x.numel());
  std::fill(buffer.begin(), buffer.begin() + n, 1.0f);
  world.all_reduce(x, ReduceOp::Sum);
  const auto expected = static_cast<float>(world.size());
  const bool right = buffer[0] == expected && buffer[n / 2] == expected && buffer[n - 1] == expected;
  return world.all_reduce_scalar(right ? 0.0 : 1.0, ReduceOp::Max) == 0.0;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t m = values.size() / 2;
  return values.size() % 2 ? values[m] : 0.5 * (values[m - 1] + values[m]);
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
#if defined(PRORES_WITH_MPI)
  if (options.no_mallopt) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  }
#endif
  auto world = make_world_communicator(&argc, &argv);
  const int n = world->size();
  const bool lead = world->rank() == 0;
  if (n == 1) {
    if (lead) std::printf("1 rank (%s): nothing to communicate; run under mpirun -np N\n", world->backend());
  } else {
    const int64_t max_mib = *std::max_element(options.sizes_mib.begin(), options.sizes_mib.end());
    std::vector<float> buffer(static_cast<size_t>(max_mib) << 18, 1.0f);  // touched once, reused
    if (lead) {
      std::printf("backend %s, %d ranks, malloc settings %s, median of %d after %d warm-up\n",
                  world->backend(), n, options.no_mallopt ? "off (--no-mallopt)" : "on", options.iters,
                  options.warmup);
      std::printf("%8s %11s %11s %12s %12s %12s\n", "MiB", "median_ms", "min_ms", "algbw_GB/s", "busbw_GB/s",
                  "faults/call");
    }
    for (const int64_t mib : options.sizes_mib) {
      const Tensor x(buffer.data(), DType::F32, Device::CPU, {mib << 18});
      std::fill(buffer.begin(), buffer.begin() + (mib << 18), 1e-3f * static_cast<float>(world->rank() + 1));
      for (int i = 0; i < options.warmup; ++i) time_all_reduce(*world, x);
      std::vector<double> seconds;
      const double faults_before = minor_faults();
      for (int i = 0; i < options.iters; ++i) seconds.push_back(time_all_reduce(*world, x));
      const double faults = world->all_reduce_scalar(minor_faults() - faults_before, ReduceOp::Max) / options.iters;
      const double typical = median(seconds);
      const double algbw = static_cast<double>(x.nbytes()) / typical / 1e9;
      const bool right = sums_are_right(*world, x, buffer);
      if (lead)
        std::printf("%8lld %11.2f %11.2f %12.3f %12.3f %12.0f%s\n", static_cast<long long>(mib), typical * 1e3,
                    *std::min_element(seconds.begin(), seconds.end()) * 1e3, algbw, algbw * 2.0 * (n - 1) / n, faults,
                    right ? "" : "  WRONG SUM");
    }
  }
  world.reset();
  finalize_world();
#if defined(PRORES_WITH_MPI)
  if (options.no_mallopt) MPI_Finalize();
#endif
  return 0;
}
