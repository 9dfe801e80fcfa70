// The `prores` executable: dispatches to a subcommand; the only place that catches errors and exits.
#include <malloc.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli/schedule_command.h"
#include "cli/train_command.h"
#include "core/check.h"

namespace {

constexpr const char* kUsage =
    "Usage: prores <command> [options]   (prores <command> --help for its options)\n"
    "Commands:\n"
    "  train      train a Llama-style decoder with ProRes (Progressive Residual Warmup)\n"
    "  schedule   print the ProRes residual scale alpha(l, t) as CSV\n";

}  // namespace

int main(int argc, char** argv) {
  // Keep freed memory in the heap instead of returning it to the kernel: libraries that allocate large
  // scratch per call (oneDNN's GEMM packing) otherwise pay a page fault per 4 KiB every step.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 1 : 0;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (command == "train") return prores::run_train_command(args, std::cout);
    if (command == "schedule") return prores::run_schedule_command(args, std::cout);
    std::fprintf(stderr, "prores: error: unknown command '%s'\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "prores: error: %s\n", e.what());
    return 1;
  }
}
