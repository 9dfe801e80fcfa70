// `prores schedule` (see schedule_command.h): option parsing and the CSV table.
#include "cli/schedule_command.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <charconv>
#include <cstdint>

#include "cli/option_parsing.h"
#include "cli/schedule_options.h"
#include "core/check.h"
#include "model/residual_schedule.h"

namespace prores {

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "Usage: prores schedule --num-layers L --iters I1,I2,... [--prores-schedule S]\n"
    "                       [--prores-warmup-steps W | --prores-steps-per-layer T]\n"
    "Prints the ProRes residual scale alpha(l, t) as CSV (iter,layer,alpha): one row per listed\n"
    "iteration t (optimizer steps already taken) and block l = 1..L.\n";

// Shortest decimal text that reads back as x.
std::string shortest(double x) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), x);
  return std::string(buf, res.ptr);
}

}  // namespace

int run_schedule_command(const std::vector<std::string>& args, std::ostream& out) {
  int64_t num_layers = 0;
  std::string iters_text;
  ScheduleArgs schedule_args;
  po::options_description desc("prores schedule options");
  desc.add_options()
      ("help", "print this help")
      ("num-layers", po::value<int64_t>(&num_layers)->value_name("L"),
       "number of transformer blocks L (required)")
      ("iters", po::value<std::string>(&iters_text)->value_name("I1,I2,..."),
       "comma-separated iterations t to tabulate, e.g. 0,100,500 (required)");
  add_schedule_options(desc, schedule_args);

  po::variables_map vm;
  if (!parse_options("schedule", args, desc, vm)) {
    out << kUsage << desc;
    return 0;
  }
  PRORES_CHECK(vm.count("num-layers"), "schedule: --num-layers is required");
  PRORES_CHECK(num_layers >= 1, "--num-layers must be at least 1, got ", num_layers);
  PRORES_CHECK(vm.count("iters"), "schedule: --iters is required (e.g. --iters 0,100,500)");
  const std::vector<int64_t> iters = parse_iteration_list("--iters", iters_text);
  const ResidualSchedule schedule = make_residual_schedule(schedule_args, num_layers);

  out << "iter,layer,alpha\n";
  for (int64_t t : iters) {
    for (int64_t l = 1; l <= num_layers; ++l) {
      out << t << ',' << l << ',' << shortest(schedule.alpha(l, t)) << '\n';
    }
  }
  return 0;
}

}  // namespace prores
