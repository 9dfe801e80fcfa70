// Command line + INI parsing shared by the subcommands (see option_parsing.h).
#include "cli/option_parsing.h"

#include <fstream>

#include "core/check.h"

namespace prores {

namespace po = boost::program_options;

bool parse_options(const std::string& command, const std::vector<std::string>& args,
                   const po::options_description& desc, po::variables_map& vm) {
  std::string stage = "command line";
  try {
    const po::parsed_options cli = po::command_line_parser(args)
                                       .options(desc)
                                       .style(po::command_line_style::default_style &
                                              ~po::command_line_style::allow_guessing)
                                       .run();
    for (const po::option& opt : cli.options)
      PRORES_CHECK(opt.position_key < 0, command, ": unexpected argument '",
                   opt.original_tokens.empty() ? std::string() : opt.original_tokens.front(), "'");
    po::store(cli, vm);
    if (vm.count("help")) return false;
    if (desc.find_nothrow("config", false) && vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      std::ifstream file(path);
      PRORES_CHECK(file.good(), "--config: cannot open '", path, "'");
      stage = "config file '" + path + "'";
      po::store(po::parse_config_file(file, desc, /*allow_unregistered=*/false), vm);
    }
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    PRORES_FAIL(command, ": unknown option '", e.get_option_name(), "' in the ", stage);
  } catch (const po::error& e) {
    PRORES_FAIL(command, ": ", e.what(), " (in the ", stage, ")");
  }
  return true;
}

}  // namespace prores
