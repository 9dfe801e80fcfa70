// The ProRes command-line options (--prores-schedule, --prores-warmup-steps, --prores-steps-per-layer),
// defined once here and shared by every subcommand that builds a ResidualSchedule (train, schedule).
#pragma once
#include <boost/program_options/options_description.hpp>

#include "model/residual_schedule.h"

namespace prores {

// Registers the three ProRes options in desc, storing into args (which must outlive the parse). The
// lengths have no default, so an absent option leaves ScheduleArgs::kUnset for make_residual_schedule to
// resolve. At po::notify time an unknown schedule name, or a negative, infinite or NaN length, throws
// prores::Error naming the option and value.
void add_schedule_options(boost::program_options::options_description& desc, ScheduleArgs& args);

}  // namespace prores
