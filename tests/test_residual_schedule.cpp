// Tests for the ProRes residual schedules (docs/prores.md): every schedule against hand-computed
// values at boundaries, stage slices, resolution of the length options, and the `prores schedule` command.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "cli/schedule_command.h"
#include "core/check.h"
#include "model/residual_schedule.h"
#include "test_util.h"

namespace prores {
namespace {

using test::expect_error;

constexpr ScheduleKind kAllKinds[] = {
    ScheduleKind::None,           ScheduleKind::Linear,         ScheduleKind::Equal,
    ScheduleKind::Reverse,        ScheduleKind::LinearSquare,   ScheduleKind::LinearSqrt,
    ScheduleKind::Stagewise0,     ScheduleKind::StagewiseL,     ScheduleKind::StagewiseSqrtL,
    ScheduleKind::StagewiseSqrtLayer,
    ScheduleKind::FixL,           ScheduleKind::FixSqrtL,       ScheduleKind::FixSqrtLayer,
};

// One hand-computed point: alpha(layer, t) == want.
struct Point {
  int64_t layer;
  int64_t t;
  double want;
};

// Checks every point for kind with L = 4, W = 400 (T = 100, T_l = 100 l).
void expect_points(ScheduleKind kind, const std::vector<Point>& points) {
  const ResidualSchedule s(kind, 4, 400);
  for (const Point& p : points) {
    EXPECT_DOUBLE_EQ(s.alpha(p.layer, p.t), p.want)
        << schedule_kind_name(kind) << " l=" << p.layer << " t=" << p.t;
  }
}

TEST(ResidualSchedule, Names) {
  for (ScheduleKind k : kAllKinds) EXPECT_EQ(parse_schedule_kind(schedule_kind_name(k)), k);
  EXPECT_EQ(parse_schedule_kind("stagewise-L"), ScheduleKind::StagewiseL);
  EXPECT_EQ(parse_schedule_kind("stagewise-sqrt-L"), ScheduleKind::StagewiseSqrtL);
  EXPECT_EQ(parse_schedule_kind("stagewise-sqrt-l"), ScheduleKind::StagewiseSqrtLayer);
  EXPECT_EQ(parse_schedule_kind("fix-sqrt-L"), ScheduleKind::FixSqrtL);
  EXPECT_EQ(parse_schedule_kind("fix-sqrt-l"), ScheduleKind::FixSqrtLayer);
  expect_error([] { parse_schedule_kind("Linear"); },
               {"--prores-schedule: unknown value 'Linear'", "expected none, linear, equal", "fix-sqrt-l"});
  expect_error([] { parse_schedule_kind("fix-l"); }, {"'fix-l'"});
}

TEST(ResidualSchedule, Accessors) {
  const ResidualSchedule s(ScheduleKind::Reverse, 4, 400);
  EXPECT_EQ(s.kind(), ScheduleKind::Reverse);
  EXPECT_EQ(s.num_layers(), 4);
  EXPECT_EQ(s.warmup_steps(), 400);
  EXPECT_EQ(s.steps_per_layer(), 100);
}

TEST(ResidualSchedule, None) {
  expect_points(ScheduleKind::None, {{1, 0, 1}, {4, 0, 1}, {2, 150, 1}, {4, 100000, 1}});
}

TEST(ResidualSchedule, Linear) {
  expect_points(ScheduleKind::Linear, {{1, 0, 0},    {1, 50, 0.5},    {1, 99, 0.99},  {1, 100, 1},
                                       {1, 101, 1},  {3, 100, 1.0 / 3}, {4, 0, 0},    {4, 100, 0.25},
                                       {4, 399, 0.9975}, {4, 400, 1}, {4, 401, 1},    {4, 1000000, 1}});
}

TEST(ResidualSchedule, Equal) {
  expect_points(ScheduleKind::Equal, {{1, 0, 0},      {4, 0, 0},        {1, 100, 0.25}, {4, 100, 0.25},
                                      {2, 399, 0.9975}, {1, 400, 1},    {4, 400, 1},    {3, 401, 1}});
}

TEST(ResidualSchedule, Reverse) {
  // Block l finishes at T (L - l + 1): block 4 at 100, block 1 at 400.
  expect_points(ScheduleKind::Reverse, {{4, 0, 0},  {4, 99, 0.99},   {4, 100, 1},    {4, 101, 1},
                                        {1, 100, 0.25}, {1, 399, 0.9975}, {1, 400, 1}, {2, 150, 0.5}});
}

TEST(ResidualSchedule, LinearSquare) {
  expect_points(ScheduleKind::LinearSquare, {{1, 0, 0},     {1, 50, 0.25},  {1, 100, 1},  {1, 101, 1},
                                             {2, 100, 0.25}, {2, 150, 0.5625}, {2, 200, 1}, {4, 200, 0.25},
                                             {4, 400, 1}});
}

TEST(ResidualSchedule, LinearSqrt) {
  expect_points(ScheduleKind::LinearSqrt, {{1, 0, 0},     {1, 25, 0.5},   {1, 64, 0.8},  {1, 100, 1},
                                           {2, 199, std::sqrt(0.995)}, {2, 200, 1},  {4, 100, 0.5},
                                           {4, 400, 1},   {4, 401, 1}});
}

TEST(ResidualSchedule, Stagewise0) {
  // Block l ramps from 0 to 1 over t in [T (l - 1), T l] and is exactly 0 before.
  expect_points(ScheduleKind::Stagewise0, {{1, 0, 0},    {1, 50, 0.5},   {1, 100, 1},   {1, 5000, 1},
                                           {3, 0, 0},    {3, 199, 0},    {3, 200, 0},   {3, 201, 0.01},
                                           {3, 250, 0.5}, {3, 299, 0.99}, {3, 300, 1},  {3, 301, 1},
                                           {4, 300, 0},  {4, 350, 0.5},  {4, 400, 1}});
}

TEST(ResidualSchedule, StagewiseL) {
  // s = 1 / L = 0.25 for every block: the paper's ablation floor.
  expect_points(ScheduleKind::StagewiseL, {{1, 0, 0.25},  {1, 50, 0.625}, {1, 100, 1},  {3, 0, 0.25},
                                           {3, 200, 0.25}, {3, 250, 0.625}, {3, 300, 1}, {4, 399, 0.9925},
                                           {4, 400, 1}});
}

TEST(ResidualSchedule, StagewiseSqrtL) {
  // s = 1 / sqrt(4) = 0.5 for every block.
  expect_points(ScheduleKind::StagewiseSqrtL, {{1, 0, 0.5},   {1, 50, 0.75},  {1, 100, 1},  {3, 0, 0.5},
                                               {3, 200, 0.5}, {3, 250, 0.75}, {3, 300, 1},  {4, 399, 0.995},
                                               {4, 400, 1}});
}

TEST(ResidualSchedule, StagewiseSqrtLayer) {
  // s = 1 / sqrt(l): block 1 is 1 from the start, block 4 starts at 0.5.
  const double s2 = 1.0 / std::sqrt(2.0);
  expect_points(ScheduleKind::StagewiseSqrtLayer,
                {{1, 0, 1}, {1, 50, 1}, {2, 0, s2}, {2, 100, s2}, {2, 150, s2 + (1 - s2) * 0.5}, {2, 200, 1},
                 {4, 0, 0.5}, {4, 300, 0.5}, {4, 350, 0.75}, {4, 400, 1}, {4, 401, 1}});
}

TEST(ResidualSchedule, Fixed) {
  expect_points(ScheduleKind::FixL, {{1, 0, 0.25}, {4, 0, 0.25}, {2, 1000000, 0.25}});
  expect_points(ScheduleKind::FixSqrtL, {{1, 0, 0.5}, {4, 0, 0.5}, {3, 1000000, 0.5}});
  expect_points(ScheduleKind::FixSqrtLayer,
                {{1, 0, 1}, {2, 0, 1.0 / std::sqrt(2.0)}, {4, 0, 0.5}, {4, 1000000, 0.5}});
}

TEST(ResidualSchedule, NonIntegralStepsPerLayer) {
  // L = 3, W = 1000: T = 333.33...; every block still reaches exactly 1 at T l and not before.
  const ResidualSchedule lin(ScheduleKind::Linear, 3, 1000);
  EXPECT_DOUBLE_EQ(lin.alpha(1, 333), 0.999);
  EXPECT_EQ(lin.alpha(1, 334), 1.0);
  EXPECT_DOUBLE_EQ(lin.alpha(3, 999), 0.999);
  EXPECT_LT(lin.alpha(3, 999), 1.0);
  EXPECT_EQ(lin.alpha(3, 1000), 1.0);
  const ResidualSchedule stage(ScheduleKind::Stagewise0, 3, 1000);
  EXPECT_EQ(stage.alpha(2, 333), 0.0);
  EXPECT_DOUBLE_EQ(stage.alpha(2, 334), 0.002);
  EXPECT_EQ(stage.alpha(3, 1000), 1.0);
  EXPECT_LT(stage.alpha(3, 999), 1.0);
}

TEST(ResidualSchedule, ZeroWarmupIsDoneFromTheStart) {
  for (ScheduleKind k : kAllKinds) {
    const ResidualSchedule s(k, 4, 0);
    for (int64_t l = 1; l <= 4; ++l) {
      for (int64_t t : {0, 1, 100}) {
        const double a = s.alpha(l, t);
        EXPECT_FALSE(std::isnan(a)) << schedule_kind_name(k);
        if (k == ScheduleKind::FixL) {
          EXPECT_EQ(a, 0.25);
        } else if (k == ScheduleKind::FixSqrtL) {
          EXPECT_EQ(a, 0.5);
        } else if (k == ScheduleKind::FixSqrtLayer) {
          EXPECT_EQ(a, 1.0 / std::sqrt(static_cast<double>(l)));
        } else {
          EXPECT_EQ(a, 1.0) << schedule_kind_name(k) << " l=" << l << " t=" << t;
        }
      }
    }
  }
}

TEST(ResidualSchedule, SingleLayer) {
  const ResidualSchedule lin(ScheduleKind::Linear, 1, 10);
  EXPECT_EQ(lin.alpha(1, 5), 0.5);
  EXPECT_EQ(lin.alpha(1, 10), 1.0);
  const ResidualSchedule sqrt_l(ScheduleKind::StagewiseSqrtL, 1, 10);  // s = 1: constant 1
  EXPECT_EQ(sqrt_l.alpha(1, 0), 1.0);
  EXPECT_EQ(ResidualSchedule(ScheduleKind::FixL, 1, 10).alpha(1, 0), 1.0);
}

TEST(ResidualSchedule, AlwaysInUnitInterval) {
  for (ScheduleKind k : kAllKinds) {
    const ResidualSchedule s(k, 7, 700);
    for (int64_t l = 1; l <= 7; ++l) {
      double prev = -1;
      for (int64_t t = 0; t <= 800; t += 7) {
        const double a = s.alpha(l, t);
        EXPECT_GE(a, 0.0);
        EXPECT_LE(a, 1.0);
        EXPECT_GE(a, prev) << schedule_kind_name(k) << ": alpha must not decrease";
        prev = a;
      }
      EXPECT_EQ(s.alpha(l, 700), k >= ScheduleKind::FixL ? s.alpha(l, 0) : 1.0) << schedule_kind_name(k);
    }
  }
}

TEST(ResidualSchedule, InvalidArguments) {
  const ResidualSchedule s(ScheduleKind::Linear, 4, 400);
  expect_error([&] { s.alpha(0, 10); }, {"layer 0 outside [1, 4]"});
  expect_error([&] { s.alpha(5, 10); }, {"layer 5 outside [1, 4]"});
  expect_error([&] { s.alpha(1, -1); }, {"-1"});
  expect_error([] { ResidualSchedule(ScheduleKind::Linear, 0, 400); }, {"--num-layers", "0"});
  expect_error([] { ResidualSchedule(ScheduleKind::Linear, 4, -1); }, {"--prores-warmup-steps", "-1"});
  expect_error([] { ResidualSchedule(ScheduleKind::Linear, 4, std::nan("")); },
               {"--prores-warmup-steps", "nan"});
  expect_error([] { ResidualSchedule(ScheduleKind::Linear, 4, std::numeric_limits<double>::infinity()); },
               {"--prores-warmup-steps", "inf"});
}

TEST(ResidualSchedule, SliceMatchesAlpha) {
  for (ScheduleKind k : kAllKinds) {
    const ResidualSchedule s(k, 6, 600);
    for (int64_t t : {0, 99, 100, 250, 600, 601}) {
      std::vector<double> out(3, -7.0);
      s.alphas(t, 3, 3, out.data());
      for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(out[i], s.alpha(3 + i, t)) << schedule_kind_name(k);
      std::vector<double> all(6);
      s.alphas(t, 1, 6, all.data());
      for (int64_t l = 1; l <= 6; ++l) EXPECT_EQ(all[l - 1], s.alpha(l, t));
    }
  }
  const ResidualSchedule s(ScheduleKind::Linear, 4, 400);
  s.alphas(10, 5, 0, nullptr);  // empty slice: nothing written, nothing checked
  double out[4];
  expect_error([&] { s.alphas(10, 2, 4, out); }, {"layers 2..5 outside [1, 4]"});
  expect_error([&] { s.alphas(10, 0, 1, out); }, {"outside [1, 4]"});
  expect_error([&] { s.alphas(10, 1, -1, out); }, {"-1"});
}

TEST(MakeResidualSchedule, Resolution) {
  ScheduleArgs args;
  ResidualSchedule s = make_residual_schedule(args, 12);
  EXPECT_EQ(s.kind(), ScheduleKind::Linear);
  EXPECT_EQ(s.warmup_steps(), 12000);  // the reference recipe: T = 1000
  EXPECT_EQ(s.steps_per_layer(), 1000);

  args.schedule = "stagewise-sqrt-l";
  args.warmup_steps = 400;
  s = make_residual_schedule(args, 4);
  EXPECT_EQ(s.kind(), ScheduleKind::StagewiseSqrtLayer);
  EXPECT_EQ(s.warmup_steps(), 400);
  EXPECT_EQ(s.steps_per_layer(), 100);

  args = ScheduleArgs{};
  args.steps_per_layer = 500;
  s = make_residual_schedule(args, 96);
  EXPECT_EQ(s.warmup_steps(), 48000);
  EXPECT_EQ(s.steps_per_layer(), 500);

  args.warmup_steps = 48000;  // both given and agreeing
  EXPECT_EQ(make_residual_schedule(args, 96).warmup_steps(), 48000);
  args.warmup_steps = 1000;
  args.steps_per_layer = 1000.0 / 3;  // agrees up to rounding
  EXPECT_EQ(make_residual_schedule(args, 3).warmup_steps(), 1000);

  args = ScheduleArgs{};
  args.warmup_steps = 0;
  EXPECT_EQ(make_residual_schedule(args, 4).alpha(4, 0), 1.0);
}

TEST(MakeResidualSchedule, Errors) {
  ScheduleArgs args;
  args.schedule = "linear_sqrt";
  expect_error([&] { make_residual_schedule(args, 4); }, {"--prores-schedule", "'linear_sqrt'"});

  args = ScheduleArgs{};
  args.warmup_steps = 400;
  args.steps_per_layer = 300;
  expect_error([&] { make_residual_schedule(args, 4); },
               {"--prores-warmup-steps 400 and --prores-steps-per-layer 300 disagree", "300 * 4 = 1200"});

  args = ScheduleArgs{};
  args.warmup_steps = -5;
  expect_error([&] { make_residual_schedule(args, 4); }, {"--prores-warmup-steps", "-5"});
  args = ScheduleArgs{};
  args.steps_per_layer = std::nan("");
  expect_error([&] { make_residual_schedule(args, 4); }, {"--prores-steps-per-layer", "nan"});
  args = ScheduleArgs{};
  args.steps_per_layer = -0.5;
  expect_error([&] { make_residual_schedule(args, 4); }, {"--prores-steps-per-layer", "-0.5"});
  args = ScheduleArgs{};
  args.steps_per_layer = 1e308;
  expect_error([&] { make_residual_schedule(args, 4); }, {"--prores-steps-per-layer", "overflows"});
  expect_error([] { make_residual_schedule(ScheduleArgs{}, 0); }, {"--num-layers", "0"});
}

// Runs the schedule command and returns its output.
std::string run_schedule(const std::vector<std::string>& args) {
  std::ostringstream out;
  EXPECT_EQ(run_schedule_command(args, out), 0);
  return out.str();
}

TEST(ScheduleCommand, Csv) {
  EXPECT_EQ(run_schedule({"--num-layers", "2", "--prores-schedule", "linear", "--prores-warmup-steps", "200",
                          "--iters", "0,50,200"}),
            "iter,layer,alpha\n"
            "0,1,0\n0,2,0\n"
            "50,1,0.5\n50,2,0.25\n"
            "200,1,1\n200,2,1\n");
  // Iterations keep the given order; --prores-steps-per-layer and the = form work too.
  EXPECT_EQ(run_schedule({"--num-layers=2", "--prores-schedule=stagewise-0", "--prores-steps-per-layer=10",
                          "--iters=15,0"}),
            "iter,layer,alpha\n15,1,1\n15,2,0.5\n0,1,0\n0,2,0\n");
  // Default schedule (linear) and default T = 1000.
  EXPECT_EQ(run_schedule({"--num-layers", "1", "--iters", "500"}), "iter,layer,alpha\n500,1,0.5\n");
}

TEST(ScheduleCommand, AlphaRoundTrips) {
  const std::string csv =
      run_schedule({"--num-layers", "3", "--prores-schedule", "linear-sqrt", "--prores-warmup-steps", "1000",
                    "--iters", "0,7,333,999"});
  const ResidualSchedule s(ScheduleKind::LinearSqrt, 3, 1000);
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "iter,layer,alpha");
  int rows = 0;
  while (std::getline(in, line)) {
    const size_t c1 = line.find(','), c2 = line.rfind(',');
    const int64_t t = std::stoll(line.substr(0, c1));
    const int64_t l = std::stoll(line.substr(c1 + 1, c2 - c1 - 1));
    EXPECT_EQ(std::stod(line.substr(c2 + 1)), s.alpha(l, t)) << line;
    ++rows;
  }
  EXPECT_EQ(rows, 12);
}

TEST(ScheduleCommand, Help) {
  const std::string help = run_schedule({"--help"});
  EXPECT_NE(help.find("Usage: prores schedule"), std::string::npos);
  EXPECT_NE(help.find("--prores-schedule"), std::string::npos);
  EXPECT_NE(help.find("--prores-warmup-steps"), std::string::npos);
  EXPECT_NE(help.find("--prores-steps-per-layer"), std::string::npos);
  EXPECT_NE(help.find("--iters"), std::string::npos);
}

TEST(ScheduleCommand, Errors) {
  std::ostringstream out;
  auto run = [&out](const std::vector<std::string>& args) {
    return [&out, args] { run_schedule_command(args, out); };
  };
  expect_error(run({"--num-layers", "4", "--prores-schedule", "Linear", "--iters", "0"}),
               {"--prores-schedule: unknown value 'Linear'"});
  expect_error(run({"--num-layers", "4", "--iters", "0,x,5"}), {"--iters", "'x'", "0,x,5"});
  expect_error(run({"--num-layers", "4", "--iters", "1,,2"}), {"--iters", "''"});
  expect_error(run({"--num-layers", "4", "--iters", ""}), {"--iters"});
  expect_error(run({"--num-layers", "4", "--iters", "3,"}), {"--iters"});
  expect_error(run({"--num-layers", "4", "--iters", "+5"}), {"--iters", "'+5'"});
  expect_error(run({"--num-layers", "4", "--iters=-5"}), {"--iters", "'-5'"});
  expect_error(run({"--num-layers", "4", "--iters", "1.5"}), {"--iters", "'1.5'"});
  expect_error(run({"--num-layers", "4", "--iters", "99999999999999999999"}), {"--iters"});
  expect_error(run({"--iters", "0"}), {"--num-layers is required"});
  expect_error(run({"--num-layers", "4"}), {"--iters is required"});
  expect_error(run({"--num-layers", "0", "--iters", "0"}), {"--num-layers must be at least 1, got 0"});
  expect_error(run({"--num-layers", "abc", "--iters", "0"}), {"--num-layers", "abc"});
  expect_error(run({"--num-layers"}), {"--num-layers"});
  expect_error(run({"--num-layers", "4", "--iters", "0", "--bogus", "1"}), {"--bogus"});
  expect_error(run({"--num-l", "4", "--iters", "0"}), {"--num-l"});
  expect_error(run({"--num-layers", "4", "--iters", "0", "extra"}), {"unexpected argument 'extra'"});
  expect_error(run({"--num-layers", "4", "--iters", "0", "--prores-warmup-steps=-3"}),
               {"--prores-warmup-steps", "-3"});
  expect_error(run({"--num-layers", "4", "--iters", "0", "--prores-warmup-steps", "abc"}),
               {"--prores-warmup-steps", "abc"});
  expect_error(run({"--num-layers", "4", "--iters", "0", "--prores-warmup-steps", "400",
                    "--prores-steps-per-layer", "50"}),
               {"disagree"});
  EXPECT_EQ(out.str(), "");  // nothing printed before an error
}

}  // namespace
}  // namespace prores
