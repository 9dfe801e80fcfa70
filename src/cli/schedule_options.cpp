// Registration of the ProRes command-line options (see schedule_options.h).
#include "cli/schedule_options.h"

#include <boost/program_options/value_semantic.hpp>
#include <cmath>

#include "core/check.h"

namespace prores {

namespace po = boost::program_options;

namespace {

// A notifier rejecting a given length that is negative, infinite or NaN (kUnset included: it is only
// the "absent" marker, never a value a user may pass).
auto length_notifier(const char* option) {
  return [option](double value) {
    PRORES_CHECK(std::isfinite(value) && value >= 0, option, " must be a finite number >= 0, got ", value);
  };
}

}  // namespace

void add_schedule_options(po::options_description& desc, ScheduleArgs& args) {
  desc.add_options()
      ("prores-schedule",
       po::value<std::string>(&args.schedule)
           ->default_value(args.schedule)
           ->value_name("S")
           ->notifier([](const std::string& name) { parse_schedule_kind(name); }),
       "residual warm-up schedule alpha(l, t): none, linear, equal, reverse, linear-square, linear-sqrt, "
       "stagewise-0, stagewise-L, stagewise-sqrt-L, stagewise-sqrt-l, fix-L, fix-sqrt-L, fix-sqrt-l "
       "(-L: depth L, -l: layer index l)")
      ("prores-warmup-steps",
       po::value<double>(&args.warmup_steps)
           ->value_name("W")
           ->notifier(length_notifier("--prores-warmup-steps")),
       "total residual warm-up length W in optimizer steps; block l reaches alpha = 1 after T*l steps, "
       "T = W / L (default: W = 1000 * L)")
      ("prores-steps-per-layer",
       po::value<double>(&args.steps_per_layer)
           ->value_name("T")
           ->notifier(length_notifier("--prores-steps-per-layer")),
       "per-layer warm-up length T, i.e. W = T * L (the paper's T; default 1000); must agree with "
       "--prores-warmup-steps when both are given");
}

}  // namespace prores
